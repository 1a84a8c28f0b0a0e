// Read access to a sysfs tree below an injectable root.
//
// All paths given to Sysfs are relative to its root ("sys/bus/pci/devices"), so the same code reads
// the live /sys or a fake tree in a temp directory. Every error message contains the absolute path
// that failed and keeps the errno. No method throws.
//
// SysfsDir is an open handle on one directory (usually a device). Its reads resolve one path
// component each instead of the whole chain of sysfs symlinks, which is what makes a full
// discovery of a thousand VFs cheap.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/base/fd.h"

namespace vfplane::sriov {

class SysfsDir {
 public:
  // The absolute path this handle was opened at, for messages.
  const std::string& path() const { return path_; }

  // name is relative to this directory and may contain '/' ("net/eth0/type").
  // The file's contents without the trailing newline and surrounding blanks.
  Result<std::string> readString(std::string_view name) const;
  // A decimal, or a hexadecimal with 0x prefix (as in "class" and "vendor").
  Result<int64_t> readInt(std::string_view name) const;
  // The last component of a symlink's target: the driver, the iommu group, the VF's address.
  // Works on dangling links.
  Result<std::string> readLinkName(std::string_view name) const;
  // Entry names, unsorted, without "." and "..". ENOENT is an error like any other.
  Result<std::vector<std::string>> listDir(std::string_view name = ".") const;
  // Follows symlinks: a dangling link does not exist.
  bool exists(std::string_view name) const;
  // Whether the directory has an entry of that name, dangling link or not. Cheaper than exists().
  bool hasEntry(std::string_view name) const;
  Result<SysfsDir> openDir(std::string_view name) const;
  Result<void> writeString(std::string_view name, std::string_view value) const;

 private:
  friend class Sysfs;
  SysfsDir(Fd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Fd fd_;
  std::string path_;
};

class Sysfs {
 public:
  // root is the directory that holds "sys/"; "/" for the live system.
  explicit Sysfs(std::filesystem::path root = "/");

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path absolute(std::string_view rel) const;

  Result<SysfsDir> openDir(std::string_view rel) const;

  // One-off reads by root-relative path; see SysfsDir for the meaning of each.
  Result<std::string> readString(std::string_view rel) const;
  Result<int64_t> readInt(std::string_view rel) const;
  Result<std::string> readLinkName(std::string_view rel) const;
  Result<std::vector<std::string>> listDir(std::string_view rel) const;
  bool exists(std::string_view rel) const;
  Result<void> writeString(std::string_view rel, std::string_view value) const;

 private:
  std::filesystem::path root_;
};

}  // namespace vfplane::sriov
