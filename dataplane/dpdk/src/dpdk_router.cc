#include "vfplane/dataplane/dpdk_router.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <set>

#include "vfplane/dataplane/packet.h"

namespace vfplane::dataplane {
namespace {

constexpr uint16_t kBurst = 32;
constexpr uint32_t kRingSize = 4096;
constexpr uint32_t kMempoolCache = 256;

Error rteError(std::string_view what) {
  return Error(fmt::format("{}: {}", what, rte_strerror(rte_errno)), rte_errno);
}

Error rcError(std::string_view what, int rc) {
  return Error(fmt::format("{}: {}", what, rte_strerror(-rc)), -rc);
}

std::atomic<uint64_t> g_instances{0};

constexpr std::array<Punt, 5> kPunts = {Punt::kNoRoute, Punt::kLocal, Punt::kUnresolved,
                                        Punt::kNotPort, Punt::kReject};

// The largest frame of an MTU (0: Ethernet's): header, two VLAN tags, FCS.
uint32_t frameOf(uint16_t mtu) {
  return (mtu == 0 ? RTE_ETHER_MTU : mtu) + RTE_ETHER_HDR_LEN + 2 * RTE_VLAN_HLEN +
         RTE_ETHER_CRC_LEN;
}

uint32_t puntHop(Punt p) {
  return static_cast<uint32_t>(std::find(kPunts.begin(), kPunts.end(), p) - kPunts.begin());
}

}  // namespace

// One immutable forwarding table; workers read it through table_ and it is freed only after
// they all have moved on.
struct DpdkRouter::Table {
  struct Path {
    bool resolved = false;
    uint16_t portIndex = 0;  // into options_.ports
    uint32_t mtu = 0;
    MacAddress src, dst;
  };
  struct Group {
    uint32_t paths = 0;
    uint32_t total = 0;
    uint32_t upper[kMaxPaths] = {};
    Path path[kMaxPaths];
  };
  // What an LPM next-hop index means: a punt (counted in punt) or a group.
  struct Hop {
    uint64_t FastPathCounters::*punt = nullptr;
    uint32_t group = 0;
  };

  // DIR-24-8 and a trie over a RIB each: adds are O(log n), so a million routes build in
  // seconds (rte_lpm's rule table makes each add a linear scan). A miss returns the default
  // next hop: the /0 entry's hop, or the no-route punt.
  rte_fib* v4 = nullptr;
  rte_fib6* v6 = nullptr;
  std::vector<Hop> hops;
  std::vector<Group> groups;

  ~Table() {
    if (v4 != nullptr) rte_fib_free(v4);
    if (v6 != nullptr) rte_fib6_free(v6);
  }
};

struct alignas(64) DpdkRouter::Worker {
  FastPathCounters c;
  std::vector<PortCounters> ports;  // by port index; names left empty
  uint64_t polls = 0;
  uint64_t busyPolls = 0;
  bool registered = false;
  // Per egress port, refilled by every poll: room for a burst from every port and one from the
  // kernel, so that a push never checks.
  struct TxQueue {
    std::vector<rte_mbuf*> slots;
    uint16_t n = 0;
    void push(rte_mbuf* m) { slots[n++] = m; }
  };
  std::vector<TxQueue> tx;
};

Result<void> initEal(const std::vector<std::string>& args) {
  // The EAL starts once per process; what it started with is kept to tell a repeat of the same
  // call (fine) from one that wanted something else (which would not get it).
  static std::optional<std::vector<std::string>> startedWith;
  if (startedWith) {
    if (*startedWith == args) return {};
    return fail(
        fmt::format("DPDK EAL init: already started with \"{}\"", fmt::join(*startedWith, " ")),
        EALREADY);
  }
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0)
    return fail(rteError("DPDK EAL init"));
  startedWith = args;
  return {};
}

