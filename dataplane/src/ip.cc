#include "vfplane/dataplane/ip.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace vfplane::dataplane {
namespace {

IpAddr masked(IpAddr a, int length) {
  for (int i = 0; i < 16; ++i) {
    int keep = std::clamp(length - 8 * i, 0, 8);
    a.bytes[static_cast<size_t>(i)] &= static_cast<uint8_t>(0xff00 >> keep);
  }
  return a;
}

}  // namespace

Result<IpAddr> IpAddr::parse(std::string_view text) {
  std::string s(text);
  IpAddr a;
  if (::inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) return a;
  a.family = Family::kIpv6;
  if (::inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) return a;
  return fail(fmt::format("\"{}\" is not an IP address", text), EINVAL);
}

IpAddr IpAddr::v4(uint32_t addr) {
  IpAddr a;
  for (int i = 0; i < 4; ++i)
    a.bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(addr >> (24 - 8 * i));
  return a;
}

IpAddr IpAddr::fromBytes(Family family, const uint8_t* bytes) {
  IpAddr a;
  a.family = family;
  std::memcpy(a.bytes.data(), bytes, a.size());
  return a;
}

uint32_t IpAddr::word(int i) const {
  const uint8_t* b = bytes.data() + 4 * i;
  return static_cast<uint32_t>(b[0]) << 24 | static_cast<uint32_t>(b[1]) << 16 |
         static_cast<uint32_t>(b[2]) << 8 | b[3];
}

std::string IpAddr::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(isV4() ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

Result<Prefix> Prefix::parse(std::string_view text) {
  size_t slash = text.find('/');
  auto addr = IpAddr::parse(text.substr(0, slash));
  if (!addr) return fail(std::move(addr.error()));
  int length = addr->bits();
  if (slash != std::string_view::npos) {
    std::string_view len = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), length);
    if (len.empty() || ec != std::errc() || end != len.data() + len.size() || length < 0 ||
        length > addr->bits()) {
      return fail(fmt::format("\"{}\": prefix length must be 0-{}", text, addr->bits()), EINVAL);
    }
  }
  Prefix p = of(*addr, length);
  if (p.addr != *addr) {
    return fail(fmt::format("\"{}\": host bits are set (did you mean {}?)", text, p.str()), EINVAL);
  }
  return p;
}

Prefix Prefix::of(const IpAddr& addr, int length) { return {masked(addr, length), length}; }

bool Prefix::contains(const IpAddr& ip) const {
  return ip.family == addr.family && masked(ip, length) == addr;
}

std::string Prefix::str() const { return fmt::format("{}/{}", addr.str(), length); }

}  // namespace vfplane::dataplane
