// xdp_chain: the XDP half of scripts/bench router (bench/router_bench.py drives it).
//
//   generator --veth--> [r1  router namespace  r2] --veth--> sink
//
//   xdp_chain attach --prog fib|floor|pass --dev r1 [--tx r2 ...]
//       In the current namespace: loads one of the chain's router-side programs (bpf_fib_lookup
//       router, redirect-only floor, pass-through for kernel forwarding) and attaches it to DEV in
//       native mode. The attachment outlives the process; `ip link set DEV xdp off` removes it.
//   xdp_chain run --gen-dev g0 --sink-netns NS --sink-dev s0 --pcap FILE
//                 [--seconds 3] [--warmup 1] [--cpu N] [--sent-ttl 64]
//       In the generator's namespace: attaches the counting sink in NS, then sends the pcap's
//       frames, one header after the other, with BPF_PROG_TEST_RUN in live-frames mode on the
//       generator's veth, pinned to one CPU. Prints one JSON object: sent, received (at the
//       sink), forwarded (received with the TTL one lower), wall seconds, and the kernel's own
//       duration per packet.
//   xdp_chain cost --dev r1 --pcap FILE --expect redirect|pass [--samples N] [--repeat 1]
//       In the router's namespace: the cost of the program attached to DEV under
//       BPF_PROG_TEST_RUN on the pcap's frames, beside a pass-through program's, as JSON. With
//       --repeat 1 each frame runs once, one after the other, as in the chain (the kernel's
//       timer is then part of both figures); a higher repeat runs each frame that often on its
//       own buffer, warm in the caches.
//   xdp_chain passed --dev r1
//       The frames the fib program attached to DEV has left to the kernel so far, as JSON.
//
// Exit 0; 1 with the reason on stderr; 77 when the machine cannot (not root, no BPF).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/if_link.h>
#include <net/if.h>
// libpcap's own struct bpf_insn would clash with the kernel's: this file needs no filters.
#define PCAP_DONT_INCLUDE_PCAP_BPF_H
#include <pcap/pcap.h>
#include <sched.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "xdp_chain.skel.h"
#pragma GCC diagnostic pop

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kHeader = 64;  // XDPC_HDR in xdp_chain.bpf.c

// A failure with its reason; exit 77 when the machine, not the run, is the cause.
struct Failure : std::runtime_error {
  int code;
  Failure(const std::string& what, int c = 1) : std::runtime_error(what), code(c) {}
};

[[noreturn]] void bpfFail(const std::string& what, int rc) {
  int err = rc < 0 ? -rc : errno;
  throw Failure(fmt::format("{}: {}", what, std::strerror(err)),
                err == EPERM || err == ENOSYS ? 77 : 1);
}

struct SkelDeleter {
  void operator()(xdp_chain* s) const { xdp_chain__destroy(s); }
};
using Skel = std::unique_ptr<xdp_chain, SkelDeleter>;

Skel openSkel() {
  Skel skel(xdp_chain__open());
  if (!skel) bpfFail("open the chain's BPF object", -errno);
  return skel;
}

void loadSkel(const Skel& skel) {
  if (int rc = xdp_chain__load(skel.get()); rc != 0) bpfFail("load the chain's BPF programs", rc);
}

unsigned ifindexOf(const std::string& dev) {
  unsigned index = if_nametoindex(dev.c_str());
  if (index == 0) throw Failure(fmt::format("no link {} in this namespace", dev));
  return index;
}

// All frames of a pcap; they must be of one length (live mode sends one size).
std::vector<std::vector<uint8_t>> readPcap(const std::string& path) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline(path.c_str(), err);
  if (!p) throw Failure(fmt::format("{}: {}", path, err));
  std::vector<std::vector<uint8_t>> frames;
  pcap_pkthdr* h;
  const u_char* data;
  int rc;
  while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
    frames.emplace_back(data, data + h->caplen);
    if (frames.back().size() != frames.front().size()) {
      pcap_close(p);
      throw Failure(fmt::format("{}: frame {} is {} bytes, the first {}: one size per run", path,
                                frames.size(), frames.back().size(), frames.front().size()));
    }
  }
  std::string why = rc == -1 ? pcap_geterr(p) : "";
  pcap_close(p);
  if (!why.empty()) throw Failure(fmt::format("{}: {}", path, why));
  if (frames.empty()) throw Failure(fmt::format("{}: no frames", path));
  if (frames.front().size() < 48) {
    throw Failure(fmt::format("{}: {}-byte frames are shorter than a UDP header", path,
                              frames.front().size()));
  }
  return frames;
}

