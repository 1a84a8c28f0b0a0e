// The forwarding model as the kernel of one network namespace has it: a router's fast path
// forwards what the kernel would, and the kernel stays the control plane (routing daemons,
// `ip route`, ARP) that operators already know.
//
// ports are the interfaces the fast path serves. Routes through other interfaces (and multipath,
// blackhole, unreachable and prohibit routes) are kept as punt entries, so that their prefixes
// shadow covering routes and the kernel decides for them. Every IPv4 address of the namespace is
// local. Neighbours count once their MAC is known (REACHABLE, STALE, DELAY, PROBE, PERMANENT);
// note that traffic the fast path forwards does not refresh a STALE entry in the kernel.
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
  std::vector<netlink::RouteInfo> routes;  // main table, IPv4, every type
  std::vector<netlink::NeighbourInfo> neighbours;
  std::vector<netlink::AddressInfo> addresses;
};

Result<KernelTables> readKernelTables(netlink::Client& rtnl);

// Usage errors name a port that is not a link of the namespace or has no Ethernet address.
Result<ForwardingModel> buildModel(const KernelTables& tables, const std::set<std::string>& ports);

}  // namespace vfplane::dataplane
