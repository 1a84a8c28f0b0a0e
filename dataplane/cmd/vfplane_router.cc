// vfplane-router: one router on this network namespace's kernel tables, with an XDP or a DPDK
// fast path. Flags in, checked before any device is touched; the fast path under the router
// loop, wired to signals and /metrics; errors out as exit codes (2 for a bad command line or
// port, 1 else).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <random>

#include "vfplane/base/daemon_main.h"
#include "vfplane/dataplane/router_command.h"
#include "vfplane/dataplane/router_loop.h"
#include "vfplane/dataplane/router_metrics.h"
#include "vfplane/dataplane/stats_json.h"
#ifdef VFPLANE_HAVE_XDP
#include "vfplane/dataplane/xdp_router.h"
#endif
#ifdef VFPLANE_HAVE_DPDK
#include <rte_eal.h>
#include <rte_ethdev.h>

#include "vfplane/dataplane/dpdk_router.h"
#include "vfplane/dataplane/kernel_path.h"
#include "vfplane/dataplane/lcore_workers.h"
#endif

namespace {
using namespace vfplane;
using namespace vfplane::dataplane;

struct Flags {
  std::string backend;
  std::vector<std::string> ports, macs, mtus, eal;
  std::string mode = "native", resync = "30s", statsInterval = "60s", statsJson;
  uint32_t maxRoutes = 65536, mbufs = 0;
  uint16_t lcores = 1;
};

// The router loop with signals and /metrics, until SIGTERM or SIGINT; writes --stats-json after.
int serve(DaemonMain& m, const Flags& f, RouterLoopOptions options, FastPath& fast) {
  auto loop = RouterLoop::start(options, fast);
  if (!loop) return m.exitWith(loop.error());
  m.serve("/metrics", makeRouterMetrics(**loop));
  m.onSignals([&](int sig) {
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: re-reading the kernel's tables");
      if (auto ok = (*loop)->sync(); !ok)
        spdlog::warn("{}; the previous table stays in force", ok.error().message());
      return true;
    }
    spdlog::info("signal {}: shutting down", sig);
    (*loop)->stop();
    return false;
  });
  int rc = m.run([&] { (*loop)->run(); });
  if (!f.statsJson.empty()) {
    if (auto ok = writeStatsJson(f.statsJson, **loop); !ok) return m.exitWith(ok.error());
  }
  return rc;
}

#ifdef VFPLANE_HAVE_XDP
int runXdp(DaemonMain& m, const Flags& f, RouterLoopOptions options, uint32_t seed) {
  auto xdp = XdpRouter::load({.maxEntries = f.maxRoutes,
                              .mode = f.mode == "native" ? XdpMode::kNative : XdpMode::kGeneric,
                              .hashSeed = seed});
  if (!xdp) return m.exitWith(xdp.error());
  // On failure, and at exit, the XDP router's destructor detaches from every port.
  return serve(m, f, std::move(options), *xdp);
}
#endif

