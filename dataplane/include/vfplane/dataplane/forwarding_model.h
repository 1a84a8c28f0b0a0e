// The forwarding core's one model of where packets go: interfaces, IPv4 and IPv6 routes (with
// ECMP), neighbours and the router's own addresses. Both fast paths (XDP and DPDK) are driven by
// what compile() makes of it, and resolve() is the answer both are tested against, packet for
// packet.
//
// A fast path forwards only what it can finish on its own: a destination whose route, next hop
// and next hop's MAC are all known. Everything else (the router's own addresses, hosts on a
// connected subnet whose MAC is not yet known, unresolved gateways, reject routes) is punted to
// the kernel, which answers ARP/ND, sends ICMP and resolves neighbours; the fast path picks the
// result up on the next compile(). compile() therefore emits punt entries too: without them, a
// host on a connected /24 with no neighbour entry would fall through to a covering /8 route and
// be sent to the wrong gateway.
//
// ECMP: a route with several paths becomes a next-hop group. A flow picks its path by a hash of
// its addresses, protocol and L4 ports (flowHash) with the kernel's hash-threshold rule over the
// paths' weights, so one flow always takes one path. The hash is symmetric, as the kernel's is:
// both directions of a flow hash alike, and so does an ICMP error about it, which the fast path
// hashes by the packet it quotes (what the kernel's policy 0 does for ICMP errors), so the error
// travels with the flow's own traffic. A path whose next hop is unresolved stays in its group: the
// flows that pick it are punted until the kernel has resolved it, and the other flows keep their
// paths.
#pragma once

#include <compare>
#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/dataplane/ip.h"
#include "vfplane/netlink/rtnl.h"

namespace vfplane::dataplane {

using netlink::MacAddress;

// The most paths a group holds in a fast path; a route with more is left to the kernel.
inline constexpr size_t kMaxPaths = 16;

struct Interface {
  int ifindex = 0;
  std::string name;
  MacAddress mac;
  int mtu = 1500;
};

struct Path {
  std::optional<IpAddr> gateway;  // nullopt: on-link (a connected subnet)
  int ifindex = 0;
  uint32_t weight = 1;  // the kernel's rtnh_hops + 1
};

enum class RouteType {
  kUnicast,
  kReject,  // blackhole, unreachable, prohibit, throw: the kernel drops or answers
};

struct Route {
  Prefix dst;
  std::vector<Path> paths;  // one for a plain route, several for ECMP; none for a reject route
  RouteType type = RouteType::kUnicast;

  static Route onLink(Prefix dst, int ifindex) { return {dst, {{std::nullopt, ifindex, 1}}}; }
  static Route via(Prefix dst, IpAddr gateway, int ifindex) {
    return {dst, {{gateway, ifindex, 1}}};
  }
  static Route reject(Prefix dst) { return {dst, {}, RouteType::kReject}; }
};

struct Neighbour {
  IpAddr ip;
  int ifindex = 0;
  MacAddress mac;
};

// What a fast path writes into a forwarded frame and where it sends it.
struct Adjacency {
  int ifindex = 0;
  MacAddress src;  // the egress interface's MAC
  MacAddress dst;  // the next hop's MAC
  int mtu = 1500;  // the egress interface's: a larger packet goes to the kernel
  auto operator<=>(const Adjacency&) const = default;
};

// Why a destination is not forwarded by the fast path.
enum class Punt {
  kNoRoute,     // no route at all: the kernel sends ICMP unreachable (or drops)
  kLocal,       // one of the router's own addresses
  kUnresolved,  // the next hop's MAC is unknown: the kernel resolves it
  kNotPort,     // a route through an interface that is not a port (or more than kMaxPaths paths)
  kReject,      // a blackhole, unreachable or prohibit route
};
const char* puntName(Punt punt);

// The kernel's hash-threshold rule over cumulative weights: the hash scaled onto [0, total) picks
// the first path whose upper bound it falls under. NextHopGroup::pick() and the DPDK path's
// flat groups both use it; the BPF program has the same loop.
inline uint32_t pickIndex(const uint32_t* upper, uint32_t paths, uint32_t total, uint32_t hash) {
  auto x = static_cast<uint32_t>((static_cast<uint64_t>(hash) * total) >> 32);
  uint32_t i = 0;
  while (i + 1 < paths && x >= upper[i]) ++i;
  return i;
}

// One path of a group: where the flows that pick it go, or nullopt while it is unresolved.
struct GroupPath {
  std::optional<Adjacency> adjacency;
  uint32_t weight = 1;
  auto operator<=>(const GroupPath&) const = default;
};

struct NextHopGroup {
  std::vector<GroupPath> paths;  // 1 to kMaxPaths, in the kernel's order

