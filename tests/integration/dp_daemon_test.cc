// The device plugin daemon end to end over real unix sockets: a simulated node, a temp kubelet
// dir, and the in-tree kubelet side (KubeletSim) as the peer. Waits are bounded and wait for an
// event; nothing here measures time.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "test_support.h"
#include "vfplane/dp/daemon.h"
#include "vfplane/dp/kubelet_sim.h"
#include "vfplane/dp/plugin_client.h"
#include "vfplane/sriov/sim_node.h"

namespace vfplane::dp {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::HasSubstr;

constexpr auto kWait = 10s;  // an upper bound for events that take milliseconds

const char* kTwoPools = R"({"resourceList": [
  {"resourceName": "sriov_net_a", "selectors": {"drivers": ["iavf"]}},
  {"resourceName": "sriov_dpdk", "excludeTopology": true, "selectors": {"drivers": ["vfio-pci"]}}]})";

class DpDaemonTest : public testing::Test {
 protected:
  void SetUp() override {
    auto node = sriov::createSimNode(
        {.root = root() / "node", .pfs = 2, .vfs = 4, .vfio = 1, .numaNodes = 2}, nullptr);
    ASSERT_TRUE(node) << node.error().message();
    node_ = *node;
    writeConfig(kTwoPools);
  }
  void TearDown() override {
    if (daemon_) daemon_->stop();
    if (loop_.joinable()) loop_.join();
    daemon_.reset();
    if (kubelet_) kubelet_->stop();
  }
  fs::path root() const { return dir_.path(); }
  void writeConfig(const std::string& json) {
    // Write and rename, as a ConfigMap update or an editor would.
    test::writeFile(root() / "config.json.tmp", json);
    fs::rename(root() / "config.json.tmp", root() / "config.json");
  }
  void startKubelet(bool watcher = false, std::string refuse = "") {
    auto k = KubeletSim::start({(root() / "kubelet").string(), watcher, refuse});
    ASSERT_TRUE(k) << k.error().message();
    kubelet_ = std::move(*k);
  }
  void startDaemon(std::chrono::milliseconds rescan = 60s, bool cdi = false) {
    DaemonOptions o;
    o.useCdi = cdi;
    o.cdiDir = (root() / "cdi").string();
    o.configPath = (root() / "config.json").string();
    o.kubeletDir = (root() / "kubelet").string();
    o.sysfsRoot = (root() / "node").string();
    o.devinfoDir = (root() / "devinfo").string();
    o.rescanInterval = rescan;
    auto d = Daemon::create(o);
    ASSERT_TRUE(d) << d.error().message();
    daemon_ = std::move(*d);
    ASSERT_TRUE(daemon_->start());
    loop_ = std::thread([this] { daemon_->run(); });
  }
  bool waitDevices(const std::string& resource, size_t count) {
    return kubelet_->waitFor(
        [&] {
          auto d = kubelet_->devices(resource);
          return d && d->size() == count;
        },
        kWait);
  }
  std::string socketOf(const std::string& resource) {
    return (root() / "kubelet/device-plugins" / socketNameFor(resource)).string();
  }

  test::TempDir dir_;
  sriov::SimNode node_;
  std::unique_ptr<KubeletSim> kubelet_;
  std::unique_ptr<Daemon> daemon_;
  std::thread loop_;
};

TEST_F(DpDaemonTest, LegacyRegistrationAndDeviceListWithTopology) {
  startKubelet();
  startDaemon();
  ASSERT_TRUE(waitDevices("intel.com/sriov_net_a", 6));
  ASSERT_TRUE(waitDevices("intel.com/sriov_dpdk", 2));
  EXPECT_EQ(kubelet_->registrations("intel.com/sriov_net_a"), 1);
  EXPECT_EQ(kubelet_->endpoint("intel.com/sriov_net_a"), socketOf("intel.com/sriov_net_a"));
  auto net = *kubelet_->devices("intel.com/sriov_net_a");
  EXPECT_EQ(net[0].id, "0000:01:01.0");
  EXPECT_EQ(net[0].health, "Healthy");
  EXPECT_EQ(net[0].numa, 0);
  EXPECT_EQ(net[5].numa, 1);
  auto dpdk = *kubelet_->devices("intel.com/sriov_dpdk");
  for (const auto& d : dpdk) {
    EXPECT_FALSE(d.numa.has_value()) << "excludeTopology drops the NUMA node";
  }
}