Result<std::unique_ptr<DpdkRouter>> DpdkRouter::create(const Options& options) {
  if (options.ports.empty()) return usageError("DPDK router: no ports");
  if (options.workers == 0) return usageError("DPDK router: at least one worker is needed");
  std::unique_ptr<DpdkRouter> r(new DpdkRouter());
  r->options_ = options;
  uint64_t id = g_instances.fetch_add(1);
  r->id_ = id;
  uint16_t workers = options.workers, desc = options.descriptors;
  uint32_t mbufs = options.mbufs;
  if (mbufs == 0) {
    // Every RX and TX descriptor full, the exception ring full, a burst in flight per worker,
    // and the per-lcore caches.
    size_t n = options.ports.size() *
                   (static_cast<size_t>(workers) * desc + static_cast<size_t>(workers + 1) * desc) +
               kRingSize + static_cast<size_t>(workers) * kBurst * options.ports.size() +
               static_cast<size_t>(RTE_MAX_LCORE > 8 ? 8 : RTE_MAX_LCORE) * kMempoolCache;
    mbufs = static_cast<uint32_t>(n);
  }
  // One buffer per frame: the largest MTU asked for, its Ethernet header, two VLAN tags and FCS.
  uint32_t dataRoom = RTE_MBUF_DEFAULT_BUF_SIZE;
  for (const auto& p : options.ports) {
    dataRoom = std::max<uint32_t>(dataRoom, RTE_PKTMBUF_HEADROOM + frameOf(p.mtu));
  }
  if (dataRoom > UINT16_MAX) {
    return usageError(
        fmt::format("DPDK router: an MTU whose frames need {} bytes per buffer, more "
                    "than the {} an mbuf holds",
                    dataRoom, UINT16_MAX));
  }
  r->pool_ = rte_pktmbuf_pool_create(fmt::format("vfp_pool_{}", id).c_str(), mbufs, kMempoolCache,
                                     0, static_cast<uint16_t>(dataRoom), SOCKET_ID_ANY);
  if (r->pool_ == nullptr)
    return fail(rteError(fmt::format("DPDK router: mbuf pool of {} buffers", mbufs)));
  // Workers enqueue concurrently; one consumer hands the frames to the kernel.
  r->exception_ = rte_ring_create(fmt::format("vfp_exc_{}", id).c_str(), kRingSize, SOCKET_ID_ANY,
                                  RING_F_SC_DEQ);
  if (r->exception_ == nullptr) return fail(rteError("DPDK router: exception ring"));
  // The other way: frames from the kernel, which worker 0 transmits on its own queues.
  r->fromKernel_ = rte_ring_create(fmt::format("vfp_krn_{}", id).c_str(), kRingSize, SOCKET_ID_ANY,
                                   RING_F_SC_DEQ);
  if (r->fromKernel_ == nullptr) return fail(rteError("DPDK router: ring from the kernel"));
  size_t qsbrSize = rte_rcu_qsbr_get_memsize(workers);
  r->qsbr_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("vfp_qsbr", qsbrSize, RTE_CACHE_LINE_SIZE));
  if (r->qsbr_ == nullptr || rte_rcu_qsbr_init(r->qsbr_, workers) != 0)
    return fail(rteError("DPDK router: RCU state"));
  r->portIndexOf_.assign(RTE_MAX_ETHPORTS, -1);
  for (size_t i = 0; i < options.ports.size(); ++i) {
    const DpdkPort& p = options.ports[i];
    r->ports_.push_back({p, 0, MacAddress{}, i});
    std::string what = fmt::format("DPDK port {} ({})", p.name, p.portId);
    if (!rte_eth_dev_is_valid_port(p.portId))
      return usageError(fmt::format("{}: no such port", what), ENODEV);
    if (r->portIndexOf_[p.portId] >= 0)
      return usageError(fmt::format("{}: given twice", what), EINVAL);
    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(p.portId, &info); rc != 0)
      return fail(rcError(what + ": device info", rc));
    if (info.max_rx_queues < workers || info.max_tx_queues < workers) {
      return usageError(
          fmt::format("{}: {} workers need {} RX and TX queues; the device has {} and {} (for "
                      "net_af_packet, add qpairs={})",
                      what, workers, workers, info.max_rx_queues, info.max_tx_queues, workers),
          EINVAL);
    }
    rte_eth_conf conf{};
    if (p.mtu != 0) {
      unsigned low = std::max<unsigned>(kMinMtu, info.min_mtu);
      if (p.mtu < low || p.mtu > info.max_mtu || frameOf(p.mtu) > info.max_rx_pktlen) {
        return usageError(fmt::format("{}: MTU {} is not one the device takes (MTU {} to {}, "
                                      "frames up to {} bytes)",
                                      what, p.mtu, low, info.max_mtu, info.max_rx_pktlen),
                          EINVAL);
      }
      conf.rxmode.mtu = p.mtu;
    }
    if (workers > 1 && info.flow_type_rss_offloads != 0) {
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      conf.rx_adv_conf.rss_conf.rss_hf =
          (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
    }
    if (int rc = rte_eth_dev_configure(p.portId, workers, workers, &conf); rc < 0)
      return fail(rcError(what + ": configure", rc));
    int socket = rte_eth_dev_socket_id(p.portId);
    for (uint16_t q = 0; q < workers; ++q) {
      if (int rc = rte_eth_rx_queue_setup(p.portId, q, desc, socket, nullptr, r->pool_); rc < 0)
        return fail(rcError(fmt::format("{}: RX queue {}", what, q), rc));
    }
    for (uint16_t q = 0; q < workers; ++q) {
      if (int rc = rte_eth_tx_queue_setup(p.portId, q, desc, socket, nullptr); rc < 0)
        return fail(rcError(fmt::format("{}: TX queue {}", what, q), rc));
    }
    if (int rc = rte_eth_dev_start(p.portId); rc < 0) return fail(rcError(what + ": start", rc));
    uint16_t mtu = RTE_ETHER_MTU;
    if (int rc = rte_eth_dev_get_mtu(p.portId, &mtu); rc != 0)
      return fail(rcError(what + ": read the MTU", rc));
    r->ports_.back().mtu = mtu;
    r->portIndexOf_[p.portId] = static_cast<int>(i);
  }
  for (uint16_t w = 0; w < workers; ++w) {
    auto worker = std::make_unique<Worker>();
    worker->tx.resize(options.ports.size());
    worker->ports.resize(options.ports.size());
    for (auto& q : worker->tx)
      q.slots.resize(static_cast<size_t>(kBurst) * (options.ports.size() + 1));
    r->workers_.push_back(std::move(worker));
  }
  return r;
}

