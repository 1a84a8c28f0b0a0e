// vfplane-xdp-router: forwards IPv4 between the given ports with XDP, following the kernel's
// routes and neighbours in this network namespace. Flags in, the XDP fast path under the router
// loop, wired to signals and /metrics, errors out as exit codes (2 for a bad command line or
// port, 1 else).
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "vfplane/base/daemon_main.h"
#include "vfplane/dataplane/router_loop.h"
#include "vfplane/dataplane/router_metrics.h"
#include "vfplane/dataplane/xdp_router.h"

int main(int argc, char** argv) {
  using namespace vfplane::dataplane;
  vfplane::DaemonMain m(
      "vfplane-xdp-router",
      "vfplane-xdp-router: IPv4 forwarding between --ports in XDP, following this network\n"
      "namespace's kernel routes and neighbours (what the kernel cannot finish, it still does:\n"
      "ARP, ICMP, local traffic, unresolved next hops)");
  std::vector<std::string> ports;
  std::string mode = "native", resync = "30s", statsInterval = "60s";
  uint32_t maxEntries = 65536;
  auto& app = m.app();
  app.add_option("--ports", ports, "Interfaces to forward between, comma-separated")
      ->required()
      ->delimiter(',');
  app.add_option("--mode", mode, "native (in the driver) or generic (any interface, slower)")
      ->check(CLI::IsMember({"native", "generic"}))
      ->capture_default_str();
  app.add_option("--resync-interval", resync,
                 "Full re-read of the kernel tables, besides the rtnetlink events")
      ->capture_default_str();
  app.add_option("--stats-interval", statsInterval,
                 "Log the packet counters this often (0 for never)")
      ->capture_default_str();
  app.add_option("--max-entries", maxEntries, "Forwarding table size")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1u << 24));
  if (auto rc = m.parse(argc, argv)) return *rc;
  RouterLoopOptions options;
  options.ports.insert(ports.begin(), ports.end());
  auto resyncInterval = vfplane::durationFlag("--resync-interval", resync);
  if (!resyncInterval) return m.exitWith(resyncInterval.error());
  options.resyncInterval = *resyncInterval;
  auto stats = vfplane::intervalFlag("--stats-interval", statsInterval);
  if (!stats) return m.exitWith(stats.error());
  options.statsInterval = *stats;

  // Bound before anything is attached, so a bad address changes nothing on the ports.
  if (auto ok = m.bindMetrics(); !ok) return m.exitWith(ok.error());
  auto xdp = XdpRouter::load(
      {.maxEntries = maxEntries, .mode = mode == "native" ? XdpMode::kNative : XdpMode::kGeneric});
  if (!xdp) return m.exitWith(xdp.error());
  // On failure, and at exit, the XDP router's destructor detaches from every port it attached to.
  auto loop = RouterLoop::start(options, *xdp);
  if (!loop) return m.exitWith(loop.error());
  m.serve("/metrics", makeRouterMetrics(**loop));
  m.onSignals([&](int sig) {
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: re-reading the kernel's tables");
      if (auto ok = (*loop)->sync(); !ok)
        spdlog::warn("{}; the previous table stays in force", ok.error().message());
      return true;
    }
    spdlog::info("signal {}: detaching and shutting down", sig);
    (*loop)->stop();
    return false;
  });
  return m.run([&] { (*loop)->run(); });
}