TEST_F(DpDaemonTest, PluginWatcherRegistration) {
  fs::create_directories(root() / "kubelet/plugins_registry");
  startKubelet(/*watcher=*/true);
  startDaemon();
  ASSERT_TRUE(waitDevices("intel.com/sriov_net_a", 6));
  EXPECT_EQ(kubelet_->endpoint("intel.com/sriov_net_a"),
            (root() / "kubelet/plugins_registry/intel.com_sriov_net_a.sock").string());
  EXPECT_FALSE(fs::exists(socketOf("intel.com/sriov_net_a"))) << "nothing in device-plugins/";
}

TEST_F(DpDaemonTest, RefusedWatcherRegistrationIsRetriedNotHung) {
  fs::create_directories(root() / "kubelet/plugins_registry");
  // A kubelet that refuses: the plugin must re-create its socket so that a later kubelet (or
  // this one, once it accepts) registers it; here we see the refusal repeat.
  std::atomic<int> refusals{0};
  auto k = KubeletSim::start({(root() / "kubelet").string(), true, "resource name taken"},
                             [&](const SimEvent& e) { refusals += e.kind == SimEvent::kRefused; });
  ASSERT_TRUE(k);
  kubelet_ = std::move(*k);
  startDaemon();
  EXPECT_TRUE(kubelet_->waitFor([&] { return refusals >= 4; }, kWait))
      << "each refusal should lead to a new socket and a new registration attempt";
}

TEST_F(DpDaemonTest, KubeletRestartLeadsToReRegistration) {
  startKubelet();
  startDaemon();
  ASSERT_TRUE(waitDevices("intel.com/sriov_net_a", 6));
  ASSERT_TRUE(kubelet_->restart());
  EXPECT_TRUE(kubelet_->waitFor(
      [&] { return kubelet_->registrations("intel.com/sriov_net_a") == 2; }, kWait));
  EXPECT_TRUE(
      kubelet_->waitFor([&] { return kubelet_->updates("intel.com/sriov_net_a") >= 2; }, kWait))
      << "the new kubelet gets the device list again";
}

TEST_F(DpDaemonTest, DeletedPluginSocketIsRecreated) {
  startKubelet();
  startDaemon();
  ASSERT_TRUE(waitDevices("intel.com/sriov_dpdk", 2));
  fs::remove(socketOf("intel.com/sriov_dpdk"));
  EXPECT_TRUE(kubelet_->waitFor(
      [&] { return kubelet_->registrations("intel.com/sriov_dpdk") == 2; }, kWait));
  EXPECT_TRUE(fs::is_socket(socketOf("intel.com/sriov_dpdk")));
  EXPECT_EQ(kubelet_->registrations("intel.com/sriov_net_a"), 1)
      << "other resources are left alone";
}

TEST_F(DpDaemonTest, WatcherModeSocketDeletedIsRecreatedAndRegisteredAgain) {
  fs::create_directories(root() / "kubelet/plugins_registry");
  startKubelet(/*watcher=*/true);
  startDaemon();
  ASSERT_TRUE(waitDevices("intel.com/sriov_dpdk", 2));
  fs::path sock = root() / "kubelet/plugins_registry/intel.com_sriov_dpdk.sock";
  ASSERT_TRUE(fs::is_socket(sock));
  fs::remove(sock);
  EXPECT_TRUE(kubelet_->waitFor(
      [&] { return kubelet_->registrations("intel.com/sriov_dpdk") == 2; }, kWait));
  EXPECT_TRUE(fs::is_socket(sock));
  EXPECT_EQ(kubelet_->registrations("intel.com/sriov_net_a"), 1)
      << "other resources are left alone";
}

