// Device plugin latencies, on a simulated 16 PF x 64 VF node:
//   BM_StartToFirstList   vfplane-device-plugin process start -> first ListAndWatch at the kubelet
//                         (target <= 100 ms); also reports the plugin's RSS then (target <= 20 MB)
//   BM_AllocateRoundTrip  one Allocate over the unix socket (target: median <= 200 us)
//   BM_CarrierToUpdate    PF carrier loss -> ListAndWatch update at the kubelet (target <= 100 ms);
//                         needs root for a network namespace, otherwise it is skipped with a reason
//
//   dp_bench --plugin PATH [--pfs N --vfs M] [benchmark flags]
// Run with --benchmark_repetitions=10 --benchmark_report_aggregates_only=true for medians.
#include <benchmark/benchmark.h>
#include <grpcpp/grpcpp.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bench_args.h"
#include "deviceplugin_v1beta1.grpc.pb.h"
#include "vfplane/dp/daemon.h"
#include "vfplane/dp/kubelet_sim.h"
#include "vfplane/dp/plugin_client.h"
#include "vfplane/dp/plugin_server.h"
#include "vfplane/netlink/links.h"
#include "vfplane/sriov/sim_node.h"

extern char** environ;

namespace {
namespace fs = std::filesystem;
using namespace vfplane;
using Clock = std::chrono::steady_clock;

std::string g_plugin;
fs::path g_dir;
sriov::SimNodeSpec g_spec{.pfs = 16, .vfs = 64, .vfio = 8, .numaNodes = 2};
const char* kConfig = R"({"resourceList": [
  {"resourceName": "sriov_net_a", "selectors": {"drivers": ["iavf"]}},
  {"resourceName": "sriov_dpdk", "selectors": {"drivers": ["vfio-pci"]}}]})";

long rssKiB(pid_t pid) {
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::atol(line.c_str() + 6);
  }
  return -1;
}

