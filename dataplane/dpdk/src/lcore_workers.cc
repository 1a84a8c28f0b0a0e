#include "vfplane/dataplane/lcore_workers.h"

#include <fmt/format.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <spdlog/spdlog.h>

namespace vfplane::dataplane {

Result<std::unique_ptr<LcoreWorkers>> LcoreWorkers::launch(DpdkRouter& router) {
  std::unique_ptr<LcoreWorkers> w(new LcoreWorkers(router));
  unsigned lcore;
  RTE_LCORE_FOREACH_WORKER(lcore) {
    if (w->lcores_.size() < router.workers()) w->lcores_.push_back(lcore);
  }
  if (w->lcores_.size() < router.workers()) {
    return usageError(fmt::format(
        "--lcores {}: the EAL has {} worker lcore{} (the main lcore runs the control plane); "
        "give it {} (--lcores 0@CPU,1@CPU,... after --), or ask for fewer",
        router.workers(), w->lcores_.size(), w->lcores_.size() == 1 ? "" : "s", router.workers()));
  }
  for (uint16_t i = 0; i < router.workers(); ++i) {
    w->jobs_.push_back(std::make_unique<Job>(Job{&router, i, &w->stopping_}));
    // Registered here, before it runs, so that no table swap can miss it.
    router.startWorker(i);
    if (int rc = rte_eal_remote_launch(&LcoreWorkers::run, w->jobs_.back().get(), w->lcores_[i]);
        rc != 0) {
      router.stopWorker(i);
      w->jobs_.pop_back();
      w->stop();
      return fail(Error(
          fmt::format("launch worker {} on lcore {}: {}", i, w->lcores_[i], rte_strerror(-rc)),
          -rc));
    }
    spdlog::info("worker {} polls on lcore {}", i, w->lcores_[i]);
  }
  return w;
}

int LcoreWorkers::run(void* arg) {
  auto* job = static_cast<Job*>(arg);
  while (!job->stopping->load(std::memory_order_relaxed)) job->router->poll(job->worker);
  job->router->stopWorker(job->worker);
  return 0;
}

LcoreWorkers::~LcoreWorkers() { stop(); }

void LcoreWorkers::stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_ = true;
  for (size_t i = 0; i < jobs_.size(); ++i) rte_eal_wait_lcore(lcores_[i]);
}

}  // namespace vfplane::dataplane