#ifdef VFPLANE_HAVE_DPDK
int runDpdk(DaemonMain& m, const Flags& f, const std::vector<PortSpec>& ports,
            RouterLoopOptions options, uint32_t seed) {
  auto cpus = processCpus();
  auto eal = ealArguments("vfplane-router", ports, f.lcores, f.eal, cpus);
  if (!eal) return m.exitWith(eal.error());
  if (cpus.size() == f.lcores) {
    spdlog::warn("{} CPUs for {} polling workers: the control plane shares CPU {} with worker 0",
                 cpus.size(), f.lcores, cpus[0]);
  }
  spdlog::info("DPDK EAL: {}", fmt::join(*eal, " "));
  if (auto ok = initEal(*eal); !ok) return m.exitWith(ok.error());
  int rc;
  {
    std::vector<DpdkPort> dpdkPorts;
    std::vector<MirrorSpec> mirrors;
    for (const auto& p : ports) {
      uint16_t id = 0;
      if (rte_eth_dev_get_port_by_name(p.device->name.c_str(), &id) != 0) {
        return m.exitWith(
            Error(fmt::format("port {}: DPDK found no device {} (is it bound to vfio-pci, or the "
                              "vdev's driver installed?)",
                              p.name, p.device->name),
                  ENODEV));
      }
      dpdkPorts.push_back({p.name, id, p.mtu.value_or(0)});
      mirrors.push_back({p.name, id, p.mac});
    }
    auto router = DpdkRouter::create({.ports = dpdkPorts,
                                      .maxEntries = f.maxRoutes,
                                      .mbufs = f.mbufs,
                                      .workers = f.lcores,
                                      .hashSeed = seed});
    if (!router) return m.exitWith(router.error());
    auto kernel = KernelPath::create(**router, mirrors);
    if (!kernel) return m.exitWith(kernel.error());
    // Frames that arrive before the first table is installed go to the kernel.
    auto workers = LcoreWorkers::launch(**router);
    if (!workers) return m.exitWith(workers.error());
    (*kernel)->start();
    rc = serve(m, f, std::move(options), **router);
    (*workers)->stop();
    (*kernel)->stop();
  }
  rte_eal_cleanup();
  return rc;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  DaemonMain m(
      "vfplane-router",
      "vfplane-router: IPv4 and IPv6 forwarding with ECMP between --port interfaces, in XDP or\n"
      "DPDK, following this network namespace's kernel routes and neighbours. What the fast path\n"
      "cannot finish, the kernel does: ARP and ND, ICMP errors, local traffic, unresolved next\n"
      "hops. DPDK ports get a TAP mirror of the same name that holds their addresses and routes.\n"
      "\n"
      "  vfplane-router --backend xdp --port r1 --port r2 [--mode generic]\n"
      "  vfplane-router --backend dpdk --port r1=0000:03:02.0 --port r2=env:PCIDEVICE_X#2\n"
      "                 [--mac r1=02:00:00:00:00:01] [--mtu r1=9000] [--lcores N]\n"
      "                 [-- EAL arguments]");
  Flags f;
  auto& app = m.app();
  app.add_option("--backend", f.backend, "xdp (no dedicated cores) or dpdk (polling lcores)")
      ->required();
  app.add_option("--port", f.ports,
                 "XDP: a netdev of this namespace. DPDK: NAME=DEVICE, DEVICE a PCI address, a "
                 "vdev (net_af_packet0,iface=X) or env:VAR[#N] (the N-th ID in VAR)")
      ->required()
      ->allow_extra_args(false);
  app.add_option("--mac", f.macs, "DPDK: NAME=MAC, the MAC of port NAME and its TAP")
      ->allow_extra_args(false);
  app.add_option("--mtu", f.mtus,
                 "DPDK: NAME=BYTES, the MTU of port NAME and its TAP (default: the device's)")
      ->allow_extra_args(false);
  app.add_option("--mode", f.mode, "XDP: native (in the driver) or generic (any link, slower)")
      ->check(CLI::IsMember({"native", "generic"}))
      ->capture_default_str();
  app.add_option("--lcores", f.lcores, "DPDK: polling workers, one lcore and RX queue each")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--max-routes", f.maxRoutes,
                 "Routes per family the tables hold (1000000 for a full Internet table)")
      ->check(CLI::Range(16u, 1u << 24))
      ->capture_default_str();
  app.add_option("--mbufs", f.mbufs,
                 "DPDK: packet buffers in the pool (default: enough for every queue full); a "
                 "net_pcap port with infinite_rx keeps its whole pcap in it")
      ->check(CLI::Range(1024u, 1u << 24));
  app.add_option("--resync-interval", f.resync,
                 "Full re-read of the kernel tables, besides the rtnetlink events")
      ->capture_default_str();
  app.add_option("--stats-interval", f.statsInterval,
                 "Log the packet counters this often (0 for never)")
      ->capture_default_str();
  app.add_option("--stats-json", f.statsJson, "Write the counters to this file on exit");
  app.add_option("eal", f.eal, "DPDK: EAL arguments, after --");
  if (auto rc = m.parse(argc, argv)) return *rc;

  auto backend = parseBackend(f.backend);
  if (!backend) return m.exitWith(backend.error());
  auto ports = parsePorts(*backend, f.ports, f.macs, [](const std::string& name) {
    const char* v = std::getenv(name.c_str());
    return v ? std::optional<std::string>(v) : std::nullopt;
  });
  if (!ports) return m.exitWith(ports.error());
  if (auto ok = parsePortMtus(*backend, f.mtus, *ports); !ok) return m.exitWith(ok.error());
  if (*backend == Backend::kXdp && !f.eal.empty())
    return m.exitWith(usageError("EAL arguments after -- are for --backend dpdk").error());
  if (auto ok = checkPortsExist(*backend, *ports, nodeProbe()); !ok) return m.exitWith(ok.error());
  RouterLoopOptions options;
  for (const auto& p : *ports) options.ports.insert(p.name);
  auto resync = durationFlag("--resync-interval", f.resync);
  if (!resync) return m.exitWith(resync.error());
  options.resyncInterval = *resync;
  auto stats = intervalFlag("--stats-interval", f.statsInterval);
  if (!stats) return m.exitWith(stats.error());
  options.statsInterval = *stats;
  // Bound before anything is attached or created, so a bad address changes nothing.
  if (auto ok = m.bindMetrics(); !ok) return m.exitWith(ok.error());
  // Random per process, as the kernel's: routers in a chain must not all hash alike.
  uint32_t seed = std::random_device{}();

  if (*backend == Backend::kXdp) {
#ifdef VFPLANE_HAVE_XDP
    return runXdp(m, f, std::move(options), seed);
#else
    return m.exitWith(
        Error("--backend xdp: this build has no XDP (libbpf, clang or bpftool "
              "were missing when it was built)",
              ENOTSUP));
#endif
  }
#ifdef VFPLANE_HAVE_DPDK
  return runDpdk(m, f, *ports, std::move(options), seed);
#else
  return m.exitWith(Error(
      "--backend dpdk: this build has no DPDK (libdpdk was missing when it was built)", ENOTSUP));
#endif
}
