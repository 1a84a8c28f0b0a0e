// The router as a service, whatever its fast path: adds the ports to it, keeps its table equal to
// what the namespace's kernel says, and logs the packet counters. Route and neighbour
// notifications are applied to the model as they come (applyRouteEvents, applyNeighbourEvents);
// a link or address change, a lost notification, or a route change that cannot be applied alone
// re-reads the tables, as does a timer, in case a notification was lost.
//
// The kernel stays the control plane: routing daemons and `ip route` change its tables, ARP fills
// its neighbours, and the fast path follows within one debounce interval.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "vfplane/base/fd.h"
#include "vfplane/dataplane/fast_path.h"
#include "vfplane/dataplane/forwarding_model.h"
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
  uint64_t syncs = 0;         // full re-reads of the kernel's tables
  uint64_t routeUpdates = 0;  // batches of route and neighbour notifications applied without one
  uint64_t syncErrors = 0;
  size_t entries = 0;     // in the fast path's table
  size_t routes = 0;      // in the kernel's tables, as the model holds them
  size_t neighbours = 0;  // with a usable MAC
  size_t groups = 0;      // distinct next-hop groups the table forwards over
  InstallStats lastChange;
};

// What the loop compares in a link notification: the fields whose change the kernel's tables
// may follow without a notification of their own.
struct LinkState {
  std::string name, mac;
  int mtu = 0;
  bool up = false, carrier = false;
  bool operator==(const LinkState&) const = default;
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
  std::optional<TableBuilds> tableBuilds() const;
  const FastPath& fastPath() const { return fastPath_; }

 private:
  RouterLoop(RouterLoopOptions options, FastPath& fastPath, netlink::Subscription events, Fd wake);
  // What the notifications read so far ask for.
  struct Pending {
    std::vector<netlink::RouteEvent> routes;
    std::vector<netlink::NeighbourEvent> neighbours;
    bool reread = false;  // something only a full read covers
    bool any() const { return reread || !routes.empty() || !neighbours.empty(); }
  };
  void collect(Pending& pending);
  // Applies route and neighbour notifications to the model and installs the result; a full
  // sync() when they cannot be applied alone.
  Result<InstallStats> apply(const Pending& pending);
  // Compiles model_ and installs it; mu_ held.
  Result<InstallStats> installModel();
  // One line when a route becomes one the fast path cannot hold, one when it stops being so.
  void logUnsupported(const ForwardingModel& model);
  void logCounters() const;

  RouterLoopOptions options_;
  mutable std::mutex mu_;  // guards fastPath_ and status_
  FastPath& fastPath_;
  RouterStatus status_;
  ForwardingModel model_;           // the kernel's tables as last read and updated
  std::set<Prefix> shared_;         // sharedPrefixes() of the last read
  std::map<int, LinkState> links_;  // every link of the last read, by ifindex
  std::set<Prefix> unsupported_;
  netlink::Subscription events_;
  Fd wake_;  // eventfd for stop()
  std::atomic<bool> stopping_{false};
};

}  // namespace vfplane::dataplane
