// Read access to a sysfs tree below an injectable root.
//
// All paths given to Sysfs are relative to its root ("sys/bus/pci/devices"), so the same code reads
// the live /sys or a fake tree in a temp directory. Every error message contains the absolute path
// that failed and keeps the errno. No method throws.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "vfplane/sriov/error.h"

namespace vfplane::sriov {

class Sysfs {
 public:
  // root is the directory that holds "sys/"; "/" for the live system.
  explicit Sysfs(std::filesystem::path root = "/");

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path absolute(std::string_view rel) const;

  // The file's contents without the trailing newline and surrounding blanks.
  Result<std::string> readString(std::string_view rel) const;
  // A decimal, or a hexadecimal with 0x prefix (as in "class" and "vendor").
  Result<int64_t> readInt(std::string_view rel) const;
  // The last component of a symlink's target: the driver, the iommu group, the VF's address.
  Result<std::string> readLinkName(std::string_view rel) const;
  // Entry names, unsorted, without "." and "..". ENOENT is an error like any other.
  Result<std::vector<std::string>> listDir(std::string_view rel) const;
  bool exists(std::string_view rel) const;

  Result<void> writeString(std::string_view rel, std::string_view value) const;

 private:
  std::filesystem::path root_;
};

}  // namespace vfplane::sriov
