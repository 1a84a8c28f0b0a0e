// How long discoverNode() takes on a large simulated node (16 PFs x 64 VFs by default).
//
//   discovery_bench [--pfs N] [--vfs M] [benchmark flags]
//
// The target is at most 50 ms per full discovery on the project's 2-core machine. Run it
// with --benchmark_repetitions=10 --benchmark_report_aggregates_only=true for the median.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "vfplane/sriov/inventory.h"
#include "vfplane/sriov/sim_node.h"

namespace {
namespace fs = std::filesystem;
using namespace vfplane::sriov;

fs::path g_root;

void BM_DiscoverNode(benchmark::State& state) {
  Sysfs sysfs(g_root);
  size_t vfs = 0;
  for (auto _ : state) {
    auto inventory = discoverNode(sysfs);
    if (!inventory) {
      state.SkipWithError(inventory.error().message().c_str());
      return;
    }
    vfs = 0;
    for (const auto& pf : inventory->pfs) vfs += pf.vfs.size();
    benchmark::DoNotOptimize(inventory);
  }
  state.counters["vfs"] = static_cast<double>(vfs);
  state.counters["devices_per_s"] =
      benchmark::Counter(static_cast<double>(vfs) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}
// Real time: discovery probes PFs on several threads, so the main thread's CPU time undercounts.
BENCHMARK(BM_DiscoverNode)->Unit(benchmark::kMillisecond)->UseRealTime();

// Takes --pfs/--vfs out of argv, leaving the rest for Google Benchmark.
void takeNodeFlags(int& argc, char** argv, SimNodeSpec& spec) {
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    if ((std::strcmp(argv[i], "--pfs") == 0 || std::strcmp(argv[i], "--vfs") == 0) &&
        i + 1 < argc) {
      (argv[i][2] == 'p' ? spec.pfs : spec.vfs) = std::atoi(argv[i + 1]);
      ++i;
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
}

}  // namespace

int main(int argc, char** argv) {
  SimNodeSpec spec{.pfs = 16, .vfs = 64, .vfio = 8, .numaNodes = 2};
  takeNodeFlags(argc, argv, spec);
  spec.vfio = std::min(spec.vfio, spec.vfs);
  std::string templ = (fs::temp_directory_path() / "vfplane-bench-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  g_root = fs::path(templ) / "node";
  spec.root = g_root;
  auto node = createSimNode(spec, nullptr);
  if (!node) {
    std::fprintf(stderr, "discovery_bench: %s\n", node.error().message().c_str());
    fs::remove_all(templ);
    return 1;
  }
  benchmark::AddCustomContext(
      "node", std::to_string(spec.pfs) + " PFs x " + std::to_string(spec.vfs) + " VFs");
  benchmark::Initialize(&argc, argv);
  int rc = 0;
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    rc = 2;
  } else {
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
  }
  fs::remove_all(templ);
  return rc;
}