// Runs fn with this thread in another network namespace (/var/run/netns/NAME).
template <typename Fn>
void inNetns(const std::string& name, Fn fn) {
  std::exception_ptr failure;
  std::thread([&] {
    try {
      std::string path = "/var/run/netns/" + name;
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) throw Failure(fmt::format("{}: {}", path, std::strerror(errno)));
      int rc = ::setns(fd, CLONE_NEWNET);
      ::close(fd);
      if (rc != 0) throw Failure(fmt::format("setns {}: {}", path, std::strerror(errno)));
      fn();
    } catch (...) {
      failure = std::current_exception();
    }
  }).join();
  if (failure) std::rethrow_exception(failure);
}

void attachNative(int progFd, unsigned ifindex, const std::string& dev) {
  if (int rc = bpf_xdp_attach(static_cast<int>(ifindex), progFd, XDP_FLAGS_DRV_MODE, nullptr);
      rc != 0) {
    bpfFail(fmt::format("attach XDP (native) to {}", dev), rc);
  }
}

// ---- attach ----------------------------------------------------------------------------------

void attach(const std::string& prog, const std::string& dev, const std::vector<std::string>& tx) {
  Skel skel = openSkel();
  unsigned index = ifindexOf(dev);
  std::vector<unsigned> txIndexes;
  for (const auto& t : tx) txIndexes.push_back(ifindexOf(t));
  if (prog == "floor") {
    if (txIndexes.empty()) throw Failure("--prog floor needs its egress port (--tx)");
    skel->rodata->floor_ifindex = txIndexes.front();
  }
  loadSkel(skel);
  for (unsigned t : txIndexes) {
    if (int rc = bpf_map_update_elem(bpf_map__fd(skel->maps.tx_ports), &t, &t, BPF_ANY); rc != 0)
      bpfFail("add an egress port to the devmap", rc);
  }
  bpf_program* p = prog == "fib"     ? skel->progs.xdpc_fib
                   : prog == "floor" ? skel->progs.xdpc_floor
                                     : skel->progs.xdpc_pass;
  attachNative(bpf_program__fd(p), index, dev);
}

// ---- run -------------------------------------------------------------------------------------

struct SinkCounts {
  uint64_t seen = 0, forwarded = 0;
};

SinkCounts readSink(int mapFd) {
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) bpfFail("count the possible CPUs", cpus);
  std::vector<uint64_t> v(static_cast<size_t>(cpus));
  SinkCounts c;
  for (uint32_t key : {0u, 1u}) {
    if (int rc = bpf_map_lookup_elem(mapFd, &key, v.data()); rc != 0)
      bpfFail("read the sink's counters", rc);
    uint64_t sum = 0;
    for (uint64_t x : v) sum += x;
    (key == 0 ? c.seen : c.forwarded) = sum;
  }
  return c;
}

struct Burst {
  uint64_t sent = 0;
  double kernelNs = 0;  // duration summed over the packets
};

// A test run of one frame, arriving on ifindex, `repeat` times. ctx must outlive the run.
bpf_test_run_opts testRun(std::vector<uint8_t>& frame, xdp_md& ctx, unsigned ifindex,
                          uint32_t repeat) {
  ctx = {};
  ctx.data_end = static_cast<__u32>(frame.size());  // the kernel wants data 0, data_end the size
  ctx.ingress_ifindex = ifindex;
  bpf_test_run_opts opts{};
  opts.sz = sizeof opts;
  opts.data_in = frame.data();
  opts.data_size_in = static_cast<__u32>(frame.size());
  opts.ctx_in = &ctx;
  opts.ctx_size_in = sizeof ctx;
  opts.repeat = repeat;
  return opts;
}

