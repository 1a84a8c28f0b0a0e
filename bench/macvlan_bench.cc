// vfplane-macvlan with in-process vfplane-ipam against Debian's macvlan + host-local, on the same
// master (a veth link) in a throwaway network namespace, one pod namespace for all attachments:
//   BM_Floor      the kernel's part, in-process: create the macvlan in the pod, rename it and
//                 bring it up, add the pod address (ADD); delete the link (DEL)
//   BM_Vfplane    vfplane-macvlan ADD then DEL, exec'd as a runtime does
//   BM_Reference  /usr/lib/cni/macvlan with host-local
// parallel:1 runs one attachment at a time; parallel:4 runs four workers at once, each cycling its
// own attachment. Every ADD and DEL is one sample; the counters are medians and p99s (ms).
// The summary compares ADD medians (target: vfplane <= 1/3 of the reference) and the ADD+DEL
// cycle's overhead above the floor (target <= 1/4).
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
#include "vfplane/sriov/links.h"
#include "vfplane/sriov/netns.h"
#include "vfplane/sriov/rtnl.h"

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

void report(benchmark::State& state, Samples& s) {
  state.counters["add_p50"] = percentile(s.add, 0.5);
  state.counters["add_p99"] = percentile(s.add, 0.99);
  state.counters["del_p50"] = percentile(s.del, 0.5);
  state.counters["del_p99"] = percentile(s.del, 0.99);
}

// Runs `cycle(worker)` on `workers` threads at once, `rounds` times each; one benchmark iteration
// is one round of all workers. A cycle returns "" or why it failed, which ends the benchmark.
template <class Cycle>
void runWorkers(benchmark::State& state, Cycle cycle) {
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
}

void BM_Floor(benchmark::State& state) {
  auto podNs = sriov::Netns::open(g_podPath);
  if (!podNs) return state.SkipWithError("cannot open the pod namespace");
  runWorkers(state, [&](int w, double& add, double& del) -> std::string {
    auto host = sriov::Rtnl::open();
    auto pod = sriov::Rtnl::openIn(*podNs);
    if (!host || !pod) return "cannot open netlink sockets";
    auto master = host->link(kMaster);
    auto address = sriov::IpPrefix::parse(fmt::format("10.88.{}.2/16", w));
    if (!master || !*master || !address) return "no master link";
    sriov::MacvlanSpec spec;
    spec.name = fmt::format("vfptmp{}", w);
    spec.masterIndex = (*master)->ifindex;
    spec.mode = MACVLAN_MODE_BRIDGE;
    spec.netnsFd = podNs->fd();
    std::string ifname = fmt::format("net{}", w);
    auto t0 = Clock::now();
    if (auto r = host->execute(sriov::buildCreateMacvlan(spec), "create"); !r) return r.error().message();
    auto link = pod->link(spec.name);
    if (!link || !*link) return "created link missing";
    sriov::LinkChange change;
    change.name = ifname;
    change.up = true;
    change.arpNotify = true;
    if (auto r = pod->execute(sriov::buildChangeLink((*link)->ifindex, change), "rename"); !r) return r.error().message();
    if (auto r = pod->execute(sriov::buildAddress((*link)->ifindex, *address, true), "address"); !r) return r.error().message();
    add = ms(Clock::now() - t0);
    std::this_thread::sleep_for(bench::kLifetime);
    auto t1 = Clock::now();
    if (auto r = pod->execute(sriov::buildDeleteLink((*link)->ifindex), "delete"); !r) return r.error().message();
    del = ms(Clock::now() - t1);
    return "";
  });
}
BENCHMARK(BM_Floor)->ArgName("parallel")->Arg(1)->Arg(4)->UseManualTime()->Unit(benchmark::kMillisecond);

std::string pluginCycle(const std::string& binary, const std::string& config, int w, double& add, double& del) {
  std::map<std::string, std::string> env = {{"CNI_CONTAINERID", fmt::format("bench{}", w)},
                                            {"CNI_NETNS", g_podPath},
                                            {"CNI_IFNAME", fmt::format("net{}", w)},
                                            {"CNI_PATH", kRefDir}};
  return bench::timePluginCycle(binary, config, env, add, del, [] { std::this_thread::sleep_for(bench::kLifetime); });
}

std::string networkConfig(const char* type, const char* ipam, const std::string& net) {
  return fmt::format(R"({{"cniVersion":"1.0.0","name":"{}","type":"{}","master":"{}",)"
                     R"("ipam":{{"type":"{}","dataDir":"{}","ranges":[[{{"subnet":"10.99.0.0/16"}}]]}}}})",
                     net, type, kMaster, ipam, (g_dir / "ipam").string());
}

