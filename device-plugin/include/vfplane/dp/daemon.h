// The device plugin as a long-running process: config, discovery, one PluginServer per resource,
// and the event loop that keeps them right.
//
// The loop reacts to:
// - kubelet restarts (inotify): kubelet.sock re-created or our socket deleted -> serve and
//   register again;
// - a failed plugin-watcher registration -> the socket is re-created so the kubelet retries;
// - carrier changes of PF netdevs (rtnetlink events) -> health;
// - sriov_numvfs changes (checked every second, one small read per PF) and the rescan timer ->
//   rescan;
// - SIGHUP (through requestReload()) and changes to the config file (inotify on its directory,
//   which also catches ConfigMap symlink swaps) -> reload. A bad config is logged and counted;
//   the old one stays in force.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "vfplane/base/error.h"
#include "vfplane/base/fd.h"
#include "vfplane/dp/config.h"
#include "vfplane/dp/plugin_server.h"
#include "vfplane/dp/pool.h"
#include "vfplane/dp/pool_state.h"
#include "vfplane/netlink/link_monitor.h"
#include "vfplane/sriov/sysfs.h"

namespace vfplane::dp {

struct DaemonOptions {
  std::string configPath = "/etc/pcidp/config.json";
  std::string resourcePrefix = "intel.com";
  std::string kubeletDir = "/var/lib/kubelet";
  std::string sysfsRoot = "/";
  std::string devinfoDir = "/var/run/k8s.cni.cncf.io/devinfo/dp";
  std::chrono::milliseconds rescanInterval{std::chrono::seconds(60)};
  bool excludeDefaultRoute = true;
  // --use-cdi: one CDI spec file per resource in cdiDir (vfplane-<prefix>_<name>.json), kept in
  // step with the pools; Allocate then answers with a CDI annotation instead of device specs.
  bool useCdi = false;
  std::string cdiDir = "/var/run/cdi";
};

// What the daemon reports to whoever exports metrics.
struct DaemonCounters {
  std::atomic<uint64_t> rescans{0};
  std::atomic<uint64_t> reloads{0};
  std::atomic<uint64_t> reloadErrors{0};
  std::atomic<uint64_t> registrations{0};
  std::atomic<uint64_t> registrationErrors{0};
  std::atomic<uint64_t> allocations{0};
  std::atomic<uint64_t> allocationErrors{0};

  // The same two, per resource, for the metrics' resource label.
  struct Allocations {
    uint64_t calls = 0;
    uint64_t failures = 0;
  };
  void countAllocation(const std::string& resource, bool ok);
  std::map<std::string, Allocations> allocationsByResource() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, Allocations> byResource_;
};

class Daemon {
 public:
  // Loads and checks the config. Errors here are the operator's to fix (exit status 2).
  static Result<std::unique_ptr<Daemon>> create(DaemonOptions options);
  ~Daemon();

  // Discovers devices, starts one server per resource and registers them.
  Result<void> start();
  // Runs the event loop until stop() is called from any thread (or a signal handler).
  void run();
  void stop();
  // Safe to call from a signal handler.
  void requestReload();

  DaemonCounters& counters() { return counters_; }
  // Devices per resource by health, for metrics: name -> {healthy, unhealthy}.
  std::map<std::string, std::pair<int, int>> deviceCounts() const;

 private:
  explicit Daemon(DaemonOptions options, DevicePluginConfig config);
  void rescan(const char* why);
  void reload();
  void applyPlan(PoolPlan plan);
  void refreshCarrier();
  void updateHealth();
  void restartServer(const std::string& name, const char* why);
  // Writes each pool's CDI spec (when it changed) and removes ours for pools that are gone.
  void writeCdiSpecs(const std::map<std::string, ResourcePool>& pools);
  void registerAll(const char* why);
  void watchPaths();
  void handleInotify();
  bool numVfsChanged();
  HealthFacts facts() const;

  DaemonOptions options_;
  DevicePluginConfig config_;
  sriov::Sysfs sysfs_;
  sriov::NodeInventory inventory_;
  std::map<std::string, std::shared_ptr<PoolState>> states_;
  std::map<std::string, ResourcePool> lastPools_;
  std::map<std::string, std::unique_ptr<PluginServer>> servers_;
  std::map<std::string, bool> needsRegistration_;
  std::unique_ptr<netlink::LinkMonitor> links_;
  std::set<std::string> noCarrier_;
  std::map<std::string, int> numVfs_;  // PF sysfs dir -> last sriov_numvfs
  DaemonCounters counters_;
  RegistrationMode mode_;
  Fd inotify_;
  Fd wake_;  // eventfd: stop and reload requests
  std::atomic<bool> stopping_{false};
  std::atomic<bool> reloadRequested_{false};
  int kubeletWatch_ = -1, registryWatch_ = -1, configWatch_ = -1;
  mutable std::mutex mu_;  // guards states_ for deviceCounts()
};

}  // namespace vfplane::dp
