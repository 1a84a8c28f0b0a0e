// The router as a service, whatever its fast path: adds the ports to it, keeps its table equal to
// what the namespace's kernel says, re-reading the tables whenever rtnetlink reports a link,
// address, route or neighbour change (and on a timer, in case a notification was lost), and logs
// the packet counters.
//
// The kernel stays the control plane: routing daemons and `ip route` change its tables, ARP fills
// its neighbours, and the fast path follows within one debounce interval.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "vfplane/base/fd.h"
#include "vfplane/dataplane/fast_path.h"
#include "vfplane/netlink/events.h"

namespace vfplane::dataplane {

struct RouterLoopOptions {
  std::set<std::string> ports;  // kernel interfaces of this namespace
  std::chrono::milliseconds resyncInterval{std::chrono::seconds(30)};
  // How long notifications are collected before one re-read: a route flap sends dozens.
  std::chrono::milliseconds debounce{20};
  // How often run() logs the packet counters; nullopt: never.
  std::optional<std::chrono::milliseconds> statsInterval = std::nullopt;
};

struct RouterStatus {
  uint64_t syncs = 0;
  uint64_t syncErrors = 0;
  size_t entries = 0;     // in the fast path's table
  size_t routes = 0;      // in the kernel's tables, as the model holds them
  size_t neighbours = 0;  // with a usable MAC
  size_t groups = 0;      // distinct next-hop groups the table forwards over
  InstallStats lastChange;
};

class RouterLoop {
 public:
  // Subscribes to the kernel's notifications, reads its tables, adds every port to fastPath (with
  // the ifindex and MAC the kernel gives it) and installs the table. fastPath must outlive the
  // loop. Usage errors name a port that does not exist or has no MAC.
  static Result<std::unique_ptr<RouterLoop>> start(const RouterLoopOptions& options,
                                                   FastPath& fastPath);

  // Re-reads the kernel tables and installs the difference. From any thread.
  Result<InstallStats> sync();
  // Serves notifications until stop(), and logs the counters every statsInterval. Sync errors
  // are logged and counted, not fatal: the next notification or resync tries again.
  void run();
  // From any thread.
  void stop();

  RouterStatus status() const;
  Result<FastPathCounters> counters() const;
  Result<std::vector<PortCounters>> portCounters() const;
  std::vector<WorkerPolls> workerPolls() const;
  const FastPath& fastPath() const { return fastPath_; }

 private:
  RouterLoop(RouterLoopOptions options, FastPath& fastPath, netlink::Subscription events, Fd wake);
  bool somethingChanged();
  // One line when a route becomes one the fast path cannot hold, one when it stops being so.
  void logUnsupported(const ForwardingModel& model);
  void logCounters() const;

  RouterLoopOptions options_;
  mutable std::mutex mu_;  // guards fastPath_ and status_
  FastPath& fastPath_;
  RouterStatus status_;
  std::set<Prefix> unsupported_;
  netlink::Subscription events_;
  Fd wake_;  // eventfd for stop()
  std::atomic<bool> stopping_{false};
};

}  // namespace vfplane::dataplane
