#include "vfplane/dataplane/xdp_router.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/if_link.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <utility>

namespace vfplane::dataplane {
namespace {

// libbpf returns -errno (and sets errno) on failure.
Error bpfError(std::string_view what, int rc) { return systemError(what, rc < 0 ? -rc : errno); }

// The slot each verdict counts in, for the punt entries and for reading the counters back.
constexpr std::pair<vfp_counter, uint64_t FastPathCounters::*> kSlots[] = {
    {VFP_CNT_RX, &FastPathCounters::rx},
    {VFP_CNT_FORWARDED, &FastPathCounters::forwarded},
    {VFP_CNT_OTHER_HOST, &FastPathCounters::puntOtherHost},
    {VFP_CNT_NOT_IP, &FastPathCounters::puntNotIp},
    {VFP_CNT_MALFORMED, &FastPathCounters::puntMalformed},
    {VFP_CNT_SPECIAL, &FastPathCounters::puntSpecial},
    {VFP_CNT_IP_OPTIONS, &FastPathCounters::puntIpOptions},
    {VFP_CNT_TTL, &FastPathCounters::puntTtl},
    {VFP_CNT_NO_ROUTE, &FastPathCounters::puntNoRoute},
    {VFP_CNT_LOCAL, &FastPathCounters::puntLocal},
    {VFP_CNT_UNRESOLVED, &FastPathCounters::puntUnresolved},
    {VFP_CNT_NOT_PORT, &FastPathCounters::puntNotPort},
    {VFP_CNT_REJECT, &FastPathCounters::puntReject},
    {VFP_CNT_TOO_BIG, &FastPathCounters::puntTooBig},
};
static_assert(std::size(kSlots) == VFP_CNT_MAX);

__u32 slotOf(Punt punt) {
  for (const auto& [slot, member] : kSlots) {
    if (member == puntCounter(punt)) return slot;
  }
  return VFP_CNT_NO_ROUTE;
}

vfp_group groupValue(const NextHopGroup& g, const std::map<int, uint16_t>& slots) {
  vfp_group v{};
  v.paths = static_cast<__u32>(g.paths.size());
  for (size_t i = 0; i < g.paths.size(); ++i) {
    v.total += g.paths[i].weight;
    v.upper[i] = v.total;
    if (const auto& adj = g.paths[i].adjacency) {
      v.adj[i].ifindex = static_cast<__u32>(adj->ifindex);
      v.adj[i].mtu = static_cast<__u32>(adj->mtu);
      auto slot = slots.find(adj->ifindex);
      v.adj[i].slot = slot == slots.end() ? VFP_MAX_PORTS : slot->second;
      std::memcpy(v.adj[i].smac, adj->src.bytes.data(), 6);
      std::memcpy(v.adj[i].dmac, adj->dst.bytes.data(), 6);
    }
  }
  return v;
}

}  // namespace

static_assert(Dir24_8::kValid == VFP_DIR_VALID && Dir24_8::kExt == VFP_DIR_EXT &&
              Dir24_8::kValueMask == VFP_DIR_VALUE_MASK &&
              Dir24_8::kTbl24Entries == VFP_TBL24_ENTRIES);
static_assert(VFP_CNT_MAX <= (VFP_DIR_VALUE_MASK >> VFP_V4_VERDICT_SHIFT) + 1);

XdpRouter::XdpRouter(Options options, ebpf::XdpRouterProgram program)
    : options_(options),
      program_(std::make_unique<ebpf::XdpRouterProgram>(std::move(program))),
      fib4_(std::make_unique<Dir24_8>(program_->tbl24(), program_->tbl8())) {}

Result<XdpRouter> XdpRouter::load(const Options& options) {
  uint32_t groups = std::clamp<uint32_t>(options.maxEntries / 8, 1024, 65536);
  auto program = ebpf::XdpRouterProgram::load(options.maxEntries, groups, options.hashSeed);
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
  names_[port.ifindex] = port.name;
  if (auto ok = attach(port.ifindex, options_.mode); !ok)
    return fail(std::move(ok.error()).withContext("port " + port.name));
  return {};
}

Result<void> XdpRouter::writeEntry(const Prefix& prefix, const Action& action) {
  vfp_fib_value value{};
  if (action.forwards()) {
    value.verdict = VFP_CNT_FORWARDED;
    value.group = groupIds_.at(action.group());
  } else {
    value.verdict = slotOf(action.punt());
  }
  if (prefix.addr.isV4()) {
    auto ok = fib4_->add(prefix.addr.word(0), prefix.length,
                         value.verdict << VFP_V4_VERDICT_SHIFT | value.group);
    if (!ok) return fail(std::move(ok.error()).withContext("install: write " + prefix.str()));
    return {};
  }
  vfp_fib6_key key{static_cast<__u32>(prefix.length), {}};
  std::memcpy(key.addr, prefix.addr.bytes.data(), 16);
  if (bpf_map_update_elem(program_->fib6Fd(), &key, &value, BPF_ANY) != 0)
    return fail(systemError(fmt::format("install: write {}", prefix.str()), errno));
  return {};
}

Result<void> XdpRouter::deleteEntry(const Prefix& prefix) {
  if (prefix.addr.isV4()) {
    fib4_->remove(prefix.addr.word(0), prefix.length);
    return {};
  }
  vfp_fib6_key key{static_cast<__u32>(prefix.length), {}};
  std::memcpy(key.addr, prefix.addr.bytes.data(), 16);
  if (bpf_map_delete_elem(program_->fib6Fd(), &key) != 0 && errno != ENOENT)
    return fail(systemError(fmt::format("install: delete {}", prefix.str()), errno));
  return {};
}

uint32_t XdpRouter::newGroupId() {
  if (nextGroupId_ <= VFP_V4_GROUP_MASK || freedGroupIds_.empty()) return nextGroupId_++;
  uint32_t id = freedGroupIds_.front();
  freedGroupIds_.pop_front();
  return id;
}

// In the order that keeps every packet on a complete path: egress ports, then new groups, then
// the entries, then what nothing uses any more. A group is never rewritten: changed content is a
// new group under a new id.
Result<InstallStats> XdpRouter::install(const Fib& fib) {
  FibDiff diff = diffFib(installed_, fib);
  std::set<int> egress;
  std::set<NextHopGroup> wanted;
  for (const auto& e : fib) {
    if (!e.action.forwards()) continue;
    if (wanted.insert(e.action.group()).second) {
      for (const auto& p : e.action.group().paths) {
        if (p.adjacency) egress.insert(p.adjacency->ifindex);
      }
    }
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
  int groupsFd = program_->groupsFd();
  for (const auto& g : wanted) {
    if (groupIds_.contains(g)) continue;
    if (nextGroupId_ > VFP_V4_GROUP_MASK && freedGroupIds_.empty()) {
      return fail(fmt::format("install: more than {} next-hop groups", VFP_V4_GROUP_MASK), ENOSPC);
    }
    __u32 id = newGroupId();
    vfp_group value = groupValue(g, slots_);
    if (bpf_map_update_elem(groupsFd, &id, &value, BPF_NOEXIST) != 0) {
      return fail(systemError(fmt::format("install: add next-hop group {}", id), errno));
    }
    groupIds_.emplace(g, id);
  }
  for (const auto& e : diff.upserts) {
    if (auto ok = writeEntry(e.prefix, e.action); !ok) return fail(std::move(ok.error()));
    installed_.insert_or_assign(e.prefix, e.action);
  }
  for (const auto& prefix : diff.removals) {
    if (auto ok = deleteEntry(prefix); !ok) return fail(std::move(ok.error()));
    installed_.erase(prefix);
  }
  for (auto it = groupIds_.begin(); it != groupIds_.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    __u32 id = it->second;
    if (bpf_map_delete_elem(groupsFd, &id) != 0 && errno != ENOENT) {
      return fail(systemError(fmt::format("install: remove next-hop group {}", id), errno));
    }
    freedGroupIds_.push_back(id);
    it = groupIds_.erase(it);
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
  auto [slot, added] = slots_.try_emplace(ifindex, static_cast<uint16_t>(slots_.size()));
  if (slot->second >= VFP_MAX_PORTS) {
    slots_.erase(slot);
    return usageError(
        fmt::format("set XDP port ifindex {}: more than {} ports", ifindex, VFP_MAX_PORTS));
  }
  value.slot = slot->second;
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

Result<std::vector<PortCounters>> XdpRouter::portCounters() const {
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return fail(bpfError("read XDP port counters: possible CPUs", cpus));
  std::vector<vfp_port_counters> values(static_cast<size_t>(cpus));
  std::vector<std::pair<uint16_t, int>> bySlot;
  for (const auto& [ifindex, slot] : slots_) bySlot.emplace_back(slot, ifindex);
  std::sort(bySlot.begin(), bySlot.end());
  std::vector<PortCounters> out;
  for (const auto& [slot, ifindex] : bySlot) {
    __u32 key = slot;
    if (bpf_map_lookup_elem(program_->portCountersFd(), &key, values.data()) != 0) {
      return fail(systemError(fmt::format("read XDP port counters of ifindex {}", ifindex), errno));
    }
    auto name = names_.find(ifindex);
    PortCounters p{name != names_.end() ? name->second : fmt::format("ifindex {}", ifindex)};
    for (const auto& v : values) {
      p.rx += v.rx;
      p.forwarded += v.forwarded;
      p.tx += v.tx;
    }
    out.push_back(std::move(p));
  }
  return out;
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
  for (const auto& [slot, member] : kSlots) c.*member = sums[slot];
  return c;
}

}  // namespace vfplane::dataplane
