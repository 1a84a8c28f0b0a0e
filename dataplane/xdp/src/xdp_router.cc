#include "vfplane/ebpf/xdp_router.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/if_link.h>

#include <cerrno>
#include <cstring>

// The generated skeleton is C; its embedded object bytes trip warnings meant for our own code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "xdp_router.skel.h"
#pragma GCC diagnostic pop

namespace vfplane::ebpf {
namespace {

// libbpf returns -errno (and sets errno) on failure.
Error bpfError(std::string_view what, int rc) { return systemError(what, rc < 0 ? -rc : errno); }

vfp_fib_key keyOf(const dataplane::Ipv4Prefix& p) {
  return vfp_fib_key{static_cast<__u32>(p.length), htonl(p.addr)};
}

vfp_fib_value valueOf(const dataplane::Action& action) {
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

bool sameValue(const vfp_fib_value& a, const vfp_fib_value& b) { return std::memcmp(&a, &b, sizeof a) == 0; }

}  // namespace

void XdpRouter::SkeletonDeleter::operator()(vfp_xdp_router* skel) const { vfp_xdp_router__destroy(skel); }

Result<XdpRouter> XdpRouter::load(const Options& options) {
  std::unique_ptr<vfp_xdp_router, SkeletonDeleter> skel(vfp_xdp_router__open());
  if (!skel) return fail(systemError("load XDP router: open skeleton", errno));
  if (int rc = bpf_map__set_max_entries(skel->maps.fib, options.maxEntries); rc != 0) {
    return fail(bpfError("load XDP router: size the forwarding table", rc));
  }
  if (int rc = vfp_xdp_router__load(skel.get()); rc != 0) {
    return fail(bpfError("load XDP router: bpf_object__load", rc));
  }
  return XdpRouter(std::move(skel));
}

XdpRouter::XdpRouter(XdpRouter&&) noexcept = default;
XdpRouter& XdpRouter::operator=(XdpRouter&&) noexcept = default;

XdpRouter::~XdpRouter() {
  if (!skel_) return;
  for (const auto& [ifindex, flags] : attached_) bpf_xdp_detach(ifindex, flags, nullptr);
}

int XdpRouter::routerFd() const { return bpf_program__fd(skel_->progs.vfp_xdp_router); }
int XdpRouter::passFd() const { return bpf_program__fd(skel_->progs.vfp_xdp_pass); }

Result<InstallStats> XdpRouter::install(const std::vector<dataplane::FibEntry>& fib) {
  InstallStats stats;
  std::map<dataplane::Ipv4Prefix, vfp_fib_value> desired;
  std::set<int> ports;
  for (const auto& e : fib) {
    desired[e.prefix] = valueOf(e.action);
    if (e.action) ports.insert(e.action->ifindex);
  }
  int portsFd = bpf_map__fd(skel_->maps.tx_ports);
  for (int port : ports) {
    if (ports_.contains(port)) continue;
    __u32 key = static_cast<__u32>(port), value = key;
    if (bpf_map_update_elem(portsFd, &key, &value, BPF_ANY) != 0) {
      return fail(systemError(fmt::format("install: add egress port ifindex {}", port), errno));
    }
    ports_.insert(port);
  }
  int fibFd = bpf_map__fd(skel_->maps.fib);
  for (const auto& [prefix, value] : desired) {
    auto it = installed_.find(prefix);
    if (it != installed_.end() && sameValue(it->second, value)) {
      ++stats.unchanged;
      continue;
    }
    vfp_fib_key key = keyOf(prefix);
    if (bpf_map_update_elem(fibFd, &key, &value, BPF_ANY) != 0) {
      return fail(systemError(fmt::format("install: write {}", prefix.str()), errno));
    }
    ++(it == installed_.end() ? stats.added : stats.updated);
    installed_[prefix] = value;
  }
  for (auto it = installed_.begin(); it != installed_.end();) {
    if (desired.contains(it->first)) {
      ++it;
      continue;
    }
    vfp_fib_key key = keyOf(it->first);
    if (bpf_map_delete_elem(fibFd, &key) != 0 && errno != ENOENT) {
      return fail(systemError(fmt::format("install: delete {}", it->first.str()), errno));
    }
    ++stats.removed;
    it = installed_.erase(it);
  }
  for (auto it = ports_.begin(); it != ports_.end();) {
    if (ports.contains(*it)) {
      ++it;
      continue;
    }
    __u32 key = static_cast<__u32>(*it);
    if (bpf_map_delete_elem(portsFd, &key) != 0 && errno != ENOENT) {
      return fail(systemError(fmt::format("install: remove egress port ifindex {}", *it), errno));
    }
    it = ports_.erase(it);
  }
  return stats;
}

Result<void> XdpRouter::setPort(int ifindex, const dataplane::MacAddress& mac) {
  __u32 key = static_cast<__u32>(ifindex);
  vfp_port value{};
  std::memcpy(value.mac, mac.bytes.data(), 6);
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.ports), &key, &value, BPF_ANY) != 0) {
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
  if (it == attached_.end()) return fail(fmt::format("detach XDP from ifindex {}: not attached by us", ifindex), ENOENT);
  if (int rc = bpf_xdp_detach(ifindex, it->second, nullptr); rc != 0) {
    return fail(bpfError(fmt::format("detach XDP from ifindex {}", ifindex), rc));
  }
  attached_.erase(it);
  return {};
}

Result<XdpCounters> XdpRouter::counters() const {
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return fail(bpfError("read XDP counters: possible CPUs", cpus));
  std::vector<uint64_t> values(static_cast<size_t>(cpus));
  uint64_t sums[VFP_CNT_MAX] = {};
  int fd = bpf_map__fd(skel_->maps.counters);
  for (__u32 slot = 0; slot < VFP_CNT_MAX; ++slot) {
    if (bpf_map_lookup_elem(fd, &slot, values.data()) != 0) {
      return fail(systemError(fmt::format("read XDP counter {}", slot), errno));
    }
    for (uint64_t v : values) sums[slot] += v;
  }
  XdpCounters c;
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

}  // namespace vfplane::ebpf
