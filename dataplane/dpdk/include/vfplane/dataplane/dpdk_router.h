// The DPDK fast path: IPv4 forwarding between DPDK ports from the same compiled table the XDP
// path installs, so both forward exactly alike.
//
// Each DPDK port stands for one interface of the model (its ifindex). A packet is forwarded when
// its destination has a forwarding entry whose egress interface is one of the ports; everything
// else is punted, unmodified, to the exception ring, whose owner hands it to the kernel (a TAP or
// virtio-user port in a deployment; the tests read it directly). The reasons match the XDP path's
// counters one for one.
//
// Single-threaded by design for now: poll() and install() run on the same lcore, so a table swap
// between two polls needs no synchronisation.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vfplane/dataplane/counters.h"
#include "vfplane/dataplane/forwarding_model.h"
#include "vfplane/base/error.h"

struct rte_lpm;
struct rte_mempool;
struct rte_ring;
struct rte_mbuf;

namespace vfplane::dataplane {

// Starts DPDK's EAL once per process; args are its command line, argv[0] first
// (e.g. {"vfplane", "--no-huge", "--no-pci", "--in-memory"}). Errors carry rte_errno's text.
Result<void> initEal(const std::vector<std::string>& args);

struct DpdkPort {
  uint16_t portId = 0;
  int ifindex = 0;  // the model interface this port stands for
  MacAddress mac;   // its address: only frames sent to it are routed
};

using DpdkCounters = FastPathCounters;

class DpdkRouter {
 public:
  struct Options {
    std::vector<DpdkPort> ports;
    uint32_t maxEntries = 65536;
    uint32_t mbufs = 8191;
  };
  // Configures and starts every port (one RX and one TX queue each) with a mempool of its own.
  static Result<std::unique_ptr<DpdkRouter>> create(const Options& options);
  ~DpdkRouter();

  // Replaces the table: a new LPM is built aside and swapped in.
  Result<void> install(const std::vector<FibEntry>& fib);
  // One burst from every port, forwarded or punted. Returns the packets received.
  size_t poll();

  const DpdkCounters& counters() const { return counters_; }
  rte_ring* exceptionRing() const { return exception_; }
  rte_mempool* mempool() const { return pool_; }

 private:
  struct NextHop {
    bool forward = false;
    uint16_t port = 0;
    uint8_t src[6] = {};
    uint8_t dst[6] = {};
  };
  DpdkRouter() = default;
  void handle(rte_mbuf* m, const MacAddress& portMac, std::vector<std::vector<rte_mbuf*>>& out);
  void punt(rte_mbuf* m, uint64_t& reason);

  Options options_;
  rte_mempool* pool_ = nullptr;
  rte_ring* exception_ = nullptr;
  rte_lpm* lpm_ = nullptr;
  std::vector<NextHop> nextHops_;
  int defaultHop_ = -1;  // the /0 entry's next hop, which rte_lpm cannot hold
  std::vector<int> portIndexOf_;  // portId -> index in options_.ports, -1 if none
  std::vector<std::vector<rte_mbuf*>> txScratch_;  // per egress port, reused by every poll
  DpdkCounters counters_;
  uint64_t generation_ = 0;
};

}  // namespace vfplane::dataplane
