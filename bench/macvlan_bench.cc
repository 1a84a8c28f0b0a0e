// vfplane-macvlan with in-process vfplane-ipam against Debian's macvlan + host-local, on the same
// master (a veth link) in a throwaway network namespace, one pod namespace for all attachments:
//   BM_Floor      the kernel's part, in-process: create the macvlan in the pod, rename it and
//                 bring it up, add the pod address (ADD); delete the link (DEL)
//   BM_Vfplane    vfplane-macvlan ADD then DEL, exec'd as a runtime does
//   BM_Reference  /usr/lib/cni/macvlan with host-local
// parallel:1 runs one attachment at a time; parallel:4 runs four workers at once, each cycling its
// own attachment. Every ADD and DEL is one sample; the counters are medians and p99s (ms).
// The summary takes percentiles over every sample of the run and compares ADD medians (target:
// vfplane <= 1/3 of the reference) and the ADD+DEL cycle's overhead above the floor (<= 1/4).
// Run it with --benchmark_enable_random_interleaving=true and many short repetitions, so that the
// three take turns and share the machine's (noisy) conditions.
//
//   macvlan_bench --plugin PATH/vfplane-macvlan [benchmark flags]    (root; exit 77 otherwise)
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <linux/if_link.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "bench_args.h"
#include "cni_bench_support.h"
#include "vfplane/cni/exec.h"
#include "vfplane/netlink/links.h"
#include "vfplane/netlink/netns.h"
#include "vfplane/netlink/rtnl.h"

namespace {
namespace fs = std::filesystem;
using namespace vfplane;
using bench::Clock;
using bench::ms;

constexpr const char* kRefDir = "/usr/lib/cni";
constexpr const char* kMaster = "eno1";

std::string g_plugin;
fs::path g_dir;
std::string g_podPath;

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

struct Samples {
  std::mutex mu;
  std::vector<double> add, del;
  void record(double a, double d) {
    std::lock_guard lock(mu);
    add.push_back(a);
    del.push_back(d);
  }
};

// Every sample of every repetition, per benchmark ("BM_Vfplane/parallel:4"), for the summary:
// with random interleaving, a repetition holds only a few cycles, so percentiles are taken over
// the whole run.
std::map<std::string, Samples> g_all;

void report(benchmark::State& state, Samples& s) {
  state.counters["add_p50"] = percentile(s.add, 0.5);
  state.counters["add_p99"] = percentile(s.add, 0.99);
  state.counters["del_p50"] = percentile(s.del, 0.5);
  state.counters["del_p99"] = percentile(s.del, 0.99);
}

// Runs `cycle(worker)` on `workers` threads at once, `rounds` times each; one benchmark iteration
// is one round of all workers. A cycle returns "" or why it failed, which ends the benchmark.
template <class Cycle>
void runWorkers(benchmark::State& state, const char* benchmark, Cycle cycle) {
  const int workers = static_cast<int>(state.range(0));
  Samples samples;
  std::string error;
  std::mutex errorMu;
  for (auto _ : state) {
    auto t0 = Clock::now();
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w) {
      threads.emplace_back([&, w] {
        double add = 0, del = 0;
        std::string why = cycle(w, add, del);
        if (!why.empty()) {
          std::lock_guard lock(errorMu);
          error = why;
          return;
        }
        samples.record(add, del);
      });
    }
    for (auto& t : threads) t.join();
    state.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
    if (!error.empty()) return state.SkipWithError(error.c_str());
  }
  report(state, samples);
  auto& all = g_all[fmt::format("{}/parallel:{}", benchmark, workers)];
  all.add.insert(all.add.end(), samples.add.begin(), samples.add.end());
  all.del.insert(all.del.end(), samples.del.begin(), samples.del.end());
}

void BM_Floor(benchmark::State& state) {
  auto podNs = netlink::Netns::open(g_podPath);
  if (!podNs) return state.SkipWithError("cannot open the pod namespace");
  runWorkers(state, "BM_Floor", [&](int w, double& add, double& del) -> std::string {
    auto host = netlink::Rtnl::open();
    auto pod = netlink::Rtnl::openIn(*podNs);
    if (!host || !pod) return "cannot open netlink sockets";
    auto master = host->link(kMaster);
    auto address = netlink::IpPrefix::parse(fmt::format("10.88.{}.2/16", w));
    if (!master || !*master || !address) return "no master link";
    netlink::MacvlanSpec spec;
    spec.name = fmt::format("vfptmp{}", w);
    spec.masterIndex = (*master)->ifindex;
    spec.mode = MACVLAN_MODE_BRIDGE;
    spec.netnsFd = podNs->fd();
    std::string ifname = fmt::format("net{}", w);
    auto t0 = Clock::now();
    if (auto r = host->execute(netlink::buildCreateMacvlan(spec), "create"); !r)
      return r.error().message();
    auto link = pod->link(spec.name);
    if (!link || !*link) return "created link missing";
    netlink::LinkChange change;
    change.name = ifname;
    change.up = true;
    change.arpNotify = true;
    if (auto r = pod->execute(netlink::buildChangeLink((*link)->ifindex, change), "rename"); !r)
      return r.error().message();
    if (auto r = pod->execute(netlink::buildAddress((*link)->ifindex, *address, true), "address");
        !r)
      return r.error().message();
    add = ms(Clock::now() - t0);
    std::this_thread::sleep_for(bench::kLifetime);
    auto t1 = Clock::now();
    if (auto r = pod->execute(netlink::buildDeleteLink((*link)->ifindex), "delete"); !r)
      return r.error().message();
    del = ms(Clock::now() - t1);
    return "";
  });
}
BENCHMARK(BM_Floor)
    ->ArgName("parallel")
    ->Arg(1)
    ->Arg(4)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

