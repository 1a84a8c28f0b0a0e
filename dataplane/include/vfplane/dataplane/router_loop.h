// The XDP router as a service: loads the fast path, attaches it to the ports, and keeps its table
// equal to what the namespace's kernel says, re-reading the tables whenever rtnetlink reports a
// link, address, route or neighbour change (and on a timer, in case an event was lost).
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

#include "vfplane/ebpf/xdp_router.h"
#include "vfplane/netlink/events.h"
#include "vfplane/base/fd.h"

namespace vfplane::ebpf {

struct RouterOptions {
  std::set<std::string> ports;
  XdpMode mode = XdpMode::kNative;
  std::chrono::milliseconds resyncInterval{std::chrono::seconds(30)};
  // How long events are collected before one re-read: a route flap sends dozens.
  std::chrono::milliseconds debounce{20};
  uint32_t maxEntries = 65536;
  // How often run() logs the packet counters; nullopt: never.
  std::optional<std::chrono::milliseconds> statsInterval = std::nullopt;
};

struct RouterStatus {
  uint64_t syncs = 0;
  uint64_t syncErrors = 0;
  size_t entries = 0;
  InstallStats lastChange;
};

class RouterDaemon {
 public:
  // Loads the program, installs the kernel's current table and attaches to every port. Errors
  // name the port or the failing call; nothing stays attached on failure.
  static Result<std::unique_ptr<RouterDaemon>> start(const RouterOptions& options);

  // Re-reads the kernel tables and installs the difference.
  Result<InstallStats> sync();
  // Serves events until stop(), and logs the counters every statsInterval. Sync errors are logged
  // and counted, not fatal: the next event or resync tries again.
  void run();
  // From any thread.
  void stop();

  RouterStatus status() const;
  Result<XdpCounters> counters() const;

 private:
  RouterDaemon(RouterOptions options, XdpRouter router, netlink::Subscription events, Fd wake);
  bool somethingChanged();
  void logCounters() const;

  RouterOptions options_;
  mutable std::mutex mu_;  // guards router_ and status_
  XdpRouter router_;
  RouterStatus status_;
  netlink::Subscription events_;
  Fd wake_;    // eventfd for stop()
  std::atomic<bool> stopping_{false};
};

}  // namespace vfplane::ebpf
