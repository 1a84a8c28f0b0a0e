// The DPDK fast path on ring ports (EAL with --no-huge --no-pci --in-memory): the same model,
// frames and expectations as the XDP suite, so the two paths are held to one behaviour. Skips,
// saying why, where the EAL cannot start.
#include "vfplane/dataplane/dpdk_router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rte_eth_ring.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "fastpath_cases.h"

namespace vfplane::dataplane {
namespace {
using test::Frame;
using test::frameTo;
using test::macOf;

constexpr int kIngressIfindex = 6;  // port A: where frames come in (not in the model)
constexpr int kEgressIfindex = 7;   // port B: the model's one interface

struct RingPort {
  rte_ring* rx = nullptr;  // what the test enqueues: the port receives it
  rte_ring* tx = nullptr;  // what the port transmits: the test dequeues it
  uint16_t id = 0;
};

class DpdkRouterTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto ok = initEal({"dpdk_router_test", "--no-huge", "--no-pci", "--no-shconf", "--no-telemetry",
                       "-m", "256", "-l", "0", "--log-level=error"});
    if (!ok) {
      skip_ = "DPDK EAL cannot start here: " + ok.error().message();
      return;
    }
    for (auto* p : {&a_, &b_}) {
      std::string name = p == &a_ ? "a" : "b";
      p->rx = rte_ring_create(("rx_" + name).c_str(), 1024, SOCKET_ID_ANY,
                              RING_F_SP_ENQ | RING_F_SC_DEQ);
      p->tx = rte_ring_create(("tx_" + name).c_str(), 1024, SOCKET_ID_ANY,
                              RING_F_SP_ENQ | RING_F_SC_DEQ);
      int id = rte_eth_from_rings(("vfp_" + name).c_str(), &p->rx, 1, &p->tx, 1, SOCKET_ID_ANY);
      if (p->rx == nullptr || p->tx == nullptr || id < 0) {
        skip_ = "cannot make DPDK ring ports";
        return;
      }
      p->id = static_cast<uint16_t>(id);
    }
    auto router = DpdkRouter::create(
        {.ports = {{"a", a_.id}, {"b", b_.id}}, .maxEntries = 1024, .mbufs = 2047});
    if (!router) {
      skip_ = "cannot start the DPDK router: " + router.error().message();
      return;
    }
    router_ = std::move(*router);
    // As the router loop binds them: by name, to the model interface and MAC the kernel has.
    for (const Port& p : {Port{kIngressIfindex, "a", test::portMac()},
                          Port{kEgressIfindex, "b", macOf("aa:00:00:00:00:07")}}) {
      if (auto ok = router_->addPort(p); !ok) {
        skip_ = "cannot bind the DPDK ports: " + ok.error().message();
        return;
      }
    }
  }
  static void TearDownTestSuite() { router_.reset(); }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    model_ = test::fastPathModel(kEgressIfindex);
    auto ok = router_->install(model_.compile());
    ASSERT_TRUE(ok) << ok.error().message();
    before_ = *router_->counters();
  }

  // Injects frames on port A, polls once, and returns what port B sent and what was punted.
  std::pair<std::vector<std::vector<uint8_t>>, std::vector<std::vector<uint8_t>>> run(
      const std::vector<std::vector<uint8_t>>& frames) {
    for (const auto& f : frames) {
      rte_mbuf* m = rte_pktmbuf_alloc(router_->mempool());
      EXPECT_NE(m, nullptr);
      char* data = rte_pktmbuf_append(m, static_cast<uint16_t>(f.size()));
      std::memcpy(data, f.data(), f.size());
      EXPECT_EQ(rte_ring_enqueue(a_.rx, m), 0);
    }
    EXPECT_EQ(router_->poll(), frames.size());
    auto drain = [](rte_ring* ring) {
      std::vector<std::vector<uint8_t>> out;
      rte_mbuf* m;
      while (rte_ring_dequeue(ring, reinterpret_cast<void**>(&m)) == 0) {
        auto* p = rte_pktmbuf_mtod(m, uint8_t*);
        out.emplace_back(p, p + rte_pktmbuf_data_len(m));
        rte_pktmbuf_free(m);
      }
      return out;
    };
    return {drain(b_.tx), drain(router_->exceptionRing())};
  }

  static inline std::string skip_;
  static inline RingPort a_, b_;
  static inline std::unique_ptr<DpdkRouter> router_;
  ForwardingModel model_;
  FastPathCounters before_;
};

TEST_F(DpdkRouterTest, ForwardsRewritingMacsAndTtlWithAValidChecksum) {
  auto in = frameTo("10.1.0.7").bytes();
  auto [sent, punted] = run({in, frameTo("198.51.100.20").bytes()});
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_TRUE(punted.empty());
  EXPECT_EQ(sent[0],
            test::forwardedFrame(in, macOf("bb:00:00:00:00:07"), macOf("aa:00:00:00:00:01")));
  EXPECT_TRUE(
      std::equal(sent[1].begin(), sent[1].begin() + 6, macOf("bb:00:00:00:02:54").bytes.begin()))
      << "via the default route's gateway";
  EXPECT_EQ(router_->counters()->forwarded - before_.forwarded, 2u);
}

