#include "vfplane/dp/daemon.h"

#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <set>

#include "vfplane/base/files.h"
#include "vfplane/dp/allocation.h"

namespace vfplane::dp {
namespace fs = std::filesystem;
namespace {

constexpr auto kTick = std::chrono::seconds(1);

bool isSocket(const std::string& path) {
  std::error_code ec;
  return fs::is_socket(path, ec);
}

}  // namespace

Daemon::Daemon(DaemonOptions options, DevicePluginConfig config)
    : options_(std::move(options)), config_(std::move(config)), sysfs_(options_.sysfsRoot) {}

Daemon::~Daemon() {
  for (auto& [name, server] : servers_) {
    server->stop();
    if (size_t n = removeDeviceInfoFiles(options_.devinfoDir, name))
      spdlog::info("{}: removed {} device-info file{}", name, n, n == 1 ? "" : "s");
  }
}

Result<std::unique_ptr<Daemon>> Daemon::create(DaemonOptions options) {
  auto config = loadConfig(options.configPath, options.resourcePrefix);
  if (!config) return fail(std::move(config.error()));
  for (const auto& w : config->warnings) spdlog::warn("{}", w);
  std::unique_ptr<Daemon> d(new Daemon(std::move(options), std::move(*config)));
  d->mode_ = detectRegistrationMode(d->options_.kubeletDir);
  d->wake_ = Fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  d->inotify_ = Fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!d->wake_.valid() || !d->inotify_.valid()) return fail(systemError("eventfd/inotify", errno));
  auto links = netlink::LinkMonitor::open();
  if (!links) return fail(std::move(links.error()).withContext("watch PF carrier"));
  d->links_ = std::move(*links);
  return d;
}

Result<void> Daemon::start() {
  spdlog::info(
      "registration mode: {} (kubelet dir {})",
      mode_ == RegistrationMode::kPluginWatcher ? "plugin watcher" : "legacy device-plugins",
      options_.kubeletDir);
  watchPaths();
  // Device-info files of our prefixes left by an earlier run describe VFs that may be anyone's by
  // now; Allocate writes a pod's afresh.
  std::set<std::string> prefixes;
  for (const auto& r : config_.resources) {
    std::string full = r.fullName(options_.resourcePrefix);
    prefixes.insert(full.substr(0, full.find('/')));
  }
  for (const auto& prefix : prefixes) {
    if (size_t n = removeDeviceInfoFiles(options_.devinfoDir, prefix, /*prefixOnly=*/true)) {
      spdlog::info("removed {} stale device-info file{} of {} in {}", n, n == 1 ? "" : "s", prefix,
                   options_.devinfoDir);
    }
  }
  rescan("start");
  return {};
}

void Daemon::watchPaths() {
  fs::path kubelet(options_.kubeletDir);
  kubeletWatch_ = ::inotify_add_watch(inotify_.get(), (kubelet / "device-plugins").c_str(),
                                      IN_CREATE | IN_DELETE);
  if (kubeletWatch_ < 0) {
    spdlog::warn("cannot watch {}: {}; kubelet restarts will be noticed by the periodic check only",
                 (kubelet / "device-plugins").string(), std::strerror(errno));
  }
  if (mode_ == RegistrationMode::kPluginWatcher) {
    registryWatch_ =
        ::inotify_add_watch(inotify_.get(), (kubelet / "plugins_registry").c_str(), IN_DELETE);
  }
  fs::path configDir = fs::path(options_.configPath).parent_path();
  configWatch_ = ::inotify_add_watch(inotify_.get(), configDir.empty() ? "." : configDir.c_str(),
                                     IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE);
  if (configWatch_ < 0) {
    spdlog::warn("cannot watch {}: {}; reload with SIGHUP", configDir.string(),
                 std::strerror(errno));
  }
}

HealthFacts Daemon::facts() const {
  HealthFacts f;
  inventory_.forEachFunction([&](const sriov::PciFunction& fn) {
    std::string id = fn.address.str();
    f.presentIds.insert(id);
    f.drivers[id] = fn.driver.value_or("");
  });
  f.pfNetdevsWithoutCarrier = noCarrier_;
  return f;
}

