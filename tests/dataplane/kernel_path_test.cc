// The DPDK router's kernel side on ring ports, as root in a throwaway network namespace: the TAP
// mirror takes the port's MAC (or the one asked for), its MTU and its link state, punted frames
// arrive on the TAP, and what the kernel sends on the TAP leaves the port. Skips, saying why,
// without namespaces, TAP or an EAL.
#include "vfplane/dataplane/kernel_path.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "fastpath_cases.h"
#include "test_support.h"
#include "vfplane/netlink/rtnl.h"

namespace vfplane::dataplane {
namespace {
using test::frameTo;
using test::macOf;

class KernelPathTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) {
      skip_ = "needs root (TAP links in a network namespace)";
      return;
    }
    if (auto why = test::enterFreshNetns()) {
      skip_ = "needs a network namespace: " + *why;
      return;
    }
    // No IPv6 on the TAP: its router solicitations and MLD reports would be frames of the
    // kernel's own on the port.
    for (const char* knob : {"all", "default"}) {
      std::ofstream(std::string("/proc/sys/net/ipv6/conf/") + knob + "/disable_ipv6") << "1\n";
    }
    auto ok = initEal({"kernel_path_test", "--no-huge", "--no-pci", "--no-shconf", "--no-telemetry",
                       "-m", "256", "-l", "0", "--log-level=error"});
    if (!ok) {
      skip_ = "DPDK EAL cannot start here: " + ok.error().message();
      return;
    }
    rx_ = rte_ring_create("kp_rx", 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    tx_ = rte_ring_create("kp_tx", 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    int id = rte_eth_from_rings("vfp_kp", &rx_, 1, &tx_, 1, SOCKET_ID_ANY);
    if (rx_ == nullptr || tx_ == nullptr || id < 0) {
      skip_ = "cannot make a DPDK ring port";
      return;
    }
    port_ = static_cast<uint16_t>(id);
  }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    auto router = DpdkRouter::create({.ports = {{"kp0", port_, 1400}}, .mbufs = 2047});
    ASSERT_TRUE(router) << router.error().message();
    router_ = std::move(*router);
    auto kernel = KernelPath::create(*router_, {{"kp0", port_, std::nullopt}});
    ASSERT_TRUE(kernel) << kernel.error().message();
    kernel_ = std::move(*kernel);
    auto rtnl = netlink::Rtnl::open();
    ASSERT_TRUE(rtnl) << rtnl.error().message();
    rtnl_.emplace(std::move(*rtnl));
  }

  void TearDown() override {
    kernel_.reset();
    router_.reset();
    EXPECT_EQ(::if_nametoindex("kp0"), 0u) << "the TAP goes with the kernel path";
  }

  netlink::LinkInfo tap() {
    auto link = rtnl_->link("kp0");
    EXPECT_TRUE(link && *link) << "TAP kp0";
    return link && *link ? **link : netlink::LinkInfo{};
  }

  // A packet socket on the TAP: what the kernel receives there, and a way to make it send.
  Fd packetSocket() {
    Fd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL)));
    EXPECT_TRUE(fd.valid()) << std::strerror(errno);
    sockaddr_ll addr{};
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(ETH_P_ALL);
    addr.sll_ifindex = static_cast<int>(::if_nametoindex("kp0"));
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    return fd;
  }

  static inline std::string skip_;
  static inline rte_ring *rx_ = nullptr, *tx_ = nullptr;
  static inline uint16_t port_ = 0;
  std::unique_ptr<DpdkRouter> router_;
  std::unique_ptr<KernelPath> kernel_;
  std::optional<netlink::Rtnl> rtnl_;
};

