// What the CNI benchmarks share: a throwaway network namespace for the whole run, a scratch
// directory, one pod namespace held by a child process, and timing a plugin as a runtime runs it.
#pragma once

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "pod_netns.h"
#include "vfplane/cni/exec.h"

namespace vfplane::bench {

using Clock = std::chrono::steady_clock;
inline double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// How long an attachment lives between ADD and DEL (not timed), in the floors and the plugin runs
// alike. A link torn down the moment it came up still has the kernel's start-up work (IPv6 DAD,
// MLD) in flight, which made DEL's cost depend on how fast the ADD before it was; pods live
// longer than this.
constexpr auto kLifetime = std::chrono::milliseconds(50);

// The run's surroundings. open() moves the process into a new network namespace (so the host's
// links are never touched), makes the scratch directory and forks the pod. Exit code 77 (skip)
// without root.
class BenchWorld {
 public:
  static std::optional<BenchWorld> open(const char* program, int* exitCode) {
    if (::unshare(CLONE_NEWNET) != 0) {
      std::fprintf(stderr, "%s: SKIP: needs root for a throwaway network namespace (unshare: %s)\n",
                   program, std::strerror(errno));
      *exitCode = 77;
      return std::nullopt;
    }
    std::string templ =
        (std::filesystem::temp_directory_path() / fmt::format("{}-XXXXXX", program)).string();
    if (::mkdtemp(templ.data()) == nullptr) {
      *exitCode = 1;
      return std::nullopt;
    }
    auto pid = forkPodNetns();
    BenchWorld world(templ, pid.value_or(-1));
    if (!pid) {
      std::fprintf(stderr, "%s: cannot make the pod's network namespace\n", program);
      *exitCode = 1;
      return std::nullopt;
    }
    return world;
  }
  BenchWorld(BenchWorld&& o) noexcept : dir_(std::exchange(o.dir_, {})), podPid_(o.podPid_) {
    o.podPid_ = -1;
  }
  BenchWorld& operator=(BenchWorld&&) = delete;
  ~BenchWorld() {
    if (podPid_ > 0) {
      ::kill(podPid_, SIGKILL);
      ::waitpid(podPid_, nullptr, 0);
    }
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  const std::filesystem::path& dir() const { return dir_; }
  std::string podPath() const { return fmt::format("/proc/{}/ns/net", podPid_); }

 private:
  BenchWorld(std::filesystem::path dir, pid_t pid) : dir_(std::move(dir)), podPid_(pid) {}
  std::filesystem::path dir_;
  pid_t podPid_;
};

// One ADD then DEL of `config` through `binary`, exec'd as a runtime does; the wall time of each
// lands in add/del (ms). `beforeDel` runs in between, untimed. Returns "" or why it failed.
template <class BeforeDel>
std::string timePluginCycle(const std::string& binary, const std::string& config,
                            std::map<std::string, std::string> env, double& add, double& del,
                            BeforeDel beforeDel) {
  env.emplace("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
  for (const char* command : {"ADD", "DEL"}) {
    env["CNI_COMMAND"] = command;
    if (command[0] == 'D') beforeDel();
    auto t0 = Clock::now();
    auto r = cni::runProcess(binary, env, config);
    double took = ms(Clock::now() - t0);
    if (!r || r->exitCode != 0) {
      return fmt::format("{} {} failed: {}", std::filesystem::path(binary).filename().string(),
                         command, r ? r->out + r->err : r.error().message());
    }
    (command[0] == 'A' ? add : del) = took;
  }
  return "";
}

// Google Benchmark's part of main(): unknown flags are exit 2; `summary` runs after the benchmarks,
// before shutdown.
template <class Summary>
int runBenchmarks(int& argc, char** argv, benchmark::BenchmarkReporter& reporter, Summary summary) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  summary();
  benchmark::Shutdown();
  return 0;
}

}  // namespace vfplane::bench
