// Attach + detach of a VF netdev, as a runtime drives it, against the kernel's floor and Debian's
// host-device, on a simulated --veth node in a throwaway network namespace:
//   BM_Floor         the netlink requests ADD and DEL make (move+rename into the pod and back),
//                    issued in-process: what no plugin can go below
//   BM_VfplaneSriov  vfplane-sriov ADD then DEL, exec'd with CNI_* and the config on stdin
//   BM_HostDevice    Debian's /usr/lib/cni/host-device moving an identical veth
// ipam:0 runs without IPAM, to show the plugins' own cost; ipam:1 with Debian's host-local as the
// exec'd delegate; ipam:2 (vfplane-sriov only) with vfplane-ipam in-process. Each benchmark reports
// add_ms and del_ms; the summary at the end gives medians and each plugin's overhead above the
// floor, and their ratio (target <= 1/3).
//
//   cni_bench --plugin PATH/vfplane-sriov [benchmark flags]     (root; exit 77 otherwise)
// Run with --benchmark_repetitions=20 --benchmark_enable_random_interleaving=true for medians: the
// plugins and the floor then take turns and share the machine's noise.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include "bench_args.h"
#include "cni_bench_support.h"
#include "vfplane/cni/exec.h"
#include "vfplane/netlink/links.h"
#include "vfplane/netlink/netns.h"
#include "vfplane/netlink/rtnl.h"
#include "vfplane/sriov/sim_node.h"

