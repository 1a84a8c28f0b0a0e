// Packet counters both fast paths keep, one slot per verdict, so that an operator reads XDP and
// DPDK statistics the same way; kVerdicts names each slot once for logs and metrics.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace vfplane::dataplane {

struct FastPathCounters {
  uint64_t rx = 0;
  uint64_t forwarded = 0;
  uint64_t txDropped = 0;  // forwarded but refused by the egress queue (DPDK)
  uint64_t puntNotIpv4 = 0;
  uint64_t puntIpOptions = 0;
  uint64_t puntTtl = 0;
  uint64_t puntNoRoute = 0;
  uint64_t puntAction = 0;  // local, unresolved, or an egress the fast path does not serve
  uint64_t puntMalformed = 0;
  uint64_t puntOtherHost = 0;  // not addressed to the ingress port's MAC (or not a port at all)
  uint64_t puntDropped = 0;    // the exception path was full (DPDK)
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
inline constexpr std::array<Verdict, 10> kVerdicts = {{
    {"forwarded", "forwarded", Verdict::kForwarded, &FastPathCounters::forwarded},
    {"tx_dropped", "dropped by a full egress queue", Verdict::kDropped,
     &FastPathCounters::txDropped},
    {"other_host", "for other hosts or broadcast", Verdict::kPunted,
     &FastPathCounters::puntOtherHost},
    {"not_ipv4", "not IPv4", Verdict::kPunted, &FastPathCounters::puntNotIpv4},
    {"ip_options", "options", Verdict::kPunted, &FastPathCounters::puntIpOptions},
    {"ttl", "TTL", Verdict::kPunted, &FastPathCounters::puntTtl},
    {"no_route", "no route", Verdict::kPunted, &FastPathCounters::puntNoRoute},
    {"local_or_unresolved", "local/unresolved", Verdict::kPunted, &FastPathCounters::puntAction},
    {"malformed", "malformed", Verdict::kPunted, &FastPathCounters::puntMalformed},
    {"punt_dropped", "dropped by a full path to the kernel", Verdict::kDropped,
     &FastPathCounters::puntDropped},
}};

// "N in, N forwarded; to the kernel: N for other hosts or broadcast, ...", with the drops after
// it when there were any.
std::string describeCounters(const FastPathCounters& c);

}  // namespace vfplane::dataplane
