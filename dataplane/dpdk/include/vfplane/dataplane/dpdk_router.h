// The DPDK fast path: IPv4 forwarding between DPDK ports from the same compiled table the XDP
// path installs, so both forward exactly alike.
//
// Each DPDK port stands for one interface of the model: addPort() binds the DPDK port of that
// name to the model interface's ifindex and MAC (in a deployment, the TAP that mirrors the port
// carries its name in the kernel). A packet is forwarded when
// its destination has a forwarding entry whose egress interface is one of the ports; everything
// else is punted, unmodified, to the exception ring, whose owner hands it to the kernel (a TAP or
// virtio-user port in a deployment; the tests read it directly). The reasons match the XDP path's
// counters one for one.
//
// Single-threaded by design for now: poll() and install() run on the same lcore, so a table swap
// between two polls needs no synchronisation.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/dataplane/counters.h"
#include "vfplane/dataplane/fast_path.h"
#include "vfplane/dataplane/forwarding_model.h"

struct rte_lpm;
struct rte_mempool;
struct rte_ring;
struct rte_mbuf;

namespace vfplane::dataplane {

// Starts DPDK's EAL once per process; args are its command line, argv[0] first
// (e.g. {"vfplane", "--no-huge", "--no-pci", "--no-shconf"}). Errors carry rte_errno's text. A
// second call with the same args does nothing; with other args it is EALREADY, since the EAL
// cannot be started again.
Result<void> initEal(const std::vector<std::string>& args);

struct DpdkPort {
  std::string name;  // what addPort() finds it by
  uint16_t portId = 0;
};

class DpdkRouter final : public FastPath {
 public:
  struct Options {
    std::vector<DpdkPort> ports;
    uint32_t maxEntries = 65536;
    uint32_t mbufs = 8191;
  };
  // Configures and starts every port (one RX and one TX queue each) with a mempool of its own.
  // A port receives and punts until addPort() names it.
  static Result<std::unique_ptr<DpdkRouter>> create(const Options& options);
  ~DpdkRouter() override;

  const char* name() const override { return "dpdk"; }
  // Binds the DPDK port called port.name to the model interface port.ifindex and its MAC.
  // ENODEV naming it when no DPDK port has that name.
  Result<void> addPort(const Port& port) override;
  // Replaces the table: a new LPM is built aside and swapped in.
  Result<InstallStats> install(const std::vector<FibEntry>& fib) override;
  Result<FastPathCounters> counters() const override { return counters_; }
  size_t installedEntries() const override { return installed_.size(); }
  // One burst from every port, forwarded or punted. Returns the packets received.
  size_t poll();

  rte_ring* exceptionRing() const { return exception_; }
  rte_mempool* mempool() const { return pool_; }

 private:
  struct NextHop {
    bool forward = false;
    uint16_t port = 0;
    uint8_t src[6] = {};
    uint8_t dst[6] = {};
  };
  // A DPDK port and the model interface it stands for, once addPort() has named it.
  struct Bound {
    DpdkPort port;
    int ifindex = 0;  // 0 until bound
    MacAddress mac;
  };
  DpdkRouter() = default;
  void handle(rte_mbuf* m, const Bound& in, std::vector<std::vector<rte_mbuf*>>& out);
  void punt(rte_mbuf* m, uint64_t& reason);

  Options options_;
  std::vector<Bound> ports_;  // in the order of options_.ports
  std::map<Ipv4Prefix, Action> installed_;
  rte_mempool* pool_ = nullptr;
  rte_ring* exception_ = nullptr;
  rte_lpm* lpm_ = nullptr;
  std::vector<NextHop> nextHops_;
  int defaultHop_ = -1;           // the /0 entry's next hop, which rte_lpm cannot hold
  std::vector<int> portIndexOf_;  // portId -> index in options_.ports, -1 if none
  std::vector<std::vector<rte_mbuf*>> txScratch_;  // per egress port, reused by every poll
  FastPathCounters counters_;
  uint64_t generation_ = 0;
};

}  // namespace vfplane::dataplane