void BM_StartToFirstList(benchmark::State& state) {
  if (g_plugin.empty()) {
    state.SkipWithError("--plugin PATH to vfplane-device-plugin is required");
    return;
  }
  double rss = 0;
  int run = 0;
  for (auto _ : state) {
    fs::path kubelet = g_dir / fmt::format("kubelet-{}", run++);
    std::atomic<bool> listed{false};
    Clock::time_point firstList;
    auto sim = dp::KubeletSim::start({kubelet.string(), false, ""}, [&](const dp::SimEvent& e) {
      if (e.kind == dp::SimEvent::kDevices && e.resource == "intel.com/sriov_net_a" &&
          !listed.exchange(true)) {
        firstList = Clock::now();
      }
    });
    if (!sim) {
      state.SkipWithError(sim.error().message().c_str());
      return;
    }
    std::vector<std::string> args = {g_plugin,
                                     "--config",
                                     (g_dir / "config.json").string(),
                                     "--kubelet-dir",
                                     kubelet.string(),
                                     "--sysfs-root",
                                     (g_dir / "node").string(),
                                     "--devinfo-dir",
                                     (g_dir / "devinfo").string(),
                                     "--log-level",
                                     "warn"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    auto start = Clock::now();
    pid_t pid;
    if (posix_spawn(&pid, g_plugin.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      state.SkipWithError("cannot start the plugin");
      return;
    }
    bool ok = (*sim)->waitFor([&] { return listed.load(); }, std::chrono::seconds(10));
    rss = static_cast<double>(rssKiB(pid)) * 1024;
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
    (*sim)->stop();
    if (!ok) {
      state.SkipWithError("no ListAndWatch within 10 s");
      return;
    }
    state.SetIterationTime(std::chrono::duration<double>(firstList - start).count());
  }
  state.counters["rss_bytes"] =
      benchmark::Counter(rss, benchmark::Counter::kDefaults, benchmark::Counter::kIs1024);
}
BENCHMARK(BM_StartToFirstList)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(5);

void BM_AllocateRoundTrip(benchmark::State& state) {
  auto config = dp::parseConfig(kConfig, "bench", "intel.com");
  auto inventory = sriov::discoverNode(sriov::Sysfs(g_dir / "node"));
  auto plan = dp::buildPools(*config, *inventory, {});
  if (plan.pools[0].devices.empty()) {
    state.SkipWithError("the node has no iavf VF to allocate");
    return;
  }
  auto pool = std::make_shared<dp::PoolState>(plan.pools[0]);
  fs::create_directories(g_dir / "alloc/device-plugins");
  dp::PluginServer server(pool, {(g_dir / "alloc").string(), (g_dir / "devinfo").string(),
                                 dp::RegistrationMode::kLegacy});
  if (auto ok = server.start(); !ok) {
    state.SkipWithError(ok.error().message().c_str());
    return;
  }
  // The raw stub, as the kubelet calls it: no JSON on the client side.
  auto channel =
      grpc::CreateChannel("unix:" + server.socketPath(), grpc::InsecureChannelCredentials());
  auto stub = v1beta1::DevicePlugin::NewStub(channel);
  v1beta1::AllocateRequest req;
  req.add_container_requests()->add_devices_ids(plan.pools[0].devices.front().id);
  auto call = [&] {
    grpc::ClientContext ctx;
    v1beta1::AllocateResponse resp;
    return stub->Allocate(&ctx, req, &resp);
  };
  // Range 1: GetDevicePluginOptions instead, an empty RPC: the gRPC floor on this machine.
  auto empty = [&] {
    grpc::ClientContext ctx;
    v1beta1::Empty e;
    v1beta1::DevicePluginOptions resp;
    return stub->GetDevicePluginOptions(&ctx, e, &resp);
  };
  bool floor = state.range(0) == 1;
  (void)call();  // connect outside the loop, as the kubelet keeps its connection
  for (auto _ : state) {
    if (auto status = floor ? empty() : call(); !status.ok()) {
      state.SkipWithError(status.error_message().c_str());
      break;
    }
  }
  server.stop();
}
BENCHMARK(BM_AllocateRoundTrip)
    ->ArgName("empty_rpc")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

void BM_CarrierToUpdate(benchmark::State& state) {
  static std::string skip;
  static bool entered = false;
  if (!entered) {
    entered = true;
    if (::geteuid() != 0) {
      skip = "needs root for a throwaway network namespace";
    } else if (::unshare(CLONE_NEWNET) != 0) {
      skip = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
    }
  }
  if (!skip.empty()) {
    state.SkipWithError(("skipped: " + skip).c_str());
    return;
  }
  auto links = netlink::NetlinkLinks::open();
  fs::path root = g_dir / "veth-node";
  auto node = sriov::createSimNode({.root = root, .pfs = 2, .vfs = 8, .veth = true}, links->get());
  if (!node) {
    state.SkipWithError(node.error().message().c_str());
    return;
  }
  fs::path kubelet = g_dir / "kubelet-carrier";
  std::atomic<int> unhealthy{-1};
  auto sim = dp::KubeletSim::start({kubelet.string(), false, ""}, [&](const dp::SimEvent& e) {
    if (e.kind != dp::SimEvent::kDevices) return;
    int n = 0;
    for (const auto& d : e.devices) n += d.health == "Unhealthy";
    unhealthy = n;
  });
  dp::DaemonOptions o;
  o.configPath = (g_dir / "config.json").string();
  o.kubeletDir = kubelet.string();
  o.sysfsRoot = root.string();
  o.devinfoDir = (g_dir / "devinfo").string();
  auto daemon = dp::Daemon::create(o);
  (void)(*daemon)->start();
  std::thread loop([&] { (*daemon)->run(); });
  (*sim)->waitFor([&] { return unhealthy == 0; }, std::chrono::seconds(10));
  for (auto _ : state) {
    auto start = Clock::now();
    (void)(*links)->setUp("ens1f0_rep", false);
    bool ok = (*sim)->waitFor([&] { return unhealthy == 8; }, std::chrono::seconds(5));
    auto end = Clock::now();
    (void)(*links)->setUp("ens1f0_rep", true);
    (*sim)->waitFor([&] { return unhealthy == 0; }, std::chrono::seconds(5));
    if (!ok) {
      state.SkipWithError("no Unhealthy update within 5 s");
      break;
    }
    state.SetIterationTime(std::chrono::duration<double>(end - start).count());
  }
  (*daemon)->stop();
  loop.join();
  (*sim)->stop();
  (void)sriov::destroySimNode(root, links->get());
}
BENCHMARK(BM_CarrierToUpdate)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(10);

void takeFlags(int& argc, char** argv) {
  bench::takeOption(argc, argv, "--plugin", g_plugin);
  for (auto [flag, target] : {std::pair{"--pfs", &g_spec.pfs}, std::pair{"--vfs", &g_spec.vfs}}) {
    if (std::string v; bench::takeOption(argc, argv, flag, v)) *target = std::atoi(v.c_str());
  }
  g_spec.vfio = std::min(g_spec.vfio, g_spec.vfs / 4);
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  takeFlags(argc, argv);
  std::string templ = (fs::temp_directory_path() / "vfplane-dpbench-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) return 1;
  g_dir = templ;
  g_spec.root = g_dir / "node";
  if (auto node = sriov::createSimNode(g_spec, nullptr); !node) {
    std::fprintf(stderr, "dp_bench: %s\n", node.error().message().c_str());
    return 1;
  }
  std::ofstream(g_dir / "config.json") << kConfig;
  benchmark::AddCustomContext("node", fmt::format("{} PFs x {} VFs", g_spec.pfs, g_spec.vfs));
  benchmark::Initialize(&argc, argv);
  int rc = benchmark::ReportUnrecognizedArguments(argc, argv) ? 2 : 0;
  if (rc == 0) benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  fs::remove_all(g_dir);
  return rc;
}