DpdkRouter::~DpdkRouter() {
  for (const auto& p : options_.ports) {
    if (portIndexOf_.size() > p.portId && portIndexOf_[p.portId] >= 0) rte_eth_dev_stop(p.portId);
  }
  delete table_.load();
  spare_.reset();
  for (rte_ring* ring : {exception_, fromKernel_}) {
    if (ring == nullptr) continue;
    rte_mbuf* m;
    while (rte_ring_dequeue(ring, reinterpret_cast<void**>(&m)) == 0) rte_pktmbuf_free(m);
    rte_ring_free(ring);
  }
  if (qsbr_ != nullptr) rte_free(qsbr_);
  if (pool_ != nullptr) rte_mempool_free(pool_);
}

Result<void> DpdkRouter::addPort(const Port& port) {
  for (auto& b : ports_) {
    if (b.port.name != port.name) continue;
    b.ifindex = port.ifindex;
    b.mac = port.mac;
    rebuild_ = true;  // groups resolve their paths against the ports
    return {};
  }
  return usageError(fmt::format("port {}: no DPDK port of that name", port.name), ENODEV);
}

uint32_t DpdkRouter::hopOf(const Action& a) const {
  return a.forwards() ? hopOfGroup_.at(a.group()) : puntHop(a.punt());
}

// Writes the hop of every live group into t (ids are stable, so both tables agree on them).
void DpdkRouter::writeHops(Table& t, const std::vector<uint32_t>& fresh) const {
  size_t size = kPunts.size() + nextHop_;
  if (t.hops.size() < size) {
    t.hops.resize(size);
    t.groups.resize(size);
  }
  for (Punt p : kPunts) t.hops[puntHop(p)] = {puntCounter(p), 0};
  for (uint32_t h : fresh) {
    const NextHopGroup& g = *groupOfHop_.at(h);
    Table::Group tg;
    tg.paths = static_cast<uint32_t>(std::min(g.paths.size(), kMaxPaths));
    for (uint32_t i = 0; i < tg.paths; ++i) {
      const GroupPath& gp = g.paths[i];
      tg.total += gp.weight;
      tg.upper[i] = tg.total;
      if (!gp.adjacency) continue;
      for (size_t p = 0; p < ports_.size(); ++p) {
        if (ports_[p].ifindex == 0 || ports_[p].ifindex != gp.adjacency->ifindex) continue;
        uint32_t mtu = std::min<uint32_t>(static_cast<uint32_t>(gp.adjacency->mtu), ports_[p].mtu);
        tg.path[i] = {true, static_cast<uint16_t>(p), mtu, gp.adjacency->src, gp.adjacency->dst};
      }
    }
    t.hops[h] = {nullptr, h};
    t.groups[h] = tg;
  }
}

