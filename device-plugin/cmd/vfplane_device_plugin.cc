// vfplane-device-plugin: the SR-IOV device plugin daemon. Parses flags, wires the library's
// Daemon to signals and /metrics, and turns errors into exit codes: 2 for a bad command line or
// config, 1 for anything else.
#include <malloc.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <prometheus/exposer.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <thread>

#include "vfplane/dp/daemon.h"
#include "vfplane/dp/metrics.h"
#include "vfplane/base/duration.h"

int main(int argc, char** argv) {
  // A few threads, little allocation: one malloc arena per thread would only add resident memory.
  mallopt(M_ARENA_MAX, 2);
  auto logger = spdlog::stderr_color_mt("vfplane-device-plugin");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  vfplane::dp::DaemonOptions opts;
  std::string metricsAddress, rescanInterval = "60s", logLevel = "info";
  bool allowDefaultRoute = false;
  CLI::App app("vfplane-device-plugin: advertises SR-IOV VFs to the kubelet as extended resources\n"
               "(drop-in for sriov-network-device-plugin; same config.json)",
               "vfplane-device-plugin");
  app.add_option("--config", opts.configPath, "Resource pool config (sriov-network-device-plugin format)")
      ->capture_default_str();
  app.add_option("--resource-prefix", opts.resourcePrefix, "Prefix for resources without their own")
      ->capture_default_str();
  app.add_option("--kubelet-dir", opts.kubeletDir,
                 "Kubelet root: device-plugins/ (legacy) or plugins_registry/ (plugin watcher) below it")
      ->capture_default_str();
  app.add_option("--sysfs-root", opts.sysfsRoot, "Directory holding sys/ (a simulated node's --root)")
      ->capture_default_str();
  app.add_option("--devinfo-dir", opts.devinfoDir, "Where device-info files for the CNI are written")
      ->capture_default_str();
  app.add_option("--metrics-address", metricsAddress, "Serve /metrics and /healthz here, e.g. 127.0.0.1:9105 (off by default)");
  app.add_option("--rescan-interval", rescanInterval, "Full rescan period (sriov_numvfs changes rescan at once): 30s, 5m, ...")
      ->capture_default_str();
  app.add_flag("--allow-default-route-devices", allowDefaultRoute,
               "Offer devices whose netdev carries a default route (upstream always excludes them)");
  app.add_flag("--use-cdi", opts.useCdi,
               "Expose devices through CDI: a spec file per resource in --cdi-dir, and a CDI annotation in Allocate");
  app.add_option("--cdi-dir", opts.cdiDir, "Where the CDI spec files go (the runtime's dynamic CDI directory)")
      ->capture_default_str();
  app.add_option("--log-level", logLevel, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  spdlog::set_level(spdlog::level::from_str(logLevel));
  auto interval = vfplane::parseDuration(rescanInterval);
  if (!interval) {
    spdlog::error("--rescan-interval {}: expected a positive duration like 30s, 500ms or 5m", rescanInterval);
    return 2;
  }
  opts.rescanInterval = *interval;
  opts.excludeDefaultRoute = !allowDefaultRoute;

  // Signals are taken by one thread with sigwait, so the daemon never runs code in a handler.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto daemon = vfplane::dp::Daemon::create(opts);
  if (!daemon) {
    spdlog::error("{}", daemon.error().message());
    return daemon.error().sysErrno() == EINVAL || daemon.error().sysErrno() == ENOENT ? 2 : 1;
  }
  std::unique_ptr<prometheus::Exposer> exposer;
  std::shared_ptr<prometheus::Collectable> metrics, healthz;
  if (!metricsAddress.empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(metricsAddress);
    } catch (const std::exception& e) {
      spdlog::error("--metrics-address {}: {}", metricsAddress, e.what());
      return 2;
    }
    metrics = vfplane::dp::makeMetrics(**daemon);
    exposer->RegisterCollectable(metrics, "/metrics");
    // /healthz answers 200 while the process serves; it carries no metrics.
    healthz = std::make_shared<vfplane::dp::EmptyCollectable>();
    exposer->RegisterCollectable(healthz, "/healthz");
    spdlog::info("metrics on http://{}/metrics", metricsAddress);
  }
  if (auto ok = (*daemon)->start(); !ok) {
    spdlog::error("{}", ok.error().message());
    return 1;
  }
  std::thread signalThread([&] {
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      if (sig == SIGHUP) {
        spdlog::info("SIGHUP: reloading {}", opts.configPath);
        (*daemon)->requestReload();
      } else {
        spdlog::info("signal {}: shutting down", sig);
        (*daemon)->stop();
        return;
      }
    }
  });
  (*daemon)->run();
  // The signal thread waits for a signal only; wake it if run() ended another way.
  pthread_kill(signalThread.native_handle(), SIGTERM);
  signalThread.join();
  return 0;
}
