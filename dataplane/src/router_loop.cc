#include "vfplane/dataplane/router_loop.h"

#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <map>

#include "vfplane/dataplane/kernel_model.h"

namespace vfplane::dataplane {
namespace {

struct KernelState {
  ForwardingModel model;
  std::set<Prefix> shared;
  std::map<int, LinkState> links;
};

LinkState linkState(const netlink::LinkInfo& l) {
  return {l.name, l.mac, l.mtu, l.up(), l.carrier};
}

Result<KernelState> kernelModel(const std::set<std::string>& ports) {
  auto rtnl = netlink::Rtnl::open();
  if (!rtnl) return fail(std::move(rtnl.error()));
  auto tables = readKernelTables(*rtnl);
  if (!tables) return fail(std::move(tables.error()));
  auto model = buildModel(*tables, ports);
  if (!model) return fail(std::move(model.error()));
  std::map<int, LinkState> links;
  for (const auto& l : tables->links) links.emplace(l.ifindex, linkState(l));
  return KernelState{std::move(*model), sharedPrefixes(*tables), std::move(links)};
}

size_t groupsOf(const Fib& fib) {
  std::set<const NextHopGroup*> groups;
  for (const auto& e : fib) {
    if (e.action.forwards()) groups.insert(&e.action.group());
  }
  return groups.size();
}

}  // namespace

RouterLoop::RouterLoop(RouterLoopOptions options, FastPath& fastPath, netlink::Subscription events,
                       Fd wake)
    : options_(std::move(options)),
      fastPath_(fastPath),
      events_(std::move(events)),
      wake_(std::move(wake)) {}

Result<std::unique_ptr<RouterLoop>> RouterLoop::start(const RouterLoopOptions& options,
                                                      FastPath& fastPath) {
  if (options.ports.empty()) return usageError("ports: at least one interface is needed");
  // Subscribed before the first read, so that no change between the two goes unseen.
  auto events = netlink::Subscription::open(netlink::kLinkEvents | netlink::kAddressEvents |
                                            netlink::kRouteEvents | netlink::kNeighbourEvents);
  if (!events) return fail(std::move(events.error()));
  auto state = kernelModel(options.ports);
  if (!state) return fail(std::move(state.error()));
  const ForwardingModel* model = &state->model;
  // buildModel() found every port and its MAC; serve exactly those links, bound before the first
  // table so that its groups resolve against them (until then the fast path punts all).
  for (const auto& [ifindex, iface] : model->interfaces()) {
    if (auto ok = fastPath.addPort({ifindex, iface.name, iface.mac}); !ok)
      return fail(std::move(ok.error()));
    spdlog::info("{} router serves {} (ifindex {})", fastPath.name(), iface.name, ifindex);
  }
  Fib fib = model->compile();
  auto stats = fastPath.install(fib);
  if (!stats) return fail(std::move(stats.error()));
  Fd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return fail(systemError("eventfd", errno));
  std::unique_ptr<RouterLoop> loop(
      new RouterLoop(options, fastPath, std::move(*events), std::move(wake)));
  loop->status_.syncs = 1;
  loop->status_.entries = fastPath.installedEntries();
  loop->status_.lastChange = *stats;
  loop->status_.routes = model->routeCount();
  loop->status_.neighbours = model->neighbourCount();
  loop->status_.groups = groupsOf(fib);
  loop->logUnsupported(*model);
  spdlog::info("forwarding table: {} entries from the kernel's tables", loop->status_.entries);
  loop->model_ = std::move(state->model);
  loop->shared_ = std::move(state->shared);
  loop->links_ = std::move(state->links);
  return loop;
}

void RouterLoop::logUnsupported(const ForwardingModel& model) {
  std::set<Prefix> now;
  for (const auto& [prefix, why] : model.unsupportedRoutes()) {
    now.insert(prefix);
    if (!unsupported_.contains(prefix))
      spdlog::warn("route {}: {}; the kernel forwards it, not the fast path", prefix.str(), why);
  }
  for (const auto& prefix : unsupported_) {
    if (!now.contains(prefix)) spdlog::info("route {}: no longer left to the kernel", prefix.str());
  }
  unsupported_ = std::move(now);
}

Result<InstallStats> RouterLoop::sync() {
  auto state = kernelModel(options_.ports);
  std::lock_guard lock(mu_);
  ++status_.syncs;
  if (!state) {
    ++status_.syncErrors;
    return fail(std::move(state.error()).withContext("sync"));
  }
  model_ = std::move(state->model);
  shared_ = std::move(state->shared);
  links_ = std::move(state->links);
  return installModel();
}

Result<InstallStats> RouterLoop::installModel() {
  logUnsupported(model_);
  Fib fib = model_.compile();
  auto stats = fastPath_.install(fib);
  if (!stats) {
    ++status_.syncErrors;
    return fail(std::move(stats.error()).withContext("sync"));
  }
  status_.entries = fastPath_.installedEntries();
  status_.routes = model_.routeCount();
  status_.neighbours = model_.neighbourCount();
  status_.groups = groupsOf(fib);
  if (stats->changed() > 0) status_.lastChange = *stats;
  return stats;
}

Result<InstallStats> RouterLoop::apply(const Pending& pending) {
  {
    std::lock_guard lock(mu_);
    // Neighbours first: a route's next hop is then resolved as a re-read would find it.
    applyNeighbourEvents(model_, pending.neighbours);
    if (applyRouteEvents(model_, shared_, pending.routes)) {
      ++status_.routeUpdates;
      return installModel();
    }
  }
  spdlog::debug("route notifications that only a re-read can apply; re-reading");
  return sync();
}

// A batch of notifications: route and neighbour changes to apply, or a reason to read
// everything again (a link or address change, or notifications the kernel dropped).
void RouterLoop::collect(Pending& pending) {
  auto batch = events_.drain();
  if (!batch) {
    spdlog::warn("{}; re-reading the kernel's tables", batch.error().message());
    pending.reread = true;
    return;
  }
  size_t addresses =
      batch->notifications - batch->routes.size() - batch->neighbours.size() - batch->links.size();
  // A link notification that changes nothing the model uses (an XDP program attached, counters,
  // promiscuity) is no reason to read everything again; one that does (a link gone or new, its
  // name, MAC, MTU, up or carrier: the kernel drops IPv4 routes with no notification) is.
  size_t links = 0;
  {
    std::lock_guard lock(mu_);
    for (const auto& e : batch->links) {
      auto it = links_.find(e.link.ifindex);
      if (e.removed || it == links_.end() || !(it->second == linkState(e.link))) ++links;
    }
  }
  if (batch->overrun || addresses > 0 || links > 0) {
    spdlog::debug("re-reading the kernel's tables: {} link and {} address notifications{}", links,
                  addresses, batch->overrun ? ", and some the kernel dropped" : "");
    pending.reread = true;
  }
  std::move(batch->routes.begin(), batch->routes.end(), std::back_inserter(pending.routes));
  std::move(batch->neighbours.begin(), batch->neighbours.end(),
            std::back_inserter(pending.neighbours));
}

void RouterLoop::run() {
  using Clock = std::chrono::steady_clock;
  auto nextResync = Clock::now() + options_.resyncInterval;
  auto nextStats =
      options_.statsInterval ? Clock::now() + *options_.statsInterval : Clock::time_point::max();
  while (!stopping_) {
    pollfd fds[2] = {{events_.fd(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::min(nextResync, nextStats) - Clock::now());
    int n = ::poll(fds, 2, static_cast<int>(std::max<int64_t>(0, wait.count())));
    if (stopping_) break;
    if (Clock::now() >= nextStats) {
      logCounters();
      nextStats += *options_.statsInterval;
    }
    Pending pending;
    if (n > 0 && (fds[0].revents & POLLIN)) collect(pending);
    if (pending.any()) {
      // Let a burst finish, then apply it at once.
      ::poll(fds + 1, 1, static_cast<int>(options_.debounce.count()));
      collect(pending);
    }
    bool resync = Clock::now() >= nextResync;
    if (!pending.any() && !resync) continue;
    Result<InstallStats> stats;
    if (pending.reread || resync) {
      nextResync = Clock::now() + options_.resyncInterval;
      stats = sync();
    } else {
      stats = apply(pending);
    }
    if (!stats) {
      spdlog::warn("{}; the previous table stays in force", stats.error().message());
    } else if (stats->changed() > 0) {
      spdlog::info("forwarding table: {} added, {} updated, {} removed ({} entries)", stats->added,
                   stats->updated, stats->removed, status().entries);
    }
  }
}

void RouterLoop::logCounters() const {
  auto c = counters();
  if (!c) {
    spdlog::warn("packet counters: {}", c.error().message());
    return;
  }
  spdlog::info("packets: {}", describeCounters(*c));
}

void RouterLoop::stop() {
  stopping_ = true;
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
}

RouterStatus RouterLoop::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

Result<FastPathCounters> RouterLoop::counters() const {
  std::lock_guard lock(mu_);
  return fastPath_.counters();
}

Result<std::vector<PortCounters>> RouterLoop::portCounters() const {
  std::lock_guard lock(mu_);
  return fastPath_.portCounters();
}

std::vector<WorkerPolls> RouterLoop::workerPolls() const {
  std::lock_guard lock(mu_);
  return fastPath_.workerPolls();
}

std::optional<TableBuilds> RouterLoop::tableBuilds() const {
  std::lock_guard lock(mu_);
  return fastPath_.tableBuilds();
}

}  // namespace vfplane::dataplane