  // The kernel's hash-threshold rule: the hash's share of the total weight picks the path.
  const GroupPath& pick(uint32_t hash) const;
  auto operator<=>(const NextHopGroup&) const = default;
};
using GroupRef = std::shared_ptr<const NextHopGroup>;

// What the fast path does with packets to a prefix: forward them over a group, or punt them.
// Compared by content, so two compiles of the same model give equal actions.
class Action {
 public:
  Action(Punt punt) : punt_(punt) {}  // NOLINT: implicit, so a Punt reads as an Action
  Action(GroupRef group) : group_(std::move(group)) {}  // NOLINT
  static Action forward(Adjacency adjacency);           // a group of one

  bool forwards() const { return group_ != nullptr; }
  Punt punt() const { return punt_; }
  const NextHopGroup& group() const { return *group_; }
  const GroupRef& groupRef() const { return group_; }
  bool operator==(const Action& o) const;
  std::string str() const;  // "punt unresolved", "forward 2 paths"

 private:
  GroupRef group_;
  Punt punt_ = Punt::kNoRoute;
};

// One entry of the compiled table.
struct FibEntry {
  Prefix prefix;
  Action action;
  bool operator==(const FibEntry&) const = default;
};
// Sorted by prefix (IPv4 first); entries that forward over equal groups share one GroupRef.
using Fib = std::vector<FibEntry>;

// A packet's flow as the ECMP hash sees it. Ports are 0 for protocols without them and for
// fragments, which may not carry them (the kernel does the same).
struct Flow {
  IpAddr src;
  IpAddr dst;
  uint8_t proto = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
};
// Symmetric in (src, dst) and in (sport, dport). Both fast paths compute exactly this.
uint32_t flowHash(const Flow& flow, uint32_t seed);

// What the fast path does with one packet.
using Decision = std::expected<Adjacency, Punt>;

class ForwardingModel {
 public:
  void setInterface(Interface iface);
  void removeInterface(int ifindex);
  // Replaces a route with the same prefix.
  void setRoute(Route route);
  void removeRoute(const Prefix& dst);
  // The route for exactly dst, or nullptr.
  const Route* route(const Prefix& dst) const {
    auto it = routes_.find(dst);
    return it == routes_.end() ? nullptr : &it->second;
  }
  void setNeighbour(Neighbour n);
  void removeNeighbour(const IpAddr& ip, int ifindex);
  void addLocal(const IpAddr& ip);
  void removeLocal(const IpAddr& ip);

  // The longest-prefix match for ip, or nullptr.
  const Route* lookup(const IpAddr& ip) const;
  // What the fast path does with a packet of flow, under the hash seed.
  Decision resolve(const Flow& flow, uint32_t seed) const;

  // The table both fast paths install. Longest-prefix match on it, then the group's pick by
  // flowHash, gives the same answer as resolve() for every flow:
  // - each route: a group of its paths, or a punt (on-link prefixes, no path resolved, reject
  //   routes, routes through other interfaces);
  // - each neighbour whose best route is the on-link route of its interface: a host entry;
  // - each local address: a host punt.
  Fib compile() const;

  // Routes through ports that the fast path cannot hold, with why: more than kMaxPaths paths,
  // or a multipath route with an on-link path. The kernel forwards them.
  std::vector<std::pair<Prefix, std::string>> unsupportedRoutes() const;

  size_t routeCount() const { return routes_.size(); }
  size_t neighbourCount() const { return neighbours_.size(); }
  // By ifindex.
  const std::map<int, Interface>& interfaces() const { return interfaces_; }

 private:
  std::optional<Adjacency> adjacency(const IpAddr& nextHop, int ifindex) const;
  // A route's action; groups are interned in groups so equal ones are shared.
  Action routeAction(const Route& route, std::map<NextHopGroup, GroupRef>& groups) const;

  std::map<int, Interface> interfaces_;
  std::map<Prefix, Route> routes_;
  std::map<std::pair<IpAddr, int>, MacAddress> neighbours_;  // (ip, ifindex)
  std::set<IpAddr> locals_;
};

}  // namespace vfplane::dataplane
