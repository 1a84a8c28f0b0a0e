// PF carrier drives device health through rtnetlink events: on a --veth simulated node, taking a
// PF's switch-side link down must turn its VFs Unhealthy in the kubelet's ListAndWatch stream, and
// bringing it up must turn them Healthy again. Runs in a throwaway network namespace.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "test_support.h"
#include "vfplane/dp/daemon.h"
#include "vfplane/dp/kubelet_sim.h"
#include "vfplane/sriov/links.h"
#include "vfplane/sriov/sim_node.h"

namespace vfplane::dp {
namespace {
using namespace std::chrono_literals;

class DpCarrierTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (auto why = test::enterFreshNetns()) skipReason_ = *why;
  }
  void SetUp() override {
    if (!skipReason_.empty()) GTEST_SKIP() << "needs a network namespace: " << skipReason_;
    auto links = sriov::NetlinkLinks::open();
    ASSERT_TRUE(links) << links.error().message();
    links_ = std::move(*links);
    auto node = sriov::createSimNode(
        {.root = dir_.path() / "node", .pfs = 2, .vfs = 2, .veth = true}, links_.get());
    ASSERT_TRUE(node) << node.error().message();
    test::writeFile(dir_.path() / "config.json",
                    R"({"resourceList": [{"resourceName": "vfs", "selectors": {"drivers": ["iavf"]}}]})");
    auto k = KubeletSim::start({(dir_.path() / "kubelet").string(), false, ""});
    ASSERT_TRUE(k);
    kubelet_ = std::move(*k);
    startDaemon();
  }
  void startDaemon() {
    DaemonOptions o;
    o.configPath = (dir_.path() / "config.json").string();
    o.kubeletDir = (dir_.path() / "kubelet").string();
    o.sysfsRoot = (dir_.path() / "node").string();
    o.devinfoDir = (dir_.path() / "devinfo").string();
    auto d = Daemon::create(o);
    ASSERT_TRUE(d) << d.error().message();
    daemon_ = std::move(*d);
    ASSERT_TRUE(daemon_->start());
    loop_ = std::thread([this] { daemon_->run(); });
  }
  void TearDown() override {
    if (daemon_) daemon_->stop();
    if (loop_.joinable()) loop_.join();
    daemon_.reset();
    kubelet_.reset();
    if (links_) (void)sriov::destroySimNode(dir_.path() / "node", links_.get());
  }
  // Health of each device, "id=health,...", as the kubelet last heard it.
  std::string healths() {
    auto list = kubelet_->devices("intel.com/vfs");
    if (!list) return "";
    std::string out;
    for (const auto& d : *list) out += d.id + "=" + d.health + ",";
    return out;
  }

  static inline std::string skipReason_;
  test::TempDir dir_;
  std::unique_ptr<sriov::LinkOps> links_;
  std::unique_ptr<KubeletSim> kubelet_;
  std::unique_ptr<Daemon> daemon_;
  std::thread loop_;
};

TEST_F(DpCarrierTest, PfCarrierLossMakesItsVfsUnhealthyAndBack) {
  const std::string allHealthy =
      "0000:01:01.0=Healthy,0000:01:01.1=Healthy,0000:02:01.0=Healthy,0000:02:01.1=Healthy,";
  ASSERT_TRUE(kubelet_->waitFor([&] { return healths() == allHealthy; }, 10s)) << healths();
  ASSERT_TRUE(links_->setUp("ens1f0_rep", false));
  EXPECT_TRUE(kubelet_->waitFor([&] {
    return healths() == "0000:01:01.0=Unhealthy,0000:01:01.1=Unhealthy,0000:02:01.0=Healthy,0000:02:01.1=Healthy,";
  }, 10s)) << healths();
  ASSERT_TRUE(links_->setUp("ens1f0_rep", true));
  EXPECT_TRUE(kubelet_->waitFor([&] { return healths() == allHealthy; }, 10s)) << healths();
}

TEST_F(DpCarrierTest, PfWithoutCarrierAtStartIsUnhealthyFromTheFirstList) {
  daemon_->stop();
  loop_.join();
  daemon_.reset();
  ASSERT_TRUE(links_->setUp("ens1f1_rep", false));
  startDaemon();
  EXPECT_TRUE(kubelet_->waitFor([&] {
    return healths() == "0000:01:01.0=Healthy,0000:01:01.1=Healthy,0000:02:01.0=Unhealthy,0000:02:01.1=Unhealthy,";
  }, 10s)) << healths();
}

}  // namespace
}  // namespace vfplane::dp
