#include "vfplane/sriov/sysfs.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace vfplane::sriov {
namespace {

// sysfs attributes are at most a page; the ones we read are far shorter.
constexpr size_t kMaxAttribute = 4096;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

std::string join(const std::string& dir, std::string_view name) {
  if (name == ".") return dir;
  std::string out = dir;
  if (out.empty() || out.back() != '/') out += '/';
  out += name;
  return out;
}

// openat() and friends need a NUL-terminated name.
using CName = std::string;

}  // namespace

// Plain open/read: discovery reads thousands of tiny files and iostreams would dominate its cost.
Result<std::string> SysfsDir::readString(std::string_view name) const {
  CName n(name);
  int fd = ::openat(fd_.get(), n.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(systemError("read " + join(path_, name), errno));
  Fd owner(fd);
  char buf[kMaxAttribute];
  ssize_t got;
  do {
    got = ::read(fd, buf, sizeof buf);
  } while (got < 0 && errno == EINTR);
  if (got < 0) return fail(systemError("read " + join(path_, name), errno));
  return std::string(trim(std::string_view(buf, static_cast<size_t>(got))));
}

Result<int64_t> SysfsDir::readInt(std::string_view name) const {
  auto text = readString(name);
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
    return fail(Error("read " + join(path_, name) + ": not an integer: \"" + *text + "\"", EINVAL));
  }
  return negative ? -value : value;
}

Result<std::string> SysfsDir::readLinkName(std::string_view name) const {
  CName n(name);
  char buf[PATH_MAX];
  ssize_t got = ::readlinkat(fd_.get(), n.c_str(), buf, sizeof buf - 1);
  if (got < 0) return fail(systemError("readlink " + join(path_, name), errno));
  std::string_view target(buf, static_cast<size_t>(got));
  while (target.size() > 1 && target.back() == '/') target.remove_suffix(1);
  size_t slash = target.rfind('/');
  return std::string(slash == target.npos ? target : target.substr(slash + 1));
}

// getdents64 directly: readdir() would cost an extra fcntl per directory through fdopendir, and
// discovery lists a directory per device.
Result<std::vector<std::string>> SysfsDir::listDir(std::string_view name) const {
  CName n(name);
  int fd = ::openat(fd_.get(), n.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail(systemError("list " + join(path_, name), errno));
  Fd owner(fd);
  std::vector<std::string> names;
  alignas(8) char buf[16384];
  for (;;) {
    long got = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return fail(systemError("list " + join(path_, name), errno));
    if (got == 0) break;
    for (long pos = 0; pos < got;) {
      // struct linux_dirent64: d_ino(8) d_off(8) d_reclen(2) d_type(1) d_name[]
      unsigned short reclen;
      std::memcpy(&reclen, buf + pos + 16, sizeof reclen);
      std::string_view entryName(buf + pos + 19);
      if (entryName != "." && entryName != "..") names.emplace_back(entryName);
      pos += reclen;
    }
  }
  return names;
}

bool SysfsDir::exists(std::string_view name) const {
  CName n(name);
  struct stat st;
  return ::fstatat(fd_.get(), n.c_str(), &st, 0) == 0;
}

bool SysfsDir::hasEntry(std::string_view name) const {
  CName n(name);
  struct stat st;
  return ::fstatat(fd_.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

Result<SysfsDir> SysfsDir::openDir(std::string_view name) const {
  CName n(name);
  int fd = ::openat(fd_.get(), n.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail(systemError("open " + join(path_, name), errno));
  return SysfsDir(Fd(fd), join(path_, name));
}

Result<void> SysfsDir::writeString(std::string_view name, std::string_view value) const {
  CName n(name);
  // O_TRUNC is a no-op on sysfs attributes and makes fake trees behave the same way.
  int fd = ::openat(fd_.get(), n.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return fail(systemError("write " + join(path_, name), errno));
  Fd owner(fd);
  ssize_t put;
  do {
    put = ::write(fd, value.data(), value.size());
  } while (put < 0 && errno == EINTR);
  if (put < 0) return fail(systemError("write " + join(path_, name), errno));
  if (static_cast<size_t>(put) != value.size()) {
    return fail(Error("write " + join(path_, name) + ": short write", EIO));
  }
  return {};
}

Sysfs::Sysfs(std::filesystem::path root) : root_(std::move(root)) {}

std::filesystem::path Sysfs::absolute(std::string_view rel) const {
  return rel.empty() || rel == "." ? root_ : root_ / rel;
}

Result<SysfsDir> Sysfs::openDir(std::string_view rel) const {
  int fd = ::open(absolute(rel).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail(systemError("open " + absolute(rel).string(), errno));
  return SysfsDir(Fd(fd), absolute(rel).string());
}

Result<std::string> Sysfs::readString(std::string_view rel) const {
  auto dir = openDir(".");
  if (!dir) return fail(std::move(dir.error()));
  return dir->readString(rel);
}

Result<int64_t> Sysfs::readInt(std::string_view rel) const {
  auto dir = openDir(".");
  if (!dir) return fail(std::move(dir.error()));
  return dir->readInt(rel);
}

Result<std::string> Sysfs::readLinkName(std::string_view rel) const {
  auto dir = openDir(".");
  if (!dir) return fail(std::move(dir.error()));
  return dir->readLinkName(rel);
}

Result<std::vector<std::string>> Sysfs::listDir(std::string_view rel) const {
  auto dir = openDir(".");
  if (!dir) return fail(std::move(dir.error()));
  return dir->listDir(rel);
}

bool Sysfs::exists(std::string_view rel) const {
  struct stat st;
  return ::stat(absolute(rel).c_str(), &st) == 0;
}

Result<void> Sysfs::writeString(std::string_view rel, std::string_view value) const {
  auto dir = openDir(".");
  if (!dir) return fail(std::move(dir.error()));
  return dir->writeString(rel, value);
}

}  // namespace vfplane::sriov
