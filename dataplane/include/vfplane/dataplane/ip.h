// IPv4 and IPv6 addresses and route prefixes as the forwarding core keys its tables: one type
// for both families, ordered IPv4 first, so one route map and one table serve both.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "vfplane/base/error.h"

namespace vfplane::dataplane {

enum class Family : uint8_t { kIpv4 = 4, kIpv6 = 6 };

struct IpAddr {
  Family family = Family::kIpv4;
  std::array<uint8_t, 16> bytes{};  // network byte order; IPv4 uses the first 4

  // "10.1.0.5" or "2001:db8::5"; EINVAL quoting the text otherwise.
  static Result<IpAddr> parse(std::string_view text);
  // From the address in host byte order.
  static IpAddr v4(uint32_t addr);
  // From 4 or 16 bytes in network order (an rtnetlink attribute, a packet header).
  static IpAddr fromBytes(Family family, const uint8_t* bytes);
  bool isV4() const { return family == Family::kIpv4; }
  int bits() const { return isV4() ? 32 : 128; }
  size_t size() const { return isV4() ? 4 : 16; }
  // Word i (0 for IPv4, 0-3 for IPv6) as a number: what the flow hash mixes.
  uint32_t word(int i) const;
  std::string str() const;
  auto operator<=>(const IpAddr&) const = default;
};

struct Prefix {
  IpAddr addr;  // host bits are always zero
  int length = 0;

  // "10.1.0.0/16", "2001:db8::/32"; a bare address is a host prefix. Host bits are an error
  // ("10.1.0.5/16"), since a route written that way is usually a typo.
  static Result<Prefix> parse(std::string_view text);
  // addr with its host bits cleared.
  static Prefix of(const IpAddr& addr, int length);
  static Prefix host(const IpAddr& addr) { return {addr, addr.bits()}; }
  bool contains(const IpAddr& ip) const;
  std::string str() const;
  auto operator<=>(const Prefix&) const = default;
};

}  // namespace vfplane::dataplane
