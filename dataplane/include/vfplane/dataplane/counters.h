// Packet counters both fast paths keep, one slot per verdict, so that an operator reads XDP and
// DPDK statistics the same way.
#pragma once

#include <cstdint>

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
  uint64_t puntDropped = 0;  // the exception path was full (DPDK)
};

}  // namespace vfplane::dataplane