// Test runs in live-frames mode for `seconds`: each call sends `repeat` frames, and the count
// adapts so that a call takes about 100 ms (the loop checks the clock between calls).
Burst generate(int progFd, std::vector<uint8_t>& frame, unsigned ifindex, double seconds,
               uint32_t& repeat) {
  Burst b;
  auto end = Clock::now() + std::chrono::duration<double>(seconds);
  do {
    xdp_md ctx;
    bpf_test_run_opts opts = testRun(frame, ctx, ifindex, repeat);
    opts.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
    auto t0 = Clock::now();
    if (int rc = bpf_prog_test_run_opts(progFd, &opts); rc != 0)
      bpfFail("BPF_PROG_TEST_RUN (live frames) on the generator", rc);
    double took = std::chrono::duration<double>(Clock::now() - t0).count();
    b.sent += repeat;
    b.kernelNs += static_cast<double>(opts.duration) * repeat;  // duration: ns per repetition
    if (took > 0) {
      repeat = static_cast<uint32_t>(
          std::clamp(static_cast<double>(repeat) * 0.1 / took, 1024.0, 1.0 * (1u << 26)));
    }
  } while (Clock::now() < end);
  return b;
}

nlohmann::json run(const std::string& genDev, const std::string& sinkNetns,
                   const std::string& sinkDev, const std::string& pcap, double seconds,
                   double warmup, int cpu, unsigned sentTtl) {
  auto frames = readPcap(pcap);
  size_t size = frames.front().size();
  Skel skel = openSkel();
  skel->rodata->header_len = size >= kHeader ? kHeader : 48;
  skel->rodata->header_count = static_cast<__u32>(frames.size());
  skel->rodata->sent_ttl = sentTtl;
  if (int rc = bpf_map__set_max_entries(skel->maps.headers, static_cast<__u32>(frames.size()));
      rc != 0) {
    bpfFail("size the generator's header table", rc);
  }
  loadSkel(skel);
  int headers = bpf_map__fd(skel->maps.headers);
  for (uint32_t i = 0; i < frames.size(); ++i) {
    uint8_t h[kHeader] = {};
    std::memcpy(h, frames[i].data(), std::min(size, kHeader));
    if (int rc = bpf_map_update_elem(headers, &i, h, BPF_ANY); rc != 0)
      bpfFail("fill the generator's header table", rc);
  }
  unsigned gen = ifindexOf(genDev);
  unsigned sink = 0;
  inNetns(sinkNetns, [&] {
    sink = ifindexOf(sinkDev);
    attachNative(bpf_program__fd(skel->progs.xdpc_sink), sink, sinkDev);
  });
  // The whole chain runs where the generator does: veth schedules its peer's NAPI on the CPU
  // that sends, and a live test run lets softirqs run between its batches.
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
      throw Failure(fmt::format("pin to CPU {}: {}", cpu, std::strerror(errno)));
  }
  std::vector<uint8_t> frame = frames.front();
  uint32_t repeat = 1 << 16;
  nlohmann::json out;
  try {
    generate(bpf_program__fd(skel->progs.xdpc_gen), frame, gen, warmup, repeat);
    int sinkFd = bpf_map__fd(skel->maps.sink_counters);
    SinkCounts before = readSink(sinkFd);
    auto t0 = Clock::now();
    Burst b = generate(bpf_program__fd(skel->progs.xdpc_gen), frame, gen, seconds, repeat);
    double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    SinkCounts after = readSink(sinkFd);
    out = {{"sent", b.sent},
           {"received", after.seen - before.seen},
           {"forwarded", after.forwarded - before.forwarded},
           {"seconds", wall},
           {"kernel_ns_per_packet", b.sent ? b.kernelNs / static_cast<double>(b.sent) : 0.0},
           {"frame_bytes", size + 4},
           {"destinations", frames.size()},
           {"cpu", cpu}};
  } catch (...) {
    inNetns(sinkNetns,
            [&] { bpf_xdp_detach(static_cast<int>(sink), XDP_FLAGS_DRV_MODE, nullptr); });
    throw;
  }
  inNetns(sinkNetns, [&] {
    if (int rc = bpf_xdp_detach(static_cast<int>(sink), XDP_FLAGS_DRV_MODE, nullptr); rc != 0)
      bpfFail(fmt::format("detach the sink from {}", sinkDev), rc);
  });
  return out;
}