std::string pluginCycle(const std::string& binary, const std::string& config, int w, double& add,
                        double& del) {
  std::map<std::string, std::string> env = {{"CNI_CONTAINERID", fmt::format("bench{}", w)},
                                            {"CNI_NETNS", g_podPath},
                                            {"CNI_IFNAME", fmt::format("net{}", w)},
                                            {"CNI_PATH", kRefDir}};
  return bench::timePluginCycle(binary, config, env, add, del,
                                [] { std::this_thread::sleep_for(bench::kLifetime); });
}

std::string networkConfig(const char* type, const char* ipam, const std::string& net) {
  return fmt::format(
      R"({{"cniVersion":"1.0.0","name":"{}","type":"{}","master":"{}",)"
      R"("ipam":{{"type":"{}","dataDir":"{}","ranges":[[{{"subnet":"10.99.0.0/16"}}]]}}}})",
      net, type, kMaster, ipam, (g_dir / "ipam").string());
}

void BM_Vfplane(benchmark::State& state) {
  if (g_plugin.empty()) return state.SkipWithError("--plugin PATH to vfplane-macvlan is required");
  std::string config = networkConfig("vfplane-macvlan", "vfplane-ipam", "vfp");
  runWorkers(state, "BM_Vfplane", [&](int w, double& add, double& del) {
    return pluginCycle(g_plugin, config, w, add, del);
  });
}
BENCHMARK(BM_Vfplane)
    ->ArgName("parallel")
    ->Arg(1)
    ->Arg(4)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

void BM_Reference(benchmark::State& state) {
  std::string binary = std::string(kRefDir) + "/macvlan";
  if (::access(binary.c_str(), X_OK) != 0)
    return state.SkipWithError("/usr/lib/cni/macvlan is missing");
  std::string config = networkConfig("macvlan", "host-local", "ref");
  runWorkers(state, "BM_Reference", [&](int w, double& add, double& del) {
    return pluginCycle(binary, config, w, add, del);
  });
}
BENCHMARK(BM_Reference)
    ->ArgName("parallel")
    ->Arg(1)
    ->Arg(4)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// Prints the run's percentiles from every sample, and the ratios the issue sets targets for.
void printSummary() {
  for (const char* par : {"1", "4"}) {
    auto find = [&](const char* name) -> const Samples* {
      auto it = g_all.find(fmt::format("{}/parallel:{}", name, par));
      return it == g_all.end() || it->second.add.empty() ? nullptr : &it->second;
    };
    const Samples* floor = find("BM_Floor");
    const Samples* ours = find("BM_Vfplane");
    const Samples* ref = find("BM_Reference");
    if (floor == nullptr) continue;
    auto cycle = [](const Samples* x) { return percentile(x->add, 0.5) + percentile(x->del, 0.5); };
    std::printf(
        "\n%s at a time, every sample (ms)  n   ADD p50  ADD p99  DEL p50  DEL p99  cycle p50  "
        "above floor\n",
        par);
    auto row = [&](const char* label, const Samples* x) {
      if (x == nullptr) return;
      std::printf("%-32s %4zu  %7.2f  %7.2f  %7.2f  %7.2f  %9.2f  %11.2f\n", label, x->add.size(),
                  percentile(x->add, 0.5), percentile(x->add, 0.99), percentile(x->del, 0.5),
                  percentile(x->del, 0.99), cycle(x), cycle(x) - cycle(floor));
    };
    row("floor (kernel, in-process)", floor);
    row("vfplane-macvlan+vfplane-ipam", ours);
    row("macvlan+host-local (Debian)", ref);
    if (ours != nullptr && ref != nullptr) {
      double oh = cycle(ref) - cycle(floor);
      std::printf("ADD median ratio vfplane/reference:       %.2f (target <= 0.33)\n",
                  percentile(ours->add, 0.5) / percentile(ref->add, 0.5));
      std::printf("cycle overhead ratio vfplane/reference:   %.2f (target <= 0.25)\n",
                  oh > 0 ? (cycle(ours) - cycle(floor)) / oh : 0);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  vfplane::bench::takeOption(argc, argv, "--plugin", g_plugin);
  int exitCode = 0;
  auto world = bench::BenchWorld::open("macvlan_bench", &exitCode);
  if (!world) return exitCode;
  g_dir = world->dir();
  g_podPath = world->podPath();
  auto links = netlink::NetlinkLinks::open();
  if (!links || !(*links)->addVethPair(kMaster, "eno1peer") || !(*links)->setUp(kMaster, true)) {
    std::fprintf(stderr, "macvlan_bench: cannot create the master link\n");
    return 1;
  }

  benchmark::AddCustomContext("master", "veth link in a throwaway namespace");
  benchmark::ConsoleReporter reporter(benchmark::ConsoleReporter::OO_Tabular);  // no colour: logs
  return bench::runBenchmarks(argc, argv, reporter, printSummary);
}
