// vfplane-xdp-router: forwards IPv4 between the given ports with XDP, following the kernel's
// routes and neighbours in this network namespace. Parses flags, wires RouterDaemon to signals,
// and turns errors into exit codes: 2 for a bad command line, 1 for anything else.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <prometheus/exposer.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <thread>

#include "vfplane/ebpf/router_daemon.h"
#include "vfplane/ebpf/router_metrics.h"
#include "vfplane/base/duration.h"

int main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("vfplane-xdp-router");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  std::vector<std::string> ports;
  std::string mode = "native", resync = "30s", statsInterval = "60s", logLevel = "info", metricsAddress;
  uint32_t maxEntries = 65536;
  CLI::App app("vfplane-xdp-router: IPv4 forwarding between --ports in XDP, following this network\n"
               "namespace's kernel routes and neighbours (what the kernel cannot finish, it still does:\n"
               "ARP, ICMP, local traffic, unresolved next hops)",
               "vfplane-xdp-router");
  app.add_option("--ports", ports, "Interfaces to forward between, comma-separated")->required()->delimiter(',');
  app.add_option("--mode", mode, "native (in the driver) or generic (any interface, slower)")
      ->check(CLI::IsMember({"native", "generic"}))
      ->capture_default_str();
  app.add_option("--resync-interval", resync, "Full re-read of the kernel tables, besides the rtnetlink events")
      ->capture_default_str();
  app.add_option("--stats-interval", statsInterval, "Log the packet counters this often (0 for never)")
      ->capture_default_str();
  app.add_option("--metrics-address", metricsAddress, "Serve /metrics here, e.g. 127.0.0.1:9106 (off by default)");
  app.add_option("--max-entries", maxEntries, "Forwarding table size")->capture_default_str()->check(CLI::Range(1u, 1u << 24));
  app.add_option("--log-level", logLevel, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  spdlog::set_level(spdlog::level::from_str(logLevel));
  auto resyncInterval = vfplane::parseDuration(resync);
  if (!resyncInterval) {
    spdlog::error("--resync-interval {}: expected a positive duration like 30s, 500ms or 5m", resync);
    return 2;
  }
  std::optional<std::chrono::milliseconds> stats;
  if (statsInterval != "0") {
    stats = vfplane::parseDuration(statsInterval);
    if (!stats) {
      spdlog::error("--stats-interval {}: expected 0 or a positive duration like 60s", statsInterval);
      return 2;
    }
  }

  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  vfplane::ebpf::RouterOptions options;
  options.ports.insert(ports.begin(), ports.end());
  options.mode = mode == "native" ? vfplane::ebpf::XdpMode::kNative : vfplane::ebpf::XdpMode::kGeneric;
  options.resyncInterval = *resyncInterval;
  options.maxEntries = maxEntries;
  // Bound before anything is attached, so a bad address changes nothing on the ports.
  std::unique_ptr<prometheus::Exposer> exposer;
  if (!metricsAddress.empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(metricsAddress);
    } catch (const std::exception& e) {
      spdlog::error("--metrics-address {}: {}", metricsAddress, e.what());
      return 2;
    }
  }
  auto daemon = vfplane::ebpf::RouterDaemon::start(options);
  if (!daemon) {
    spdlog::error("{}", daemon.error().message());
    return daemon.error().sysErrno() == ENODEV || daemon.error().sysErrno() == EINVAL ? 2 : 1;
  }
  std::shared_ptr<prometheus::Collectable> metrics;
  if (exposer) {
    metrics = vfplane::ebpf::makeRouterMetrics(**daemon);
    exposer->RegisterCollectable(metrics, "/metrics");
    spdlog::info("metrics on http://{}/metrics", metricsAddress);
  }
  std::thread signalThread([&] {
    int sig = 0;
    while (sigwait(&signals, &sig) != 0) {
    }
    spdlog::info("signal {}: detaching and shutting down", sig);
    (*daemon)->stop();
  });
  std::atomic<bool> done{false};
  std::thread statsThread([&] {
    if (!stats) return;
    auto next = std::chrono::steady_clock::now() + *stats;
    while (!done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (std::chrono::steady_clock::now() < next) continue;
      next += *stats;
      if (auto c = (*daemon)->counters()) {
        spdlog::info("packets: {} in, {} forwarded; to the kernel: {} for other hosts or broadcast, {} not IPv4, "
                     "{} options, {} TTL, {} no route, {} local/unresolved, {} malformed",
                     c->rx, c->forwarded, c->puntOtherHost, c->puntNotIpv4, c->puntIpOptions, c->puntTtl,
                     c->puntNoRoute, c->puntAction, c->puntMalformed);
      }
    }
  });
  (*daemon)->run();
  done = true;
  statsThread.join();
  pthread_kill(signalThread.native_handle(), SIGTERM);
  signalThread.join();
  exposer.reset();  // no scrape may reach the daemon once it is gone
  daemon->reset();  // detaches from the ports
  return 0;
}
