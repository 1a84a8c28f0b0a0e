// PF carrier drives device health through rtnetlink events: on a --veth simulated node, taking a
// PF's switch-side link down must turn its VFs Unhealthy in the kubelet's ListAndWatch stream, and
// bringing it up must turn them Healthy again. Runs in a throwaway network namespace.
#include <gtest/gtest.h>

#include "dp_sim_fixture.h"

namespace vfplane::dp {
namespace {
using namespace std::chrono_literals;

constexpr const char* kResource = "intel.com/vfs";

class DpCarrierTest : public test::DaemonOnSimNode {
 protected:
  void SetUp() override {
    buildNode({.pfs = 2, .vfs = 2},
              R"({"resourceList": [{"resourceName": "vfs", "selectors": {"drivers": ["iavf"]}}]})");
    if (IsSkipped() || HasFatalFailure()) return;
    startDaemon();
  }
};

TEST_F(DpCarrierTest, PfCarrierLossMakesItsVfsUnhealthyAndBack) {
  const std::string allHealthy =
      "0000:01:01.0=Healthy,0000:01:01.1=Healthy,0000:02:01.0=Healthy,0000:02:01.1=Healthy,";
  ASSERT_TRUE(kubelet_->waitFor([&] { return healths(kResource) == allHealthy; }, 10s))
      << healths(kResource);
  ASSERT_TRUE(links_->setUp("ens1f0_rep", false));
  EXPECT_TRUE(kubelet_->waitFor(
      [&] {
        return healths(kResource) ==
               "0000:01:01.0=Unhealthy,0000:01:01.1=Unhealthy,0000:02:01.0=Healthy,0000:02:01.1="
               "Healthy,";
      },
      10s))
      << healths(kResource);
  ASSERT_TRUE(links_->setUp("ens1f0_rep", true));
  EXPECT_TRUE(kubelet_->waitFor([&] { return healths(kResource) == allHealthy; }, 10s))
      << healths(kResource);
}

TEST_F(DpCarrierTest, PfWithoutCarrierAtStartIsUnhealthyFromTheFirstList) {
  stopDaemon();
  ASSERT_TRUE(links_->setUp("ens1f1_rep", false));
  startDaemon();
  EXPECT_TRUE(kubelet_->waitFor(
      [&] {
        return healths(kResource) ==
               "0000:01:01.0=Healthy,0000:01:01.1=Healthy,0000:02:01.0=Unhealthy,0000:02:01.1="
               "Unhealthy,";
      },
      10s))
      << healths(kResource);
}

}  // namespace
}  // namespace vfplane::dp
