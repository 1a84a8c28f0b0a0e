#include "vfplane/dataplane/kernel_model.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cstring>

namespace vfplane::dataplane {
namespace {

Ipv4 ipv4Of(const netlink::IpPrefix& p) {
  uint32_t be;
  std::memcpy(&be, p.addr.data(), 4);
  return ntohl(be);
}

constexpr uint16_t kUsableStates =
    NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT;

}  // namespace

Result<KernelTables> readKernelTables(netlink::Client& rtnl) {
  KernelTables t;
  auto links = rtnl.links();
  if (!links) return fail(std::move(links.error()).withContext("read kernel tables"));
  auto routes = rtnl.mainRoutes(AF_INET);
  if (!routes) return fail(std::move(routes.error()).withContext("read kernel tables"));
  auto neighbours = rtnl.neighbours(AF_INET);
  if (!neighbours) return fail(std::move(neighbours.error()).withContext("read kernel tables"));
  auto addresses = rtnl.allAddresses();
  if (!addresses) return fail(std::move(addresses.error()).withContext("read kernel tables"));
  t.links = std::move(*links);
  t.routes = std::move(*routes);
  t.neighbours = std::move(*neighbours);
  t.addresses = std::move(*addresses);
  return t;
}

Result<ForwardingModel> buildModel(const KernelTables& tables, const std::set<std::string>& ports) {
  ForwardingModel model;
  std::set<std::string> found;
  for (const auto& l : tables.links) {
    if (!ports.contains(l.name)) continue;
    auto mac = MacAddress::parse(l.mac);
    if (!mac)
      return usageError(fmt::format("port {}: has no Ethernet address (\"{}\")", l.name, l.mac));
    model.setInterface({l.ifindex, l.name, *mac});
    found.insert(l.name);
  }
  for (const auto& p : ports) {
    if (!found.contains(p))
      return usageError(fmt::format("port {}: no such link in this namespace", p), ENODEV);
  }
  for (const auto& r : tables.routes) {
    if (r.dst.family != AF_INET) continue;
    Route route{Ipv4Prefix{ipv4Of(r.dst), r.dst.length}, std::nullopt, r.oif};
    if (r.gateway) route.gateway = ipv4Of(*r.gateway);
    // Not ours to forward: the kernel drops, rejects or balances these itself.
    if (r.type != RTN_UNICAST) route.ifindex = 0;
    model.setRoute(route);
  }
  for (const auto& n : tables.neighbours) {
    if (n.ip.family != AF_INET || !n.mac || (n.state & kUsableStates) == 0) continue;
    model.setNeighbour({ipv4Of(n.ip), n.ifindex, *n.mac});
  }
  for (const auto& a : tables.addresses) {
    if (a.prefix.family == AF_INET) model.addLocal(ipv4Of(a.prefix));
  }
  return model;
}

}  // namespace vfplane::dataplane