void BM_Vfplane(benchmark::State& state) {
  if (g_plugin.empty()) return state.SkipWithError("--plugin PATH to vfplane-macvlan is required");
  std::string config = networkConfig("vfplane-macvlan", "vfplane-ipam", "vfp");
  runWorkers(state, [&](int w, double& add, double& del) { return pluginCycle(g_plugin, config, w, add, del); });
}
BENCHMARK(BM_Vfplane)->ArgName("parallel")->Arg(1)->Arg(4)->UseManualTime()->Unit(benchmark::kMillisecond);

void BM_Reference(benchmark::State& state) {
  std::string binary = std::string(kRefDir) + "/macvlan";
  if (::access(binary.c_str(), X_OK) != 0) return state.SkipWithError("/usr/lib/cni/macvlan is missing");
  std::string config = networkConfig("macvlan", "host-local", "ref");
  runWorkers(state, [&](int w, double& add, double& del) { return pluginCycle(binary, config, w, add, del); });
}
BENCHMARK(BM_Reference)->ArgName("parallel")->Arg(1)->Arg(4)->UseManualTime()->Unit(benchmark::kMillisecond);

struct Row {
  double addP50 = 0, addP99 = 0, delP50 = 0, delP99 = 0;
};

// Keeps each benchmark's medians (over repetitions) for the summary.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  SummaryReporter() : ConsoleReporter(OO_Tabular) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& r : runs) {
      if (r.error_occurred) continue;
      bool median = r.run_type == Run::RT_Aggregate && r.aggregate_name == "median";
      bool single = r.run_type == Run::RT_Iteration && r.repetitions <= 1;
      if (!median && !single) continue;
      auto c = [&](const char* k) { return r.counters.count(k) ? double(r.counters.at(k)) : 0.0; };
      rows_[r.run_name.str()] = Row{c("add_p50"), c("add_p99"), c("del_p50"), c("del_p99")};
    }
  }
  void printSummary() const {
    for (const char* par : {"1", "4"}) {
      auto find = [&](const std::string& name) -> const Row* {
        auto it = rows_.find(name + "/parallel:" + par + "/manual_time");
        return it == rows_.end() ? nullptr : &it->second;
      };
      const Row* floor = find("BM_Floor");
      const Row* ours = find("BM_Vfplane");
      const Row* ref = find("BM_Reference");
      if (floor == nullptr) continue;
      std::printf("\n%s at a time (ms)          ADD p50  ADD p99  DEL p50  DEL p99  cycle p50  above floor\n", par);
      auto row = [&](const char* label, const Row* r) {
        if (r == nullptr) return;
        std::printf("%-30s %7.2f  %7.2f  %7.2f  %7.2f  %9.2f  %11.2f\n", label, r->addP50, r->addP99, r->delP50,
                    r->delP99, r->addP50 + r->delP50, r->addP50 + r->delP50 - floor->addP50 - floor->delP50);
      };
      row("floor (kernel, in-process)", floor);
      row("vfplane-macvlan+vfplane-ipam", ours);
      row("macvlan+host-local (Debian)", ref);
      if (ours != nullptr && ref != nullptr && ref->addP50 > 0) {
        double ov = ours->addP50 + ours->delP50 - floor->addP50 - floor->delP50;
        double oh = ref->addP50 + ref->delP50 - floor->addP50 - floor->delP50;
        std::printf("ADD median ratio vfplane/reference:       %.2f (target <= 0.33)\n", ours->addP50 / ref->addP50);
        std::printf("cycle overhead ratio vfplane/reference:   %.2f (target <= 0.25)\n", oh > 0 ? ov / oh : 0);
      }
    }
  }

 private:
  std::map<std::string, Row> rows_;
};

}  // namespace

int main(int argc, char** argv) {
  vfplane::bench::takeOption(argc, argv, "--plugin", g_plugin);
  int exitCode = 0;
  auto world = bench::BenchWorld::open("macvlan_bench", &exitCode);
  if (!world) return exitCode;
  g_dir = world->dir();
  g_podPath = world->podPath();
  auto links = sriov::NetlinkLinks::open();
  if (!links || !(*links)->addVethPair(kMaster, "eno1peer") || !(*links)->setUp(kMaster, true)) {
    std::fprintf(stderr, "macvlan_bench: cannot create the master link\n");
    return 1;
  }

  benchmark::AddCustomContext("master", "veth link in a throwaway namespace");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.printSummary();
  benchmark::Shutdown();
  return 0;
}
