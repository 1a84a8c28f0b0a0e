// The DPDK router's workers on the EAL's worker lcores: lcore i polls as worker i until stopped,
// reporting quiescent states so that table swaps never wait on it for long, and never waiting on
// anything itself.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/dataplane/dpdk_router.h"

namespace vfplane::dataplane {

class LcoreWorkers {
 public:
  // A usage error when the EAL has fewer worker lcores than the router has workers.
  static Result<std::unique_ptr<LcoreWorkers>> launch(DpdkRouter& router);
  ~LcoreWorkers();  // stops them
  void stop();
  // The lcore each worker runs on, in worker order.
  const std::vector<unsigned>& lcores() const { return lcores_; }

 private:
  struct Job {
    DpdkRouter* router;
    uint16_t worker;
    std::atomic<bool>* stopping;
  };
  static int run(void* job);
  explicit LcoreWorkers(DpdkRouter& router) : router_(router) {}

  DpdkRouter& router_;
  std::vector<unsigned> lcores_;
  std::vector<std::unique_ptr<Job>> jobs_;
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;
};

}  // namespace vfplane::dataplane
