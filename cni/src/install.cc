#include "vfplane/cni/install.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "vfplane/base/fd.h"
#include "vfplane/base/files.h"

namespace vfplane::cni {
namespace fs = std::filesystem;

namespace {

// Copies `from` to `tmp` (mode 0755), fsync'd.
Result<void> copyDurably(const fs::path& from, const fs::path& tmp) {
  Fd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return fail(systemError("open " + from.string(), errno));
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755));
  if (!out.valid()) return fail(systemError("create " + tmp.string(), errno));
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(in.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(systemError("read " + from.string(), errno));
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out.get(), buf + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return fail(systemError("write " + tmp.string(), errno));
      done += w;
    }
  }
  // The umask may have narrowed it; the runtime must be able to exec it.
  if (::fchmod(out.get(), 0755) != 0) return fail(systemError("chmod " + tmp.string(), errno));
  if (::fsync(out.get()) != 0) return fail(systemError("fsync " + tmp.string(), errno));
  return {};
}

Result<bool> sameContent(const fs::path& a, const fs::path& b) {
  auto x = readFile(a);
  if (!x) return fail(std::move(x.error()));
  auto y = readFile(b);
  if (!y) {
    if (y.error().sysErrno() == ENOENT) return false;
    return fail(std::move(y.error()));
  }
  return *x == *y;
}

}  // namespace

Result<std::vector<std::string>> verifyPlugins(const fs::path& from, const fs::path& to,
                                               const std::vector<std::string>& names) {
  std::vector<std::string> differ;
  for (const auto& n : names) {
    auto same = sameContent(from / n, to / n);
    if (!same) return fail(std::move(same.error()));
    if (!*same) differ.push_back(n);
  }
  return differ;
}

Result<InstallReport> installPlugins(const fs::path& from, const fs::path& to,
                                     const std::vector<std::string>& names,
                                     const std::string& version) {
  std::error_code ec;
  fs::create_directories(to, ec);
  if (ec) return fail(fmt::format("create {}: {}", to.string(), ec.message()), ec.value());
  InstallReport report;
  auto differ = verifyPlugins(from, to, names);
  if (!differ) return fail(std::move(differ.error()));
  for (const auto& n : names) {
    if (std::find(differ->begin(), differ->end(), n) == differ->end())
      report.unchanged.push_back(n);
  }
  // Every new file in place under a temporary name before any rename: a failure here leaves the
  // old set whole.
  std::vector<std::pair<fs::path, fs::path>> staged;
  auto cleanup = [&] {
    for (const auto& [tmp, dst] : staged) fs::remove(tmp, ec);
  };
  for (const auto& n : *differ) {
    fs::path tmp = to / fmt::format(".{}.vfplane-tmp.{}", n, ::getpid());
    if (auto ok = copyDurably(from / n, tmp); !ok) {
      fs::remove(tmp, ec);
      cleanup();
      return fail(std::move(ok.error()).withContext("install " + n));
    }
    staged.emplace_back(tmp, to / n);
  }
  for (size_t i = 0; i < staged.size(); ++i) {
    const auto& [tmp, dst] = staged[i];
    if (::rename(tmp.c_str(), dst.c_str()) != 0) {
      int err = errno;
      std::string what = fmt::format(
          "install {}: rename into {}: {} (already replaced: {})", dst.filename().string(),
          to.string(), std::strerror(err),
          report.installed.empty() ? "none" : fmt::format("{}", fmt::join(report.installed, ", ")));
      for (size_t j = i; j < staged.size(); ++j) fs::remove(staged[j].first, ec);
      return fail(Error(what, err));
    }
    report.installed.push_back(dst.filename().string());
  }
  // The directory entries themselves, so a power cut does not bring back the old names.
  if (Fd dir(::open(to.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); dir.valid())
    ::fsync(dir.get());
  if (auto ok = writeFileIfChanged(to / kVersionStamp, version + "\n", 0644); !ok)
    return fail(std::move(ok.error()));
  return report;
}

}  // namespace vfplane::cni
