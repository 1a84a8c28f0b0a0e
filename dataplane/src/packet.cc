#include "vfplane/dataplane/packet.h"

#include <cstring>

namespace vfplane::dataplane {
namespace {

constexpr uint8_t kTcp = 6, kUdp = 17, kSctp = 132, kIcmp = 1, kIcmpv6 = 58;

using detail::be16;

bool hasPorts(uint8_t proto) { return proto == kTcp || proto == kUdp || proto == kSctp; }

// The flow of the IP packet at p, whose header classify() (or the caller) found in the frame,
// with what end allows of its ports. An ICMP error's quote is read once, not recursively.
Flow flowAt(const uint8_t* p, const uint8_t* end, bool quoted) {
  Flow f;
  const uint8_t* l4;
  bool v4 = (p[0] >> 4) == 4, fragment = false;
  if (v4) {
    f.src = IpAddr::fromBytes(Family::kIpv4, p + 12);
    f.dst = IpAddr::fromBytes(Family::kIpv4, p + 16);
    f.proto = p[9];
    l4 = p + 4 * (p[0] & 0x0f);
    fragment = (be16(p + 6) & 0x3fff) != 0;
  } else {
    f.src = IpAddr::fromBytes(Family::kIpv6, p + 8);
    f.dst = IpAddr::fromBytes(Family::kIpv6, p + 24);
    f.proto = p[6];
    l4 = p + 40;
  }
  if (fragment || l4 + 4 > end) return f;
  if (hasPorts(f.proto)) {
    f.sport = be16(l4);
    f.dport = be16(l4 + 2);
    return f;
  }
  if (quoted) return f;
  const uint8_t* inner = l4 + 8;
  // ICMP: destination unreachable, redirect, time exceeded, parameter problem (the kernel's
  // set); ICMPv6: types 1 to 4. The quote must hold a whole header of the same family.
  if (v4 && f.proto == kIcmp && (l4[0] == 3 || l4[0] == 5 || l4[0] == 11 || l4[0] == 12)) {
    if (inner + 20 <= end && (inner[0] >> 4) == 4) return flowAt(inner, end, true);
  } else if (!v4 && f.proto == kIcmpv6 && l4[0] >= 1 && l4[0] <= 4) {
    if (inner + 40 <= end && (inner[0] >> 4) == 6) return flowAt(inner, end, true);
  }
  return f;
}

}  // namespace

Classified classify(const uint8_t* frame, size_t length, const MacAddress& portMac) {
  FrameClass c = classifyFrame(frame, length, portMac);
  if (c.punt != nullptr) return std::unexpected(c.punt);
  return ParsedPacket{IpAddr::fromBytes(c.v4 ? Family::kIpv4 : Family::kIpv6, c.dst), c.l3Length};
}

Flow flowOf(const uint8_t* frame, size_t length) {
  return flowAt(frame + kEthHeader, frame + length, false);
}

}  // namespace vfplane::dataplane