Result<std::unique_ptr<DpdkRouter::Table>> DpdkRouter::build(const Fib& fib) {
  auto t = std::make_unique<Table>();
  std::vector<uint32_t> all;
  for (const auto& [g, h] : hopOfGroup_) all.push_back(h);
  writeHops(*t, all);
  size_t v4 = 0, v6 = 0;
  uint64_t default4 = puntHop(Punt::kNoRoute), default6 = default4;
  // rte_fib reserves, for every route longer than /24, one 8-bit group per byte below /24 it
  // may need, and refuses a route when the reservations would exceed num_tbl8.
  size_t tbl8v4 = 0, tbl8v6 = 0;
  for (const auto& e : fib) {
    size_t groups = static_cast<size_t>(std::max(0, (e.prefix.length - 24 + 7) / 8));
    if (e.prefix.addr.isV4()) {
      ++v4;
      tbl8v4 += groups;
    } else {
      ++v6;
      tbl8v6 += groups;
    }
    if (e.prefix.length == 0) (e.prefix.addr.isV4() ? default4 : default6) = hopOf(e.action);
  }
  // Short: DPDK derives ring and hash names from it and truncates them at 32 characters.
  std::string name = fmt::format("v{}t{}", id_, generation_++);
  // Next hops in 4 bytes: 2 would halve the memory (the first level is 2^24 of them) but measured
  // ~5% slower per burst here (bench/dpdk_bench, 10k routes), and caps hops and 8-bit groups at
  // 2^15. An eighth more room: later installs change the table in place until it is full.
  auto tbl8Of = [](size_t need) {
    return static_cast<uint32_t>(std::min<size_t>(need + need / 8 + 256, 1u << 22));
  };
  uint32_t groups4 = tbl8Of(tbl8v4), groups6 = tbl8Of(tbl8v6);
  // DPDK fails a table it cannot allocate with ENOMEM, ENOENT or EINVAL depending on the part
  // (RIB pool, first level, 8-bit groups): whatever it says, say what the table needs.
  auto cannot = [&](std::string_view family, uint32_t groups) {
    int err = rte_errno;
    size_t mb = (((1ul << 24) + groups * 256ul) * 4) >> 20;
    return fail(Error(fmt::format("DPDK router: create the {} table ({} MB for {} 8-bit groups, "
                                  "which rte_fib reserves for the worst case of every route "
                                  "longer than /24): {}; the EAL's memory (-m, or hugepages) "
                                  "must hold two",
                                  family, mb, groups, rte_strerror(err)),
                      err));
  };
  auto routesOf = [&](size_t n) {
    return static_cast<int>(std::max<size_t>(options_.maxEntries, n + n / 8 + 1));
  };
  rte_fib_conf c4{};
  c4.type = RTE_FIB_DIR24_8;
  c4.default_nh = default4;
  c4.max_routes = routesOf(v4);
  c4.dir24_8.nh_sz = RTE_FIB_DIR24_8_4B;
  c4.dir24_8.num_tbl8 = groups4;
  t->v4 = rte_fib_create((name + "_4").c_str(), SOCKET_ID_ANY, &c4);
  if (t->v4 == nullptr) return cannot("IPv4", groups4);
  rte_fib6_conf c6{};
  c6.type = RTE_FIB6_TRIE;
  c6.default_nh = default6;
  c6.max_routes = routesOf(v6);
  c6.trie.nh_sz = RTE_FIB6_TRIE_4B;
  c6.trie.num_tbl8 = groups6;
  t->v6 = rte_fib6_create((name + "_6").c_str(), SOCKET_ID_ANY, &c6);
  if (t->v6 == nullptr) return cannot("IPv6", groups6);
  for (const auto& e : fib) {
    if (e.prefix.length == 0) continue;
    if (auto ok = addRoute(*t, e); !ok) return fail(std::move(ok.error()));
  }
  return t;
}

