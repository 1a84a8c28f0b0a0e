// vfplane-device-plugin: the SR-IOV device plugin daemon. Flags in, the library's Daemon wired to
// signals and /metrics, errors out as exit codes (2 for a bad command line or config, 1 else).
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "vfplane/base/daemon_main.h"
#include "vfplane/dp/config.h"
#include "vfplane/dp/daemon.h"
#include "vfplane/dp/metrics.h"

int main(int argc, char** argv) {
  // A few threads, little allocation: one malloc arena per thread would only add resident memory.
  mallopt(M_ARENA_MAX, 2);
  vfplane::DaemonMain m(
      "vfplane-device-plugin",
      "vfplane-device-plugin: advertises SR-IOV VFs to the kubelet as extended resources\n"
      "(drop-in for sriov-network-device-plugin; same config.json)");
  vfplane::dp::DaemonOptions opts;
  std::string rescanInterval = "60s";
  bool allowDefaultRoute = false;
  auto& app = m.app();
  app.add_option("--config", opts.configPath,
                 "Resource pool config (sriov-network-device-plugin format)")
      ->capture_default_str();
  app.add_option("--resource-prefix", opts.resourcePrefix, "Prefix for resources without their own")
      ->capture_default_str();
  app.add_option(
         "--kubelet-dir", opts.kubeletDir,
         "Kubelet root: device-plugins/ (legacy) or plugins_registry/ (plugin watcher) below it")
      ->capture_default_str();
  app.add_option("--sysfs-root", opts.sysfsRoot,
                 "Directory holding sys/ (a simulated node's --root)")
      ->capture_default_str();
  app.add_option("--devinfo-dir", opts.devinfoDir,
                 "Where device-info files for the CNI are written")
      ->capture_default_str();
  app.add_option("--rescan-interval", rescanInterval,
                 "Full rescan period (sriov_numvfs changes rescan at once): 30s, 5m, ...")
      ->capture_default_str();
  app.add_flag(
      "--allow-default-route-devices", allowDefaultRoute,
      "Offer devices whose netdev carries a default route (upstream always excludes them)");
  app.add_flag("--use-cdi", opts.useCdi,
               "Expose devices through CDI: a spec file per resource in --cdi-dir, and a CDI "
               "annotation in Allocate");
  app.add_option("--cdi-dir", opts.cdiDir,
                 "Where the CDI spec files go (the runtime's dynamic CDI directory)")
      ->capture_default_str();
  bool checkConfig = false;
  app.add_flag("--check-config", checkConfig,
               "Read --config, print each resource's full name and every warning, and exit: 0 if "
               "it would be served, 2 naming the file, entry and field if not");
  if (auto rc = m.parse(argc, argv)) return *rc;
  if (checkConfig) {
    auto config = vfplane::dp::loadConfig(opts.configPath, opts.resourcePrefix);
    if (!config) return m.exitWith(config.error());
    for (const auto& w : config->warnings) spdlog::warn("{}", w);
    for (const auto& r : config->resources)
      std::printf("%s\n", r.fullName(opts.resourcePrefix).c_str());
    return 0;
  }
  auto interval = vfplane::durationFlag("--rescan-interval", rescanInterval);
  if (!interval) return m.exitWith(interval.error());
  opts.rescanInterval = *interval;
  opts.excludeDefaultRoute = !allowDefaultRoute;

  auto daemon = vfplane::dp::Daemon::create(opts);
  if (!daemon) return m.exitWith(daemon.error());
  if (auto ok = m.bindMetrics(); !ok) return m.exitWith(ok.error());
  m.serve("/metrics", vfplane::dp::makeMetrics(**daemon));
  // /healthz answers 200 while the process serves; it carries no metrics.
  m.serve("/healthz", std::make_shared<vfplane::dp::EmptyCollectable>());
  if (auto ok = (*daemon)->start(); !ok) return m.exitWith(ok.error());
  m.onSignals([&](int sig) {
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: reloading {}", opts.configPath);
      (*daemon)->requestReload();
      return true;
    }
    spdlog::info("signal {}: shutting down", sig);
    (*daemon)->stop();
    return false;
  });
  return m.run([&] { (*daemon)->run(); });
}
