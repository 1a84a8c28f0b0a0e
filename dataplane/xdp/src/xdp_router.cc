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
#include <thread>
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
      // A path out of a link that is no port stays unresolved (ifindex 0): the kernel takes
      // its packets. The model gives none (it punts such routes as not_port).
      auto slot = slots.find(adj->ifindex);
      if (slot == slots.end()) continue;
      v.adj[i].slot = slot->second;
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
      fib4_(std::make_unique<Dir24_8>(program_->tbl24(), program_->tbl8())),
      fib6_(std::make_unique<StrideTable>(16, 16, program_->tbl16(), program_->tbl8v6())) {}

Result<XdpRouter> XdpRouter::load(const Options& options) {
  uint32_t tbl8 = std::clamp<uint32_t>(options.maxEntries / 8, 1024, 65536);
  uint32_t groups = std::clamp<uint32_t>(options.maxEntries / 16, 4096, 65536);
  static_assert(65536 <= VFP_V4_GROUP_MASK + 1);
  auto program = ebpf::XdpRouterProgram::load(tbl8, groups, options.hashSeed);
  if (!program) return fail(std::move(program.error()));
  XdpRouter r(options, std::move(*program));
  r.groupIds_ = groups;
  return r;
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
    value.group = liveGroups_.at(action.group());
  } else {
    value.verdict = slotOf(action.punt());
  }
  if (prefix.addr.isV4()) {
    auto ok = fib4_->add(prefix.addr.word(0), prefix.length,
                         value.verdict << VFP_V4_VERDICT_SHIFT | value.group);
    if (!ok) return fail(std::move(ok.error()).withContext("install: write " + prefix.str()));
    return {};
  }
  auto ok = fib6_->add(prefix.addr.bytes, prefix.length,
                       value.verdict << VFP_V4_VERDICT_SHIFT | value.group);
  if (!ok) return fail(std::move(ok.error()).withContext("install: write " + prefix.str()));
  return {};
}

Result<void> XdpRouter::deleteEntry(const Prefix& prefix) {
  if (prefix.addr.isV4()) {
    fib4_->remove(prefix.addr.word(0), prefix.length);
    return {};
  }
  fib6_->remove(prefix.addr.bytes, prefix.length);
  return {};
}

Result<uint32_t> XdpRouter::newGroupId() {
  if (nextGroupId_ < groupIds_) return nextGroupId_++;
  if (freedGroupIds_.empty()) {
    return fail(fmt::format("install: more than {} next-hop groups (raise --max-routes: a group "
                            "per {} routes)",
                            groupIds_ - 1, 16),
                ENOSPC);
  }
  // Every id is in use or was let go a moment ago: wait out the oldest's delay (at most
  // kGroupReuseDelay) rather than fail a change that fits.
  auto [id, freed] = freedGroupIds_.front();
  std::this_thread::sleep_until(freed + kGroupReuseDelay);
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
  std::set<uint16_t> egressSlots;
  for (int port : egress) {
    // Usually a port already; if not yet (routes installed before setPort()), its slot now, so
    // that the groups below point at it and a later setPort() finds the same one.
    auto slot = portSlot(port);
    if (!slot) return fail(std::move(slot.error()).withContext("install: egress port"));
    egressSlots.insert(*slot);
    if (txPorts_.contains(*slot)) continue;
    __u32 key = *slot, value = static_cast<__u32>(port);
    if (bpf_map_update_elem(txPortsFd, &key, &value, BPF_ANY) != 0) {
      return fail(systemError(fmt::format("install: add egress port ifindex {}", port), errno));
    }
    txPorts_.insert(*slot);
  }
  int groupsFd = program_->groupsFd();
  for (const auto& g : wanted) {
    if (liveGroups_.contains(g)) continue;
    auto id = newGroupId();
    if (!id) return fail(std::move(id.error()));
    __u32 key = *id;
    vfp_group value = groupValue(g, slots_);
    if (bpf_map_update_elem(groupsFd, &key, &value, BPF_ANY) != 0) {
      freedGroupIds_.emplace_front(key, Dir24_8::Clock::time_point{});
      return fail(systemError(fmt::format("install: write next-hop group {}", key), errno));
    }
    liveGroups_.emplace(g, key);
  }
  for (const auto& e : diff.upserts) {
    if (auto ok = writeEntry(e.prefix, e.action); !ok) return fail(std::move(ok.error()));
    installed_.insert_or_assign(e.prefix, e.action);
  }
  for (const auto& prefix : diff.removals) {
    if (auto ok = deleteEntry(prefix); !ok) return fail(std::move(ok.error()));
    installed_.erase(prefix);
  }
  // What no route uses any more: the array keeps the group's bytes for a packet that read the
  // old route a moment ago; the id is written again only after kGroupReuseDelay.
  auto now = Dir24_8::Clock::now();
  for (auto it = liveGroups_.begin(); it != liveGroups_.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    freedGroupIds_.emplace_back(it->second, now);
    it = liveGroups_.erase(it);
  }
  for (auto it = txPorts_.begin(); it != txPorts_.end();) {
    if (egressSlots.contains(*it)) {
      ++it;
      continue;
    }
    __u32 key = *it;
    if (bpf_map_delete_elem(txPortsFd, &key) != 0 && errno != ENOENT) {
      return fail(systemError(fmt::format("install: remove egress port slot {}", *it), errno));
    }
    it = txPorts_.erase(it);
  }
  return diff.stats;
}

std::set<uint32_t> XdpRouter::groupIdsInUse() const {
  std::set<uint32_t> ids;
  for (const auto& [group, id] : liveGroups_) ids.insert(id);
  return ids;
}

Result<uint16_t> XdpRouter::portSlot(int ifindex) {
  auto [slot, added] = slots_.try_emplace(ifindex, static_cast<uint16_t>(slots_.size()));
  if (slot->second >= VFP_MAX_PORTS) {
    slots_.erase(slot);
    return usageError(fmt::format("ifindex {}: more than {} ports", ifindex, VFP_MAX_PORTS));
  }
  return slot->second;
}

Result<void> XdpRouter::setPort(int ifindex, const MacAddress& mac) {
  __u32 key = static_cast<__u32>(ifindex);
  vfp_port value{};
  std::memcpy(value.mac, mac.bytes.data(), 6);
  auto slot = portSlot(ifindex);
  if (!slot) return fail(std::move(slot.error()).withContext("set XDP port"));
  value.slot = static_cast<__u8>(*slot);
  value.valid = 1;
  int fd = key < VFP_PORT_DIRECT ? program_->portsFd() : program_->portsHighFd();
  if (bpf_map_update_elem(fd, &key, &value, BPF_ANY) != 0) {
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