TEST_F(DpDaemonTest, StaleSocketFilesAreReplacedBeforeListening) {
  // What a crashed earlier run leaves behind: a file where the socket goes.
  fs::create_directories(root() / "kubelet/device-plugins");
  test::writeFile(socketOf("intel.com/sriov_net_a"), "stale");
  startKubelet();
  startDaemon();
  ASSERT_TRUE(waitDevices("intel.com/sriov_net_a", 6));
  EXPECT_TRUE(fs::is_socket(socketOf("intel.com/sriov_net_a")));
  auto client = PluginClient::connect(socketOf("intel.com/sriov_net_a"));
  ASSERT_TRUE(client);
  EXPECT_TRUE(client->options());
}

TEST_F(DpDaemonTest, PluginStartedBeforeKubeletRegistersWhenItComes) {
  fs::create_directories(root() / "kubelet/device-plugins");
  startDaemon();
  startKubelet();
  EXPECT_TRUE(waitDevices("intel.com/sriov_net_a", 6));
}

TEST_F(DpDaemonTest, ConfigReloadAddsAndRemovesPools) {
  startKubelet();
  startDaemon();
  ASSERT_TRUE(waitDevices("intel.com/sriov_dpdk", 2));
  auto client = PluginClient::connect(socketOf("intel.com/sriov_dpdk"));
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->allocate({"0000:41:01.3"}));
  fs::path devinfo = root() / "devinfo/intel.com-sriov_dpdk-0000:41:01.3-device.json";
  ASSERT_TRUE(fs::exists(devinfo));
  std::atomic<bool> dpdkEnded{false};
  writeConfig(R"({"resourceList": [
    {"resourceName": "sriov_net_a", "selectors": {"pfNames": ["ens1f0"], "drivers": ["iavf"]}},
    {"resourceName": "sriov_net_b", "selectors": {"pfNames": ["ens1f1"], "drivers": ["iavf"]}}]})");
  ASSERT_TRUE(waitDevices("intel.com/sriov_net_b", 3));
  ASSERT_TRUE(waitDevices("intel.com/sriov_net_a", 3)) << "the existing pool shrinks in place";
  EXPECT_EQ(kubelet_->registrations("intel.com/sriov_net_a"), 1);
  EXPECT_FALSE(fs::exists(socketOf("intel.com/sriov_dpdk"))) << "a removed pool stops serving";
  EXPECT_FALSE(fs::exists(devinfo)) << "and its device-info files go";
  EXPECT_EQ(daemon_->counters().reloads, 1u);
}

TEST_F(DpDaemonTest, BadReloadKeepsTheOldConfig) {
  startKubelet();
  startDaemon();
  ASSERT_TRUE(waitDevices("intel.com/sriov_net_a", 6));
  writeConfig(R"({"resourceList": [{"resourceName": "bad/name", "selectors": {}}]})");
  EXPECT_TRUE(kubelet_->waitFor([&] { return daemon_->counters().reloadErrors == 1; }, kWait));
  EXPECT_TRUE(fs::is_socket(socketOf("intel.com/sriov_net_a")));
  daemon_->requestReload();  // SIGHUP, same bad file
  EXPECT_TRUE(kubelet_->waitFor([&] { return daemon_->counters().reloadErrors == 2; }, kWait));
}

TEST_F(DpDaemonTest, VanishedVfIsDroppedUnlessAllocatedThenUnhealthy) {
  startKubelet();
  startDaemon();
  ASSERT_TRUE(waitDevices("intel.com/sriov_net_a", 6));
  auto client = PluginClient::connect(socketOf("intel.com/sriov_net_a"));
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->allocate({"0000:41:01.0"}));
  // Two VFs of the second PF go away, as when an operator lowers sriov_numvfs.
  const auto& pf = node_.pfs[1];
  for (int i : {0, 1}) {
    fs::remove(root() / "node" / pf.dir / fmt::format("virtfn{}", i));
    fs::remove_all(root() / "node" / pf.vfs[i].dir);
    fs::remove(root() / "node/sys/bus/pci/devices" / pf.vfs[i].address.str());
  }
  test::writeFile(root() / "node" / pf.dir / "sriov_numvfs", "2\n");
  ASSERT_TRUE(waitDevices("intel.com/sriov_net_a", 5)) << "0000:41:01.1 leaves, 0000:41:01.0 stays";
  auto list = *kubelet_->devices("intel.com/sriov_net_a");
  for (const auto& d : list) {
    EXPECT_NE(d.id, "0000:41:01.1");
    if (d.id == "0000:41:01.0") {
      EXPECT_EQ(d.health, "Unhealthy");
    }
  }
}