Result<void> DpdkRouter::addRoute(Table& t, const FibEntry& e) const {
  auto depth = static_cast<uint8_t>(e.prefix.length);
  int rc = e.prefix.addr.isV4()
               ? rte_fib_add(t.v4, e.prefix.addr.word(0), depth, hopOf(e.action))
               : rte_fib6_add(t.v6, e.prefix.addr.bytes.data(), depth, hopOf(e.action));
  if (rc < 0) return fail(rcError(fmt::format("DPDK router: add {}", e.prefix.str()), rc));
  return {};
}

// The diff into a table no worker reads. The default routes (in rte_fib's default_nh) are not
// in it: install() rebuilds when they change.
Result<void> DpdkRouter::apply(Table& t, const FibDiff& diff,
                               const std::vector<uint32_t>& fresh) const {
  writeHops(t, fresh);
  for (const auto& e : diff.upserts) {
    if (auto ok = addRoute(t, e); !ok) return fail(std::move(ok.error()));
  }
  for (const auto& p : diff.removals) {
    auto depth = static_cast<uint8_t>(p.length);
    int rc = p.addr.isV4() ? rte_fib_delete(t.v4, p.addr.word(0), depth)
                           : rte_fib6_delete(t.v6, p.addr.bytes.data(), depth);
    if (rc < 0 && rc != -ENOENT)
      return fail(rcError(fmt::format("DPDK router: delete {}", p.str()), rc));
  }
  return {};
}

void DpdkRouter::swapIn(std::unique_ptr<Table> t) {
  Table* old = table_.exchange(t.release(), std::memory_order_acq_rel);
  if (old == nullptr) return;
  // Returns once every worker online has finished the poll that might hold the old table.
  rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
  spare_.reset(old);
}

// Two tables: workers read one while the other (the spare) takes the diff; then they trade
// places and the old one takes the same diff, so an install costs the change, not the table (a
// full build writes 64 MB of first level per family). A full build of both happens on the
// first install, when a default route changes, after addPort() (groups resolve against ports),
// and when the change does not fit the spare (rte_fib's 8-bit groups or rule pool are full).
Result<InstallStats> DpdkRouter::install(const Fib& fib) {
  FibDiff diff = diffFib(installed_, fib);
  // Stable hop ids for the groups: fresh ones now, the ones no route uses freed after both
  // tables have dropped them (the end of this install), for later installs to reuse.
  std::set<const NextHopGroup*> seen;
  std::map<NextHopGroup, uint32_t> wanted;
  std::vector<uint32_t> fresh;
  for (const auto& e : fib) {
    if (!e.action.forwards() || !seen.insert(&e.action.group()).second) continue;
    if (wanted.contains(e.action.group())) continue;
    auto it = hopOfGroup_.find(e.action.group());
    uint32_t h;
    if (it != hopOfGroup_.end()) {
      h = it->second;
    } else {
      if (!freeHops_.empty()) {
        h = freeHops_.back();
        freeHops_.pop_back();
      } else {
        h = static_cast<uint32_t>(kPunts.size() + nextHop_++);
      }
      fresh.push_back(h);
    }
    wanted.emplace(e.action.group(), h);
  }
  std::vector<uint32_t> retired;
  for (const auto& [g, h] : hopOfGroup_) {
    if (!wanted.contains(g)) retired.push_back(h);
  }
  hopOfGroup_ = std::move(wanted);
  groupOfHop_.clear();
  for (const auto& [g, h] : hopOfGroup_) groupOfHop_[h] = &g;
  auto finish = [&]() -> InstallStats {
    installed_.clear();
    for (const auto& e : fib) installed_.insert_or_assign(e.prefix, e.action);
    freeHops_.insert(freeHops_.end(), retired.begin(), retired.end());
    return diff.stats;
  };
  if (!rebuild_ && spare_ != nullptr && table_.load() != nullptr && diff.upserts.empty() &&
      diff.removals.empty()) {
    return finish();  // nothing to write: no fresh groups either, as no entry changed
  }
  bool defaults = false;
  for (const auto& e : diff.upserts) defaults |= e.prefix.length == 0;
  for (const auto& p : diff.removals) defaults |= p.length == 0;
  if (!rebuild_ && !defaults && spare_ != nullptr && table_.load() != nullptr) {
    auto ok = apply(*spare_, diff, fresh);
    if (ok) {
      swapIn(std::move(spare_));
      // The old table, now the spare, takes the same diff; it had the same content and room.
      if (auto again = apply(*spare_, diff, fresh); !again) {
        spdlog::warn(
            "DPDK router: the spare table did not take the change ({}); the next "
            "install builds both",
            again.error().message());
        spare_.reset();
      }
      ++incremental_;
      return finish();
    }
    // The spare is half changed: build both again (room is the usual reason: ENOSPC).
    spdlog::info("DPDK router: building both tables anew: {}", ok.error().message());
    spare_.reset();
  }
  // A full build makes both, one at a time, so that memory holds two tables at most: the spare
  // goes first, then the new table is built beside the one the workers read, swapped in, and
  // the old one makes room for the new spare.
  spare_.reset();
  auto table = build(fib);
  if (!table) return fail(std::move(table.error()));
  swapIn(std::move(*table));
  spare_.reset();
  auto second = build(fib);
  if (second) spare_ = std::move(*second);  // else the next install builds both again
  rebuild_ = false;
  ++rebuilds_;
  return finish();
}

