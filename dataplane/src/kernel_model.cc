#include "vfplane/dataplane/kernel_model.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <iterator>
#include <optional>

namespace vfplane::dataplane {
namespace {

IpAddr addrOf(const netlink::IpPrefix& p) {
  return IpAddr::fromBytes(p.family == AF_INET ? Family::kIpv4 : Family::kIpv6, p.addr.data());
}

bool isIp(const netlink::IpPrefix& p) { return p.family == AF_INET || p.family == AF_INET6; }

constexpr uint16_t kUsableStates =
    NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT;

bool usable(const netlink::NeighbourInfo& n) {
  return isIp(n.ip) && n.mac && (n.state & kUsableStates) != 0;
}

// The route as the model keeps it; nullopt for what is not a route to a destination.
std::optional<Route> routeOf(const netlink::RouteInfo& r) {
  if (!isIp(r.dst)) return std::nullopt;
  Prefix dst = Prefix::of(addrOf(r.dst), r.dst.length);
  switch (r.type) {
    case RTN_UNICAST:
      break;
    case RTN_BLACKHOLE:
    case RTN_UNREACHABLE:
    case RTN_PROHIBIT:
    case RTN_THROW:
      return Route::reject(dst);
    default:
      // Local, broadcast, anycast, multicast, NAT: the kernel's own business; a path through no
      // port keeps the prefix away from the fast path.
      return Route{dst, {{std::nullopt, 0, 1}}};
  }
  Route route{dst, {}};
  auto gatewayOf = [](const std::optional<netlink::IpPrefix>& gw) -> std::optional<IpAddr> {
    if (!gw || !isIp(*gw)) return std::nullopt;
    return addrOf(*gw);
  };
  if (r.nexthops.empty()) {
    route.paths.push_back({gatewayOf(r.gateway), r.oif, 1});
  } else {
    for (const auto& nh : r.nexthops)
      route.paths.push_back({gatewayOf(nh.gateway), nh.oif, static_cast<uint32_t>(nh.weight)});
  }
  return route;
}

}  // namespace

Result<KernelTables> readKernelTables(netlink::Client& rtnl) {
  KernelTables t;
  auto links = rtnl.links();
  if (!links) return fail(std::move(links.error()).withContext("read kernel tables"));
  t.links = std::move(*links);
  for (int family : {AF_INET, AF_INET6}) {
    auto routes = rtnl.mainRoutes(family);
    if (!routes) return fail(std::move(routes.error()).withContext("read kernel tables"));
    std::move(routes->begin(), routes->end(), std::back_inserter(t.routes));
    auto neighbours = rtnl.neighbours(family);
    if (!neighbours) return fail(std::move(neighbours.error()).withContext("read kernel tables"));
    std::move(neighbours->begin(), neighbours->end(), std::back_inserter(t.neighbours));
  }
  auto addresses = rtnl.allAddresses();
  if (!addresses) return fail(std::move(addresses.error()).withContext("read kernel tables"));
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
    model.setInterface({l.ifindex, l.name, *mac, l.mtu > 0 ? l.mtu : 1500});
    found.insert(l.name);
  }
  for (const auto& p : ports) {
    if (!found.contains(p))
      return usageError(fmt::format("port {}: no such link in this namespace", p), ENODEV);
  }
  for (const auto& r : tables.routes) {
    if (auto route = routeOf(r)) model.setRoute(std::move(*route));
  }
  for (const auto& n : tables.neighbours) {
    if (usable(n)) model.setNeighbour({addrOf(n.ip), n.ifindex, *n.mac});
  }
  for (const auto& a : tables.addresses) {
    if (isIp(a.prefix)) model.addLocal(addrOf(a.prefix));
  }
  return model;
}

void applyNeighbourEvents(ForwardingModel& model,
                          const std::vector<netlink::NeighbourEvent>& events) {
  for (const auto& e : events) {
    const auto& n = e.neighbour;
    if (!isIp(n.ip)) continue;
    if (!e.removed && usable(n)) {
      model.setNeighbour({addrOf(n.ip), n.ifindex, *n.mac});
    } else {
      model.removeNeighbour(addrOf(n.ip), n.ifindex);
    }
  }
}

std::set<Prefix> sharedPrefixes(const KernelTables& tables) {
  std::set<Prefix> seen, shared;
  for (const auto& r : tables.routes) {
    if (!isIp(r.dst)) continue;
    Prefix p = Prefix::of(addrOf(r.dst), r.dst.length);
    if (!seen.insert(p).second) shared.insert(p);
  }
  return shared;
}

bool applyRouteEvents(ForwardingModel& model, const std::set<Prefix>& shared,
                      const std::vector<netlink::RouteEvent>& events) {
  for (const auto& e : events) {
    if (e.route.table != RT_TABLE_MAIN || e.cloned) continue;
    auto route = routeOf(e.route);
    if (!route) continue;
    if (shared.contains(route->dst)) return false;
    const Route* had = model.route(route->dst);
    if (e.route.dst.family == AF_INET6 &&
        (!e.route.nexthops.empty() || (had && had->paths.size() > 1))) {
      return false;
    }
    if (e.removed) {
      model.removeRoute(route->dst);
    } else {
      if (had && !e.replaced) return false;
      model.setRoute(std::move(*route));
    }
  }
  return true;
}

}  // namespace vfplane::dataplane
