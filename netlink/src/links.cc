#include "vfplane/netlink/links.h"

#include <fmt/format.h>
#include <net/if.h>

#include <cerrno>

namespace vfplane::netlink {

Result<void> validateIfName(std::string_view name) {
  if (name.empty()) return fail("interface name is empty", EINVAL);
  if (name.size() >= IFNAMSIZ) {
    return fail(fmt::format("interface name \"{}\" is longer than {} bytes", name, IFNAMSIZ - 1),
                EINVAL);
  }
  if (name == "." || name == "..")
    return fail(fmt::format("interface name \"{}\" is reserved", name), EINVAL);
  for (char c : name) {
    if (c == '/' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\0' || c == '%') {
      return fail(fmt::format("interface name {:?} contains an invalid character", name), EINVAL);
    }
  }
  return {};
}

Result<std::unique_ptr<NetlinkLinks>> NetlinkLinks::open() {
  auto rtnl = Rtnl::open();
  if (!rtnl) return fail(std::move(rtnl.error()));
  return std::unique_ptr<NetlinkLinks>(new NetlinkLinks(std::move(*rtnl)));
}

Result<int> NetlinkLinks::index(std::string_view name) {
  auto link = rtnl_.link(name);
  if (!link) return fail(std::move(link.error()).withContext(fmt::format("find link {}", name)));
  if (!*link) return fail(systemError(fmt::format("find link {}", name), ENODEV));
  return (*link)->ifindex;
}

Result<void> NetlinkLinks::addVethPair(std::string_view name, std::string_view peer) {
  VFP_TRY(validateIfName(name));
  VFP_TRY(validateIfName(peer));
  return rtnl_.execute(buildCreateVeth(name, peer),
                       fmt::format("create veth {} <-> {}", name, peer));
}

Result<void> NetlinkLinks::addBridge(std::string_view name) {
  VFP_TRY(validateIfName(name));
  return rtnl_.execute(buildCreateBridge(name), fmt::format("create bridge {}", name));
}

Result<void> NetlinkLinks::setMaster(std::string_view name, std::string_view master) {
  auto link = index(name);
  if (!link) return fail(std::move(link.error()));
  auto masterLink = index(master);
  if (!masterLink) return fail(std::move(masterLink.error()));
  LinkChange change;
  change.master = *masterLink;
  return rtnl_.execute(buildChangeLink(*link, change),
                       fmt::format("set master of {} to {}", name, master));
}

Result<void> NetlinkLinks::setUp(std::string_view name, bool up) {
  auto link = index(name);
  if (!link) return fail(std::move(link.error()));
  LinkChange change;
  change.up = up;
  return rtnl_.execute(buildChangeLink(*link, change),
                       fmt::format("set {} {}", name, up ? "up" : "down"));
}

Result<void> NetlinkLinks::remove(std::string_view name) {
  auto link = index(name);
  if (!link) return fail(std::move(link.error()).withContext("delete link"));
  return rtnl_.execute(buildDeleteLink(*link), fmt::format("delete link {}", name));
}

bool NetlinkLinks::exists(std::string_view name) {
  auto link = rtnl_.link(name);
  return link && *link;
}

}  // namespace vfplane::netlink
