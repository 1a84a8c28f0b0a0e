// A device plugin daemon on a --veth simulated node, in a throwaway network namespace, with the
// in-tree kubelet: the fixture the device plugin's netns tests share.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "test_support.h"
#include "vfplane/dp/daemon.h"
#include "vfplane/dp/kubelet_sim.h"
#include "vfplane/netlink/links.h"
#include "vfplane/sriov/sim_node.h"

namespace vfplane::dp::test {

class DaemonOnSimNode : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (auto why = vfplane::test::enterFreshNetns()) skipReason() = *why;
  }

  // Builds the node (spec.root is set here, veth is forced on), writes config.json and starts the
  // kubelet. Skips the test when no network namespace can be had.
  void buildNode(sriov::SimNodeSpec spec, const std::string& configJson) {
    if (!skipReason().empty()) GTEST_SKIP() << "needs a network namespace: " << skipReason();
    auto links = netlink::NetlinkLinks::open();
    ASSERT_TRUE(links) << links.error().message();
    links_ = std::move(*links);
    spec.root = dir_.path() / "node";
    spec.veth = true;
    auto node = sriov::createSimNode(spec, links_.get());
    ASSERT_TRUE(node) << node.error().message();
    node_ = std::move(*node);
    vfplane::test::writeFile(dir_.path() / "config.json", configJson);
    auto k = KubeletSim::start({(dir_.path() / "kubelet").string(), false, ""});
    ASSERT_TRUE(k);
    kubelet_ = std::move(*k);
  }

  // Starts the daemon on the node; `adjust` may change the options first.
  void startDaemon(const std::function<void(DaemonOptions&)>& adjust = {}) {
    DaemonOptions o;
    o.configPath = (dir_.path() / "config.json").string();
    o.kubeletDir = (dir_.path() / "kubelet").string();
    o.sysfsRoot = (dir_.path() / "node").string();
    o.devinfoDir = (dir_.path() / "devinfo").string();
    if (adjust) adjust(o);
    auto d = Daemon::create(o);
    ASSERT_TRUE(d) << d.error().message();
    daemon_ = std::move(*d);
    ASSERT_TRUE(daemon_->start());
    loop_ = std::thread([this] { daemon_->run(); });
  }

  void stopDaemon() {
    if (daemon_) daemon_->stop();
    if (loop_.joinable()) loop_.join();
    daemon_.reset();
  }

  void TearDown() override {
    stopDaemon();
    kubelet_.reset();
    if (links_) (void)sriov::destroySimNode(dir_.path() / "node", links_.get());
  }

  // "<id>=<health>," for each device of the resource, as the kubelet last heard it;
  // "(not registered)" before the resource registers.
  std::string healths(const std::string& resource) const {
    auto list = kubelet_->devices(resource);
    if (!list) return "(not registered)";
    std::string out;
    for (const auto& d : *list) out += d.id + "=" + d.health + ",";
    return out;
  }

  static std::string& skipReason() {
    static std::string why;
    return why;
  }

  vfplane::test::TempDir dir_;
  std::unique_ptr<netlink::LinkOps> links_;
  sriov::SimNode node_;
  std::unique_ptr<KubeletSim> kubelet_;
  std::unique_ptr<Daemon> daemon_;
  std::thread loop_;
};

}  // namespace vfplane::dp::test
