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

// The verdict's counter when the frame goes to the kernel before any lookup.
using Classified = std::expected<ParsedPacket, uint64_t FastPathCounters::*>;
Classified classify(const uint8_t* frame, size_t length, const MacAddress& portMac);

// The flow an ECMP group hashes, for a frame classify() accepted. TCP, UDP and SCTP give their
// ports unless the packet is an IPv4 fragment; an ICMP or ICMPv6 error gives the flow of the packet
// it quotes, where the quote is long enough.
Flow flowOf(const uint8_t* frame, size_t length);

// Decrements TTL (RFC 1624 incremental checksum) or hop limit, writes the MACs.
void rewrite(uint8_t* frame, const MacAddress& dst, const MacAddress& src);

}  // namespace vfplane::dataplane
