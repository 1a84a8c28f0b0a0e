#include "vfplane/sriov/sysfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace vfplane::sriov {
namespace {

// sysfs attributes are at most a page; the ones we read are far shorter.
constexpr size_t kMaxAttribute = 4096;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

}  // namespace

Sysfs::Sysfs(std::filesystem::path root) : root_(std::move(root)) {}

std::filesystem::path Sysfs::absolute(std::string_view rel) const { return root_ / rel; }

// Plain open/read: discovery reads thousands of tiny files and iostreams would dominate its cost.
Result<std::string> Sysfs::readString(std::string_view rel) const {
  std::string path = absolute(rel).string();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(systemError("read " + path, errno));
  char buf[kMaxAttribute];
  ssize_t n;
  do {
    n = ::read(fd, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  int err = errno;
  ::close(fd);
  if (n < 0) return fail(systemError("read " + path, err));
  return std::string(trim(std::string_view(buf, static_cast<size_t>(n))));
}

Result<int64_t> Sysfs::readInt(std::string_view rel) const {
  auto text = readString(rel);
  if (!text) return fail(std::move(text.error()));
  std::string_view s = *text;
  int base = 10;
  bool negative = false;
  if (s.starts_with('-')) {
    negative = true;
    s.remove_prefix(1);
  }
  if (s.starts_with("0x") || s.starts_with("0X")) {
    base = 16;
    s.remove_prefix(2);
  }
  int64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, base);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
    return fail(Error("read " + absolute(rel).string() + ": not an integer: \"" + *text + "\"",
                      EINVAL));
  }
  return negative ? -value : value;
}

Result<std::string> Sysfs::readLinkName(std::string_view rel) const {
  std::string path = absolute(rel).string();
  char buf[PATH_MAX];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  if (n < 0) return fail(systemError("readlink " + path, errno));
  std::string_view target(buf, static_cast<size_t>(n));
  while (target.size() > 1 && target.back() == '/') target.remove_suffix(1);
  size_t slash = target.rfind('/');
  return std::string(slash == target.npos ? target : target.substr(slash + 1));
}

Result<std::vector<std::string>> Sysfs::listDir(std::string_view rel) const {
  std::string path = absolute(rel).string();
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return fail(systemError("list " + path, errno));
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) return fail(systemError("list " + path, err));
  return names;
}

bool Sysfs::exists(std::string_view rel) const {
  struct stat st;
  return ::stat(absolute(rel).c_str(), &st) == 0;
}

Result<void> Sysfs::writeString(std::string_view rel, std::string_view value) const {
  std::string path = absolute(rel).string();
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fail(systemError("write " + path, errno));
  ssize_t n;
  do {
    n = ::write(fd, value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  int err = errno;
  ::close(fd);
  if (n < 0) return fail(systemError("write " + path, err));
  if (static_cast<size_t>(n) != value.size()) return fail(Error("write " + path + ": short write", EIO));
  return {};
}

}  // namespace vfplane::sriov
