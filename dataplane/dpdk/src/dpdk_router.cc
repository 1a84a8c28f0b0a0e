#include "vfplane/dataplane/dpdk_router.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lpm.h>
#include <rte_lpm6.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>

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

  rte_lpm* v4 = nullptr;
  rte_lpm6* v6 = nullptr;
  // The /0 entries' hops, which rte_lpm and rte_lpm6 cannot hold: what a miss falls back to.
  int64_t default4 = -1, default6 = -1;
  std::vector<Hop> hops;
  std::vector<Group> groups;

  ~Table() {
    if (v4 != nullptr) rte_lpm_free(v4);
    if (v6 != nullptr) rte_lpm6_free(v6);
  }
};

struct alignas(64) DpdkRouter::Worker {
  FastPathCounters c;
  std::vector<PortCounters> ports;  // by port index; names left empty
  uint64_t polls = 0;
  uint64_t busyPolls = 0;
  bool registered = false;
  std::vector<std::vector<rte_mbuf*>> tx;  // per egress port, reused by every poll
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
  r->pool_ = rte_pktmbuf_pool_create(fmt::format("vfp_pool_{}", id).c_str(), mbufs, kMempoolCache,
                                     0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
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
    r->portIndexOf_[p.portId] = static_cast<int>(i);
  }
  for (uint16_t w = 0; w < workers; ++w) {
    auto worker = std::make_unique<Worker>();
    worker->tx.resize(options.ports.size());
    worker->ports.resize(options.ports.size());
    for (auto& q : worker->tx) q.reserve(static_cast<size_t>(kBurst) * options.ports.size());
    r->workers_.push_back(std::move(worker));
  }
  return r;
}

DpdkRouter::~DpdkRouter() {
  for (const auto& p : options_.ports) {
    if (portIndexOf_.size() > p.portId && portIndexOf_[p.portId] >= 0) rte_eth_dev_stop(p.portId);
  }
  delete table_.load();
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
    return {};
  }
  return usageError(fmt::format("port {}: no DPDK port of that name", port.name), ENODEV);
}

Result<std::unique_ptr<DpdkRouter::Table>> DpdkRouter::build(const Fib& fib) {
  auto t = std::make_unique<Table>();
  for (Punt p : kPunts) t->hops.push_back({puntCounter(p), 0});
  std::map<const NextHopGroup*, uint32_t> hopOfGroup;  // compile() shares equal groups
  size_t v4 = 0, v6 = 0, tbl8v4 = 0, tbl8v6 = 0;
  for (const auto& e : fib) {
    int len = e.prefix.length;
    if (e.prefix.addr.isV4()) {
      ++v4;
      tbl8v4 += len > 24;
    } else {
      ++v6;
      tbl8v6 += static_cast<size_t>(std::max(0, (len - 24 + 7) / 8));
    }
    if (!e.action.forwards() || hopOfGroup.contains(&e.action.group())) continue;
    const NextHopGroup& g = e.action.group();
    Table::Group tg;
    tg.paths = static_cast<uint32_t>(std::min(g.paths.size(), kMaxPaths));
    for (uint32_t i = 0; i < tg.paths; ++i) {
      const GroupPath& gp = g.paths[i];
      tg.total += gp.weight;
      tg.upper[i] = tg.total;
      if (!gp.adjacency) continue;
      for (size_t p = 0; p < ports_.size(); ++p) {
        if (ports_[p].ifindex == 0 || ports_[p].ifindex != gp.adjacency->ifindex) continue;
        tg.path[i] = {true, static_cast<uint16_t>(p), static_cast<uint32_t>(gp.adjacency->mtu),
                      gp.adjacency->src, gp.adjacency->dst};
      }
    }
    t->groups.push_back(tg);
    hopOfGroup[&g] = static_cast<uint32_t>(t->hops.size());
    t->hops.push_back({nullptr, static_cast<uint32_t>(t->groups.size() - 1)});
  }
  // Short: DPDK derives ring and hash names from it and truncates them at 32 characters.
  std::string name = fmt::format("v{}t{}", id_, generation_++);
  rte_lpm_config c4{};
  c4.max_rules = std::max<uint32_t>(options_.maxEntries, static_cast<uint32_t>(v4) + 1);
  c4.number_tbl8s = static_cast<uint32_t>(std::min<size_t>(tbl8v4 + 256, 1u << 20));
  t->v4 = rte_lpm_create((name + "_4").c_str(), SOCKET_ID_ANY, &c4);
  if (t->v4 == nullptr) return fail(rteError("DPDK router: create the IPv4 table"));
  rte_lpm6_config c6{};
  c6.max_rules = std::max<uint32_t>(options_.maxEntries, static_cast<uint32_t>(v6) + 1);
  c6.number_tbl8s = static_cast<uint32_t>(std::min<size_t>(tbl8v6 + 256, 1u << 20));
  t->v6 = rte_lpm6_create((name + "_6").c_str(), SOCKET_ID_ANY, &c6);
  if (t->v6 == nullptr) return fail(rteError("DPDK router: create the IPv6 table"));
  for (const auto& e : fib) {
    uint32_t hop =
        e.action.forwards() ? hopOfGroup.at(&e.action.group()) : puntHop(e.action.punt());
    bool isV4 = e.prefix.addr.isV4();
    if (e.prefix.length == 0) {
      (isV4 ? t->default4 : t->default6) = hop;
      continue;
    }
    auto depth = static_cast<uint8_t>(e.prefix.length);
    int rc = isV4 ? rte_lpm_add(t->v4, e.prefix.addr.word(0), depth, hop)
                  : rte_lpm6_add(t->v6, e.prefix.addr.bytes.data(), depth, hop);
    if (rc < 0) return fail(rcError(fmt::format("DPDK router: add {}", e.prefix.str()), rc));
  }
  return t;
}

