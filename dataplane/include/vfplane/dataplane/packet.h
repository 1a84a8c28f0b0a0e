// The fast path's reading of a frame, written once as plain functions over bytes: the DPDK path
// runs them as they are, the XDP program (ebpf/xdp_router.bpf.c) mirrors them check for check, and
// the shared case file holds both to the same verdicts.
//
// classify() goes in this order, and the first check that fails is the verdict:
//   1. shorter than an Ethernet header: malformed
//   2. not addressed to the port's MAC (other hosts, broadcast, multicast): other_host
//   3. EtherType neither IPv4 nor IPv6 (ARP, VLAN tags...): not_ip
//   4. IPv4: shorter than 20 bytes, version not 4, IHL under 5, total length under the header or
//      over the frame: malformed. IPv6: shorter than 40 bytes, version not 6, payload length over
//      the frame: malformed
//   5. IPv4 options (IHL over 5), an IPv6 hop-by-hop header: ip_options
//   6. IPv4 header checksum wrong: malformed (RFC 1812 5.2.2)
//   7. source or destination special (below): special_address
//   8. TTL or hop limit 1 or 0: ttl
// Then the table: no entry is no_route, a punt entry counts by its reason, a group picks a path
// by flowHash(flowOf()) (unresolved when that path is), and a packet over the path's MTU is
// too_big. Only then is the frame rewritten.
//
// Special, as the kernel treats them (not forwarded, or dropped as martians): IPv4 0.0.0.0/8,
// 127.0.0.0/8, 224.0.0.0/4 and 255.255.255.255; IPv6 ::, ::1, ::ffff:0:0/96 (IPv4-mapped),
// fe80::/10 and ff00::/8.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <expected>

#include "vfplane/dataplane/counters.h"
#include "vfplane/dataplane/forwarding_model.h"

namespace vfplane::dataplane {

// The smallest MTU a link may have: what every IPv4 module forwards without fragments (RFC 791).
inline constexpr unsigned kMinMtu = 68;

inline constexpr size_t kEthHeader = 14;

struct ParsedPacket {
  IpAddr dst;             // what the table is looked up by
  uint32_t l3Length = 0;  // the IP packet's length (IPv4 total length, IPv6 40 + payload)
};

// classify()'s verdict as the fast path takes it, with nothing built: the counter when the frame
// goes to the kernel, else where the destination is in the frame (4 or 16 bytes by v4).
struct FrameClass {
  uint64_t FastPathCounters::*punt = nullptr;
  const uint8_t* dst = nullptr;
  uint32_t l3Length = 0;
  bool v4 = false;
};
inline FrameClass classifyFrame(const uint8_t* frame, size_t length, const MacAddress& portMac);

// The verdict's counter when the frame goes to the kernel before any lookup.
using Classified = std::expected<ParsedPacket, uint64_t FastPathCounters::*>;
Classified classify(const uint8_t* frame, size_t length, const MacAddress& portMac);

// The flow an ECMP group hashes, for a frame classify() accepted. TCP, UDP and SCTP give their
// ports unless the packet is an IPv4 fragment; an ICMP or ICMPv6 error gives the flow of the packet
// it quotes, where the quote is long enough.
Flow flowOf(const uint8_t* frame, size_t length);

// Decrements TTL (RFC 1624 incremental checksum) or hop limit, writes the MACs.
inline void rewrite(uint8_t* frame, const MacAddress& dst, const MacAddress& src);

// ---- classifyFrame: inline, since it runs once per frame -----------------------------------

namespace detail {

inline uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

inline bool specialV4(const uint8_t* a) {
  uint32_t w;
  std::memcpy(&w, a, 4);
  return a[0] == 0 || a[0] == 127 || (a[0] & 0xf0) == 0xe0 || w == 0xffffffffu;
}

inline bool specialV6(const uint8_t* a) {
  if (a[0] == 0xff) return true;                           // multicast
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return true;  // link-local
  uint64_t high;
  std::memcpy(&high, a, 8);
  if (high != 0 || a[8] != 0 || a[9] != 0) return false;
  if (a[10] == 0xff && a[11] == 0xff) return true;  // IPv4-mapped
  if (a[10] != 0 || a[11] != 0 || a[12] != 0 || a[13] != 0 || a[14] != 0) return false;
  return a[15] <= 1;  // :: and ::1
}

// RFC 1071 over a 20-byte IPv4 header in 32-bit words: the one's-complement sum does not depend on
// the byte order it is added in, so a right header folds to 0xffff either way.
inline bool checksumOk(const uint8_t* ip) {
  uint64_t sum = 0;
  for (int i = 0; i < 5; ++i) {
    uint32_t w;
    std::memcpy(&w, ip + 4 * i, 4);
    sum += w;
  }
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

inline constexpr uint16_t kEtherIpv4 = 0x0800, kEtherIpv6 = 0x86dd;
inline constexpr uint8_t kHopByHop = 0;

}  // namespace detail

inline FrameClass classifyFrame(const uint8_t* frame, size_t length, const MacAddress& portMac) {
  using C = FastPathCounters;
  FrameClass r;
  if (length < kEthHeader) return {&C::puntMalformed};
  if (std::memcmp(frame, portMac.bytes.data(), 6) != 0) return {&C::puntOtherHost};
  uint16_t type = detail::be16(frame + 12);
  const uint8_t* ip = frame + kEthHeader;
  size_t avail = length - kEthHeader;
  if (type == detail::kEtherIpv4) {
    if (avail < 20 || (ip[0] >> 4) != 4 || (ip[0] & 0x0f) < 5) return {&C::puntMalformed};
    r.l3Length = detail::be16(ip + 2);
    if (r.l3Length < 20 || r.l3Length > avail) return {&C::puntMalformed};
    if ((ip[0] & 0x0f) != 5) return {&C::puntIpOptions};
    if (!detail::checksumOk(ip)) return {&C::puntMalformed};
    if (detail::specialV4(ip + 12) || detail::specialV4(ip + 16)) return {&C::puntSpecial};
    if (ip[8] <= 1) return {&C::puntTtl};
    r.dst = ip + 16;
    r.v4 = true;
    return r;
  }
  if (type == detail::kEtherIpv6) {
    if (avail < 40 || (ip[0] >> 4) != 6) return {&C::puntMalformed};
    r.l3Length = 40u + detail::be16(ip + 4);
    if (r.l3Length > avail) return {&C::puntMalformed};
    if (ip[6] == detail::kHopByHop) return {&C::puntIpOptions};
    if (detail::specialV6(ip + 8) || detail::specialV6(ip + 24)) return {&C::puntSpecial};
    if (ip[7] <= 1) return {&C::puntTtl};
    r.dst = ip + 24;
    return r;
  }
  return {&C::puntNotIp};
}

inline void rewrite(uint8_t* frame, const MacAddress& dst, const MacAddress& src) {
  uint8_t* ip = frame + kEthHeader;
  if ((ip[0] >> 4) == 4) {
    // RFC 1624: TTL is the high byte of its 16-bit word, so decrementing it adds 0x0100 to the
    // one's-complement checksum, with the end-around carry; 0xffff becomes 0, as a fresh
    // computation would give it.
    uint32_t check = static_cast<uint32_t>(detail::be16(ip + 10)) + 0x0100;
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
