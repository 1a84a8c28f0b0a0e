#include "vfplane/dataplane/kernel_path.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "vfplane/netlink/rtnl.h"

namespace vfplane::dataplane {
namespace {

constexpr unsigned kBurst = 32;
constexpr int kMaxSegments = 16;

Result<Fd> openTap(const std::string& name) {
  Fd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) return fail(systemError("open /dev/net/tun", errno));
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0)
    return fail(systemError(fmt::format("create TAP {}", name), errno));
  return fd;
}

}  // namespace

Result<std::unique_ptr<KernelPath>> KernelPath::create(DpdkRouter& router,
                                                       const std::vector<MirrorSpec>& specs) {
  std::unique_ptr<KernelPath> k(new KernelPath(router));
  k->tapOfPort_.assign(RTE_MAX_ETHPORTS, -1);
  auto rtnl = netlink::Rtnl::open();
  if (!rtnl) return fail(std::move(rtnl.error()));
  for (const auto& s : specs) {
    std::string what = fmt::format("port {}", s.name);
    rte_ether_addr addr{};
    if (s.mac) {
      std::memcpy(addr.addr_bytes, s.mac->bytes.data(), 6);
      if (int rc = rte_eth_dev_default_mac_addr_set(s.portId, &addr); rc == -ENOTSUP) {
        return usageError(fmt::format("{}: the device does not let its MAC be set (to {}); run "
                                      "without --mac {}=... to use its own",
                                      what, s.mac->str(), s.name),
                          ENOTSUP);
      } else if (rc != 0) {
        return fail(Error(
            fmt::format("{}: set the port's MAC to {}: {}", what, s.mac->str(), rte_strerror(-rc)),
            -rc));
      }
    }
    if (int rc = rte_eth_macaddr_get(s.portId, &addr); rc != 0)
      return fail(Error(fmt::format("{}: read the port's MAC: {}", what, rte_strerror(-rc)), -rc));
    bool none = rte_is_zero_ether_addr(&addr);
    // Some vdevs have none: the TAP gets a random local one, and the port too if it takes it
    // (frames for it reach the fast path either way: such a port does not filter by MAC).
    if (none) rte_eth_random_addr(addr.addr_bytes);
    MacAddress mac;
    std::memcpy(mac.bytes.data(), addr.addr_bytes, 6);
    if (none) {
      bool taken = rte_eth_dev_default_mac_addr_set(s.portId, &addr) == 0;
      spdlog::info("port {}: the device has no MAC; the TAP has {}{}", s.name, mac.str(),
                   taken ? ", and the port too" : "");
    }
    uint16_t mtu = 1500;
    if (int rc = rte_eth_dev_get_mtu(s.portId, &mtu); rc != 0) mtu = 1500;
    auto fd = openTap(s.name);
    if (!fd) return fail(std::move(fd.error()).withContext(what));
    auto link = rtnl->link(s.name);
    if (!link || !*link) return fail(Error(what + ": the TAP vanished after its creation", ENODEV));
    netlink::LinkChange change;
    change.mac = mac;
    change.mtu = mtu;
    change.up = true;
    if (auto ok =
            rtnl->execute(netlink::buildChangeLink((*link)->ifindex, change),
                          fmt::format("set TAP {} to {}, MTU {}, up", s.name, mac.str(), mtu));
        !ok) {
      return fail(std::move(ok.error()).withContext(what));
    }
    k->tapOfPort_[s.portId] = static_cast<int>(k->taps_.size());
    k->taps_.push_back({s.name, s.portId, std::move(*fd), -1});
    spdlog::info("port {}: TAP mirror {} (ifindex {}), MAC {}, MTU {}", s.name, s.name,
                 (*link)->ifindex, mac.str(), mtu);
  }
  k->syncCarrier();
  return k;
}

KernelPath::~KernelPath() { stop(); }

void KernelPath::start() {
  stopping_ = false;
  thread_ = std::thread([this] {
    std::vector<pollfd> fds;
    for (const auto& t : taps_) fds.push_back({t.fd.get(), POLLIN, 0});
    auto nextCarrier = std::chrono::steady_clock::now();
    while (!stopping_) {
      if (pass() == 0) {
        // Woken by a frame from the kernel; punted frames wait at most this long.
        ::poll(fds.data(), fds.size(), 1);
      }
      if (auto now = std::chrono::steady_clock::now(); now >= nextCarrier) {
        syncCarrier();
        nextCarrier = now + std::chrono::milliseconds(200);
      }
    }
  });
}

void KernelPath::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

KernelPathStats KernelPath::stats() const { return {toKernel_, fromKernel_, dropped_}; }

void KernelPath::syncCarrier() {
  for (auto& t : taps_) {
    rte_eth_link link{};
    if (rte_eth_link_get_nowait(t.portId, &link) != 0) continue;
    int up = link.link_status == RTE_ETH_LINK_UP ? 1 : 0;
    if (up == t.carrier) continue;
    if (::ioctl(t.fd.get(), TUNSETCARRIER, &up) != 0) {
      spdlog::warn("port {}: set the TAP's carrier {}: {}", t.name, up ? "on" : "off",
                   std::strerror(errno));
      continue;
    }
    if (t.carrier != -1) spdlog::info("port {}: link {}", t.name, up ? "up" : "down");
    t.carrier = up;
  }
}

size_t KernelPath::pass() {
  size_t moved = 0;
  rte_mbuf* bufs[kBurst];
  unsigned n = rte_ring_dequeue_burst(router_.exceptionRing(), reinterpret_cast<void**>(bufs),
                                      kBurst, nullptr);
  for (unsigned i = 0; i < n; ++i) {
    rte_mbuf* m = bufs[i];
    int t = m->port < tapOfPort_.size() ? tapOfPort_[m->port] : -1;
    bool written = false;
    if (t >= 0) {
      iovec iov[kMaxSegments];
      int segs = 0;
      for (rte_mbuf* s = m; s != nullptr && segs < kMaxSegments; s = s->next) {
        iov[segs++] = {rte_pktmbuf_mtod(s, void*), rte_pktmbuf_data_len(s)};
      }
      ssize_t w = ::writev(taps_[static_cast<size_t>(t)].fd.get(), iov, segs);
      written = w == static_cast<ssize_t>(rte_pktmbuf_pkt_len(m));
    }
    ++(written ? toKernel_ : dropped_);
    rte_pktmbuf_free(m);
  }
  moved += n;
  for (const auto& tap : taps_) {
    rte_mbuf* out[kBurst];
    unsigned got = 0;
    while (got < kBurst) {
      rte_mbuf* m = rte_pktmbuf_alloc(router_.mempool());
      if (m == nullptr) {
        ++dropped_;
        break;
      }
      ssize_t r = ::read(tap.fd.get(), rte_pktmbuf_mtod(m, void*), rte_pktmbuf_tailroom(m));
      if (r <= 0) {
        rte_pktmbuf_free(m);
        break;
      }
      rte_pktmbuf_append(m, static_cast<uint16_t>(r));
      out[got++] = m;
    }
    for (unsigned j = 0; j < got; ++j) {
      if (router_.sendFromKernel(out[j], tap.portId)) {
        ++fromKernel_;
      } else {
        ++dropped_;
        rte_pktmbuf_free(out[j]);
      }
    }
    moved += got;
  }
  return moved;
}

}  // namespace vfplane::dataplane