Result<FastPathCounters> DpdkRouter::counters() const {
  FastPathCounters sum;
  for (const auto& w : workers_) {
    sum.rx += w->c.rx;
    for (const auto& v : kVerdicts) sum.*v.count += w->c.*v.count;
  }
  return sum;
}

Result<std::vector<PortCounters>> DpdkRouter::portCounters() const {
  std::vector<PortCounters> out;
  for (const auto& p : ports_) out.push_back({p.port.name});
  for (const auto& w : workers_) {
    for (size_t i = 0; i < out.size(); ++i) {
      out[i].rx += w->ports[i].rx;
      out[i].forwarded += w->ports[i].forwarded;
      out[i].tx += w->ports[i].tx;
    }
  }
  return out;
}

std::vector<WorkerPolls> DpdkRouter::workerPolls() const {
  std::vector<WorkerPolls> out;
  for (const auto& w : workers_) out.push_back({w->polls, w->busyPolls});
  return out;
}

void DpdkRouter::startWorker(uint16_t worker) {
  rte_rcu_qsbr_thread_register(qsbr_, worker);
  rte_rcu_qsbr_thread_online(qsbr_, worker);
  workers_[worker]->registered = true;
}

void DpdkRouter::stopWorker(uint16_t worker) {
  workers_[worker]->registered = false;
  rte_rcu_qsbr_thread_offline(qsbr_, worker);
  rte_rcu_qsbr_thread_unregister(qsbr_, worker);
}

uint64_t DpdkRouter::busyPolls(uint16_t worker) const { return workers_[worker]->busyPolls; }
uint64_t DpdkRouter::polls(uint16_t worker) const { return workers_[worker]->polls; }

void DpdkRouter::punt(Worker& w, rte_mbuf* m, uint64_t FastPathCounters::*reason) {
  ++(w.c.*reason);
  if (rte_ring_enqueue(exception_, m) != 0) {
    ++w.c.puntDropped;
    rte_pktmbuf_free(m);
  }
}

