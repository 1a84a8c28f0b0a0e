// The XDP fast path's throughput, side by side with the kernel's own forwarding in the same run:
//
//   BM_ProgramCost/prog:0|1   ns per packet of the router program on a forwarded packet (1), and
//                             of the pass-through program as the floor (0), via BPF_PROG_TEST_RUN
//   BM_VethForward/xdp:0|1    UDP packets per second from pod1 to pod2 through a router namespace
//                             that forwards with its kernel (0: ip_forward=1, no XDP) or with the
//                             XDP router (1: ip_forward=0), on veth links
//
//   xdp_bench [--packets N] [benchmark flags]   (root; exit 77 otherwise)
//
// Run with --benchmark_repetitions=10 --benchmark_enable_random_interleaving=true
// --benchmark_report_aggregates_only=true and compare medians: on a 2-core VM the sender, the
// forwarding and the receiver share the cores, so single runs are noisy.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>

#include "bench_args.h"
#include "error_reporter.h"
#include "pod_netns.h"
#include "vfplane/dataplane/kernel_model.h"
#include "vfplane/dataplane/xdp_router.h"
#include "vfplane/netlink/rtnl.h"

namespace {
using namespace vfplane;
using Clock = std::chrono::steady_clock;

constexpr uint16_t kPort = 5001;
constexpr size_t kPayload = 18;  // 64-byte frames on the wire
size_t g_packets = 200000;

// A pod: a network namespace held by a child that dies with us.
struct Pod {
  pid_t pid = -1;
  std::string path() const { return "/proc/" + std::to_string(pid) + "/ns/net"; }
};

std::optional<Pod> makePod() {
  auto pid = bench::forkPodNetns();
  if (!pid) return std::nullopt;
  return Pod{*pid};
}

bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }
bool inPod(const Pod& pod, const std::string& cmd) {
  return sh("nsenter --net=" + pod.path() + " " + cmd);
}