// The native XDP program on dev, opened by id.
int attachedProgram(const std::string& dev, unsigned index) {
  __u32 id = 0;
  if (int rc = bpf_xdp_query_id(static_cast<int>(index), XDP_FLAGS_DRV_MODE, &id); rc != 0)
    bpfFail(fmt::format("query the XDP program on {}", dev), rc);
  if (id == 0) throw Failure(fmt::format("{} runs no XDP program (native)", dev));
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) bpfFail(fmt::format("open XDP program {} on {}", id, dev), fd);
  return fd;
}

nlohmann::json passed(const std::string& dev) {
  int prog = attachedProgram(dev, ifindexOf(dev));
  std::vector<__u32> ids(16);
  bpf_prog_info info{};
  info.nr_map_ids = static_cast<__u32>(ids.size());
  info.map_ids = reinterpret_cast<uintptr_t>(ids.data());
  __u32 len = sizeof info;
  if (int rc = bpf_obj_get_info_by_fd(prog, &info, &len); rc != 0) {
    ::close(prog);
    bpfFail(fmt::format("read the XDP program on {}", dev), rc);
  }
  ::close(prog);
  for (__u32 i = 0; i < std::min<__u32>(info.nr_map_ids, 16); ++i) {
    int map = bpf_map_get_fd_by_id(ids[i]);
    if (map < 0) continue;
    bpf_map_info mi{};
    __u32 mlen = sizeof mi;
    if (bpf_obj_get_info_by_fd(map, &mi, &mlen) == 0 && std::string(mi.name) == "fib_passed") {
      std::vector<uint64_t> v(static_cast<size_t>(std::max(libbpf_num_possible_cpus(), 1)));
      __u32 zero = 0;
      int rc = bpf_map_lookup_elem(map, &zero, v.data());
      ::close(map);
      if (rc != 0) bpfFail("read fib_passed", rc);
      uint64_t sum = 0;
      for (uint64_t x : v) sum += x;
      return {{"passed", sum}};
    }
    ::close(map);
  }
  throw Failure(
      fmt::format("the program on {} is not the chain's fib router (no fib_passed map)", dev));
}

// ---- cost ------------------------------------------------------------------------------------

// ns per packet of progFd on `samples` of the frames spread over the file, each run `repeat`
// times on its own buffer (a router's rewrite must leave it routable: see the harness).
double programCost(int progFd, const std::vector<std::vector<uint8_t>>& frames, size_t samples,
                   uint32_t repeat, unsigned ifindex, uint32_t expect, const std::string& what) {
  double ns = 0;
  size_t n = std::min(samples, frames.size());
  for (size_t s = 0; s < n; ++s) {
    std::vector<uint8_t> buf = frames[s * frames.size() / n];
    std::vector<uint8_t> out(buf.size() + 256);
    xdp_md ctx;
    bpf_test_run_opts opts = testRun(buf, ctx, ifindex, repeat);
    opts.data_out = out.data();
    opts.data_size_out = static_cast<__u32>(out.size());
    if (int rc = bpf_prog_test_run_opts(progFd, &opts); rc != 0)
      bpfFail(fmt::format("BPF_PROG_TEST_RUN on {}", what), rc);
    if (opts.retval != expect) {
      throw Failure(
          fmt::format("{} gave verdict {} on frame {}, not {}: the cost would be of "
                      "another path",
                      what, opts.retval, s * frames.size() / n, expect));
    }
    ns += static_cast<double>(opts.duration);
  }
  return ns / static_cast<double>(n);
}