// A burst from one port in two passes, so that each family's table is looked up once per burst:
// classify every frame (punting what goes no further), look the rest up in bulk, then forward
// or punt each by its hop.
void DpdkRouter::handleBurst(Worker& w, const Table& t, rte_mbuf** bufs, uint16_t n,
                             const Bound& in) {
  w.c.rx += n;
  uint32_t ips4[kBurst];
  uint8_t ips6[kBurst][16];
  uint64_t hops4[kBurst], hops6[kBurst];
  struct Pending {
    rte_mbuf* m;
    uint32_t l3Length;
    bool v4;
    uint16_t slot;  // in ips4/ips6
  } pending[kBurst];
  uint16_t n4 = 0, n6 = 0, np = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = bufs[i];
    if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(bufs[i + 1], void*));
    // Whoever takes a punted frame hands it to the kernel by the port it came in on.
    m->port = in.port.portId;
    // A port no model interface was bound to routes nothing.
    if (in.ifindex == 0) {
      punt(w, m, &FastPathCounters::puntOtherHost);
      continue;
    }
    FrameClass c = classifyFrame(rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m), in.mac);
    if (c.punt != nullptr) {
      punt(w, m, c.punt);
      continue;
    }
    if (c.v4) {
      pending[np++] = {m, c.l3Length, true, n4};
      uint32_t be;
      std::memcpy(&be, c.dst, 4);
      ips4[n4++] = rte_be_to_cpu_32(be);
    } else {
      pending[np++] = {m, c.l3Length, false, n6};
      std::memcpy(ips6[n6++], c.dst, 16);
    }
  }
  if (n4 > 0) rte_fib_lookup_bulk(t.v4, ips4, hops4, n4);
  if (n6 > 0) rte_fib6_lookup_bulk(t.v6, ips6, hops6, n6);
  uint64_t forwarded = 0;
  for (uint16_t k = 0; k < np; ++k) {
    const Pending& p = pending[k];
    const Table::Hop& h = t.hops[p.v4 ? hops4[p.slot] : hops6[p.slot]];
    if (h.punt != nullptr) {
      punt(w, p.m, h.punt);
      continue;
    }
    const Table::Group& g = t.groups[h.group];
    auto* frame = rte_pktmbuf_mtod(p.m, uint8_t*);
    uint32_t i = 0;
    if (g.paths > 1) {
      uint32_t hash = flowHash(flowOf(frame, rte_pktmbuf_data_len(p.m)), options_.hashSeed);
      i = pickIndex(g.upper, g.paths, g.total, hash);
    }
    const Table::Path& path = g.path[i];
    if (!path.resolved) {
      punt(w, p.m, &FastPathCounters::puntUnresolved);
      continue;
    }
    if (p.l3Length > path.mtu) {
      punt(w, p.m, &FastPathCounters::puntTooBig);
      continue;
    }
    rewrite(frame, path.dst, path.src);
    ++forwarded;
    w.tx[path.portIndex].push(p.m);
  }
  w.c.forwarded += forwarded;
  w.ports[in.index].forwarded += forwarded;
}

bool DpdkRouter::sendFromKernel(rte_mbuf* m, uint16_t portId) {
  if (portId >= portIndexOf_.size() || portIndexOf_[portId] < 0) return false;
  m->port = portId;
  return rte_ring_enqueue(fromKernel_, m) == 0;
}

size_t DpdkRouter::poll(uint16_t worker) {
  Worker& w = *workers_[worker];
  for (auto& q : w.tx) q.n = 0;
  size_t received = 0;
  if (worker == 0) {
    rte_mbuf* down[kBurst];
    unsigned n =
        rte_ring_dequeue_burst(fromKernel_, reinterpret_cast<void**>(down), kBurst, nullptr);
    for (unsigned i = 0; i < n; ++i)
      w.tx[static_cast<size_t>(portIndexOf_[down[i]->port])].push(down[i]);
    received += n;
  }
  const Table* t = table_.load(std::memory_order_acquire);
  rte_mbuf* bufs[kBurst];
  for (const auto& p : ports_) {
    uint16_t n = rte_eth_rx_burst(p.port.portId, worker, bufs, kBurst);
    received += n;
    w.ports[p.index].rx += n;
    if (n == 0) continue;
    if (t != nullptr) {
      handleBurst(w, *t, bufs, n, p);
      continue;
    }
    w.c.rx += n;
    for (uint16_t i = 0; i < n; ++i) {
      bufs[i]->port = p.port.portId;
      punt(w, bufs[i], &FastPathCounters::puntNoRoute);
    }
  }
  for (size_t i = 0; i < w.tx.size(); ++i) {
    auto& q = w.tx[i];
    if (q.n == 0) continue;
    uint16_t sent = rte_eth_tx_burst(options_.ports[i].portId, worker, q.slots.data(), q.n);
    w.ports[i].tx += sent;
    if (sent < q.n) {
      w.c.txDropped += q.n - sent;
      rte_pktmbuf_free_bulk(q.slots.data() + sent, q.n - sent);
    }
  }
  ++w.polls;
  if (received > 0) ++w.busyPolls;
  // The table read above is no longer held.
  if (w.registered) rte_rcu_qsbr_quiescent(qsbr_, worker);
  return received;
}

}  // namespace vfplane::dataplane