// Ethernet, IPv4 10.1.0.2 -> 10.2.0.2 (TTL 64, checksum), UDP to kPort without a checksum.
std::vector<uint8_t> udpFrame(const netlink::MacAddress& dst, const netlink::MacAddress& src,
                              uint8_t ttl = 64) {
  std::vector<uint8_t> f(dst.bytes.begin(), dst.bytes.end());
  f.insert(f.end(), src.bytes.begin(), src.bytes.end());
  f.push_back(0x08);
  f.push_back(0x00);
  uint8_t ip[20] = {0x45, 0, 0, 20 + 8 + kPayload, 0, 1, 0x40, 0, ttl, 17, 0, 0, 10, 1, 0, 2, 10,
                    2,    0, 2};
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += static_cast<uint32_t>(ip[i] << 8 | ip[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  ip[10] = static_cast<uint8_t>(~sum >> 8);
  ip[11] = static_cast<uint8_t>(~sum);
  f.insert(f.end(), ip, ip + 20);
  uint8_t udp[8] = {0x30, 0x39, kPort >> 8, kPort & 0xff, 0, 8 + kPayload, 0, 0};
  f.insert(f.end(), udp, udp + 8);
  f.resize(f.size() + kPayload, 0);
  return f;
}

bool enterNetns(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::setns(fd, CLONE_NEWNET) == 0;
  ::close(fd);
  return ok;
}

void setForwarding(bool on) { std::ofstream("/proc/sys/net/ipv4/ip_forward") << (on ? "1" : "0"); }

struct World {
  Pod pod1, pod2;
  std::optional<dataplane::XdpRouter> router;
  int r1 = 0, r2 = 0, h1 = 0, h2 = 0;  // ifindexes (h* in their pods)
  std::string r1Mac, h1Mac, h2Mac;
  bool attached = false;
  std::string error;
};
World* g_world = nullptr;

netlink::LinkInfo linkIn(const std::string& nsPath, const char* name) {
  netlink::LinkInfo info;
  std::thread([&] {
    if (nsPath.empty() || enterNetns(nsPath)) {
      auto rtnl = netlink::Rtnl::open();
      if (rtnl) {
        if (auto l = rtnl->link(name); l && *l) info = **l;
      }
    }
  }).join();
  return info;
}

std::string buildWorld(World& w) {
  auto p1 = makePod(), p2 = makePod();
  if (!p1 || !p2) return "cannot make the pods' network namespaces";
  w.pod1 = *p1;
  w.pod2 = *p2;
  for (auto [r, h, pod, n] :
       {std::tuple{"r1", "h1", &w.pod1, 1}, std::tuple{"r2", "h2", &w.pod2, 2}}) {
    bool ok = sh(fmt::format("ip link add {} type veth peer name {}", r, h)) &&
              sh(fmt::format("ip link set {} netns {}", h, pod->pid)) &&
              sh(fmt::format("ip addr add 10.{}.0.1/24 dev {}", n, r)) &&
              sh(fmt::format("ip link set {} up", r)) &&
              inPod(*pod, fmt::format("ip addr add 10.{}.0.2/24 dev {}", n, h)) &&
              inPod(*pod, fmt::format("ip link set {} up", h)) &&
              inPod(*pod, fmt::format("ip route add default via 10.{}.0.1", n));
    if (!ok) return fmt::format("cannot set up {}/{}", r, h);
  }
  // The router learns both pods' MACs, which the model needs.
  if (!sh("ping -c 1 -W 2 10.1.0.2") || !sh("ping -c 1 -W 2 10.2.0.2"))
    return "the router cannot reach the pods";
  auto router = dataplane::XdpRouter::load({});
  if (!router) return router.error().message();
  w.router.emplace(std::move(*router));
  auto rtnl = netlink::Rtnl::open();
  auto tables = dataplane::readKernelTables(*rtnl);
  if (!tables) return tables.error().message();
  auto model = dataplane::buildModel(*tables, {"r1", "r2"});
  if (!model) return model.error().message();
  if (auto ok = w.router->install(model->compile()); !ok) return ok.error().message();
  auto r1 = linkIn("", "r1"), h1 = linkIn(w.pod1.path(), "h1");
  for (const auto& r : {r1, linkIn("", "r2")}) {
    if (auto ok = w.router->setPort(r.ifindex, *netlink::MacAddress::parse(r.mac)); !ok)
      return ok.error().message();
  }
  w.r1 = r1.ifindex;
  w.r1Mac = r1.mac;
  w.r2 = linkIn("", "r2").ifindex;
  w.h1 = h1.ifindex;
  w.h1Mac = h1.mac;
  auto h2 = linkIn(w.pod2.path(), "h2");
  w.h2 = h2.ifindex;
  w.h2Mac = h2.mac;
  // For BM_ProgramCost: a test run comes in on lo and rewrites its own buffer on every repeat, so
  // lo is declared a port whose MAC is the one the router writes (pod2's), and the frame stays
  // routable run after run.
  if (auto ok = w.router->setPort(1, *netlink::MacAddress::parse(h2.mac)); !ok)
    return ok.error().message();
  // The pods' ends run the pass-through program for the whole run: veth hands redirected frames
  // only to a peer with XDP, and keeping it in the kernel runs too keeps the two paths alike.
  for (auto [pod, index] : {std::pair{&w.pod1, w.h1}, std::pair{&w.pod2, w.h2}}) {
    std::string err;
    std::thread([&] {
      if (!enterNetns(pod->path())) {
        err = "setns";
      } else if (auto ok = g_world->router->attachPass(index, dataplane::XdpMode::kNative); !ok) {
        err = ok.error().message();
      }
    }).join();
    if (!err.empty()) return err;
  }
  return "";
}

bool useXdp(World& w, bool on) {
  setForwarding(!on);
  if (on == w.attached) return true;
  for (int index : {w.r1, w.r2}) {
    auto ok = on ? w.router->attach(index, dataplane::XdpMode::kNative) : w.router->detach(index);
    if (!ok) return false;
  }
  w.attached = on;
  return true;
}

// Sends g_packets UDP datagrams from pod1 to pod2 and counts what arrives. Returns the time from
// the first to the last arrival and the count, or nullopt on a setup error.
std::optional<std::pair<double, size_t>> blast(World& w) {
  std::atomic<int> listening{0};  // 1 listening, -1 failed
  std::atomic<bool> senderDone{false};
  std::string sendError;
  size_t received = 0;
  Clock::time_point first, last;
  std::thread receiver([&] {
    if (!enterNetns(w.pod2.path())) {
      listening = -1;
      return;
    }
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int buf = 32 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf);
    timeval tv{0, 200000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(kPort);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      listening = -1;
      return;
    }
    listening = 1;
    constexpr int kBatch = 64;
    char data[kBatch][64];
    iovec iov[kBatch];
    mmsghdr msgs[kBatch];
    for (int i = 0; i < kBatch; ++i) {
      iov[i] = {data[i], sizeof data[i]};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    while (received < g_packets) {
      int n = ::recvmmsg(fd, msgs, kBatch, MSG_WAITFORONE, nullptr);
      if (n <= 0) {
        if (senderDone) break;  // 200 ms of silence after the sender finished: the rest is lost
        continue;
      }
      last = Clock::now();
      if (received == 0) first = last;
      received += static_cast<size_t>(n);
    }
    ::close(fd);
  });
  while (listening == 0) std::this_thread::yield();
  if (listening < 0) {
    receiver.join();
    return std::nullopt;
  }
  std::thread sender([&] {
    if (!enterNetns(w.pod1.path())) {
      sendError = "setns";
      senderDone = true;
      return;
    }
    // Whole frames on a packet socket past the qdisc: the UDP socket path costs the sender more
    // per packet than forwarding costs the router, and the test would measure the sender.
    int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
    sockaddr_ll ll{};
    ll.sll_family = AF_PACKET;
    ll.sll_ifindex = w.h1;
    ll.sll_halen = 6;
    auto dst = *netlink::MacAddress::parse(w.r1Mac), src = *netlink::MacAddress::parse(w.h1Mac);
    std::copy(dst.bytes.begin(), dst.bytes.end(), ll.sll_addr);
    std::vector<uint8_t> frame = udpFrame(dst, src);
    constexpr int kBatch = 64;
    iovec iov{frame.data(), frame.size()};
    mmsghdr msgs[kBatch];
    for (auto& m : msgs) {
      m = {};
      m.msg_hdr.msg_name = &ll;
      m.msg_hdr.msg_namelen = sizeof ll;
      m.msg_hdr.msg_iov = &iov;
      m.msg_hdr.msg_iovlen = 1;
    }
    for (size_t sent = 0; sent < g_packets;) {
      int n = ::sendmmsg(fd, msgs,
                         static_cast<unsigned>(std::min<size_t>(kBatch, g_packets - sent)), 0);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
        sendError = std::string("sendmmsg: ") + std::strerror(errno);
        break;
      }
    }
    ::close(fd);
    senderDone = true;
  });
  sender.join();
  receiver.join();
  if (!sendError.empty()) std::fprintf(stderr, "xdp_bench: sender: %s\n", sendError.c_str());
  if (received < 2) return std::nullopt;
  return std::pair{std::chrono::duration<double>(last - first).count(), received};
}

void BM_VethForward(benchmark::State& state) {
  World& w = *g_world;
  bool xdp = state.range(0) == 1;
  if (!useXdp(w, xdp)) {
    state.SkipWithError("cannot switch the forwarding mode");
    return;
  }
  size_t lost = 0, total = 0;
  auto before = w.router->counters();
  for (auto _ : state) {
    auto r = blast(w);
    if (!r) {
      state.SkipWithError("no packets arrived");
      return;
    }
    state.SetIterationTime(r->first);
    state.SetItemsProcessed(state.items_processed() + static_cast<int64_t>(r->second));
    lost += g_packets - r->second;
    total += g_packets;
  }
  auto after = w.router->counters();
  state.counters["loss_pct"] = 100.0 * static_cast<double>(lost) / static_cast<double>(total);
  if (before && after) {
    // Proof of which path carried the traffic.
    state.counters["xdp_forwarded"] = static_cast<double>(after->forwarded - before->forwarded);
  }
}
BENCHMARK(BM_VethForward)
    ->ArgName("xdp")
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

void BM_ProgramCost(benchmark::State& state) {
  World& w = *g_world;
  // A frame to pod2, addressed to the MAC the router writes (see buildWorld), TTL 255: a repeated
  // test run rewrites the same buffer, so each run takes one off the TTL.
  std::vector<uint8_t> frame =
      udpFrame(*netlink::MacAddress::parse(w.h2Mac), *netlink::MacAddress::parse(w.h1Mac), 255);
  int fd = state.range(0) == 1 ? w.router->routerFd() : w.router->passFd();
  std::vector<uint8_t> out(frame.size() + 64);
  constexpr uint32_t kRepeat = 250;  // below the TTL
  double nsSum = 0;
  for (auto _ : state) {
    bpf_test_run_opts opts{};
    opts.sz = sizeof opts;
    opts.data_in = frame.data();
    opts.data_size_in = static_cast<__u32>(frame.size());
    opts.data_out = out.data();
    opts.data_size_out = static_cast<__u32>(out.size());
    opts.repeat = kRepeat;
    if (bpf_prog_test_run_opts(fd, &opts) != 0) {
      state.SkipWithError("BPF_PROG_TEST_RUN failed");
      return;
    }
    if (state.range(0) == 1 && opts.retval != XDP_REDIRECT) {
      state.SkipWithError(
          fmt::format("the router did not forward the probe packet (verdict {})", opts.retval)
              .c_str());
      return;
    }
    // opts.duration is the average per run, in ns.
    state.SetIterationTime(static_cast<double>(opts.duration) * 1e-9 * kRepeat);
    nsSum += static_cast<double>(opts.duration);
  }
  state.counters["ns_per_packet"] = benchmark::Counter(nsSum, benchmark::Counter::kAvgIterations);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kRepeat);
  state.SetLabel(state.range(0) == 1 ? "router, forwarded" : "pass (floor)");
}
// Fixed iterations: each test run may switch the kernel's XDP dispatcher, which waits for an RCU
// grace period, so letting the library pick thousands of iterations would take minutes.
BENCHMARK(BM_ProgramCost)
    ->ArgName("prog")
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Iterations(40)
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  std::string packets;
  if (bench::takeOption(argc, argv, "--packets", packets)) g_packets = std::stoul(packets);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  if (::geteuid() != 0 || ::unshare(CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "xdp_bench: SKIP: needs root for throwaway network namespaces and BPF\n");
    return 77;
  }
  World world;
  g_world = &world;
  if (std::string err = buildWorld(world); !err.empty()) {
    std::fprintf(stderr, "xdp_bench: %s\n", err.c_str());
    return err.find("BPF") != std::string::npos || err.find("bpf") != std::string::npos ? 77 : 1;
  }
  benchmark::AddCustomContext("packets per run", std::to_string(g_packets));
  bench::ErrorCountingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  world.router.reset();
  int rc = reporter.errors() > 0 ? 1 : 0;
  for (pid_t pid : {world.pod1.pid, world.pod2.pid}) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  return rc;
}
