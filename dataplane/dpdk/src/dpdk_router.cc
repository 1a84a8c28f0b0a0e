#include "vfplane/dataplane/dpdk_router.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <rte_byteorder.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_lpm.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>

namespace vfplane::dataplane {
namespace {

constexpr uint16_t kBurst = 32;
constexpr uint16_t kRingSize = 1024;

Error rteError(std::string_view what) {
  return Error(fmt::format("{}: {}", what, rte_strerror(rte_errno)), rte_errno);
}

std::atomic<uint64_t> g_instances{0};

}  // namespace

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
  if (options.ports.empty()) return fail("DPDK router: no ports", EINVAL);
  std::unique_ptr<DpdkRouter> r(new DpdkRouter());
  r->options_ = options;
  uint64_t id = g_instances.fetch_add(1);
  r->pool_ = rte_pktmbuf_pool_create(fmt::format("vfp_pool_{}", id).c_str(), options.mbufs, 256, 0,
                                     RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (r->pool_ == nullptr) return fail(rteError("DPDK router: mbuf pool"));
  r->exception_ = rte_ring_create(fmt::format("vfp_exc_{}", id).c_str(), kRingSize, SOCKET_ID_ANY,
                                  RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (r->exception_ == nullptr) return fail(rteError("DPDK router: exception ring"));
  r->portIndexOf_.assign(RTE_MAX_ETHPORTS, -1);
  for (size_t i = 0; i < options.ports.size(); ++i) {
    uint16_t port = options.ports[i].portId;
    r->ports_.push_back({options.ports[i], 0, MacAddress{}});
    if (!rte_eth_dev_is_valid_port(port))
      return fail(fmt::format("DPDK port {}: no such port", port), ENODEV);
    rte_eth_conf conf{};
    if (int rc = rte_eth_dev_configure(port, 1, 1, &conf); rc < 0) {
      return fail(Error(fmt::format("DPDK port {}: configure: {}", port, rte_strerror(-rc)), -rc));
    }
    int socket = rte_eth_dev_socket_id(port);
    if (int rc = rte_eth_rx_queue_setup(port, 0, kRingSize, socket, nullptr, r->pool_); rc < 0) {
      return fail(Error(fmt::format("DPDK port {}: RX queue: {}", port, rte_strerror(-rc)), -rc));
    }
    if (int rc = rte_eth_tx_queue_setup(port, 0, kRingSize, socket, nullptr); rc < 0) {
      return fail(Error(fmt::format("DPDK port {}: TX queue: {}", port, rte_strerror(-rc)), -rc));
    }
    if (int rc = rte_eth_dev_start(port); rc < 0) {
      return fail(Error(fmt::format("DPDK port {}: start: {}", port, rte_strerror(-rc)), -rc));
    }
    r->portIndexOf_[port] = static_cast<int>(i);
  }
  r->txScratch_.resize(options.ports.size());
  for (auto& q : r->txScratch_) q.reserve(static_cast<size_t>(kBurst) * options.ports.size());
  return r;
}

DpdkRouter::~DpdkRouter() {
  for (const auto& p : options_.ports) {
    if (portIndexOf_.size() > p.portId && portIndexOf_[p.portId] >= 0) rte_eth_dev_stop(p.portId);
  }
  if (lpm_ != nullptr) rte_lpm_free(lpm_);
  if (exception_ != nullptr) {
    rte_mbuf* m;
    while (rte_ring_dequeue(exception_, reinterpret_cast<void**>(&m)) == 0) rte_pktmbuf_free(m);
    rte_ring_free(exception_);
  }
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

Result<InstallStats> DpdkRouter::install(const std::vector<FibEntry>& fib) {
  FibDiff diff = diffFib(installed_, fib);
  // The next hops first: one per distinct action, so the LPM stores an index.
  std::vector<NextHop> hops;
  std::vector<uint32_t> hopOf(fib.size());
  for (size_t i = 0; i < fib.size(); ++i) {
    NextHop h;
    const auto& a = fib[i].action;
    if (a) {
      for (const auto& p : ports_) {
        if (p.ifindex == 0 || p.ifindex != a->ifindex) continue;
        h.forward = true;
        h.port = p.port.portId;
        std::memcpy(h.src, a->src.bytes.data(), 6);
        std::memcpy(h.dst, a->dst.bytes.data(), 6);
      }
    }
    auto same = [&](const NextHop& o) {
      return o.forward == h.forward && o.port == h.port && std::memcmp(o.src, h.src, 6) == 0 &&
             std::memcmp(o.dst, h.dst, 6) == 0;
    };
    auto it = std::find_if(hops.begin(), hops.end(), same);
    hopOf[i] = static_cast<uint32_t>(it == hops.end() ? hops.size() : it - hops.begin());
    if (it == hops.end()) hops.push_back(h);
  }
  rte_lpm_config config{};
  config.max_rules = std::max<uint32_t>(options_.maxEntries, static_cast<uint32_t>(fib.size()) + 1);
  config.number_tbl8s = 256;
  std::string name = fmt::format("vfp_lpm_{}_{}", static_cast<const void*>(this), generation_++);
  rte_lpm* lpm = rte_lpm_create(name.c_str(), SOCKET_ID_ANY, &config);
  if (lpm == nullptr) return fail(rteError("DPDK router: create LPM"));
  int defaultHop = -1;
  for (size_t i = 0; i < fib.size(); ++i) {
    // rte_lpm takes depths 1-32; the default route is what a miss falls back to.
    if (fib[i].prefix.length == 0) {
      defaultHop = static_cast<int>(hopOf[i]);
      continue;
    }
    if (int rc = rte_lpm_add(lpm, fib[i].prefix.addr, static_cast<uint8_t>(fib[i].prefix.length),
                             hopOf[i]);
        rc < 0) {
      rte_lpm_free(lpm);
      return fail(Error(
          fmt::format("DPDK router: add {}: {}", fib[i].prefix.str(), rte_strerror(-rc)), -rc));
    }
  }
  if (lpm_ != nullptr) rte_lpm_free(lpm_);
  lpm_ = lpm;
  nextHops_ = std::move(hops);
  defaultHop_ = defaultHop;
  installed_.clear();
  for (const auto& e : fib) installed_.insert_or_assign(e.prefix, e.action);
  return diff.stats;
}

void DpdkRouter::punt(rte_mbuf* m, uint64_t& reason) {
  ++reason;
  if (rte_ring_enqueue(exception_, m) != 0) {
    ++counters_.puntDropped;
    rte_pktmbuf_free(m);
  }
}

void DpdkRouter::handle(rte_mbuf* m, const Bound& in, std::vector<std::vector<rte_mbuf*>>& out) {
  ++counters_.rx;
  if (rte_pktmbuf_data_len(m) < sizeof(rte_ether_hdr)) return punt(m, counters_.puntMalformed);
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  // A router routes only frames addressed to it, as the XDP path does.
  // A port no model interface was bound to routes nothing.
  if (in.ifindex == 0 || std::memcmp(eth->dst_addr.addr_bytes, in.mac.bytes.data(), 6) != 0) {
    return punt(m, counters_.puntOtherHost);
  }
  if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
    return punt(m, counters_.puntNotIpv4);
  if (rte_pktmbuf_data_len(m) < sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr))
    return punt(m, counters_.puntMalformed);
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
  if (ip->version_ihl != RTE_IPV4_VHL_DEF) return punt(m, counters_.puntIpOptions);
  if (ip->time_to_live <= 1) return punt(m, counters_.puntTtl);
  uint32_t hop = 0;
  if (lpm_ == nullptr || rte_lpm_lookup(lpm_, rte_be_to_cpu_32(ip->dst_addr), &hop) != 0) {
    if (defaultHop_ < 0) return punt(m, counters_.puntNoRoute);
    hop = static_cast<uint32_t>(defaultHop_);
  }
  const NextHop& h = nextHops_[hop];
  if (!h.forward) return punt(m, counters_.puntAction);
  // RFC 1624, as in the XDP path: TTL is the high byte of its word.
  uint32_t check = static_cast<uint32_t>(ip->hdr_checksum) + rte_cpu_to_be_16(0x0100);
  ip->hdr_checksum = static_cast<uint16_t>(check + (check >= 0xffff));
  --ip->time_to_live;
  std::memcpy(eth->dst_addr.addr_bytes, h.dst, 6);
  std::memcpy(eth->src_addr.addr_bytes, h.src, 6);
  ++counters_.forwarded;
  out[static_cast<size_t>(portIndexOf_[h.port])].push_back(m);
}

size_t DpdkRouter::poll() {
  // Reserved at create(), so the hot path never allocates.
  auto& out = txScratch_;
  for (auto& q : out) q.clear();
  size_t received = 0;
  rte_mbuf* bufs[kBurst];
  for (const auto& p : ports_) {
    uint16_t n = rte_eth_rx_burst(p.port.portId, 0, bufs, kBurst);
    received += n;
    for (uint16_t i = 0; i < n; ++i) handle(bufs[i], p, out);
  }
  for (size_t i = 0; i < out.size(); ++i) {
    auto& q = out[i];
    if (q.empty()) continue;
    uint16_t sent =
        rte_eth_tx_burst(options_.ports[i].portId, 0, q.data(), static_cast<uint16_t>(q.size()));
    for (size_t j = sent; j < q.size(); ++j) {
      ++counters_.txDropped;
      rte_pktmbuf_free(q[j]);
    }
  }
  return received;
}

}  // namespace vfplane::dataplane