void Daemon::rescan(const char* why) {
  auto inventory = sriov::discoverNode(sysfs_);
  if (!inventory) {
    spdlog::error("rescan ({}): {}; keeping the previous device list", why,
                  inventory.error().message());
    return;
  }
  ++counters_.rescans;
  inventory_ = std::move(*inventory);
  for (const auto& w : inventory_.allWarnings()) spdlog::warn("{}", w);
  numVfs_.clear();
  for (const auto* pfs : {&inventory_.pfs, &inventory_.accelPfs}) {
    for (const auto& pf : *pfs) numVfs_[pf.address.str()] = pf.numVfs.value_or(-1);
  }

  PoolOptions options{.defaultPrefix = options_.resourcePrefix,
                      .excludeDefaultRoute = options_.excludeDefaultRoute,
                      .defaultRouteLinks = {}};
  if (options_.excludeDefaultRoute) {
    if (auto links = links_->defaultRouteLinks()) {
      options.defaultRouteLinks.insert(links->begin(), links->end());
    } else {
      spdlog::warn("cannot read default routes: {}; no device is excluded for carrying one",
                   links.error().message());
    }
  }
  PoolPlan plan = buildPools(config_, inventory_, options);
  spdlog::debug("rescan ({}): {} PFs, {} NICs, {} accelerator PFs, {} other accelerators", why,
                inventory_.pfs.size(), inventory_.nics.size(), inventory_.accelPfs.size(),
                inventory_.accelerators.size());
  for (const auto& line : plan.log) {
    if (line.find(": joins ") != std::string::npos) {
      spdlog::debug("{}", line);
    } else {
      spdlog::info("{}", line);
    }
  }
  applyPlan(std::move(plan));
}

void Daemon::refreshCarrier() {
  std::set<std::string> pfNetdevs;
  for (const auto& [name, pool] : lastPools_) {
    for (const auto& d : pool.devices) {
      if (!d.pfNetdev.empty()) pfNetdevs.insert(d.pfNetdev);
    }
  }
  std::set<std::string> down;
  for (const auto& netdev : pfNetdevs) {
    auto state = links_->query(netdev);
    if (!state) {
      spdlog::warn("carrier of {}: {}", netdev, state.error().message());
    } else if (*state && !(*state)->carrier) {
      down.insert(netdev);
    }
  }
  noCarrier_ = std::move(down);
}

void Daemon::applyPlan(PoolPlan plan) {
  std::map<std::string, ResourcePool> pools;
  for (auto& p : plan.pools) pools[p.name] = std::move(p);
  lastPools_ = pools;
  if (options_.useCdi) writeCdiSpecs(pools);
  refreshCarrier();
  HealthFacts f = facts();
  std::lock_guard lock(mu_);
  for (auto it = states_.begin(); it != states_.end();) {
    if (pools.contains(it->first)) {
      ++it;
      continue;
    }
    spdlog::info("{}: removed from the config; stopping its server", it->first);
    servers_.erase(it->first);
    if (size_t n = removeDeviceInfoFiles(options_.devinfoDir, it->first))
      spdlog::info("{}: removed {} device-info file{}", it->first, n, n == 1 ? "" : "s");
    needsRegistration_.erase(it->first);
    it = states_.erase(it);
  }
  for (auto& [name, pool] : pools) {
    if (pool.devices.empty()) spdlog::warn("{}: serving an empty list: {}", name, pool.emptyReason);
    if (auto it = states_.find(name); it != states_.end()) {
      for (const auto& line : it->second->update(pool, f)) spdlog::info("{}", line);
      continue;
    }
    // A fresh state starts from an empty pool so that update() judges every device's health.
    ResourcePool empty;
    empty.name = name;
    empty.config = pool.config;
    auto state = std::make_shared<PoolState>(std::move(empty));
    (void)state->update(pool, f);
    PluginServerEvents events;
    events.onAllocate = [this](const std::string& resource, bool ok) {
      counters_.countAllocation(resource, ok);
    };
    events.onRegistration = [this](const std::string&, bool ok, const std::string&) {
      ++counters_.registrations;
      if (!ok) ++counters_.registrationErrors;
    };
    auto server = std::make_unique<PluginServer>(
        state,
        PluginServerOptions{options_.kubeletDir, options_.devinfoDir, mode_, options_.useCdi},
        std::move(events));
    if (auto ok = server->start(); !ok) {
      spdlog::error("{}", ok.error().message());
    } else {
      spdlog::info("{}: serving {} devices on {}", name, pool.devices.size(), server->socketPath());
    }
    states_[name] = state;
    servers_[name] = std::move(server);
    needsRegistration_[name] = true;
  }
  registerAll("new resources");
}

