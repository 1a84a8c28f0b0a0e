#include "vfplane/dataplane/forwarding_model.h"

#include <fmt/format.h>

#include <algorithm>

namespace vfplane::dataplane {
namespace {

uint32_t rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

// One MurmurHash3 round; the BPF program has the same (ebpf/xdp_router.bpf.c).
uint32_t mix(uint32_t h, uint32_t k) {
  k *= 0xcc9e2d51u;
  k = rotl(k, 15);
  k *= 0x1b873593u;
  h ^= k;
  h = rotl(h, 13);
  return h * 5 + 0xe6546b64u;
}

uint32_t finish(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  return h ^ (h >> 16);
}

}  // namespace

const char* puntName(Punt punt) {
  switch (punt) {
    case Punt::kNoRoute:
      return "no-route";
    case Punt::kLocal:
      return "local";
    case Punt::kUnresolved:
      return "unresolved";
    case Punt::kNotPort:
      return "not-port";
    case Punt::kReject:
      return "reject";
  }
  return "unknown";
}

uint32_t flowHash(const Flow& flow, uint32_t seed) {
  // Word by word the smaller first, so swapping source and destination changes nothing.
  uint32_t h = seed;
  int words = flow.src.isV4() ? 1 : 4;
  for (int i = 0; i < words; ++i) {
    uint32_t a = flow.src.word(i), b = flow.dst.word(i);
    h = mix(h, std::min(a, b));
    h = mix(h, std::max(a, b));
  }
  uint32_t lo = std::min(flow.sport, flow.dport), hi = std::max(flow.sport, flow.dport);
  h = mix(h, lo << 16 | hi);
  h = mix(h, flow.proto);
  return finish(h);
}

const GroupPath& NextHopGroup::pick(uint32_t hash) const {
  uint32_t upper[kMaxPaths];
  uint32_t total = 0, n = static_cast<uint32_t>(std::min(paths.size(), kMaxPaths));
  for (uint32_t i = 0; i < n; ++i) upper[i] = total += paths[i].weight;
  return paths[pickIndex(upper, n, total, hash)];
}

Action Action::forward(Adjacency adjacency) {
  return Action(std::make_shared<const NextHopGroup>(NextHopGroup{{{adjacency, 1}}}));
}

bool Action::operator==(const Action& o) const {
  if (forwards() != o.forwards()) return false;
  if (!forwards()) return punt_ == o.punt_;
  return group_ == o.group_ || *group_ == *o.group_;
}

std::string Action::str() const {
  if (!forwards()) return fmt::format("punt {}", puntName(punt_));
  return fmt::format("forward {} path{}", group_->paths.size(),
                     group_->paths.size() == 1 ? "" : "s");
}

void ForwardingModel::setInterface(Interface iface) {
  interfaces_[iface.ifindex] = std::move(iface);
}
void ForwardingModel::removeInterface(int ifindex) { interfaces_.erase(ifindex); }
void ForwardingModel::setRoute(Route route) { routes_[route.dst] = std::move(route); }
void ForwardingModel::removeRoute(const Prefix& dst) { routes_.erase(dst); }
void ForwardingModel::setNeighbour(Neighbour n) { neighbours_[{n.ip, n.ifindex}] = n.mac; }
void ForwardingModel::removeNeighbour(const IpAddr& ip, int ifindex) {
  neighbours_.erase({ip, ifindex});
}
void ForwardingModel::addLocal(const IpAddr& ip) { locals_.insert(ip); }
void ForwardingModel::removeLocal(const IpAddr& ip) { locals_.erase(ip); }

const Route* ForwardingModel::lookup(const IpAddr& ip) const {
  for (int length = ip.bits(); length >= 0; --length) {
    if (auto it = routes_.find(Prefix::of(ip, length)); it != routes_.end()) return &it->second;
  }
  return nullptr;
}

std::optional<Adjacency> ForwardingModel::adjacency(const IpAddr& nextHop, int ifindex) const {
  auto iface = interfaces_.find(ifindex);
  auto mac = neighbours_.find({nextHop, ifindex});
  if (iface == interfaces_.end() || mac == neighbours_.end()) return std::nullopt;
  return Adjacency{ifindex, iface->second.mac, mac->second, iface->second.mtu};
}

// A single on-link path: packets go to the destination's own neighbour entry.
static bool isConnected(const Route& route) {
  return route.paths.size() == 1 && !route.paths[0].gateway;
}

Action ForwardingModel::routeAction(const Route& route,
                                    std::map<NextHopGroup, GroupRef>& groups) const {
  if (route.type == RouteType::kReject || route.paths.empty()) return Punt::kReject;
  if (route.paths.size() > kMaxPaths) return Punt::kNotPort;
  NextHopGroup group;
  bool resolved = false;
  for (const auto& p : route.paths) {
    if (!interfaces_.contains(p.ifindex)) return Punt::kNotPort;
    // On-link paths have an adjacency per destination, which a group cannot hold.
    if (!p.gateway) return Punt::kUnresolved;
    auto adj = adjacency(*p.gateway, p.ifindex);
    resolved = resolved || adj.has_value();
    group.paths.push_back({adj, p.weight});
  }
  if (!resolved) return Punt::kUnresolved;
  auto [it, added] = groups.try_emplace(group, nullptr);
  if (added) it->second = std::make_shared<const NextHopGroup>(std::move(group));
  return Action(it->second);
}

std::vector<std::pair<Prefix, std::string>> ForwardingModel::unsupportedRoutes() const {
  std::vector<std::pair<Prefix, std::string>> out;
  for (const auto& [prefix, route] : routes_) {
    if (route.type != RouteType::kUnicast || route.paths.size() < 2) continue;
    bool viaPorts = std::all_of(route.paths.begin(), route.paths.end(),
                                [&](const Path& p) { return interfaces_.contains(p.ifindex); });
    if (!viaPorts) continue;
    if (route.paths.size() > kMaxPaths) {
      out.emplace_back(prefix, fmt::format("{} paths, more than the {} a group holds",
                                           route.paths.size(), kMaxPaths));
    } else if (std::any_of(route.paths.begin(), route.paths.end(),
                           [](const Path& p) { return !p.gateway; })) {
      out.emplace_back(prefix, "a multipath route with an on-link path (no gateway)");
    }
  }
  return out;
}

Decision ForwardingModel::resolve(const Flow& flow, uint32_t seed) const {
  if (locals_.contains(flow.dst)) return std::unexpected(Punt::kLocal);
  const Route* route = lookup(flow.dst);
  if (route == nullptr) return std::unexpected(Punt::kNoRoute);
  if (route->type == RouteType::kUnicast && isConnected(*route) &&
      interfaces_.contains(route->paths[0].ifindex)) {
    if (auto adj = adjacency(flow.dst, route->paths[0].ifindex)) return *adj;
    return std::unexpected(Punt::kUnresolved);
  }
  std::map<NextHopGroup, GroupRef> scratch;
  Action action = routeAction(*route, scratch);
  if (!action.forwards()) return std::unexpected(action.punt());
  const GroupPath& path = action.group().pick(flowHash(flow, seed));
  if (!path.adjacency) return std::unexpected(Punt::kUnresolved);
  return *path.adjacency;
}

Fib ForwardingModel::compile() const {
  std::map<NextHopGroup, GroupRef> groups;
  std::map<Prefix, Action> table;
  for (const auto& [prefix, route] : routes_)
    table.insert_or_assign(prefix, routeAction(route, groups));
  for (const auto& [key, mac] : neighbours_) {
    const auto& [ip, ifindex] = key;
    const Route* route = lookup(ip);
    // Only where the neighbour is what the route table leads to: a neighbour entry on another
    // interface, or inside a more specific gateway route, must not shadow that route.
    if (route == nullptr || route->type != RouteType::kUnicast || !isConnected(*route) ||
        route->paths[0].ifindex != ifindex) {
      continue;
    }
    if (auto adj = adjacency(ip, ifindex)) {
      NextHopGroup g{{{*adj, 1}}};
      auto [it, added] = groups.try_emplace(g, nullptr);
      if (added) it->second = std::make_shared<const NextHopGroup>(std::move(g));
      table.insert_or_assign(Prefix::host(ip), Action(it->second));
    }
  }
  for (const auto& ip : locals_) table.insert_or_assign(Prefix::host(ip), Punt::kLocal);
  Fib out;
  out.reserve(table.size());
  for (auto& [prefix, action] : table) out.push_back({prefix, std::move(action)});
  return out;
}

}  // namespace vfplane::dataplane