TEST_F(DpdkRouterTest, IncrementalChecksumMatchesARecomputationForAnyHeader) {
  std::mt19937 rng(11);
  for (int i = 0; i < 200; ++i) {
    Frame f = frameTo("10.1.0.7");
    f.ttl = static_cast<uint8_t>(2 + rng() % 254);
    f.id = static_cast<uint16_t>(rng());
    f.saddr = static_cast<Ipv4>(rng());
    auto [sent, punted] = run({f.bytes()});
    ASSERT_EQ(sent.size(), 1u);
    ASSERT_EQ(test::ipChecksum(sent[0].data() + 14, 20), 0)
        << "ttl " << int(f.ttl) << " id " << f.id;
  }
}

TEST_F(DpdkRouterTest, PuntsWhatTheKernelMustHandleUntouched) {
  std::vector<std::vector<uint8_t>> frames;
  for (const auto& c : test::puntCases()) frames.push_back(c.frame.bytes());
  auto truncated = frameTo("10.1.0.7").bytes();
  truncated.resize(20);
  frames.push_back(truncated);
  auto [sent, punted] = run(frames);
  EXPECT_TRUE(sent.empty());
  EXPECT_EQ(punted, frames) << "every frame reaches the exception ring as it came";
  const auto c = *router_->counters();
  EXPECT_EQ(c.puntTtl - before_.puntTtl, 1u);
  EXPECT_EQ(c.puntIpOptions - before_.puntIpOptions, 1u);
  EXPECT_EQ(c.puntNotIpv4 - before_.puntNotIpv4, 1u);
  EXPECT_EQ(c.puntAction - before_.puntAction, 2u) << "local and unresolved are punt entries";
  EXPECT_EQ(c.puntMalformed - before_.puntMalformed, 1u);
  EXPECT_EQ(c.puntOtherHost - before_.puntOtherHost, 2u) << "another host's frame and a broadcast";
}

TEST_F(DpdkRouterTest, NoRouteAndEgressWithoutADpdkPortArePunted) {
  model_.removeRoute(*Ipv4Prefix::parse("0.0.0.0/0"));
  // 10.9.0.0/24 leaves through an interface that is not one of the router's ports.
  model_.setInterface({42, "kernel-only", macOf("aa:00:00:00:00:42")});
  model_.setRoute({*Ipv4Prefix::parse("10.9.0.0/24"), test::ip4("10.1.0.254"), 42});
  model_.setNeighbour({test::ip4("10.1.0.254"), 42, macOf("bb:00:00:00:04:20")});
  auto ok = router_->install(model_.compile());
  ASSERT_TRUE(ok) << ok.error().message();
  auto [sent, punted] = run({frameTo("198.51.100.20").bytes(), frameTo("10.9.0.3").bytes()});
  EXPECT_TRUE(sent.empty());
  EXPECT_EQ(punted.size(), 2u);
  EXPECT_EQ(router_->counters()->puntNoRoute - before_.puntNoRoute, 1u);
  EXPECT_EQ(router_->counters()->puntAction - before_.puntAction, 1u);
}

TEST_F(DpdkRouterTest, InstallReportsWhatChangedAsTheXdpPathDoes) {
  auto same = router_->install(model_.compile());
  ASSERT_TRUE(same) << same.error().message();
  EXPECT_EQ(same->changed(), 0u);
  EXPECT_EQ(same->unchanged, model_.compile().size());
  // The gateway moves and a neighbour goes: the numbers XdpRouterTest.InstallWritesOnlyWhatChanged
  // expects of the XDP path for the same change.
  model_.setNeighbour({test::ip4("10.1.0.254"), kEgressIfindex, macOf("bb:00:00:00:0f:ff")});
  model_.removeNeighbour(test::ip4("10.1.0.7"), kEgressIfindex);
  auto changed = router_->install(model_.compile());
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed->updated, 2u) << "the default route and 10.1.0.254/32";
  EXPECT_EQ(changed->removed, 1u) << "10.1.0.7/32";
  EXPECT_EQ(router_->installedEntries(), model_.compile().size());
}

TEST_F(DpdkRouterTest, AddPortNamesAPortThatIsNotThere) {
  auto ok = router_->addPort({9, "c", macOf("aa:00:00:00:00:09")});
  ASSERT_FALSE(ok);
  EXPECT_EQ(ok.error().sysErrno(), ENODEV);
  EXPECT_TRUE(ok.error().isUsage());
  EXPECT_THAT(ok.error().message(), testing::HasSubstr("port c"));
}

}  // namespace
}  // namespace vfplane::dataplane
