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
#include "vfplane/netlink/events.h"
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

// Prefixes the main table holds more than one route for (other metrics or TOS): which of them
// the kernel uses is its own choice, so a notification about one is not applied alone.
std::set<Prefix> sharedPrefixes(const KernelTables& tables);

// Applies route notifications to a model that buildModel made from the same kernel (shared from
// sharedPrefixes of the same tables), as a re-read would: at 1,000 changes a second, re-reading
// a million routes for each batch keeps both CPUs in the kernel's route dump. Returns false, with
// the notifications before it applied, at one that cannot be applied alone: one about a shared
// prefix, a second route for a prefix the model has, or an IPv6 multipath route (whose paths the
// kernel may announce one by one). The caller then reads the tables again. Other tables than
// main, cache entries and non-IP routes are skipped, as the re-read skips them.
bool applyRouteEvents(ForwardingModel& model, const std::set<Prefix>& shared,
                      const std::vector<netlink::RouteEvent>& events);

// Applies neighbour notifications as a re-read would: a neighbour counts while its MAC is known
// and its state usable (see above), and leaves the model when it is deleted or stops being so.
void applyNeighbourEvents(ForwardingModel& model,
                          const std::vector<netlink::NeighbourEvent>& events);

}  // namespace vfplane::dataplane
