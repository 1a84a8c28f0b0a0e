#include "vfplane/dataplane/packet.h"

#include <cstring>

namespace vfplane::dataplane {
namespace {

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86dd;
constexpr uint8_t kTcp = 6, kUdp = 17, kSctp = 132, kIcmp = 1, kIcmpv6 = 58, kHopByHop = 0;

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

bool hasPorts(uint8_t proto) { return proto == kTcp || proto == kUdp || proto == kSctp; }

bool specialV4(const uint8_t* a) {
  return a[0] == 0 || a[0] == 127 || (a[0] & 0xf0) == 0xe0 ||
         (a[0] == 0xff && a[1] == 0xff && a[2] == 0xff && a[3] == 0xff);
}

bool specialV6(const uint8_t* a) {
  if (a[0] == 0xff) return true;                           // multicast
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return true;  // link-local
  for (int i = 0; i < 10; ++i) {
    if (a[i] != 0) return false;
  }
  if (a[10] == 0xff && a[11] == 0xff) return true;  // IPv4-mapped
  if (a[10] != 0 || a[11] != 0 || a[12] != 0 || a[13] != 0 || a[14] != 0) return false;
  return a[15] <= 1;  // :: and ::1
}

// RFC 1071 over an IPv4 header: 0 when its checksum is right.
uint16_t foldedSum(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += be16(p + i);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

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
  if (length < kEthHeader) return std::unexpected(&FastPathCounters::puntMalformed);
  if (std::memcmp(frame, portMac.bytes.data(), 6) != 0)
    return std::unexpected(&FastPathCounters::puntOtherHost);
  uint16_t type = be16(frame + 12);
  const uint8_t* ip = frame + kEthHeader;
  size_t avail = length - kEthHeader;
  ParsedPacket p;
  if (type == kEtherIpv4) {
    if (avail < 20 || (ip[0] >> 4) != 4 || (ip[0] & 0x0f) < 5)
      return std::unexpected(&FastPathCounters::puntMalformed);
    p.l3Length = be16(ip + 2);
    if (p.l3Length < 20 || p.l3Length > avail)
      return std::unexpected(&FastPathCounters::puntMalformed);
    if ((ip[0] & 0x0f) != 5) return std::unexpected(&FastPathCounters::puntIpOptions);
    if (foldedSum(ip, 20) != 0) return std::unexpected(&FastPathCounters::puntMalformed);
    if (specialV4(ip + 12) || specialV4(ip + 16))
      return std::unexpected(&FastPathCounters::puntSpecial);
    if (ip[8] <= 1) return std::unexpected(&FastPathCounters::puntTtl);
    p.dst = IpAddr::fromBytes(Family::kIpv4, ip + 16);
    return p;
  }
  if (type == kEtherIpv6) {
    if (avail < 40 || (ip[0] >> 4) != 6) return std::unexpected(&FastPathCounters::puntMalformed);
    p.l3Length = 40u + be16(ip + 4);
    if (p.l3Length > avail) return std::unexpected(&FastPathCounters::puntMalformed);
    if (ip[6] == kHopByHop) return std::unexpected(&FastPathCounters::puntIpOptions);
    if (specialV6(ip + 8) || specialV6(ip + 24))
      return std::unexpected(&FastPathCounters::puntSpecial);
    if (ip[7] <= 1) return std::unexpected(&FastPathCounters::puntTtl);
    p.dst = IpAddr::fromBytes(Family::kIpv6, ip + 24);
    return p;
  }
  return std::unexpected(&FastPathCounters::puntNotIp);
}

Flow flowOf(const uint8_t* frame, size_t length) {
  return flowAt(frame + kEthHeader, frame + length, false);
}

void rewrite(uint8_t* frame, const MacAddress& dst, const MacAddress& src) {
  uint8_t* ip = frame + kEthHeader;
  if ((ip[0] >> 4) == 4) {
    // RFC 1624: TTL is the high byte of its 16-bit word, so decrementing it adds 0x0100 to the
    // one's-complement checksum, with the end-around carry; 0xffff becomes 0, as a fresh
    // computation would give it.
    uint32_t check = static_cast<uint32_t>(be16(ip + 10)) + 0x0100;
    check = (check + (check >= 0xffff)) & 0xffff;
    ip[10] = static_cast<uint8_t>(check >> 8);
    ip[11] = static_cast<uint8_t>(check);
    --ip[8];
  } else {
    --ip[7];
  }
  std::memcpy(frame, dst.bytes.data(), 6);
  std::memcpy(frame + 6, src.bytes.data(), 6);
}

}  // namespace vfplane::dataplane
