#include "vfplane/cni/ip_config.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "vfplane/cni/plugin.h"

namespace vfplane::cni {
namespace {

bool belongs(const IpConfig& ip, int resultIndex) {
  return !ip.interface || *ip.interface == resultIndex;
}

}  // namespace

CniExpected<void> configureIps(netlink::Client& pod, int ifindex, const NetResult& result,
                               int resultIndex) {
  std::optional<netlink::IpPrefix> gw4, gw6;
  for (const auto& ip : result.ips) {
    if (!belongs(ip, resultIndex)) continue;
    auto prefix = netlink::IpPrefix::parse(ip.address);
    if (!prefix)
      return cniFail(ErrorCode::kInvalidConfig,
                     fmt::format("IPAM result: {}", prefix.error().message()));
    if (auto r = pod.execute(netlink::buildAddress(ifindex, *prefix, true),
                             fmt::format("add address {}", ip.address));
        !r && r.error().sysErrno() != EEXIST) {
      return cniFail(ErrorCode::kIoFailure, r.error().message());
    }
    if (!ip.gateway.empty()) {
      auto gw = netlink::IpPrefix::parse(ip.gateway);
      if (!gw)
        return cniFail(ErrorCode::kInvalidConfig,
                       fmt::format("IPAM result: gateway: {}", gw.error().message()));
      auto& slot = gw->family == AF_INET ? gw4 : gw6;
      if (!slot) slot = *gw;
    }
  }
  for (const auto& route : result.routes) {
    auto dst = netlink::IpPrefix::parse(route.dst);
    if (!dst)
      return cniFail(ErrorCode::kInvalidConfig,
                     fmt::format("IPAM result: route: {}", dst.error().message()));
    std::optional<netlink::IpPrefix> gw = dst->family == AF_INET ? gw4 : gw6;
    if (!route.gw.empty()) {
      auto g = netlink::IpPrefix::parse(route.gw);
      if (!g)
        return cniFail(ErrorCode::kInvalidConfig,
                       fmt::format("IPAM result: route gw: {}", g.error().message()));
      gw = *g;
    }
    std::string what =
        fmt::format("add route {}{}", route.dst, gw ? " via " + gw->addressStr() : "");
    if (auto r = pod.execute(netlink::buildRoute(*dst, gw, ifindex, true), what);
        !r && r.error().sysErrno() != EEXIST) {
      return cniFail(ErrorCode::kIoFailure, r.error().message());
    }
  }
  return {};
}

CniExpected<void> checkIps(netlink::Client& pod, int ifindex, const NetResult& result,
                           int resultIndex) {
  auto have = pod.addresses(ifindex);
  if (!have) return cniFail(ErrorCode::kIoFailure, have.error().message());
  for (const auto& ip : result.ips) {
    if (!belongs(ip, resultIndex)) continue;
    auto want = netlink::IpPrefix::parse(ip.address);
    if (!want)
      return cniFail(ErrorCode::kDecodeFailure,
                     fmt::format("prevResult: {}", want.error().message()));
    if (std::find(have->begin(), have->end(), *want) == have->end()) {
      return cniFail(kCheckMismatch,
                     fmt::format("address {} is missing from the interface", ip.address));
    }
  }
  return {};
}

}  // namespace vfplane::cni
