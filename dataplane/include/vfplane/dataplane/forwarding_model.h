// The forwarding core's one model of where packets go: interfaces, IPv4 routes, neighbours and
// the router's own addresses. Both fast paths (XDP and DPDK) are driven by what compile() makes
// of it, so they forward exactly alike.
//
// A fast path forwards only what it can finish on its own: a destination whose route, next hop
// and next hop's MAC are all known. Everything else (the router's own addresses, hosts on a
// connected subnet whose MAC is not yet known, unresolved gateways, TTL expiry) is punted to the
// kernel, which answers ARP, sends ICMP and resolves neighbours; the fast path picks the result
// up on the next compile(). compile() therefore emits punt entries too: without them, a host on
// a connected /24 with no neighbour entry would fall through to a covering /8 route and be sent
// to the wrong gateway.
//
// Not modelled yet: ECMP (one next hop per route), IPv6, VLANs.
#pragma once

#include <compare>
#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/netlink/rtnl.h"

namespace vfplane::dataplane {

using netlink::MacAddress;

// An IPv4 address in host byte order.
using Ipv4 = uint32_t;

Result<Ipv4> parseIpv4(std::string_view text);
std::string ipv4Str(Ipv4 addr);

struct Ipv4Prefix {
  Ipv4 addr = 0;  // host bits are always zero
  int length = 0;

  // "10.1.0.0/16"; a bare address is a /32. Host bits are an error ("10.1.0.5/16"), since a
  // route written that way is usually a typo.
  static Result<Ipv4Prefix> parse(std::string_view text);
  static Ipv4Prefix host(Ipv4 addr) { return {addr, 32}; }
  bool contains(Ipv4 ip) const;
  std::string str() const;
  auto operator<=>(const Ipv4Prefix&) const = default;
};

struct Interface {
  int ifindex = 0;
  std::string name;
  MacAddress mac;
};

struct Route {
  Ipv4Prefix dst;
  std::optional<Ipv4> gateway;  // nullopt: the prefix is on-link (a connected subnet)
  int ifindex = 0;
};

struct Neighbour {
  Ipv4 ip = 0;
  int ifindex = 0;
  MacAddress mac;
};

// What a fast path writes into a forwarded frame and where it sends it.
struct Adjacency {
  int ifindex = 0;
  MacAddress src;  // the egress interface's MAC
  MacAddress dst;  // the next hop's MAC
  bool operator==(const Adjacency&) const = default;
};

// Why a destination is not forwarded by the fast path.
enum class Punt {
  kNoRoute,      // no route at all: the kernel sends ICMP unreachable (or drops)
  kLocal,        // one of the router's own addresses
  kUnresolved,   // the next hop's MAC is unknown: the kernel resolves it
  kNoInterface,  // the route's interface is not in the model
};
const char* puntName(Punt punt);

// What the fast path does with a packet: forward it on an adjacency, or punt it and why.
using Action = std::expected<Adjacency, Punt>;

// One entry of the compiled table: a prefix and what to do with packets to it.
struct FibEntry {
  Ipv4Prefix prefix;
  Action action;
  bool operator==(const FibEntry&) const = default;
};

class ForwardingModel {
 public:
  void setInterface(Interface iface);
  void removeInterface(int ifindex);
  // Replaces a route with the same prefix.
  void setRoute(Route route);
  void removeRoute(const Ipv4Prefix& dst);
  void setNeighbour(Neighbour n);
  void removeNeighbour(Ipv4 ip, int ifindex);
  void addLocal(Ipv4 ip);
  void removeLocal(Ipv4 ip);

  // The longest-prefix match for ip, or nullptr.
  const Route* lookup(Ipv4 ip) const;
  // What the fast path does with a packet to ip.
  Action resolve(Ipv4 ip) const;

  // The table both fast paths install, sorted by prefix. Longest-prefix match on it gives the
  // same answer as resolve() for every address:
  // - each route: its gateway's adjacency, or a punt (on-link prefixes and unresolved gateways);
  // - each neighbour whose best route is the on-link route of its interface: a /32 adjacency;
  // - each local address: a /32 punt.
  std::vector<FibEntry> compile() const;

  size_t routeCount() const { return routes_.size(); }
  // By ifindex.
  const std::map<int, Interface>& interfaces() const { return interfaces_; }

 private:
  std::optional<Adjacency> adjacency(Ipv4 nextHop, int ifindex) const;

  std::map<int, Interface> interfaces_;
  std::map<Ipv4Prefix, Route> routes_;
  std::map<std::pair<Ipv4, int>, MacAddress> neighbours_;  // (ip, ifindex)
  std::vector<Ipv4> locals_;
};

}  // namespace vfplane::dataplane
