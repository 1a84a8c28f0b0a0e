#include "vfplane/netlink/netns.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <cerrno>
#include <cstdlib>

namespace vfplane::netlink {

Result<Netns> Netns::open(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return fail(systemError(fmt::format("open netns {}", path), errno));
  struct statfs fs {};
  if (::fstatfs(fd.get(), &fs) != 0)
    return fail(systemError(fmt::format("statfs {}", path), errno));
  if (fs.f_type != NSFS_MAGIC) {
    return fail(fmt::format("{} is not a namespace file (not on nsfs)", path), EINVAL);
  }
  int type = ::ioctl(fd.get(), NS_GET_NSTYPE);
  if (type < 0) return fail(systemError(fmt::format("NS_GET_NSTYPE {}", path), errno));
  if (type != CLONE_NEWNET) return fail(fmt::format("{} is not a network namespace", path), EINVAL);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail(systemError(fmt::format("stat {}", path), errno));
  return Netns(std::move(fd), path, st.st_dev, st.st_ino);
}

Result<Netns> Netns::current() { return open("/proc/thread-self/ns/net"); }

Result<NetnsEntered> NetnsEntered::enter(const Netns& target) {
  Fd home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!home.valid()) return fail(systemError("open own netns", errno));
  if (::setns(target.fd(), CLONE_NEWNET) != 0) {
    return fail(systemError(fmt::format("enter netns {}", target.path()), errno));
  }
  return NetnsEntered(std::move(home));
}

NetnsEntered::~NetnsEntered() {
  if (!home_.valid()) return;  // moved from
  // Staying in the wrong namespace would silently misdirect every later socket; there is no
  // sane way to continue.
  if (::setns(home_.get(), CLONE_NEWNET) != 0) std::abort();
}

}  // namespace vfplane::netlink
