#include "vfplane/dataplane/forwarding_model.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace vfplane::dataplane {
namespace {

Ipv4 maskOf(int length) { return length == 0 ? 0 : ~Ipv4{0} << (32 - length); }

}  // namespace

Result<Ipv4> parseIpv4(std::string_view text) {
  in_addr a{};
  std::string s(text);
  if (::inet_pton(AF_INET, s.c_str(), &a) != 1) {
    return fail(fmt::format("\"{}\" is not an IPv4 address", text), EINVAL);
  }
  return ntohl(a.s_addr);
}

std::string ipv4Str(Ipv4 addr) {
  return fmt::format("{}.{}.{}.{}", addr >> 24, (addr >> 16) & 0xff, (addr >> 8) & 0xff,
                     addr & 0xff);
}

Result<Ipv4Prefix> Ipv4Prefix::parse(std::string_view text) {
  size_t slash = text.find('/');
  auto addr = parseIpv4(text.substr(0, slash));
  if (!addr) return fail(std::move(addr.error()));
  int length = 32;
  if (slash != std::string_view::npos) {
    std::string_view len = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), length);
    if (len.empty() || ec != std::errc() || end != len.data() + len.size() || length < 0 ||
        length > 32) {
      return fail(fmt::format("\"{}\": prefix length must be 0-32", text), EINVAL);
    }
  }
  if ((*addr & ~maskOf(length)) != 0) {
    return fail(fmt::format("\"{}\": host bits are set (did you mean {}/{}?)", text,
                            ipv4Str(*addr & maskOf(length)), length),
                EINVAL);
  }
  return Ipv4Prefix{*addr, length};
}

bool Ipv4Prefix::contains(Ipv4 ip) const { return (ip & maskOf(length)) == addr; }

std::string Ipv4Prefix::str() const { return fmt::format("{}/{}", ipv4Str(addr), length); }

const char* puntName(Punt punt) {
  switch (punt) {
    case Punt::kNoRoute:
      return "no-route";
    case Punt::kLocal:
      return "local";
    case Punt::kUnresolved:
      return "unresolved";
    case Punt::kNoInterface:
      return "no-interface";
  }
  return "unknown";
}

void ForwardingModel::setInterface(Interface iface) {
  interfaces_[iface.ifindex] = std::move(iface);
}
void ForwardingModel::removeInterface(int ifindex) { interfaces_.erase(ifindex); }
void ForwardingModel::setRoute(Route route) { routes_[route.dst] = route; }
void ForwardingModel::removeRoute(const Ipv4Prefix& dst) { routes_.erase(dst); }
void ForwardingModel::setNeighbour(Neighbour n) { neighbours_[{n.ip, n.ifindex}] = n.mac; }
void ForwardingModel::removeNeighbour(Ipv4 ip, int ifindex) { neighbours_.erase({ip, ifindex}); }

void ForwardingModel::addLocal(Ipv4 ip) {
  if (std::find(locals_.begin(), locals_.end(), ip) == locals_.end()) locals_.push_back(ip);
}
void ForwardingModel::removeLocal(Ipv4 ip) { std::erase(locals_, ip); }

const Route* ForwardingModel::lookup(Ipv4 ip) const {
  for (int length = 32; length >= 0; --length) {
    if (auto it = routes_.find(Ipv4Prefix{ip & maskOf(length), length}); it != routes_.end()) {
      return &it->second;
    }
  }
  return nullptr;
}

std::optional<Adjacency> ForwardingModel::adjacency(Ipv4 nextHop, int ifindex) const {
  auto iface = interfaces_.find(ifindex);
  auto mac = neighbours_.find({nextHop, ifindex});
  if (iface == interfaces_.end() || mac == neighbours_.end()) return std::nullopt;
  return Adjacency{ifindex, iface->second.mac, mac->second};
}

Action ForwardingModel::resolve(Ipv4 ip) const {
  if (std::find(locals_.begin(), locals_.end(), ip) != locals_.end())
    return std::unexpected(Punt::kLocal);
  const Route* route = lookup(ip);
  if (route == nullptr) return std::unexpected(Punt::kNoRoute);
  if (!interfaces_.contains(route->ifindex)) return std::unexpected(Punt::kNoInterface);
  if (auto adj = adjacency(route->gateway.value_or(ip), route->ifindex)) return *adj;
  return std::unexpected(Punt::kUnresolved);
}

std::vector<FibEntry> ForwardingModel::compile() const {
  std::map<Ipv4Prefix, FibEntry> table;
  for (const auto& [prefix, route] : routes_) {
    Action action = std::unexpected(Punt::kUnresolved);
    if (!interfaces_.contains(route.ifindex)) {
      action = std::unexpected(Punt::kNoInterface);
    } else if (route.gateway) {
      if (auto adj = adjacency(*route.gateway, route.ifindex)) action = *adj;
    }
    table.insert_or_assign(prefix, FibEntry{prefix, action});
  }
  for (const auto& [key, mac] : neighbours_) {
    auto [ip, ifindex] = key;
    const Route* route = lookup(ip);
    // Only where the neighbour is what the route table leads to: a neighbour entry on another
    // interface, or inside a more specific gateway route, must not shadow that route.
    if (route == nullptr || route->gateway || route->ifindex != ifindex) continue;
    if (auto adj = adjacency(ip, ifindex)) {
      table.insert_or_assign(Ipv4Prefix::host(ip), FibEntry{Ipv4Prefix::host(ip), *adj});
    }
  }
  for (Ipv4 ip : locals_) {
    table.insert_or_assign(Ipv4Prefix::host(ip),
                           FibEntry{Ipv4Prefix::host(ip), std::unexpected(Punt::kLocal)});
  }
  std::vector<FibEntry> out;
  out.reserve(table.size());
  for (auto& [prefix, e] : table) out.push_back(std::move(e));
  return out;
}

}  // namespace vfplane::dataplane
