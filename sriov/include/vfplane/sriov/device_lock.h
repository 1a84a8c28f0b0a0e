// Serialises changes to one device across processes: an exclusive flock on
// <dir>/<pci-address>.lock, held until the DeviceLock is destroyed (or the process dies, which the
// kernel handles for us: a crashed plugin never leaves a VF locked).
#pragma once

#include <chrono>
#include <filesystem>

#include "vfplane/base/error.h"
#include "vfplane/base/fd.h"
#include "vfplane/sriov/pci_address.h"

namespace vfplane::sriov {

class DeviceLock {
 public:
  // Creates dir when needed. Waits up to timeout; then fails with ETIMEDOUT naming the lock file.
  static Result<DeviceLock> acquire(const std::filesystem::path& dir, const PciAddress& device,
                                    std::chrono::milliseconds timeout);
  // The same on any lock file (created when missing, mode 0600), e.g. host-local's "lock".
  static Result<DeviceLock> acquireFile(const std::filesystem::path& path,
                                        std::chrono::milliseconds timeout);
  const std::filesystem::path& path() const { return path_; }

 private:
  DeviceLock(Fd fd, std::filesystem::path path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Fd fd_;
  std::filesystem::path path_;
};

}  // namespace vfplane::sriov
