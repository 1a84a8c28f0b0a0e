// Packet counters both fast paths keep, one slot per verdict, so that an operator reads XDP and
// DPDK statistics the same way; kVerdicts names each slot once for logs and metrics.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "vfplane/dataplane/forwarding_model.h"

namespace vfplane::dataplane {

struct FastPathCounters {
  uint64_t rx = 0;
  uint64_t forwarded = 0;
  uint64_t txDropped = 0;      // forwarded but refused by the egress queue (DPDK)
  uint64_t puntOtherHost = 0;  // not addressed to the ingress port's MAC (or not a port at all)
  uint64_t puntNotIp = 0;      // ARP, VLAN-tagged, anything but IPv4 and IPv6
  uint64_t puntMalformed = 0;  // truncated, bad version, lengths or IPv4 header checksum
  uint64_t puntSpecial = 0;    // from or to a loopback, multicast, broadcast or link-local address
  uint64_t puntIpOptions = 0;  // IPv4 options, an IPv6 hop-by-hop header
  uint64_t puntTtl = 0;        // TTL or hop limit 1 or 0: the kernel sends time-exceeded
  uint64_t puntNoRoute = 0;
  uint64_t puntLocal = 0;       // to one of the router's addresses (ICMP, ND, routing protocols)
  uint64_t puntUnresolved = 0;  // the next hop's MAC is not known yet
  uint64_t puntNotPort = 0;  // the route leaves through an interface the fast path does not serve
  uint64_t puntReject = 0;   // a blackhole, unreachable or prohibit route
  uint64_t puntTooBig = 0;   // larger than the egress MTU: the kernel fragments or says so
  uint64_t puntDropped = 0;  // the exception path was full (DPDK)
};

// What became of a received frame.
struct Verdict {
  enum Kind { kForwarded, kPunted, kDropped };
  const char* name;   // the metrics label: "forwarded", "ttl", ...
  const char* words;  // for a log line: "TTL", "for other hosts or broadcast", ...
  Kind kind;
  uint64_t FastPathCounters::*count;
};

// Every slot but rx, in the order a log line reads them.
inline constexpr std::array<Verdict, 15> kVerdicts = {{
    {"forwarded", "forwarded", Verdict::kForwarded, &FastPathCounters::forwarded},
    {"tx_dropped", "dropped by a full egress queue", Verdict::kDropped,
     &FastPathCounters::txDropped},
    {"other_host", "for other hosts or multicast", Verdict::kPunted,
     &FastPathCounters::puntOtherHost},
    {"not_ip", "not IP", Verdict::kPunted, &FastPathCounters::puntNotIp},
    {"malformed", "malformed", Verdict::kPunted, &FastPathCounters::puntMalformed},
    {"special_address", "special addresses", Verdict::kPunted, &FastPathCounters::puntSpecial},
    {"ip_options", "options", Verdict::kPunted, &FastPathCounters::puntIpOptions},
    {"ttl", "TTL", Verdict::kPunted, &FastPathCounters::puntTtl},
    {"no_route", "no route", Verdict::kPunted, &FastPathCounters::puntNoRoute},
    {"local", "local", Verdict::kPunted, &FastPathCounters::puntLocal},
    {"unresolved", "unresolved", Verdict::kPunted, &FastPathCounters::puntUnresolved},
    {"not_port", "via other links", Verdict::kPunted, &FastPathCounters::puntNotPort},
    {"reject", "reject routes", Verdict::kPunted, &FastPathCounters::puntReject},
    {"too_big", "over the MTU", Verdict::kPunted, &FastPathCounters::puntTooBig},
    {"punt_dropped", "dropped by a full path to the kernel", Verdict::kDropped,
     &FastPathCounters::puntDropped},
}};

// The counter a punt reason counts in.
uint64_t FastPathCounters::*puntCounter(Punt punt);

// "N in, N forwarded; to the kernel: N for other hosts or multicast, ...", with the drops after
// it when there were any.
std::string describeCounters(const FastPathCounters& c);

}  // namespace vfplane::dataplane
