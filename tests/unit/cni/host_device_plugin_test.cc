// vfplane-host-device's logic without a kernel, over the fake kernel: the device moves in under
// CNI_IFNAME with its own name in the alias, comes home by the record or by the alias, under the
// shared fallback name when its own is taken, and refuses the host's default-route device.
#include "vfplane/cni/host_device_plugin.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/rtnetlink.h>

#include <filesystem>

#include "cni_test_support.h"
#include "fake_kernel.h"
#include "test_support.h"
#include "vfplane/sriov/device_lock.h"

namespace vfplane::cni {
namespace {
namespace fs = std::filesystem;
using test::FakeKernel;
using testing::HasSubstr;

class HostDevicePluginTest : public testing::Test {
 protected:
  void SetUp() override {
    eno1_ = kernel_.addLink(FakeKernel::kHost,
                            {.name = "eno1", .mac = "02:00:00:00:00:01", .mtu = 1500});
    kernel_.addLink(FakeKernel::kPod, {.name = "lo", .mac = "", .mtu = 65536});
    plugin_.emplace(HostDevicePluginOptions{
        .sysfsRoot = dir_.path(), .stateDir = dir_.path() / "state", .clients = kernel_.factory()});
  }
  Request request(Command command, const std::string& extra) {
    Request req = test::pluginRequest(
        command, "ctr1",
        R"({"cniVersion":"1.0.0","name":"hd","type":"vfplane-host-device")" + extra + "}");
    kernel_.setPodFd(req.netns->fd());
    return req;
  }

  test::TempDir dir_;
  FakeKernel kernel_;
  int eno1_ = 0;
  std::optional<HostDevicePlugin> plugin_;
};

TEST_F(HostDevicePluginTest, MovesInWithItsNameInTheAliasAndComesHomeByIt) {
  auto add = request(Command::kAdd, R"(,"device":"eno1")");
  auto r = plugin_->add(add);
  ASSERT_TRUE(r) << r.error().msg;
  auto inPod = kernel_.find(FakeKernel::kPod, "net1");
  ASSERT_TRUE(inPod);
  EXPECT_EQ(inPod->alias, "eno1");
  EXPECT_EQ(inPod->ifindex, eno1_);
  EXPECT_EQ(r->interfaces.at(0).mac, "02:00:00:00:00:01");
  // The record is lost: the alias alone brings it home, cleared on the way.
  fs::remove_all(dir_.path() / "state");
  auto del = request(Command::kDel, R"(,"device":"eno1")");
  ASSERT_TRUE(plugin_->del(del));
  auto home = kernel_.find(FakeKernel::kHost, "eno1");
  ASSERT_TRUE(home);
  EXPECT_EQ(home->alias, "");
}

// Choosing by resourceName is one step with writing the record that claims the choice, under a
// node-wide lock: while another ADD holds it, this one waits, and then gives up with code 11
// naming the lock, having touched nothing.
TEST_F(HostDevicePluginTest, AChoiceByResourceNameWaitsForAnotherAndThenTriesAgainLater) {
  HostDevicePlugin plugin(
      HostDevicePluginOptions{.sysfsRoot = dir_.path(),
                              .stateDir = dir_.path() / "state",
                              .clients = kernel_.factory(),
                              .choiceLockTimeout = std::chrono::milliseconds(20)});
  fs::create_directories(dir_.path() / "state/locks");
  auto held = sriov::DeviceLock::acquireFile(dir_.path() / "state/locks/host-device-choice.lock",
                                             std::chrono::milliseconds(0));
  ASSERT_TRUE(held) << held.error().message();
  auto add = request(Command::kAdd, R"(,"resourceName":"intel.com/sriov_net_a")");
  auto r = plugin.add(add);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTryAgainLater);
  EXPECT_THAT(r.error().msg, HasSubstr("resourceName intel.com/sriov_net_a"));
  EXPECT_THAT(r.error().msg, HasSubstr("host-device-choice.lock is still locked"));
  EXPECT_TRUE(kernel_.find(FakeKernel::kHost, "eno1"));
  EXPECT_FALSE(fs::exists(dir_.path() / "state/host-device"));
}

TEST_F(HostDevicePluginTest, ATakenHomeNameGivesTheSharedFallbackName) {
  auto add = request(Command::kAdd, R"(,"device":"eno1")");
  ASSERT_TRUE(plugin_->add(add));
  kernel_.addLink(FakeKernel::kHost, {.name = "eno1", .mac = "02:00:00:00:00:99"});
  auto del = request(Command::kDel, R"(,"device":"eno1")");
  ASSERT_TRUE(plugin_->del(del));
  EXPECT_TRUE(kernel_.find(FakeKernel::kHost, fmt::format("if{}", eno1_)))
      << "no PCI function: after its index";
}

TEST_F(HostDevicePluginTest, AMoveTheKernelRefusesLeavesTheDeviceAndNoRecord) {
  kernel_.failNext(RTM_NEWLINK, EPERM);
  auto add = request(Command::kAdd, R"(,"device":"eno1")");
  auto r = plugin_->add(add);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kIoFailure);
  EXPECT_THAT(r.error().msg, HasSubstr("move eno1 into"));
  EXPECT_TRUE(kernel_.find(FakeKernel::kHost, "eno1"));
  std::error_code ec;
  EXPECT_TRUE(fs::is_empty(dir_.path() / "state/host-device", ec));
}

}  // namespace
}  // namespace vfplane::cni
