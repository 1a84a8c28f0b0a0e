// vfplane-xdp-router: forwards IPv4 between the given ports with XDP, following the kernel's
// routes and neighbours in this network namespace. Flags in, RouterDaemon wired to signals and
// /metrics, errors out as exit codes (2 for a bad command line or port, 1 else).
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "vfplane/base/daemon_main.h"
#include "vfplane/ebpf/router_daemon.h"
#include "vfplane/ebpf/router_metrics.h"

int main(int argc, char** argv) {
  vfplane::DaemonMain m("vfplane-xdp-router",
                        "vfplane-xdp-router: IPv4 forwarding between --ports in XDP, following this network\n"
                        "namespace's kernel routes and neighbours (what the kernel cannot finish, it still does:\n"
                        "ARP, ICMP, local traffic, unresolved next hops)");
  std::vector<std::string> ports;
  std::string mode = "native", resync = "30s", statsInterval = "60s";
  uint32_t maxEntries = 65536;
  auto& app = m.app();
  app.add_option("--ports", ports, "Interfaces to forward between, comma-separated")->required()->delimiter(',');
  app.add_option("--mode", mode, "native (in the driver) or generic (any interface, slower)")
      ->check(CLI::IsMember({"native", "generic"}))
      ->capture_default_str();
  app.add_option("--resync-interval", resync, "Full re-read of the kernel tables, besides the rtnetlink events")
      ->capture_default_str();
  app.add_option("--stats-interval", statsInterval, "Log the packet counters this often (0 for never)")
      ->capture_default_str();
  app.add_option("--max-entries", maxEntries, "Forwarding table size")->capture_default_str()->check(CLI::Range(1u, 1u << 24));
  if (auto rc = m.parse(argc, argv)) return *rc;
  auto resyncInterval = vfplane::durationFlag("--resync-interval", resync);
  if (!resyncInterval) return m.exitWith(resyncInterval.error());
  auto stats = vfplane::intervalFlag("--stats-interval", statsInterval);
  if (!stats) return m.exitWith(stats.error());

  vfplane::ebpf::RouterOptions options;
  options.ports.insert(ports.begin(), ports.end());
  options.mode = mode == "native" ? vfplane::ebpf::XdpMode::kNative : vfplane::ebpf::XdpMode::kGeneric;
  options.resyncInterval = *resyncInterval;
  options.statsInterval = *stats;
  options.maxEntries = maxEntries;
  // Bound before anything is attached, so a bad address changes nothing on the ports.
  if (auto ok = m.bindMetrics(); !ok) return m.exitWith(ok.error());
  auto daemon = vfplane::ebpf::RouterDaemon::start(options);
  if (!daemon) return m.exitWith(daemon.error());
  m.serve("/metrics", vfplane::ebpf::makeRouterMetrics(**daemon));
  m.onSignals([&](int sig) {
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: re-reading the kernel's tables");
      if (auto ok = (*daemon)->sync(); !ok) spdlog::warn("{}; the previous table stays in force", ok.error().message());
      return true;
    }
    spdlog::info("signal {}: detaching and shutting down", sig);
    (*daemon)->stop();
    return false;
  });
  int rc = m.run([&] { (*daemon)->run(); });
  daemon->reset();  // detaches from the ports
  return rc;
}