TEST_F(DpDaemonTest, DriverChangeMakesDeviceUnhealthyAndBack) {
  startKubelet();
  startDaemon(200ms);
  ASSERT_TRUE(waitDevices("intel.com/sriov_net_a", 6));
  fs::path link = root() / "node" / node_.pfs[0].vfs[1].dir / "driver";
  auto health = [&](const std::string& id) {
    auto list = kubelet_->devices("intel.com/sriov_net_a");
    for (const auto& d : *list) {
      if (d.id == id) return d.health;
    }
    return std::string("missing");
  };
  fs::remove(link);
  fs::create_symlink("../../../../bus/pci/drivers/vfio-pci", link);
  EXPECT_TRUE(kubelet_->waitFor([&] { return health("0000:01:01.1") == "Unhealthy"; }, kWait));
  fs::remove(link);
  fs::create_symlink("../../../../bus/pci/drivers/iavf", link);
  EXPECT_TRUE(kubelet_->waitFor([&] { return health("0000:01:01.1") == "Healthy"; }, kWait));
}

TEST_F(DpDaemonTest, AllocateAnswersAndFiles) {
  startKubelet();
  startDaemon();
  ASSERT_TRUE(waitDevices("intel.com/sriov_dpdk", 2));
  auto client = PluginClient::connect(socketOf("intel.com/sriov_dpdk"));
  ASSERT_TRUE(client);
  auto resp = client->allocate({"0000:41:01.3"});
  ASSERT_TRUE(resp) << resp.error().message();
  auto j = nlohmann::json::parse(*resp)["container_responses"][0];
  EXPECT_EQ(j["envs"]["PCIDEVICE_INTEL_COM_SRIOV_DPDK"], "0000:41:01.3");
  EXPECT_EQ(j["devices"].size(), 2u);
  EXPECT_EQ(j["devices"][0]["host_path"], "/dev/vfio/vfio");
  fs::path file = root() / "devinfo/intel.com-sriov_dpdk-0000:41:01.3-device.json";
  ASSERT_TRUE(fs::exists(file));
  auto devinfo = nlohmann::json::parse(test::readFile(file));
  EXPECT_EQ(devinfo["pci"]["pf-pci-address"], "0000:41:00.0");

  auto bad = client->allocate({"0000:41:01.3", "0000:99:01.0"});
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("unknown device IDs: 0000:99:01.0"));
  EXPECT_EQ(daemon_->counters().allocationErrors, 1u);
}

// Device-info files describe a VF for the pod that got it: a stale one of our prefix from an
// earlier run is removed at start (somebody else's stays), and a resource's files go when it stops
// being served, at SIGTERM.
TEST_F(DpDaemonTest, DeviceInfoFilesGoWhenTheirResourceStops) {
  fs::create_directories(root() / "devinfo");
  test::writeFile(root() / "devinfo/intel.com-sriov_net_a-0000:01:01.5-device.json", "{}");
  test::writeFile(root() / "devinfo/intel.com-gone-0000:01:09.0-device.json", "{}");
  test::writeFile(root() / "devinfo/other.io-nic-0000:01:01.5-device.json", "{}");
  test::writeFile(root() / "devinfo/net1-multus.json", "{}");
  startKubelet();
  startDaemon();
  ASSERT_TRUE(waitDevices("intel.com/sriov_dpdk", 2));
  EXPECT_FALSE(fs::exists(root() / "devinfo/intel.com-sriov_net_a-0000:01:01.5-device.json"));
  EXPECT_FALSE(fs::exists(root() / "devinfo/intel.com-gone-0000:01:09.0-device.json"))
      << "our prefix, a resource no longer configured";
  EXPECT_TRUE(fs::exists(root() / "devinfo/other.io-nic-0000:01:01.5-device.json"));
  EXPECT_TRUE(fs::exists(root() / "devinfo/net1-multus.json"));
  auto client = PluginClient::connect(socketOf("intel.com/sriov_dpdk"));
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->allocate({"0000:41:01.3"}));
  fs::path file = root() / "devinfo/intel.com-sriov_dpdk-0000:41:01.3-device.json";
  ASSERT_TRUE(fs::exists(file));
  daemon_->stop();
  loop_.join();
  daemon_.reset();  // what SIGTERM leads to in the binary
  EXPECT_FALSE(fs::exists(file));
  EXPECT_TRUE(fs::exists(root() / "devinfo/other.io-nic-0000:01:01.5-device.json"));
}