nlohmann::json cost(const std::string& dev, const std::string& pcap, const std::string& expect,
                    size_t samples, uint32_t repeat) {
  auto frames = readPcap(pcap);
  unsigned index = ifindexOf(dev);
  int fd = attachedProgram(dev, index);
  Skel skel = openSkel();
  loadSkel(skel);
  uint32_t verdict = expect == "redirect" ? XDP_REDIRECT : XDP_PASS;
  double prog = programCost(fd, frames, samples, repeat, index, verdict,
                            fmt::format("the program on {}", dev));
  ::close(fd);
  double pass = programCost(bpf_program__fd(skel->progs.xdpc_pass), frames, samples, repeat, index,
                            XDP_PASS, "the pass-through program");
  return {{"ns_per_packet", prog},
          {"pass_ns_per_packet", pass},
          {"samples", std::min(samples, frames.size())},
          {"repeat", repeat}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "xdp_chain: the XDP benchmark chain's generator, sink and baseline routers "
      "(bench/router_bench.py drives it)"};
  app.require_subcommand(1);
  std::string prog, dev, genDev, sinkNetns, sinkDev, pcap, expect;
  std::vector<std::string> tx;
  double seconds = 3, warmup = 1;
  int cpu = -1;
  unsigned sentTtl = 64;
  size_t samples = 65536;
  uint32_t repeat = 1;
  auto* a = app.add_subcommand("attach", "Attach a router-side program to DEV (native mode)");
  a->add_option("--prog", prog, "fib, floor or pass")
      ->required()
      ->check(CLI::IsMember({"fib", "floor", "pass"}));
  a->add_option("--dev", dev, "The link that receives the traffic")->required();
  a->add_option("--tx", tx, "An egress port (fib: every port it may send to; floor: its one)");
  auto* r = app.add_subcommand("run", "Send the pcap's frames through the chain and count them");
  r->add_option("--gen-dev", genDev, "The generator's veth, in this namespace")->required();
  r->add_option("--sink-netns", sinkNetns, "The sink's namespace (ip netns name)")->required();
  r->add_option("--sink-dev", sinkDev, "The sink's veth, in that namespace")->required();
  r->add_option("--pcap", pcap, "The frames (one size), one header per destination")
      ->required()
      ->check(CLI::ExistingFile);
  r->add_option("--seconds", seconds, "The measured window")->check(CLI::PositiveNumber);
  r->add_option("--warmup", warmup, "Sent before the window")->check(CLI::NonNegativeNumber);
  r->add_option("--cpu", cpu, "Pin the generator (and so the chain) to this CPU");
  r->add_option("--sent-ttl", sentTtl, "The TTL or hop limit the frames carry")
      ->check(CLI::Range(2u, 255u));
  auto* c = app.add_subcommand("cost", "The attached program's cost under BPF_PROG_TEST_RUN");
  c->add_option("--dev", dev, "The link whose native XDP program to measure")->required();
  c->add_option("--pcap", pcap, "The frames")->required()->check(CLI::ExistingFile);
  c->add_option("--expect", expect, "The verdict every frame must get")
      ->required()
      ->check(CLI::IsMember({"redirect", "pass"}));
  c->add_option("--samples", samples, "Frames of the pcap to measure, spread over it (all)")
      ->check(CLI::Range(size_t{1}, size_t{65536}));
  // The frames carry TTL 64: up to 62 repeats leave it above 1, so a router forwards each one.
  c->add_option("--repeat", repeat, "Runs of each frame on its own buffer")
      ->check(CLI::Range(1u, 62u));
  auto* q = app.add_subcommand("passed", "Frames the fib program on DEV left to the kernel");
  q->add_option("--dev", dev, "The link the fib program is attached to")->required();
  CLI11_PARSE(app, argc, argv);

  if (::geteuid() != 0) {
    std::fprintf(stderr, "xdp_chain: SKIP: needs root (BPF, XDP attach, namespaces)\n");
    return 77;
  }
  libbpf_set_print([](libbpf_print_level level, const char* fmt, va_list args) {
    return level == LIBBPF_WARN ? std::vfprintf(stderr, fmt, args) : 0;
  });
  try {
    if (a->parsed()) {
      attach(prog, dev, tx);
    } else if (r->parsed()) {
      std::puts(
          run(genDev, sinkNetns, sinkDev, pcap, seconds, warmup, cpu, sentTtl).dump().c_str());
    } else if (q->parsed()) {
      std::puts(passed(dev).dump().c_str());
    } else {
      std::puts(cost(dev, pcap, expect, samples, repeat).dump().c_str());
    }
  } catch (const Failure& f) {
    std::fprintf(stderr, "xdp_chain: %s\n", f.what());
    return f.code;
  }
  return 0;
}
