#include "vfplane/ebpf/router_daemon.h"

#include <fmt/format.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cerrno>

#include "vfplane/dataplane/kernel_model.h"

namespace vfplane::ebpf {
namespace {

Result<dataplane::ForwardingModel> kernelModel(const std::set<std::string>& ports) {
  auto rtnl = netlink::Rtnl::open();
  if (!rtnl) return fail(std::move(rtnl.error()));
  auto tables = dataplane::readKernelTables(*rtnl);
  if (!tables) return fail(std::move(tables.error()));
  return dataplane::buildModel(*tables, ports);
}

}  // namespace

// The content does not matter, only that something changed; an overrun lost some notifications,
// which the full re-read that follows covers all the same.
bool RouterDaemon::somethingChanged() {
  auto batch = events_.drain();
  if (!batch) {
    spdlog::warn("{}; re-reading the kernel's tables", batch.error().message());
    return true;
  }
  return batch->notifications > 0 || batch->overrun;
}

RouterDaemon::RouterDaemon(RouterOptions options, XdpRouter router, netlink::Subscription events, Fd wake)
    : options_(std::move(options)), router_(std::move(router)), events_(std::move(events)), wake_(std::move(wake)) {}

Result<std::unique_ptr<RouterDaemon>> RouterDaemon::start(const RouterOptions& options) {
  if (options.ports.empty()) return usageError("ports: at least one interface is needed");
  // Subscribed before the first read, so that no change between the two goes unseen.
  auto events = netlink::Subscription::open(netlink::kLinkEvents | netlink::kAddressEvents | netlink::kRouteEvents |
                                            netlink::kNeighbourEvents);
  if (!events) return fail(std::move(events.error()));
  auto model = kernelModel(options.ports);
  if (!model) return fail(std::move(model.error()));
  auto router = XdpRouter::load({.maxEntries = options.maxEntries});
  if (!router) return fail(std::move(router.error()));
  auto stats = router->install(model->compile());
  if (!stats) return fail(std::move(stats.error()));
  Fd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return fail(systemError("eventfd", errno));
  std::unique_ptr<RouterDaemon> d(new RouterDaemon(options, std::move(*router), std::move(*events), std::move(wake)));
  d->status_.syncs = 1;
  d->status_.entries = d->router_.installedEntries();
  d->status_.lastChange = *stats;
  // buildModel() found every port and its MAC; attach to exactly those links.
  for (const auto& [ifindex, port] : model->interfaces()) {
    if (auto ok = d->router_.setPort(ifindex, port.mac); !ok) return fail(std::move(ok.error()));
    // On failure the router's destructor detaches from the ports already done.
    if (auto ok = d->router_.attach(ifindex, options.mode); !ok) {
      return fail(std::move(ok.error()).withContext("port " + port.name));
    }
    spdlog::info("XDP router attached to {} (ifindex {})", port.name, ifindex);
  }
  spdlog::info("forwarding table: {} entries from the kernel's tables", d->status_.entries);
  return d;
}

Result<InstallStats> RouterDaemon::sync() {
  auto model = kernelModel(options_.ports);
  std::lock_guard lock(mu_);
  ++status_.syncs;
  if (!model) {
    ++status_.syncErrors;
    return fail(std::move(model.error()).withContext("sync"));
  }
  auto stats = router_.install(model->compile());
  if (!stats) {
    ++status_.syncErrors;
    return fail(std::move(stats.error()).withContext("sync"));
  }
  status_.entries = router_.installedEntries();
  if (stats->added + stats->updated + stats->removed > 0) status_.lastChange = *stats;
  return stats;
}

void RouterDaemon::run() {
  using Clock = std::chrono::steady_clock;
  auto nextResync = Clock::now() + options_.resyncInterval;
  auto nextStats = options_.statsInterval ? Clock::now() + *options_.statsInterval : Clock::time_point::max();
  while (!stopping_) {
    pollfd fds[2] = {{events_.fd(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(std::min(nextResync, nextStats) - Clock::now());
    int n = ::poll(fds, 2, static_cast<int>(std::max<int64_t>(0, wait.count())));
    if (stopping_) break;
    if (Clock::now() >= nextStats) {
      logCounters();
      nextStats += *options_.statsInterval;
    }
    bool changed = n > 0 && (fds[0].revents & POLLIN) && somethingChanged();
    if (changed) {
      // Let a burst finish, then read once.
      ::poll(fds + 1, 1, static_cast<int>(options_.debounce.count()));
      (void)somethingChanged();
    }
    if (!changed && Clock::now() < nextResync) continue;
    nextResync = Clock::now() + options_.resyncInterval;
    auto stats = sync();
    if (!stats) {
      spdlog::warn("{}; the previous table stays in force", stats.error().message());
    } else if (stats->added + stats->updated + stats->removed > 0) {
      spdlog::info("forwarding table: {} added, {} updated, {} removed ({} entries)", stats->added, stats->updated,
                   stats->removed, status().entries);
    }
  }
}

void RouterDaemon::logCounters() const {
  auto c = counters();
  if (!c) {
    spdlog::warn("packet counters: {}", c.error().message());
    return;
  }
  spdlog::info("packets: {} in, {} forwarded; to the kernel: {} for other hosts or broadcast, {} not IPv4, "
               "{} options, {} TTL, {} no route, {} local/unresolved, {} malformed",
               c->rx, c->forwarded, c->puntOtherHost, c->puntNotIpv4, c->puntIpOptions, c->puntTtl, c->puntNoRoute,
               c->puntAction, c->puntMalformed);
}

void RouterDaemon::stop() {
  stopping_ = true;
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
}

RouterStatus RouterDaemon::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

Result<XdpCounters> RouterDaemon::counters() const {
  std::lock_guard lock(mu_);
  return router_.counters();
}

}  // namespace vfplane::ebpf