TEST_F(DpDaemonTest, CdiSpecPerPoolKeptInStepAndAllocateAnnotates) {
  // A stale spec of ours from an earlier run, and somebody else's, which stays.
  fs::create_directories(root() / "cdi");
  test::writeFile(root() / "cdi/vfplane-intel.com_gone.json", "{}");
  test::writeFile(root() / "cdi/other-vendor.json", "{}");
  startKubelet();
  startDaemon(60s, true);
  ASSERT_TRUE(waitDevices("intel.com/sriov_dpdk", 2));
  fs::path net = root() / "cdi/vfplane-intel.com_sriov_net_a.json";
  fs::path dpdk = root() / "cdi/vfplane-intel.com_sriov_dpdk.json";
  ASSERT_TRUE(fs::exists(net));
  ASSERT_TRUE(fs::exists(dpdk))
      << "two pools under one prefix: two files, neither overwrites the other";
  EXPECT_FALSE(fs::exists(root() / "cdi/vfplane-intel.com_gone.json"));
  EXPECT_TRUE(fs::exists(root() / "cdi/other-vendor.json"));
  auto dpdkSpec = nlohmann::json::parse(test::readFile(dpdk));
  EXPECT_EQ(dpdkSpec["kind"], "intel.com/net-pci");
  ASSERT_EQ(dpdkSpec["devices"].size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(test::readFile(net))["devices"].size(), 6u);

  auto client = PluginClient::connect(socketOf("intel.com/sriov_dpdk"));
  ASSERT_TRUE(client);
  auto resp = client->allocate({"0000:41:01.3"});
  ASSERT_TRUE(resp) << resp.error().message();
  auto j = nlohmann::json::parse(*resp)["container_responses"][0];
  EXPECT_TRUE(!j.contains("devices") || j["devices"].empty())
      << "the device nodes come from the CDI spec";
  EXPECT_EQ(j["annotations"]["cdi.k8s.io/vfplane_intel.com_sriov_dpdk"],
            "intel.com/net-pci=0000:41:01.3");
  EXPECT_EQ(j["envs"]["PCIDEVICE_INTEL_COM_SRIOV_DPDK"], "0000:41:01.3");

  // A reload that drops a pool drops its spec.
  writeConfig(
      R"({"resourceList": [{"resourceName": "sriov_net_a", "selectors": {"drivers": ["iavf"]}}]})");
  ASSERT_TRUE(kubelet_->waitFor([&] { return !fs::exists(dpdk); }, kWait));
  EXPECT_TRUE(fs::exists(net));
}

TEST_F(DpDaemonTest, PreferredAllocationPackedAndSpreadOverTheSocket) {
  writeConfig(R"({"resourceList": [
    {"resourceName": "packed", "selectors": {"drivers": ["iavf"], "pfNames": ["ens1f0"]}},
    {"resourceName": "spread", "allocationPolicy": "spread", "selectors": {"drivers": ["iavf"], "pfNames": ["ens1f1"]}}]})");
  startKubelet();
  startDaemon();
  ASSERT_TRUE(waitDevices("intel.com/spread", 3));
  auto packed = PluginClient::connect(socketOf("intel.com/packed"));
  auto got =
      packed->preferred({"0000:01:01.0", "0000:01:01.1", "0000:01:01.2"}, {"0000:01:01.2"}, 2);
  ASSERT_TRUE(got) << got.error().message();
  auto ids = nlohmann::json::parse(*got)["container_responses"][0]["deviceIDs"];
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], "0000:01:01.2");
  auto options = packed->options();
  ASSERT_TRUE(options);
  EXPECT_EQ(nlohmann::json::parse(*options)["get_preferred_allocation_available"], true);
}

