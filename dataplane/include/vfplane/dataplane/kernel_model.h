// The forwarding model as the kernel of one network namespace has it: a router's fast path
// forwards what the kernel would, and the kernel stays the control plane (routing daemons,
// `ip route`, ARP) that operators already know.
//
// ports are the interfaces the fast path serves. IPv4 and IPv6 alike: routes through other
// interfaces, and blackhole, unreachable, prohibit and throw routes, are kept as punt entries, so
// that their prefixes shadow covering routes and the kernel decides for them; multipath routes
// (RTA_MULTIPATH, with the kernel's weights) become next-hop groups. Routes that use nexthop
// objects (`ip route ... nhid N`, as FRR installs them) arrive expanded as long as the kernel's
// net.ipv4.nexthop_compat_mode is 1, its default. Every address of the namespace is local.
// Neighbours count once their MAC is known (REACHABLE, STALE, DELAY, PROBE, PERMANENT); note that
// traffic the fast path forwards does not refresh a STALE entry in the kernel.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "vfplane/dataplane/forwarding_model.h"
#include "vfplane/netlink/rtnl.h"

namespace vfplane::dataplane {

// The kernel's tables as plain data, so building the model can be tested without a kernel.
struct KernelTables {
  std::vector<netlink::LinkInfo> links;
  std::vector<netlink::RouteInfo> routes;  // main table, IPv4 and IPv6, every type
  std::vector<netlink::NeighbourInfo> neighbours;
  std::vector<netlink::AddressInfo> addresses;
};

Result<KernelTables> readKernelTables(netlink::Client& rtnl);

// Usage errors name a port that is not a link of the namespace or has no Ethernet address.
Result<ForwardingModel> buildModel(const KernelTables& tables, const std::set<std::string>& ports);

}  // namespace vfplane::dataplane