void DaemonCounters::countAllocation(const std::string& resource, bool ok) {
  ++allocations;
  if (!ok) ++allocationErrors;
  std::lock_guard lock(mu_);
  auto& r = byResource_[resource];
  ++r.calls;
  if (!ok) ++r.failures;
}

std::map<std::string, DaemonCounters::Allocations> DaemonCounters::allocationsByResource() const {
  std::lock_guard lock(mu_);
  return byResource_;
}

void Daemon::writeCdiSpecs(const std::map<std::string, ResourcePool>& pools) {
  std::error_code ec;
  fs::create_directories(options_.cdiDir, ec);
  std::set<std::string> ours;
  for (const auto& [name, pool] : pools) {
    fs::path path = fs::path(options_.cdiDir) / cdiSpecFileName(pool);
    ours.insert(path.filename().string());
    std::string content = cdiSpec(pool).dump(2) + "\n";
    if (auto ok = writeFileIfChanged(path, content); !ok) {
      spdlog::error("{}: CDI spec: {}", name, ok.error().message());
    } else if (*ok) {
      spdlog::info("{}: CDI spec {} lists {} devices of kind {}", name, path.string(),
                   pool.devices.size(), cdiKind(pool));
    }
  }
  for (const auto& e : fs::directory_iterator(options_.cdiDir, ec)) {
    std::string f = e.path().filename().string();
    if (f.starts_with("vfplane-") && f.ends_with(".json") && !ours.contains(f)) {
      fs::remove(e.path(), ec);
      spdlog::info("CDI spec {} removed: its resource is no longer served", e.path().string());
    }
  }
}

void Daemon::registerAll(const char* why) {
  if (mode_ == RegistrationMode::kPluginWatcher) return;
  std::string kubeletSock =
      (fs::path(options_.kubeletDir) / "device-plugins/kubelet.sock").string();
  if (!isSocket(kubeletSock)) return;  // the kubelet is not up; its socket's creation will tell us
  for (auto& [name, pending] : needsRegistration_) {
    if (!pending) continue;
    auto& server = servers_[name];
    if (!server->running()) {
      if (auto ok = server->start(); !ok) {
        spdlog::error("{}", ok.error().message());
        continue;
      }
    }
    if (auto ok = server->registerWithKubelet(); !ok) {
      spdlog::warn("{} ({}); will retry", ok.error().message(), why);
    } else {
      pending = false;
      spdlog::info("{}: registered with the kubelet ({})", name, why);
    }
  }
}

void Daemon::restartServer(const std::string& name, const char* why) {
  auto it = servers_.find(name);
  if (it == servers_.end()) return;
  spdlog::info("{}: re-creating {} ({})", name, it->second->socketPath(), why);
  it->second->stop();
  if (auto ok = it->second->start(); !ok) spdlog::error("{}", ok.error().message());
  needsRegistration_[name] = true;
}

void Daemon::handleInotify() {
  alignas(inotify_event) char buf[8192];
  bool reloadNeeded = false, kubeletBack = false;
  std::set<std::string> deleted;
  for (;;) {
    ssize_t n = ::read(inotify_.get(), buf, sizeof buf);
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      std::string name = ev->len > 0 ? ev->name : "";
      if (ev->wd == configWatch_ &&
          (name == fs::path(options_.configPath).filename().string() || name == "..data")) {
        reloadNeeded = true;
      } else if (ev->wd == kubeletWatch_ && name == "kubelet.sock" && (ev->mask & IN_CREATE)) {
        kubeletBack = true;
      } else if ((ev->wd == kubeletWatch_ || ev->wd == registryWatch_) && (ev->mask & IN_DELETE)) {
        deleted.insert((fs::path(options_.kubeletDir) /
                        (ev->wd == kubeletWatch_ ? "device-plugins" : "plugins_registry") / name)
                           .string());
      }
      p += sizeof(inotify_event) + ev->len;
    }
  }
  std::lock_guard lock(mu_);
  for (auto& [name, server] : servers_) {
    // Our own restarts delete and re-create sockets too; only a socket that is still missing
    // means someone else (a restarting kubelet) removed it.
    if (deleted.contains(server->socketPath()) && !isSocket(server->socketPath())) {
      restartServer(name, "its socket was deleted");
    } else if (kubeletBack && !isSocket(server->socketPath())) {
      restartServer(name, "the kubelet restarted");
    } else if (kubeletBack) {
      needsRegistration_[name] = true;
    }
  }
  if (kubeletBack || !deleted.empty())
    registerAll(kubeletBack ? "kubelet.sock re-created" : "socket re-created");
  if (reloadNeeded) reloadRequested_ = true;
}