// An ACC100-like FEC card per NUMA node, two vfio-pci VFs each, offered as an accelerator pool
// next to a network pool: listed with topology, allocated, preferred by NUMA node, and judged
// healthy by driver like any other device.
TEST_F(DpDaemonTest, AcceleratorPoolEndToEnd) {
  ASSERT_TRUE(sriov::destroySimNode(root() / "node", nullptr));
  auto node = sriov::createSimNode({.root = root() / "node",
                                    .pfs = 2,
                                    .vfs = 2,
                                    .numaNodes = 2,
                                    .accelerators = 2,
                                    .accelVfs = 2},
                                   nullptr);
  ASSERT_TRUE(node) << node.error().message();
  writeConfig(R"({"resourceList": [
    {"resourceName": "sriov_net_a", "selectors": {"vendors": ["8086"]}},
    {"resourceName": "intel_fec_5g", "deviceType": "accelerator",
     "selectors": {"devices": ["0d5d"], "drivers": ["vfio-pci"]}}]})");
  startKubelet();
  startDaemon(200ms);
  const std::string fec = "intel.com/intel_fec_5g";
  ASSERT_TRUE(waitDevices(fec, 4));
  ASSERT_TRUE(waitDevices("intel.com/sriov_net_a", 4)) << "the network pool takes no accelerator";
  auto list = *kubelet_->devices(fec);
  const auto& card1 = node->accelerators[1];
  EXPECT_EQ(list[0].id, node->accelerators[0].vfs[0].address.str());
  EXPECT_EQ(list[0].numa, 0);
  EXPECT_EQ(list[3].id, card1.vfs[1].address.str());
  EXPECT_EQ(list[3].numa, 1);

  auto client = PluginClient::connect(socketOf(fec));
  ASSERT_TRUE(client);
  auto preferred =
      client->preferred({list[0].id, list[1].id, list[2].id, list[3].id}, {list[3].id}, 2);
  ASSERT_TRUE(preferred) << preferred.error().message();
  EXPECT_EQ(nlohmann::json::parse(*preferred)["container_responses"][0]["deviceIDs"],
            nlohmann::json({card1.vfs[1].address.str(), card1.vfs[0].address.str()}))
      << "the must-include VF's card first";

  auto resp = client->allocate({card1.vfs[0].address.str()});
  ASSERT_TRUE(resp) << resp.error().message();
  auto j = nlohmann::json::parse(*resp)["container_responses"][0];
  EXPECT_EQ(j["envs"]["PCIDEVICE_INTEL_COM_INTEL_FEC_5G"], card1.vfs[0].address.str());
  ASSERT_EQ(j["devices"].size(), 2u);
  EXPECT_EQ(j["devices"][0]["host_path"], "/dev/vfio/vfio");
  EXPECT_FALSE(
      fs::exists(root() / "devinfo" /
                 fmt::format("intel.com-intel_fec_5g-{}-device.json", card1.vfs[0].address.str())));

  auto health = [&](const std::string& id) {
    auto now = kubelet_->devices(fec);
    for (const auto& d : now.value_or(std::vector<SimDevice>{})) {
      if (d.id == id) return d.health;
    }
    return std::string("missing");
  };
  fs::path driver = root() / "node" / card1.vfs[1].dir / "driver";
  fs::remove(driver);  // unbound from vfio-pci
  EXPECT_TRUE(
      kubelet_->waitFor([&] { return health(card1.vfs[1].address.str()) == "Unhealthy"; }, kWait));
  fs::create_symlink("../../../../bus/pci/drivers/vfio-pci", driver);
  EXPECT_TRUE(
      kubelet_->waitFor([&] { return health(card1.vfs[1].address.str()) == "Healthy"; }, kWait));
}

}  // namespace
}  // namespace vfplane::dp
