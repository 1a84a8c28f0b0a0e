#include "vfplane/dataplane/xdp_router.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/if_link.h>

#include <cerrno>
#include <cstring>

namespace vfplane::dataplane {
namespace {

// libbpf returns -errno (and sets errno) on failure.
Error bpfError(std::string_view what, int rc) { return systemError(what, rc < 0 ? -rc : errno); }

vfp_fib_key keyOf(const Ipv4Prefix& p) {
  return vfp_fib_key{static_cast<__u32>(p.length), htonl(p.addr)};
}

vfp_fib_value valueOf(const Action& action) {
  vfp_fib_value v{};
  if (action) {
    v.action = VFP_FIB_FORWARD;
    v.ifindex = static_cast<__u32>(action->ifindex);
    std::memcpy(v.smac, action->src.bytes.data(), 6);
    std::memcpy(v.dmac, action->dst.bytes.data(), 6);
  } else {
    v.action = VFP_FIB_PUNT;
  }
  return v;
}

}  // namespace

XdpRouter::XdpRouter(Options options, ebpf::XdpRouterProgram program)
    : options_(options), program_(std::make_unique<ebpf::XdpRouterProgram>(std::move(program))) {}

Result<XdpRouter> XdpRouter::load(const Options& options) {
  auto program = ebpf::XdpRouterProgram::load(options.maxEntries);
  if (!program) return fail(std::move(program.error()));
  return XdpRouter(options, std::move(*program));
}

XdpRouter::XdpRouter(XdpRouter&&) noexcept = default;
XdpRouter& XdpRouter::operator=(XdpRouter&&) noexcept = default;

XdpRouter::~XdpRouter() {
  if (!program_) return;
  for (const auto& [ifindex, flags] : attached_) bpf_xdp_detach(ifindex, flags, nullptr);
}

Result<void> XdpRouter::addPort(const Port& port) {
  if (auto ok = setPort(port.ifindex, port.mac); !ok)
    return fail(std::move(ok.error()).withContext("port " + port.name));
  if (auto ok = attach(port.ifindex, options_.mode); !ok)
    return fail(std::move(ok.error()).withContext("port " + port.name));
  return {};
}

Result<InstallStats> XdpRouter::install(const std::vector<FibEntry>& fib) {
  FibDiff diff = diffFib(installed_, fib);
  std::set<int> egress;
  for (const auto& e : fib) {
    if (e.action) egress.insert(e.action->ifindex);
  }
  int txPortsFd = program_->txPortsFd();
  for (int port : egress) {
    if (txPorts_.contains(port)) continue;
    __u32 key = static_cast<__u32>(port), value = key;
    if (bpf_map_update_elem(txPortsFd, &key, &value, BPF_ANY) != 0) {
      return fail(systemError(fmt::format("install: add egress port ifindex {}", port), errno));
    }
    txPorts_.insert(port);
  }
  int fibFd = program_->fibFd();
  for (const auto& e : diff.upserts) {
    vfp_fib_key key = keyOf(e.prefix);
    vfp_fib_value value = valueOf(e.action);
    if (bpf_map_update_elem(fibFd, &key, &value, BPF_ANY) != 0) {
      return fail(systemError(fmt::format("install: write {}", e.prefix.str()), errno));
    }
    installed_.insert_or_assign(e.prefix, e.action);
  }
  for (const auto& prefix : diff.removals) {
    vfp_fib_key key = keyOf(prefix);
    if (bpf_map_delete_elem(fibFd, &key) != 0 && errno != ENOENT) {
      return fail(systemError(fmt::format("install: delete {}", prefix.str()), errno));
    }
    installed_.erase(prefix);
  }
  for (auto it = txPorts_.begin(); it != txPorts_.end();) {
    if (egress.contains(*it)) {
      ++it;
      continue;
    }
    __u32 key = static_cast<__u32>(*it);
    if (bpf_map_delete_elem(txPortsFd, &key) != 0 && errno != ENOENT) {
      return fail(systemError(fmt::format("install: remove egress port ifindex {}", *it), errno));
    }
    it = txPorts_.erase(it);
  }
  return diff.stats;
}

Result<void> XdpRouter::setPort(int ifindex, const MacAddress& mac) {
  __u32 key = static_cast<__u32>(ifindex);
  vfp_port value{};
  std::memcpy(value.mac, mac.bytes.data(), 6);
  if (bpf_map_update_elem(program_->portsFd(), &key, &value, BPF_ANY) != 0) {
    return fail(systemError(fmt::format("set XDP port ifindex {}", ifindex), errno));
  }
  return {};
}

Result<uint32_t> XdpRouter::attachProgram(int ifindex, int progFd, XdpMode mode) {
  uint32_t flags = mode == XdpMode::kNative ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
  if (int rc = bpf_xdp_attach(ifindex, progFd, flags, nullptr); rc != 0) {
    return fail(bpfError(fmt::format("attach XDP to ifindex {} ({})", ifindex,
                                     mode == XdpMode::kNative ? "native" : "generic"),
                         rc));
  }
  return flags;
}

Result<void> XdpRouter::attach(int ifindex, XdpMode mode) {
  auto flags = attachProgram(ifindex, routerFd(), mode);
  if (!flags) return fail(std::move(flags.error()));
  attached_[ifindex] = *flags;
  return {};
}

Result<void> XdpRouter::attachPass(int ifindex, XdpMode mode) {
  auto flags = attachProgram(ifindex, passFd(), mode);
  if (!flags) return fail(std::move(flags.error()));
  return {};
}

Result<void> XdpRouter::detach(int ifindex) {
  auto it = attached_.find(ifindex);
  if (it == attached_.end())
    return fail(fmt::format("detach XDP from ifindex {}: not attached by us", ifindex), ENOENT);
  if (int rc = bpf_xdp_detach(ifindex, it->second, nullptr); rc != 0) {
    return fail(bpfError(fmt::format("detach XDP from ifindex {}", ifindex), rc));
  }
  attached_.erase(it);
  return {};
}

Result<FastPathCounters> XdpRouter::counters() const {
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return fail(bpfError("read XDP counters: possible CPUs", cpus));
  std::vector<uint64_t> values(static_cast<size_t>(cpus));
  uint64_t sums[VFP_CNT_MAX] = {};
  int fd = program_->countersFd();
  for (__u32 slot = 0; slot < VFP_CNT_MAX; ++slot) {
    if (bpf_map_lookup_elem(fd, &slot, values.data()) != 0) {
      return fail(systemError(fmt::format("read XDP counter {}", slot), errno));
    }
    for (uint64_t v : values) sums[slot] += v;
  }
  FastPathCounters c;
  c.rx = sums[VFP_CNT_RX];
  c.forwarded = sums[VFP_CNT_FORWARDED];
  c.puntNotIpv4 = sums[VFP_CNT_PUNT_NOT_IPV4];
  c.puntIpOptions = sums[VFP_CNT_PUNT_IP_OPTIONS];
  c.puntTtl = sums[VFP_CNT_PUNT_TTL];
  c.puntNoRoute = sums[VFP_CNT_PUNT_NO_ROUTE];
  c.puntAction = sums[VFP_CNT_PUNT_ACTION];
  c.puntMalformed = sums[VFP_CNT_PUNT_MALFORMED];
  c.puntOtherHost = sums[VFP_CNT_PUNT_OTHER_HOST];
  return c;
}

}  // namespace vfplane::dataplane
