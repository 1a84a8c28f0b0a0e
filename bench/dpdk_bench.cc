// The DPDK fast path's per-packet cost on ring ports (EAL --no-huge --no-pci), side by side with
// its floor in the same run:
//
//   BM_DpdkForward/router:0   the ports alone: rx_burst on A, tx_burst on B, nothing else
//   BM_DpdkForward/router:1   DpdkRouter::poll(): parse, LPM lookup in a table of --routes
//                             entries, TTL/checksum/MAC rewrite, transmit
//
// Both refill the same 64-byte frames each burst, so the difference is the router's own work.
//   dpdk_bench [--routes N] [benchmark flags]
#include <benchmark/benchmark.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <cstdio>
#include <cstring>
#include <random>

#include "bench_args.h"
#include "error_reporter.h"
#include "vfplane/dataplane/dpdk_router.h"

namespace {
using namespace vfplane;
using namespace vfplane::dataplane;

constexpr uint16_t kBurst = 32;
size_t g_routes = 10000;

struct World {
  rte_ring *aRx = nullptr, *aTx = nullptr, *bRx = nullptr, *bTx = nullptr;
  uint16_t a = 0, b = 0;
  std::unique_ptr<DpdkRouter> router;
  std::vector<uint8_t> frame;
};
World* g_world = nullptr;

// Ethernet + IPv4 to 10.1.0.7 (TTL 64, valid checksum) + UDP, 64 bytes on the wire.
std::vector<uint8_t> probeFrame() {
  std::vector<uint8_t> f(60, 0);
  const uint8_t portA[6] = {0xaa, 0, 0, 0, 0, 0x06};  // addressed to the router's port A
  std::memcpy(f.data(), portA, 6);
  f[12] = 0x08;
  uint8_t ip[20] = {0x45, 0, 0, 46, 0, 1, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 10, 10, 1, 0, 7};
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += static_cast<uint32_t>(ip[i] << 8 | ip[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  ip[10] = static_cast<uint8_t>(~sum >> 8);
  ip[11] = static_cast<uint8_t>(~sum);
  std::memcpy(f.data() + 14, ip, 20);
  return f;
}

std::string buildWorld(World& w) {
  auto ok = initEal({"dpdk_bench", "--no-huge", "--no-pci", "--no-shconf", "--no-telemetry", "-m",
                     "512", "-l", "0", "--log-level=error"});
  if (!ok) return ok.error().message();
  for (auto [rx, tx, port, name] :
       {std::tuple{&w.aRx, &w.aTx, &w.a, "a"}, std::tuple{&w.bRx, &w.bTx, &w.b, "b"}}) {
    *rx = rte_ring_create((std::string("rx_") + name).c_str(), 1024, SOCKET_ID_ANY,
                          RING_F_SP_ENQ | RING_F_SC_DEQ);
    *tx = rte_ring_create((std::string("tx_") + name).c_str(), 1024, SOCKET_ID_ANY,
                          RING_F_SP_ENQ | RING_F_SC_DEQ);
    int id = rte_eth_from_rings((std::string("vfp_") + name).c_str(), rx, 1, tx, 1, SOCKET_ID_ANY);
    if (*rx == nullptr || *tx == nullptr || id < 0) return "cannot make ring ports";
    *port = static_cast<uint16_t>(id);
  }
  auto router = DpdkRouter::create({.ports = {{"a", w.a}, {"b", w.b}},
                                    .maxEntries = static_cast<uint32_t>(g_routes + 16),
                                    .mbufs = 4095});
  if (!router) return router.error().message();
  w.router = std::move(*router);
  for (const Port& p : {Port{6, "a", *MacAddress::parse("aa:00:00:00:00:06")},
                        Port{7, "b", *MacAddress::parse("aa:00:00:00:00:07")}}) {
    if (auto ok = w.router->addPort(p); !ok) return ok.error().message();
  }
  ForwardingModel m;
  m.setInterface({7, "b", *MacAddress::parse("aa:00:00:00:00:07")});
  m.setRoute(Route::onLink(*Prefix::parse("10.1.0.0/24"), 7));
  m.setNeighbour({*IpAddr::parse("10.1.0.7"), 7, *MacAddress::parse("bb:00:00:00:00:07")});
  m.setNeighbour({*IpAddr::parse("10.1.0.254"), 7, *MacAddress::parse("bb:00:00:00:02:54")});
  std::mt19937 rng(3);
  while (m.routeCount() < g_routes) {
    int len = 16 + static_cast<int>(rng() % 9);
    IpAddr addr = IpAddr::v4(static_cast<uint32_t>(rng()));
    if (addr.bytes[0] == 10) continue;  // keep 10/8 to the probe's route
    m.setRoute(Route::via(Prefix::of(addr, len), *IpAddr::parse("10.1.0.254"), 7));
  }
  if (auto ok = w.router->install(m.compile()); !ok) return ok.error().message();
  w.frame = probeFrame();
  return "";
}

void BM_DpdkForward(benchmark::State& state) {
  World& w = *g_world;
  bool router = state.range(0) == 1;
  rte_mbuf* bufs[kBurst];
  if (rte_pktmbuf_alloc_bulk(w.router->mempool(), bufs, kBurst) != 0) {
    state.SkipWithError("mbuf pool empty");
    return;
  }
  for (auto* m : bufs) rte_pktmbuf_append(m, static_cast<uint16_t>(w.frame.size()));
  uint64_t forwardedBefore = w.router->counters()->forwarded;
  for (auto _ : state) {
    for (auto* m : bufs) std::memcpy(rte_pktmbuf_mtod(m, void*), w.frame.data(), w.frame.size());
    rte_ring_enqueue_bulk(w.aRx, reinterpret_cast<void**>(bufs), kBurst, nullptr);
    if (router) {
      w.router->poll();
    } else {
      rte_mbuf* in[kBurst];
      uint16_t n = rte_eth_rx_burst(w.a, 0, in, kBurst);
      rte_eth_tx_burst(w.b, 0, in, n);
    }
    unsigned got = rte_ring_dequeue_bulk(w.bTx, reinterpret_cast<void**>(bufs), kBurst, nullptr);
    if (got != kBurst) {
      state.SkipWithError("a burst did not come out of port B");
      return;
    }
  }
  rte_pktmbuf_free_bulk(bufs, kBurst);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kBurst);
  if (router) {
    state.counters["forwarded"] =
        static_cast<double>(w.router->counters()->forwarded - forwardedBefore);
  }
  state.SetLabel(router ? "router" : "ports alone (floor)");
}
BENCHMARK(BM_DpdkForward)->ArgName("router")->Arg(0)->Arg(1);

}  // namespace

int main(int argc, char** argv) {
  std::string routes;
  if (bench::takeOption(argc, argv, "--routes", routes)) g_routes = std::stoul(routes);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  World world;
  g_world = &world;
  if (std::string err = buildWorld(world); !err.empty()) {
    std::fprintf(stderr, "dpdk_bench: SKIP: %s\n", err.c_str());
    return 77;
  }
  benchmark::AddCustomContext("routes", std::to_string(g_routes));
  bench::ErrorCountingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  world.router.reset();
  return reporter.errors() > 0 ? 1 : 0;
}