namespace {
namespace fs = std::filesystem;
using namespace vfplane;
using bench::Clock;
using bench::ms;

constexpr const char* kRefDir = "/usr/lib/cni";

std::string g_plugin;
fs::path g_dir;
sriov::SimNode g_node;
std::string g_podPath;

struct Cycle {
  double add = 0;
  double del = 0;
};

void report(benchmark::State& state, const std::vector<Cycle>& cycles) {
  double add = 0, del = 0;
  for (const auto& c : cycles) {
    add += c.add;
    del += c.del;
  }
  state.counters["add_ms"] = benchmark::Counter(add, benchmark::Counter::kAvgIterations);
  state.counters["del_ms"] = benchmark::Counter(del, benchmark::Counter::kAvgIterations);
}

void BM_Floor(benchmark::State& state) {
  const bool withAddress = state.range(0) != 0;
  const std::string name = *g_node.pfs[0].vfs[0].netdev;
  auto host = netlink::Rtnl::open();
  auto hostNs = netlink::Netns::current();
  auto podNs = netlink::Netns::open(g_podPath);
  auto address = netlink::IpPrefix::parse("10.77.0.2/24");
  if (!host || !hostNs || !podNs || !address)
    return state.SkipWithError("cannot open the namespaces");
  auto pod = netlink::Rtnl::openIn(*podNs);
  if (!pod) return state.SkipWithError(pod.error().message().c_str());
  // Exactly the requests vfplane-sriov's ADD makes: move, rename, arp_notify and up in one
  // request (and, for the IPAM rows, the pod address); DEL: move and rename home.
  netlink::LinkChange in;
  in.up = true;
  in.arpNotify = true;
  std::vector<Cycle> cycles;
  for (auto _ : state) {
    auto link = host->link(name);
    if (!link || !*link) return state.SkipWithError("VF link missing");
    auto t0 = Clock::now();
    auto moved =
        host->execute(netlink::buildMoveLink((*link)->ifindex, podNs->fd(), "net1", in), "move in");
    if (moved && withAddress)
      moved = pod->execute(netlink::buildAddress((*link)->ifindex, *address, true), "address");
    auto t1 = Clock::now();
    auto inPod = pod->link("net1");
    if (!moved || !inPod || !*inPod) return state.SkipWithError("move into the pod failed");
    std::this_thread::sleep_for(bench::kLifetime);
    auto t2 = Clock::now();
    auto out =
        pod->execute(netlink::buildMoveLink((*inPod)->ifindex, hostNs->fd(), name), "move home");
    auto t3 = Clock::now();
    if (!out) return state.SkipWithError(out.error().message().c_str());
    cycles.push_back({ms(t1 - t0), ms(t3 - t2)});
    state.SetIterationTime(std::chrono::duration<double>((t1 - t0) + (t3 - t2)).count());
  }
  report(state, cycles);
}
BENCHMARK(BM_Floor)->ArgName("address")->Arg(0)->Arg(1)->UseManualTime()->Unit(
    benchmark::kMillisecond);

// ipam 0: none; 1: Debian's host-local, exec'd; 2: vfplane-ipam (in-process in vfplane-sriov).
std::string ipamSection(int64_t ipam, const std::string& net) {
  if (ipam == 0) return "";
  return fmt::format(
      R"(,"ipam":{{"type":"{}","dataDir":"{}","ranges":[[{{"subnet":"10.77.0.0/24"}}]]}})",
      ipam == 2 ? "vfplane-ipam" : "host-local", (g_dir / "ipam" / net).string());
}

// One ADD + DEL of `config` through `binary`, as the runtime runs it.
bool cycle(benchmark::State& state, const std::string& binary, const std::string& config,
           const std::map<std::string, std::string>& extraEnv, std::vector<Cycle>& cycles) {
  std::map<std::string, std::string> env = {{"CNI_CONTAINERID", "bench"},
                                            {"CNI_NETNS", g_podPath},
                                            {"CNI_IFNAME", "net1"},
                                            {"CNI_PATH", kRefDir}};
  for (const auto& [k, v] : extraEnv) env[k] = v;
  Cycle c;
  std::string why = bench::timePluginCycle(binary, config, env, c.add, c.del,
                                           [] { std::this_thread::sleep_for(bench::kLifetime); });
  if (!why.empty()) {
    state.SkipWithError(why.c_str());
    return false;
  }
  cycles.push_back(c);
  state.SetIterationTime((c.add + c.del) / 1000.0);
  return true;
}

void BM_VfplaneSriov(benchmark::State& state) {
  if (g_plugin.empty()) return state.SkipWithError("--plugin PATH to vfplane-sriov is required");
  int64_t ipam = state.range(0);
  std::string config = fmt::format(
      R"({{"cniVersion":"1.0.0","name":"vfp","type":"vfplane-sriov","deviceID":"{}"{}}})",
      g_node.pfs[0].vfs[0].address.str(), ipamSection(ipam, "vfp"));
  std::map<std::string, std::string> env = {{"VFPLANE_SYSFS_ROOT", (g_dir / "node").string()},
                                            {"VFPLANE_STATE_DIR", (g_dir / "state").string()}};
  std::vector<Cycle> cycles;
  for (auto _ : state) {
    if (!cycle(state, g_plugin, config, env, cycles)) return;
  }
  report(state, cycles);
}
BENCHMARK(BM_VfplaneSriov)
    ->ArgName("ipam")
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

void BM_HostDevice(benchmark::State& state) {
  std::string binary = std::string(kRefDir) + "/host-device";
  if (::access(binary.c_str(), X_OK) != 0)
    return state.SkipWithError("/usr/lib/cni/host-device is missing");
  int64_t ipam = state.range(0);
  std::string config =
      fmt::format(R"({{"cniVersion":"1.0.0","name":"hd","type":"host-device","device":"{}"{}}})",
                  *g_node.pfs[0].vfs[1].netdev, ipamSection(ipam, "hd"));
  std::vector<Cycle> cycles;
  for (auto _ : state) {
    if (!cycle(state, binary, config, {}, cycles)) return;
  }
  report(state, cycles);
}
BENCHMARK(BM_HostDevice)
    ->ArgName("ipam")
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// What a plugin costs before it does anything: exec, dynamic loading, reading stdin, answering
// VERSION, exit. Part of every ADD and DEL; no kernel work in it.
void BM_ExecVersion(benchmark::State& state) {
  std::string binary = state.range(0) == 0 ? g_plugin : std::string(kRefDir) + "/host-device";
  if (binary.empty()) return state.SkipWithError("--plugin PATH to vfplane-sriov is required");
  std::map<std::string, std::string> env = {{"CNI_COMMAND", "VERSION"}};
  for (auto _ : state) {
    auto t0 = Clock::now();
    auto r = cni::runProcess(binary, env, R"({"cniVersion":"1.0.0"})");
    if (!r || r->exitCode != 0) return state.SkipWithError("VERSION failed");
    state.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  state.SetLabel(state.range(0) == 0 ? "vfplane-sriov" : "host-device");
}
BENCHMARK(BM_ExecVersion)
    ->ArgName("host_device")
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// Keeps each benchmark's median (real time and counters) for the summary.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  // No colour: the output also lands in meson's test logs.
  SummaryReporter() : ConsoleReporter(OO_Tabular) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& r : runs) {
      if (r.error_occurred) continue;
      bool median = r.run_type == Run::RT_Aggregate && r.aggregate_name == "median";
      bool single = r.run_type == Run::RT_Iteration && r.repetitions <= 1;
      if (!median && !single) continue;
      auto& m = medians_[r.run_name.str()];
      m.add = r.counters.count("add_ms") ? double(r.counters.at("add_ms")) : 0;
      m.del = r.counters.count("del_ms") ? double(r.counters.at("del_ms")) : 0;
    }
  }
  void printSummary() const {
    auto find = [&](const std::string& prefix) -> const Cycle* {
      for (const auto& [name, c] : medians_) {
        if (name.starts_with(prefix)) return &c;
      }
      return nullptr;
    };
    const Cycle* floor = find("BM_Floor/address:0");
    const Cycle* floorIp = find("BM_Floor/address:1");
    if (floor == nullptr || floorIp == nullptr) return;
    auto cycle = [](const Cycle* c) { return c->add + c->del; };
    std::printf("\nmedians (ms)                          ADD      DEL    cycle  above floor\n");
    std::printf("%-33s %7.2f  %7.2f  %7.2f\n", "floor: the moves, in-process", floor->add,
                floor->del, cycle(floor));
    std::printf("%-33s %7.2f  %7.2f  %7.2f\n", "floor: the moves + pod address", floorIp->add,
                floorIp->del, cycle(floorIp));
    // Rows without IPAM are measured against the bare moves, rows with IPAM against the moves plus
    // the address (removing it on the way home is kernel work every plugin pays).
    auto row = [&](const char* label, const Cycle* c, const Cycle* base) {
      if (c == nullptr) return;
      std::printf("%-33s %7.2f  %7.2f  %7.2f  %7.2f\n", label, c->add, c->del, cycle(c),
                  cycle(c) - cycle(base));
    };
    const Cycle* v0 = find("BM_VfplaneSriov/ipam:0");
    const Cycle* v1 = find("BM_VfplaneSriov/ipam:1");
    const Cycle* v2 = find("BM_VfplaneSriov/ipam:2");
    const Cycle* h0 = find("BM_HostDevice/ipam:0");
    const Cycle* h1 = find("BM_HostDevice/ipam:1");
    row("vfplane-sriov, no IPAM", v0, floor);
    row("host-device, no IPAM", h0, floor);
    row("vfplane-sriov + host-local", v1, floorIp);
    row("vfplane-sriov + vfplane-ipam", v2, floorIp);
    row("host-device + host-local", h1, floorIp);
    auto ratio = [&](const char* what, const Cycle* v, const Cycle* h, const Cycle* base) {
      if (v == nullptr || h == nullptr) return;
      double ov = cycle(v) - cycle(base), oh = cycle(h) - cycle(base);
      std::printf("overhead ratio %-53s %.2f (target <= 0.33)\n", what, oh > 0 ? ov / oh : 0);
    };
    ratio("vfplane-sriov+vfplane-ipam / host-device+host-local:", v2, h1, floorIp);
    ratio("vfplane-sriov / host-device, no IPAM:", v0, h0, floor);
  }

 private:
  std::map<std::string, Cycle> medians_;
};

}  // namespace

int main(int argc, char** argv) {
  vfplane::bench::takeOption(argc, argv, "--plugin", g_plugin);
  int exitCode = 0;
  auto world = bench::BenchWorld::open("cni_bench", &exitCode);
  if (!world) return exitCode;
  g_dir = world->dir();
  g_podPath = world->podPath();
  auto links = netlink::NetlinkLinks::open();
  if (!links) return 1;
  sriov::SimNodeSpec spec;
  spec.root = g_dir / "node";
  spec.pfs = 1;
  spec.vfs = 2;
  spec.veth = true;
  auto node = sriov::createSimNode(spec, links->get());
  if (!node) {
    std::fprintf(stderr, "cni_bench: %s\n", node.error().message().c_str());
    return 1;
  }
  g_node = *node;

  benchmark::AddCustomContext("node", "simulated, VF netdevs are veth links");
  SummaryReporter reporter;
  return bench::runBenchmarks(argc, argv, reporter, [&] { reporter.printSummary(); });
}
