// The DPDK fast path: IPv4 and IPv6 forwarding with ECMP between DPDK ports, from the same
// compiled table the XDP path installs and with the same packet checks (packet.h), so both
// forward exactly alike.
//
// Each DPDK port stands for one interface of the model: addPort() binds the DPDK port of that
// name to the model interface's ifindex and MAC (in a deployment, the TAP that mirrors the port
// carries its name in the kernel). A packet is forwarded when its destination has a forwarding
// entry whose path leaves through one of the ports; everything else is punted, unmodified, to
// the exception ring, whose owner hands it to the kernel. The reasons match the XDP path's
// counters one for one.
//
// Threads. Workers (lcores) call poll(w): worker w reads RX queue w of every port and sends on TX
// queue w, with counters of its own, and never takes a lock or waits. install() runs on the
// control thread: it writes the change into the spare table (rte_fib, rte_fib6, next-hop groups),
// swaps one pointer, and changes the old table only after every registered worker has passed a
// quiescent state (rte_rcu_qsbr), which each reports at the end of every poll. A worker that polls
// from a thread of its own calls startWorker(w) first and stopWorker(w) when it is done; a single
// thread that polls and installs in turn needs neither. Frames from the kernel (sendFromKernel())
// wait in a ring that worker 0 drains onto its own TX queues, so a port needs exactly `workers`
// queues.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/dataplane/counters.h"
#include "vfplane/dataplane/fast_path.h"
#include "vfplane/dataplane/forwarding_model.h"

struct rte_mempool;
struct rte_rcu_qsbr;
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
  uint16_t mtu = 0;  // 0: the device's own
};

class DpdkRouter final : public FastPath {
 public:
  struct Options {
    std::vector<DpdkPort> ports;
    uint32_t maxEntries = 65536;  // routes per family
    uint32_t mbufs = 8191;        // 0: sized from ports, queues and descriptors
    uint16_t workers = 1;         // RX and TX queues per port
    uint16_t descriptors = 1024;  // per queue
    uint32_t hashSeed = 0;        // seeds flowHash() for ECMP
  };
  // Configures and starts every port with a mempool of the router's own, whose buffers hold a
  // frame of the largest MTU. A port that cannot have the queues or the MTU asked for is a usage
  // error naming it and what it can do. A port receives and punts until addPort() names it. A
  // packet leaves a port only if it fits the port's MTU, whatever the kernel's tables say (a
  // TAP's MTU raised past its port's): larger ones are punted as too_big.
  static Result<std::unique_ptr<DpdkRouter>> create(const Options& options);
  ~DpdkRouter() override;

  const char* name() const override { return "dpdk"; }
  // Binds the DPDK port called port.name to the model interface port.ifindex and its MAC.
  // ENODEV naming it when no DPDK port has that name.
  Result<void> addPort(const Port& port) override;
  // Changes the spare table by the diff, swaps it in, and once no worker can hold the old one,
  // changes that by the same diff (or builds both anew: see the .cc).
  Result<InstallStats> install(const Fib& fib) override;
  // Installs done by changing the tables, and by building them.
  uint64_t incrementalInstalls() const { return incremental_; }
  uint64_t fullBuilds() const { return rebuilds_; }
  // Summed over the workers.
  Result<FastPathCounters> counters() const override;
  Result<std::vector<PortCounters>> portCounters() const override;
  std::vector<WorkerPolls> workerPolls() const override;
  std::optional<TableBuilds> tableBuilds() const override {
    return TableBuilds{incremental_, rebuilds_};
  }
  size_t installedEntries() const override { return installed_.size(); }
  // The MTU port `index` (in Options::ports) runs with.
  uint16_t portMtu(size_t index) const { return ports_.at(index).mtu; }

  void startWorker(uint16_t worker);
  void stopWorker(uint16_t worker);
  // One burst from RX queue `worker` of every port, forwarded or punted. Returns the packets
  // received.
  size_t poll(uint16_t worker = 0);
  // Polls of `worker` that received something, and all its polls.
  uint64_t busyPolls(uint16_t worker) const;
  uint64_t polls(uint16_t worker) const;

  rte_ring* exceptionRing() const { return exception_; }
  // Queues m (a frame the kernel sent) for transmission on portId by worker 0, which owns it from
  // then on. False when the ring is full or portId is not a port: m is still the caller's.
  bool sendFromKernel(rte_mbuf* m, uint16_t portId);
  rte_mempool* mempool() const { return pool_; }
  uint16_t workers() const { return options_.workers; }
  const std::vector<DpdkPort>& ports() const { return options_.ports; }

 private:
  struct Table;
  struct Worker;
  // A DPDK port and the model interface it stands for, once addPort() has named it.
  struct Bound {
    DpdkPort port;
    int ifindex = 0;  // 0 until bound
    MacAddress mac;
    size_t index = 0;  // in options_.ports
    uint16_t mtu = 0;  // the port's, once started
  };
  DpdkRouter() = default;
  void handleBurst(Worker& w, const Table& t, rte_mbuf** bufs, uint16_t n, const Bound& in);
  void punt(Worker& w, rte_mbuf* m, uint64_t FastPathCounters::*reason);
  Result<std::unique_ptr<Table>> build(const Fib& fib);
  Result<void> apply(Table& t, const FibDiff& diff, const std::vector<uint32_t>& fresh) const;
  Result<void> addRoute(Table& t, const FibEntry& e) const;
  void writeHops(Table& t, const std::vector<uint32_t>& fresh) const;
  void swapIn(std::unique_ptr<Table> t);
  uint32_t hopOf(const Action& a) const;

  Options options_;
  std::vector<Bound> ports_;  // in the order of options_.ports
  std::map<Prefix, Action> installed_;
  rte_mempool* pool_ = nullptr;
  rte_ring* exception_ = nullptr;
  rte_ring* fromKernel_ = nullptr;
  rte_rcu_qsbr* qsbr_ = nullptr;
  std::atomic<Table*> table_{nullptr};
  std::unique_ptr<Table> spare_;  // the same routes, for the next install to change
  bool rebuild_ = true;           // the next install builds both tables
  // Next-hop ids (what the tables' entries hold) of the live groups: stable across installs, so
  // that a diff means the same to both tables; ids no route uses any more are reused.
  std::map<NextHopGroup, uint32_t> hopOfGroup_;
  std::map<uint32_t, const NextHopGroup*> groupOfHop_;
  std::vector<uint32_t> freeHops_;
  uint32_t nextHop_ = 0;  // ids handed out so far, after the punts'
  uint64_t incremental_ = 0, rebuilds_ = 0;
  std::vector<int> portIndexOf_;  // portId -> index in options_.ports, -1 if none
  std::vector<std::unique_ptr<Worker>> workers_;
  uint64_t id_ = 0;  // this router among the process's, for DPDK object names
  uint64_t generation_ = 0;
};

}  // namespace vfplane::dataplane
