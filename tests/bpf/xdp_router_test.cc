// The XDP router program through BPF_PROG_TEST_RUN: each case builds a frame, runs the loaded
// program on it and checks the verdict and the bytes that come out. Root only: the binary moves
// into a throwaway network namespace and skips, saying why, where BPF or namespaces are missing.
#include "vfplane/dataplane/xdp_router.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "fastpath_cases.h"
#include "test_support.h"

namespace vfplane::dataplane {
namespace {
using dataplane::Ipv4;
using dataplane::Ipv4Prefix;

using test::Frame;
using test::frameTo;
Ipv4 ip(const char* text) { return test::ip4(text); }
MacAddress mac(const char* text) { return test::macOf(text); }
uint16_t checksum(const uint8_t* p, size_t n) { return test::ipChecksum(p, n); }

struct Verdict {
  uint32_t action = 0;
  std::vector<uint8_t> out;
};

class XdpRouterTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) {
      skip_ = "needs root to load BPF programs";
    } else if (auto why = test::enterFreshNetns()) {
      skip_ = "needs a network namespace: " + *why;
    }
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    auto router = XdpRouter::load({.maxEntries = 1024});
    if (!router) GTEST_SKIP() << "cannot load BPF here: " << router.error().message();
    router_.emplace(std::move(*router));
    // lo (ifindex 1) is the only device of the fresh namespace; the devmap wants a real one.
    model_ = test::fastPathModel(1);
    ASSERT_TRUE(router_->setPort(1, test::portMac()));
    ASSERT_TRUE(router_->install(model_.compile()));
  }

  Verdict run(const std::vector<uint8_t>& in) {
    Verdict v;
    v.out.resize(in.size() + 256);
    bpf_test_run_opts opts{};
    opts.sz = sizeof opts;
    opts.data_in = in.data();
    opts.data_size_in = static_cast<__u32>(in.size());
    opts.data_out = v.out.data();
    opts.data_size_out = static_cast<__u32>(v.out.size());
    opts.repeat = 1;
    int rc = bpf_prog_test_run_opts(router_->routerFd(), &opts);
    EXPECT_EQ(rc, 0) << "BPF_PROG_TEST_RUN: " << std::strerror(errno);
    v.action = opts.retval;
    v.out.resize(opts.data_size_out);
    return v;
  }
  Frame to(const char* dst) { return frameTo(dst); }

  static inline std::string skip_;
  std::optional<XdpRouter> router_;
  dataplane::ForwardingModel model_;
};

TEST_F(XdpRouterTest, ForwardsRewritingMacsAndTtlWithAValidChecksum) {
  auto in = to("10.1.0.7").bytes();
  auto v = run(in);
  EXPECT_EQ(v.action, static_cast<uint32_t>(XDP_REDIRECT));
  ASSERT_EQ(v.out.size(), in.size());
  auto expected = test::forwardedFrame(in, mac("bb:00:00:00:00:07"), mac("aa:00:00:00:00:01"));
  EXPECT_EQ(v.out, expected);

  auto viaGateway = run(to("198.51.100.20").bytes());
  EXPECT_EQ(viaGateway.action, static_cast<uint32_t>(XDP_REDIRECT));
  EXPECT_TRUE(std::equal(viaGateway.out.begin(), viaGateway.out.begin() + 6,
                         mac("bb:00:00:00:02:54").bytes.begin()));
}

TEST_F(XdpRouterTest, IncrementalChecksumMatchesARecomputationForAnyHeader) {
  std::mt19937 rng(11);
  for (int i = 0; i < 500; ++i) {
    Frame f = to("10.1.0.7");
    f.ttl = static_cast<uint8_t>(2 + rng() % 254);
    f.id = static_cast<uint16_t>(rng());
    f.saddr = static_cast<Ipv4>(rng());
    auto v = run(f.bytes());
    ASSERT_EQ(v.action, static_cast<uint32_t>(XDP_REDIRECT));
    ASSERT_EQ(checksum(v.out.data() + 14, 20), 0) << "ttl " << int(f.ttl) << " id " << f.id;
    ASSERT_EQ(v.out[14 + 8], f.ttl - 1);
  }
}

TEST_F(XdpRouterTest, PuntsWhatTheKernelMustHandleUntouched) {
  auto cases = test::puntCases();
  for (const auto& c : cases) {
    auto in = c.frame.bytes();
    auto v = run(in);
    EXPECT_EQ(v.action, static_cast<uint32_t>(XDP_PASS)) << c.what;
    EXPECT_EQ(v.out, in) << c.what << ": a punted frame is not modified";
  }
  std::vector<uint8_t> truncated = to("10.1.0.7").bytes();
  truncated.resize(20);
  EXPECT_EQ(run(truncated).action, static_cast<uint32_t>(XDP_PASS));

  auto c = router_->counters();
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->rx, 8u);
  EXPECT_EQ(c->forwarded, 0u);
  EXPECT_EQ(c->puntTtl, 1u);
  EXPECT_EQ(c->puntIpOptions, 1u);
  EXPECT_EQ(c->puntNotIpv4, 1u);
  EXPECT_EQ(c->puntAction, 2u) << "local and unresolved are punt entries";
  EXPECT_EQ(c->puntMalformed, 1u);
  EXPECT_EQ(c->puntOtherHost, 2u) << "another host's frame and a broadcast";
}

TEST_F(XdpRouterTest, OnlyDeclaredPortsRoute) {
  ASSERT_TRUE(router_->setPort(1, test::macOf("aa:00:00:00:00:99")));
  auto in = to("10.1.0.7").bytes();
  auto v = run(in);
  EXPECT_EQ(v.action, static_cast<uint32_t>(XDP_PASS))
      << "the frame is for aa:..:01, the port is now aa:..:99";
  EXPECT_EQ(v.out, in);
}

TEST_F(XdpRouterTest, NoRouteIsPunted) {
  model_.removeRoute(*Ipv4Prefix::parse("0.0.0.0/0"));
  auto stats = router_->install(model_.compile());
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->removed, 1u);
  EXPECT_EQ(run(to("198.51.100.20").bytes()).action, static_cast<uint32_t>(XDP_PASS));
  EXPECT_EQ(router_->counters()->puntNoRoute, 1u);
}

TEST_F(XdpRouterTest, InstallWritesOnlyWhatChanged) {
  EXPECT_EQ(router_->installedEntries(), model_.compile().size());
  auto same = router_->install(model_.compile());
  ASSERT_TRUE(same);
  EXPECT_EQ(same->added + same->updated + same->removed, 0u);
  EXPECT_EQ(same->unchanged, model_.compile().size());

  // The gateway moves: one entry changes, and traffic follows at once.
  model_.setNeighbour({ip("10.1.0.254"), 1, mac("bb:00:00:00:0f:ff")});
  model_.removeNeighbour(ip("10.1.0.7"), 1);
  auto changed = router_->install(model_.compile());
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed->updated, 2u) << "the default route and 10.1.0.254/32";
  EXPECT_EQ(changed->removed, 1u) << "10.1.0.7/32";
  auto v = run(to("198.51.100.20").bytes());
  EXPECT_TRUE(std::equal(v.out.begin(), v.out.begin() + 6, mac("bb:00:00:00:0f:ff").bytes.begin()));
  EXPECT_EQ(run(to("10.1.0.7").bytes()).action, static_cast<uint32_t>(XDP_PASS))
      << "back to the kernel for ARP";
}

}  // namespace
}  // namespace vfplane::dataplane
