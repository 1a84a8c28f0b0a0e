#include "vfplane/sriov/device_lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>

#include <algorithm>
#include <cerrno>
#include <thread>

namespace vfplane::sriov {

Result<DeviceLock> DeviceLock::acquire(const std::filesystem::path& dir, const PciAddress& device,
                                       std::chrono::milliseconds timeout) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return fail(fmt::format("create lock directory {}: {}", dir.string(), ec.message()),
                ec.value());
  return acquireFile(dir / (device.str() + ".lock"), timeout);
}

Result<DeviceLock> DeviceLock::acquireFile(const std::filesystem::path& path,
                                           std::chrono::milliseconds timeout) {
  Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return fail(systemError(fmt::format("open {}", path.string()), errno));
  // flock has no timeout of its own; polling keeps the wait bounded without signals, which a
  // library must not install. Holders keep the lock for well under a millisecond (an IPAM
  // allocation) to a few (a VF's ADD), so the step starts at 100 us and doubles up to 2 ms: a
  // fixed 5 ms step made four parallel ADDs on one network wait ~5 ms each for nothing.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto step = std::chrono::microseconds(100);
  for (;;) {
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return DeviceLock(std::move(fd), path);
    if (errno != EWOULDBLOCK && errno != EINTR) {
      return fail(systemError(fmt::format("flock {}", path.string()), errno));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return fail(fmt::format("{} is still locked by another operation after {} ms", path.string(),
                              timeout.count()),
                  ETIMEDOUT);
    }
    std::this_thread::sleep_for(step);
    step = std::min<std::chrono::microseconds>(step * 2, std::chrono::milliseconds(2));
  }
}

}  // namespace vfplane::sriov