TEST_F(KernelPathTest, TheTapTakesThePortsMacMtuAndLink) {
  auto link = tap();
  rte_ether_addr portMac{};
  ASSERT_EQ(rte_eth_macaddr_get(port_, &portMac), 0);
  ASSERT_TRUE(rte_is_zero_ether_addr(&portMac)) << "a ring port has no MAC and takes none";
  auto mac = netlink::MacAddress::parse(link.mac);
  ASSERT_TRUE(mac) << link.mac;
  EXPECT_FALSE(mac->isZero()) << "the TAP has a MAC all the same";
  EXPECT_EQ(mac->bytes[0] & 3, 2) << link.mac << ": unicast, locally administered";
  EXPECT_EQ(link.mtu, 1400) << "the port's MTU";
  EXPECT_TRUE(link.up());
  EXPECT_TRUE(link.carrier) << "the ring port's link is up";

  ASSERT_EQ(rte_eth_dev_set_link_down(port_), 0);
  kernel_->syncCarrier();
  EXPECT_FALSE(tap().carrier) << "the port lost its link";
  EXPECT_TRUE(tap().up()) << "still administratively up";
  ASSERT_EQ(rte_eth_dev_set_link_up(port_), 0);
  kernel_->syncCarrier();
  EXPECT_TRUE(tap().carrier);
}

// A ring port cannot change its MAC, as a VF whose PF does not trust it cannot: --mac is then an
// error that names the port and leaves no TAP.
TEST_F(KernelPathTest, AMacThePortRefusesIsAnErrorNamingIt) {
  kernel_.reset();
  auto refused = KernelPath::create(*router_, {{"kp0", port_, macOf("02:00:00:00:0a:01")}});
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message(),
              testing::AllOf(testing::HasSubstr("port kp0"),
                             testing::HasSubstr("does not let its MAC be set"),
                             testing::HasSubstr("--mac")));
  EXPECT_EQ(::if_nametoindex("kp0"), 0u);
}

TEST_F(KernelPathTest, PuntedFramesReachTheKernelOnTheirPortsTap) {
  auto sock = packetSocket();
  // Unaddressed to the port's MAC: the fast path punts it unmodified.
  test::Frame f = frameTo("10.1.0.7");
  f.dst = macOf("02:00:00:00:0a:99");
  auto bytes = f.bytes();
  rte_mbuf* m = rte_pktmbuf_alloc(router_->mempool());
  ASSERT_NE(m, nullptr);
  std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(bytes.size())), bytes.data(),
              bytes.size());
  ASSERT_EQ(rte_ring_enqueue(rx_, m), 0);
  ASSERT_EQ(router_->poll(), 1u);
  EXPECT_EQ(kernel_->pass(), 1u);
  EXPECT_EQ(kernel_->stats().toKernel, 1u);
  std::vector<uint8_t> got;
  while (got.empty()) {
    pollfd p{sock.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1) << "the frame is on the TAP";
    std::vector<uint8_t> buf(2048);
    sockaddr_ll from{};
    socklen_t len = sizeof from;
    ssize_t n =
        ::recvfrom(sock.get(), buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
    ASSERT_GT(n, 0);
    if (from.sll_pkttype == PACKET_OUTGOING) continue;  // the kernel's own
    buf.resize(static_cast<size_t>(n));
    got = std::move(buf);
  }
  EXPECT_EQ(got, bytes);
}

TEST_F(KernelPathTest, WhatTheKernelSendsOnTheTapLeavesThePort) {
  auto sock = packetSocket();
  auto bytes = frameTo("10.1.0.7").bytes();
  ASSERT_EQ(::send(sock.get(), bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
  size_t moved = 0;
  for (int i = 0; i < 1000 && moved == 0; ++i) {
    moved = kernel_->pass();
    if (moved == 0) ::usleep(1000);
  }
  ASSERT_EQ(moved, 1u) << "the kernel's frame read from the TAP";
  EXPECT_EQ(router_->poll(), 1u) << "worker 0 takes it from the ring";
  rte_mbuf* out = nullptr;
  ASSERT_EQ(rte_ring_dequeue(tx_, reinterpret_cast<void**>(&out)), 0) << "sent on the port";
  auto* data = rte_pktmbuf_mtod(out, uint8_t*);
  EXPECT_EQ(std::vector<uint8_t>(data, data + rte_pktmbuf_data_len(out)), bytes);
  rte_pktmbuf_free(out);
  EXPECT_EQ(kernel_->stats().fromKernel, 1u);
}

}  // namespace
}  // namespace vfplane::dataplane
