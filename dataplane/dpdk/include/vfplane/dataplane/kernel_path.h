// The kernel's side of a DPDK router: a TAP netdev per port that mirrors it (same name as the
// port, same MAC and MTU, carrier following the port's link), and one thread that carries frames
// between them. What the fast path punts goes up the TAP of the port it came in on, so the kernel
// answers ARP and ND, sends ICMP errors and handles local traffic as if the port were its own;
// what the kernel sends on a TAP goes out of the port (through DpdkRouter::sendFromKernel()).
// Operators and routing daemons put addresses and routes on the TAPs, and the router loop reads
// the routes and neighbours the kernel keeps for them.
//
// The TAPs are not persistent: they exist while the process holds them, so neither a clean exit
// nor a crash leaves one behind.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/base/fd.h"
#include "vfplane/dataplane/dpdk_router.h"

namespace vfplane::dataplane {

struct MirrorSpec {
  std::string name;  // the TAP's name, and the DPDK port's in the router
  uint16_t portId = 0;
  std::optional<MacAddress> mac;  // nullopt: the port's own
};

struct KernelPathStats {
  uint64_t toKernel = 0;    // punted frames written to a TAP
  uint64_t fromKernel = 0;  // frames the kernel sent on a TAP, transmitted by the port
  uint64_t dropped = 0;     // either way: a full TAP, no mbuf, a full TX queue
};

class KernelPath {
 public:
  // Creates the TAPs, with the port's MAC (setting spec.mac on the port first) and MTU, up and
  // with the port's carrier. Errors name the port.
  static Result<std::unique_ptr<KernelPath>> create(DpdkRouter& router,
                                                    const std::vector<MirrorSpec>& specs);
  ~KernelPath();  // stops the thread; the TAPs go with their file descriptors

  void start();
  void stop();
  KernelPathStats stats() const;

  // One pass: punted frames up, the kernel's frames down. Returns frames moved. For tests that
  // drive it without the thread.
  size_t pass();
  // Sets each TAP's carrier to its port's link state, logging a change. The thread does this
  // every 200 ms.
  void syncCarrier();

 private:
  struct Tap {
    std::string name;
    uint16_t portId = 0;
    Fd fd;
    int carrier = -1;  // as last set
  };
  explicit KernelPath(DpdkRouter& router) : router_(router) {}

  DpdkRouter& router_;
  std::vector<Tap> taps_;
  std::vector<int> tapOfPort_;  // portId -> index in taps_, -1 if none
  std::atomic<uint64_t> toKernel_{0}, fromKernel_{0}, dropped_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace vfplane::dataplane
