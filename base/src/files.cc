#include "vfplane/base/files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "vfplane/base/fd.h"

namespace vfplane {
namespace fs = std::filesystem;

Result<void> writeFileAtomic(const fs::path& path, std::string_view content, mode_t mode) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec)
    return fail(fmt::format("create {}: {}", path.parent_path().string(), ec.message()),
                ec.value());
  fs::path tmp = path;
  tmp += fmt::format(".tmp.{}", ::getpid());
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd.valid()) return fail(systemError(fmt::format("create {}", tmp.string()), errno));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::unlink(tmp.c_str());
      return fail(systemError(fmt::format("write {}", tmp.string()), err));
    }
    done += static_cast<size_t>(n);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return fail(systemError(fmt::format("write {}", path.string()), err));
  }
  return {};
}

Result<std::string> readFile(const fs::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return fail(systemError(fmt::format("open {}", path.string()), errno));
  std::string out;
  char buf[16384];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(systemError(fmt::format("read {}", path.string()), errno));
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

Result<bool> writeFileIfChanged(const fs::path& path, std::string_view content, mode_t mode) {
  if (Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)); fd.valid()) {
    std::string existing(content.size() + 1, '\0');
    ssize_t n = ::read(fd.get(), existing.data(), existing.size());
    if (n == static_cast<ssize_t>(content.size()) &&
        existing.compare(0, content.size(), content) == 0)
      return false;
  }
  if (auto w = writeFileAtomic(path, content, mode); !w) return fail(std::move(w.error()));
  return true;
}

}  // namespace vfplane