Result<InstallStats> DpdkRouter::install(const Fib& fib) {
  FibDiff diff = diffFib(installed_, fib);
  auto table = build(fib);
  if (!table) return fail(std::move(table.error()));
  Table* old = table_.exchange(table->release(), std::memory_order_acq_rel);
  if (old != nullptr) {
    // Returns once every worker online has finished the poll that might hold the old table.
    rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
    delete old;
  }
  installed_.clear();
  for (const auto& e : fib) installed_.insert_or_assign(e.prefix, e.action);
  return diff.stats;
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

void DpdkRouter::handle(Worker& w, const Table& t, rte_mbuf* m, const Bound& in) {
  ++w.c.rx;
  // A port no model interface was bound to routes nothing.
  if (in.ifindex == 0) return punt(w, m, &FastPathCounters::puntOtherHost);
  auto* frame = rte_pktmbuf_mtod(m, uint8_t*);
  size_t length = rte_pktmbuf_data_len(m);
  auto p = classify(frame, length, in.mac);
  if (!p) return punt(w, m, p.error());
  uint32_t hop = 0;
  bool found;
  int64_t fallback;
  if (p->dst.isV4()) {
    found = rte_lpm_lookup(t.v4, p->dst.word(0), &hop) == 0;
    fallback = t.default4;
  } else {
    found = rte_lpm6_lookup(t.v6, p->dst.bytes.data(), &hop) == 0;
    fallback = t.default6;
  }
  if (!found) {
    if (fallback < 0) return punt(w, m, &FastPathCounters::puntNoRoute);
    hop = static_cast<uint32_t>(fallback);
  }
  const Table::Hop& h = t.hops[hop];
  if (h.punt != nullptr) return punt(w, m, h.punt);
  const Table::Group& g = t.groups[h.group];
  uint32_t i = 0;
  if (g.paths > 1) {
    // NextHopGroup::pick(): the first path whose share the scaled hash falls under.
    uint64_t hash = flowHash(flowOf(frame, length), options_.hashSeed);
    auto x = static_cast<uint32_t>((hash * g.total) >> 32);
    while (i + 1 < g.paths && x >= g.upper[i]) ++i;
  }
  const Table::Path& path = g.path[i];
  if (!path.resolved) return punt(w, m, &FastPathCounters::puntUnresolved);
  if (p->l3Length > path.mtu) return punt(w, m, &FastPathCounters::puntTooBig);
  rewrite(frame, path.dst, path.src);
  ++w.c.forwarded;
  ++w.ports[in.index].forwarded;
  w.tx[path.portIndex].push_back(m);
}

bool DpdkRouter::sendFromKernel(rte_mbuf* m, uint16_t portId) {
  if (portId >= portIndexOf_.size() || portIndexOf_[portId] < 0) return false;
  m->port = portId;
  return rte_ring_enqueue(fromKernel_, m) == 0;
}

size_t DpdkRouter::poll(uint16_t worker) {
  Worker& w = *workers_[worker];
  for (auto& q : w.tx) q.clear();
  size_t received = 0;
  if (worker == 0) {
    rte_mbuf* down[kBurst];
    unsigned n =
        rte_ring_dequeue_burst(fromKernel_, reinterpret_cast<void**>(down), kBurst, nullptr);
    for (unsigned i = 0; i < n; ++i)
      w.tx[static_cast<size_t>(portIndexOf_[down[i]->port])].push_back(down[i]);
    received += n;
  }
  const Table* t = table_.load(std::memory_order_acquire);
  rte_mbuf* bufs[kBurst];
  for (const auto& p : ports_) {
    uint16_t n = rte_eth_rx_burst(p.port.portId, worker, bufs, kBurst);
    received += n;
    w.ports[p.index].rx += n;
    for (uint16_t i = 0; i < n; ++i) {
      if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(bufs[i + 1], void*));
      // Whoever takes a punted frame hands it to the kernel by the port it came in on.
      bufs[i]->port = p.port.portId;
      if (t == nullptr) {
        ++w.c.rx;
        punt(w, bufs[i], &FastPathCounters::puntNoRoute);
      } else {
        handle(w, *t, bufs[i], p);
      }
    }
  }
  for (size_t i = 0; i < w.tx.size(); ++i) {
    auto& q = w.tx[i];
    if (q.empty()) continue;
    uint16_t sent = rte_eth_tx_burst(options_.ports[i].portId, worker, q.data(),
                                     static_cast<uint16_t>(q.size()));
    w.ports[i].tx += sent;
    for (size_t j = sent; j < q.size(); ++j) {
      ++w.c.txDropped;
      rte_pktmbuf_free(q[j]);
    }
  }
  ++w.polls;
  if (received > 0) ++w.busyPolls;
  // The table read above is no longer held.
  if (w.registered) rte_rcu_qsbr_quiescent(qsbr_, worker);
  return received;
}

}  // namespace vfplane::dataplane