bool Daemon::numVfsChanged() {
  for (const auto& [pf, last] : numVfs_) {
    auto now = sysfs_.readInt("sys/bus/pci/devices/" + pf + "/sriov_numvfs");
    if ((now ? static_cast<int>(*now) : -1) != last) return true;
  }
  return false;
}

void Daemon::updateHealth() {
  HealthFacts f = facts();
  std::lock_guard lock(mu_);
  for (auto& [name, state] : states_) {
    auto it = lastPools_.find(name);
    if (it == lastPools_.end()) continue;
    for (const auto& line : state->update(it->second, f)) spdlog::info("{}", line);
  }
}

void Daemon::reload() {
  auto config = loadConfig(options_.configPath, options_.resourcePrefix);
  ++counters_.reloads;
  if (!config) {
    ++counters_.reloadErrors;
    spdlog::error("reload: {}; keeping the previous config", config.error().message());
    return;
  }
  for (const auto& w : config->warnings) spdlog::warn("{}", w);
  config_ = std::move(*config);
  spdlog::info("reload: {} resources in {}", config_.resources.size(), options_.configPath);
  rescan("config reload");
}

void Daemon::run() {
  auto nextRescan = std::chrono::steady_clock::now() + options_.rescanInterval;
  while (!stopping_) {
    pollfd fds[3] = {
        {wake_.get(), POLLIN, 0}, {inotify_.get(), POLLIN, 0}, {links_->fd(), POLLIN, 0}};
    int rc = ::poll(fds, 3, static_cast<int>(std::chrono::milliseconds(kTick).count()));
    if (rc < 0 && errno != EINTR) {
      spdlog::error("poll: {}", std::strerror(errno));
      break;
    }
    if (fds[0].revents & POLLIN) {
      uint64_t v;
      (void)!::read(wake_.get(), &v, sizeof v);
    }
    if (stopping_) break;
    if (fds[1].revents & POLLIN) handleInotify();
    if (fds[2].revents & POLLIN) {
      auto events = links_->drain();
      if (!events) {
        spdlog::warn("{}; re-reading carrier state", events.error().message());
        refreshCarrier();
        updateHealth();
      } else if (!events->empty()) {
        bool changed = false;
        for (const auto& e : *events) {
          bool down = e.removed || !e.carrier;
          bool was = noCarrier_.contains(e.name);
          bool tracked = false;
          for (const auto& [n, pool] : lastPools_) {
            for (const auto& d : pool.devices) tracked |= d.pfNetdev == e.name;
          }
          if (!tracked || down == was) continue;
          spdlog::info("{}: carrier {}", e.name, down ? "lost" : "back");
          if (down) {
            noCarrier_.insert(e.name);
          } else {
            noCarrier_.erase(e.name);
          }
          changed = true;
        }
        if (changed) updateHealth();
      }
    }
    if (reloadRequested_.exchange(false)) reload();
    auto now = std::chrono::steady_clock::now();
    if (now >= nextRescan || numVfsChanged()) {
      rescan(now >= nextRescan ? "timer" : "sriov_numvfs changed");
      nextRescan = now + options_.rescanInterval;
    }
    std::lock_guard lock(mu_);
    for (auto& [name, server] : servers_) {
      if (server->registrationFailed()) restartServer(name, "the kubelet refused the registration");
    }
    registerAll("retry");
  }
}

void Daemon::stop() {
  stopping_ = true;
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
}

void Daemon::requestReload() {
  reloadRequested_ = true;
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
}

std::map<std::string, std::pair<int, int>> Daemon::deviceCounts() const {
  std::lock_guard lock(mu_);
  std::map<std::string, std::pair<int, int>> out;
  for (const auto& [name, state] : states_) {
    auto snap = state->snapshot();
    auto& c = out[name];
    for (const auto& d : snap->pool.devices) (snap->isHealthy(d.id) ? c.first : c.second)++;
  }
  return out;
}

}  // namespace vfplane::dp
