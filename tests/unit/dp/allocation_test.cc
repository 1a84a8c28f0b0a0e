#include "vfplane/dp/allocation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

namespace vfplane::dp {
namespace {
using testing::HasSubstr;

// A pool over 3 PFs: A (NUMA 0, 4 free VFs), B (NUMA 0, 2 VFs), C (NUMA 1, 4 VFs).
ResourcePool makePool(AllocationPolicy policy) {
  ResourcePool pool;
  pool.name = "intel.com/sriov_net_a";
  pool.config.allocationPolicy = policy;
  auto add = [&](int bus, int numa, int vfs) {
    for (int i = 0; i < vfs; ++i) {
      PoolDevice d;
      d.function.address =
          sriov::PciAddress(0, static_cast<uint8_t>(bus), 1, static_cast<uint8_t>(i));
      d.function.numaNode = numa;
      d.id = d.function.address.str();
      d.pf = sriov::PciAddress(0, static_cast<uint8_t>(bus), 0, 0);
      d.vfIndex = i;
      pool.devices.push_back(d);
    }
  };
  add(0x0a, 0, 4);
  add(0x0b, 0, 2);
  add(0x0c, 1, 4);
  std::sort(pool.devices.begin(), pool.devices.end(),
            [](const PoolDevice& a, const PoolDevice& b) { return a.id < b.id; });
  return pool;
}

std::vector<std::string> allIds(const ResourcePool& p) {
  std::vector<std::string> v;
  for (const auto& d : p.devices) v.push_back(d.id);
  return v;
}

std::set<std::string> pfsOf(const ResourcePool& p, const std::vector<std::string>& ids) {
  std::set<std::string> pfs;
  for (const auto& id : ids) pfs.insert(p.find(id)->pf->str());
  return pfs;
}

TEST(PreferredAllocation, PackedUsesTheBestFittingPf) {
  auto pool = makePool(AllocationPolicy::kPacked);
  auto two = preferredAllocation(pool, {allIds(pool), {}, 2});
  ASSERT_EQ(two.size(), 2u);
  // Both PF B (exactly 2 free) and the NUMA choice agree: one PF, fully used.
  EXPECT_EQ(pfsOf(pool, two), std::set<std::string>{"0000:0b:00.0"});

  auto three = preferredAllocation(pool, {allIds(pool), {}, 3});
  EXPECT_EQ(pfsOf(pool, three).size(), 1u) << "3 fit on one PF, so only one is used";
}

TEST(PreferredAllocation, PackedSpillsOverAsLittleAsPossible) {
  auto pool = makePool(AllocationPolicy::kPacked);
  auto five = preferredAllocation(pool, {allIds(pool), {}, 5});
  ASSERT_EQ(five.size(), 5u);
  EXPECT_EQ(pfsOf(pool, five).size(), 2u);
  for (const auto& id : five) EXPECT_EQ(pool.find(id)->numaNode(), 0) << "NUMA 0 can hold all 5";
}

TEST(PreferredAllocation, SpreadTakesOnePerPf) {
  auto pool = makePool(AllocationPolicy::kSpread);
  auto two = preferredAllocation(pool, {allIds(pool), {}, 2});
  EXPECT_EQ(pfsOf(pool, two).size(), 2u);
  for (const auto& id : two) EXPECT_EQ(pool.find(id)->numaNode(), 0);
}

TEST(PreferredAllocation, HonoursMustIncludeAndItsNumaNode) {
  for (auto policy : {AllocationPolicy::kPacked, AllocationPolicy::kSpread}) {
    auto pool = makePool(policy);
    auto got = preferredAllocation(pool, {allIds(pool), {"0000:0c:01.2"}, 3});
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0], "0000:0c:01.2");
    for (const auto& id : got)
      EXPECT_EQ(pool.find(id)->numaNode(), 1) << allocationPolicyName(policy);
  }
  auto pool = makePool(AllocationPolicy::kPacked);
  auto packed = preferredAllocation(pool, {allIds(pool), {"0000:0a:01.3"}, 2});
  EXPECT_EQ(pfsOf(pool, packed), std::set<std::string>{"0000:0a:00.0"})
      << "packed joins the must-include PF";
}

TEST(PreferredAllocation, OnlyFromAvailableAndNeverMoreThanAsked) {
  auto pool = makePool(AllocationPolicy::kPacked);
  auto got = preferredAllocation(pool, {{"0000:0c:01.0", "0000:0c:01.1", "bogus"}, {}, 4});
  EXPECT_EQ(got, (std::vector<std::string>{"0000:0c:01.0", "0000:0c:01.1"}));
  EXPECT_TRUE(preferredAllocation(pool, {allIds(pool), {}, 0}).empty());
}

TEST(Allocate, EnvNames) {
  EXPECT_EQ(resourceEnvName("intel.com/sriov_net_a"), "PCIDEVICE_INTEL_COM_SRIOV_NET_A");
  EXPECT_EQ(resourceEnvName("my-corp.io/vf-pool.x"), "PCIDEVICE_MY_CORP_IO_VF_POOL_X");
}

TEST(Allocate, NetdevVfEnvsAndDeviceInfo) {
  auto pool = makePool(AllocationPolicy::kPacked);
  pool.config.additionalInfo["*"]["site"] = "edge";
  pool.config.additionalInfo["0000:0a:01.1"]["site"] = "core";
  auto alloc = allocateDevices(
      pool, {"0000:0a:01.0", "0000:0a:01.1"}, [](const PoolDevice&) { return true; },
      "/run/devinfo");
  ASSERT_TRUE(alloc) << alloc.error().message();
  EXPECT_EQ(alloc->envs.at("PCIDEVICE_INTEL_COM_SRIOV_NET_A"), "0000:0a:01.0,0000:0a:01.1");
  auto info = nlohmann::json::parse(alloc->envs.at("PCIDEVICE_INTEL_COM_SRIOV_NET_A_INFO"));
  EXPECT_EQ(info["0000:0a:01.0"]["generic"]["deviceID"], "0000:0a:01.0");
  EXPECT_EQ(info["0000:0a:01.0"]["extra"]["site"], "edge");
  EXPECT_EQ(info["0000:0a:01.1"]["extra"]["site"], "core");
  EXPECT_FALSE(info["0000:0a:01.0"].contains("vfio"));
  EXPECT_TRUE(alloc->devices.empty()) << "a netdev VF needs no device node";
  ASSERT_EQ(alloc->deviceInfoFiles.size(), 2u);
  EXPECT_EQ(alloc->deviceInfoFiles[0].path,
            "/run/devinfo/intel.com-sriov_net_a-0000:0a:01.0-device.json");
  auto devinfo = nlohmann::json::parse(alloc->deviceInfoFiles[0].content);
  EXPECT_EQ(devinfo["type"], "pci");
  EXPECT_EQ(devinfo["version"], "1.1.0");
  EXPECT_EQ(devinfo["pci"]["pci-address"], "0000:0a:01.0");
  EXPECT_EQ(devinfo["pci"]["pf-pci-address"], "0000:0a:00.0");
}

TEST(Allocate, VfioDevicesAndNoIommuPaths) {
  auto pool = makePool(AllocationPolicy::kPacked);
  for (auto& d : pool.devices) {
    d.function.driver = "vfio-pci";
    d.function.iommuGroup = 40 + d.vfIndex;
  }
  const_cast<PoolDevice*>(pool.find("0000:0a:01.1"))->function.noIommu = true;
  auto alloc = allocateDevices(
      pool, {"0000:0a:01.0", "0000:0a:01.1"}, [](const PoolDevice&) { return true; }, "/d");
  ASSERT_TRUE(alloc);
  EXPECT_EQ(alloc->devices,
            (std::vector<DeviceSpecEntry>{{"/dev/vfio/vfio", "/dev/vfio/vfio", "rw"},
                                          {"/dev/vfio/40", "/dev/vfio/40", "rw"},
                                          {"/dev/vfio/41", "/dev/vfio/noiommu-41", "rw"}}));
  auto info = nlohmann::json::parse(alloc->envs.at("PCIDEVICE_INTEL_COM_SRIOV_NET_A_INFO"));
  EXPECT_EQ(info["0000:0a:01.1"]["vfio"]["dev-mount"], "/dev/vfio/41");
  EXPECT_EQ(info["0000:0a:01.1"]["vfio"]["mount"], "/dev/vfio/vfio");
}

TEST(Allocate, AcceleratorVfGetsVfioButNoDeviceInfoFile) {
  auto pool = makePool(AllocationPolicy::kPacked);
  pool.name = "intel.com/intel_fec_5g";
  pool.config.deviceType = DeviceType::kAccelerator;
  for (auto& d : pool.devices) {
    d.function.driver = "vfio-pci";
    d.function.iommuGroup = 70 + d.vfIndex;
  }
  auto alloc = allocateDevices(
      pool, {"0000:0a:01.2"}, [](const PoolDevice&) { return true; }, "/d");
  ASSERT_TRUE(alloc) << alloc.error().message();
  EXPECT_EQ(alloc->envs.at("PCIDEVICE_INTEL_COM_INTEL_FEC_5G"), "0000:0a:01.2");
  EXPECT_EQ(alloc->devices,
            (std::vector<DeviceSpecEntry>{{"/dev/vfio/vfio", "/dev/vfio/vfio", "rw"},
                                          {"/dev/vfio/72", "/dev/vfio/72", "rw"}}));
  auto info = nlohmann::json::parse(alloc->envs.at("PCIDEVICE_INTEL_COM_INTEL_FEC_5G_INFO"));
  EXPECT_EQ(info["0000:0a:01.2"]["generic"]["deviceID"], "0000:0a:01.2");
  EXPECT_EQ(info["0000:0a:01.2"]["vfio"]["dev-mount"], "/dev/vfio/72");
  EXPECT_TRUE(alloc->deviceInfoFiles.empty()) << "no network attachment reads it";
}

TEST(Allocate, VhostNetAddsTunAndVhost) {
  auto pool = makePool(AllocationPolicy::kPacked);
  pool.needVhostNet = true;
  auto alloc = allocateDevices(
      pool, {"0000:0a:01.0"}, [](const PoolDevice&) { return true; }, "/d");
  ASSERT_TRUE(alloc);
  EXPECT_EQ(alloc->devices.size(), 2u);
  EXPECT_EQ(alloc->devices[0].hostPath, "/dev/vhost-net");
  EXPECT_EQ(alloc->devices[1].hostPath, "/dev/net/tun");
}

TEST(Allocate, RdmaCharacterDevices) {
  auto pool = makePool(AllocationPolicy::kPacked);
  pool.isRdma = true;
  auto* d = const_cast<PoolDevice*>(pool.find("0000:0a:01.0"));
  d->function.rdmaDevices = {"mlx5_4"};
  d->function.rdmaCharDevices = {"issm4", "umad4", "uverbs4"};
  auto alloc = allocateDevices(
      pool, {"0000:0a:01.0"}, [](const PoolDevice&) { return true; }, "/d");
  ASSERT_TRUE(alloc);
  std::vector<std::string> hosts;
  for (const auto& s : alloc->devices) hosts.push_back(s.hostPath);
  EXPECT_EQ(hosts,
            (std::vector<std::string>{"/dev/infiniband/issm4", "/dev/infiniband/umad4",
                                      "/dev/infiniband/uverbs4", "/dev/infiniband/rdma_cm"}));
  auto info = nlohmann::json::parse(
      alloc->envs.at("PCIDEVICE_INTEL_COM_SRIOV_NET_A_INFO"))["0000:0a:01.0"]["rdma"];
  EXPECT_EQ(info["rdma_dev"], "mlx5_4");
  EXPECT_EQ(info["uverbs"], "/dev/infiniband/uverbs4");
  EXPECT_EQ(info["umad"], "/dev/infiniband/umad4");
  EXPECT_EQ(info["issm"], "/dev/infiniband/issm4");
  EXPECT_EQ(info["rdma_cm"], "/dev/infiniband/rdma_cm");
  auto devinfo = nlohmann::json::parse(alloc->deviceInfoFiles[0].content);
  EXPECT_EQ(devinfo["pci"]["rdma-device"], "mlx5_4");
}

TEST(Allocate, RejectsUnknownAndUnhealthyNamingThem) {
  auto pool = makePool(AllocationPolicy::kPacked);
  auto alloc = allocateDevices(
      pool, {"0000:0a:01.0", "0000:ff:01.0", "0000:0c:01.1"},
      [](const PoolDevice& d) { return d.id != "0000:0c:01.1"; }, "/d");
  ASSERT_FALSE(alloc);
  EXPECT_THAT(alloc.error().message(), HasSubstr("unknown device IDs: 0000:ff:01.0"));
  EXPECT_THAT(alloc.error().message(), HasSubstr("unhealthy devices: 0000:0c:01.1"));
  EXPECT_THAT(alloc.error().message(), HasSubstr("intel.com/sriov_net_a"));
}

TEST(Cdi, NamesPerResourceSoPoolsNeverShareAFileOrAnAnnotation) {
  auto a = makePool(AllocationPolicy::kPacked);
  auto b = makePool(AllocationPolicy::kPacked);
  b.name = "intel.com/sriov_net_b";
  EXPECT_EQ(cdiKind(a), "intel.com/net-pci");
  EXPECT_EQ(cdiKind(a), cdiKind(b)) << "one kind may span several spec files, as upstream's";
  EXPECT_EQ(cdiSpecFileName(a), "vfplane-intel.com_sriov_net_a.json");
  EXPECT_NE(cdiSpecFileName(a), cdiSpecFileName(b));
  EXPECT_EQ(cdiAnnotationKey(a), "cdi.k8s.io/vfplane_intel.com_sriov_net_a");
  EXPECT_NE(cdiAnnotationKey(a), cdiAnnotationKey(b));
  b.name = "example.org/" + std::string(80, 'x');
  EXPECT_LE(cdiAnnotationKey(b).size(), std::string("cdi.k8s.io/").size() + 63);
}

TEST(Cdi, SpecListsEveryDeviceWithItsNodes) {
  auto pool = makePool(AllocationPolicy::kPacked);
  for (auto& d : pool.devices) {
    d.function.driver = "vfio-pci";
    d.function.iommuGroup = 40 + d.vfIndex;
  }
  const_cast<PoolDevice*>(pool.find("0000:0a:01.1"))->function.noIommu = true;
  auto spec = cdiSpec(pool);
  EXPECT_EQ(spec["cdiVersion"], "0.5.0");
  EXPECT_EQ(spec["kind"], "intel.com/net-pci");
  ASSERT_EQ(spec["devices"].size(), pool.devices.size());
  nlohmann::json noIommu;
  for (const auto& d : spec["devices"]) {
    if (d["name"] == "0000:0a:01.1") noIommu = d;
  }
  ASSERT_TRUE(noIommu.is_object());
  EXPECT_EQ(noIommu["containerEdits"]["deviceNodes"],
            nlohmann::json::parse(
                R"([{"path":"/dev/vfio/vfio","hostPath":"/dev/vfio/vfio","permissions":"rw"},
                                     {"path":"/dev/vfio/41","hostPath":"/dev/vfio/noiommu-41","permissions":"rw"}])"));
}

TEST(Cdi, ANetdevVfStillHasAnEditForCdiToAccept) {
  auto pool = makePool(AllocationPolicy::kPacked);
  auto spec = cdiSpec(pool);
  const auto& first = spec["devices"][0];
  EXPECT_FALSE(first["containerEdits"].contains("deviceNodes"));
  EXPECT_EQ(
      first["containerEdits"]["env"],
      nlohmann::json::array({"PCIDEVICE_INTEL_COM_SRIOV_NET_A_CDI_0000_0a_01_0=0000:0a:01.0"}));
}

TEST(Cdi, AllocateAnswersWithAnAnnotationInsteadOfDeviceSpecs) {
  auto pool = makePool(AllocationPolicy::kPacked);
  for (auto& d : pool.devices) d.function.driver = "vfio-pci";
  auto alloc = allocateDevices(
      pool, {"0000:0a:01.0", "0000:0b:01.1"}, [](const PoolDevice&) { return true; }, "/d", true);
  ASSERT_TRUE(alloc);
  EXPECT_TRUE(alloc->devices.empty());
  EXPECT_EQ(alloc->annotations.at("cdi.k8s.io/vfplane_intel.com_sriov_net_a"),
            "intel.com/net-pci=0000:0a:01.0,intel.com/net-pci=0000:0b:01.1");
  EXPECT_EQ(alloc->envs.at("PCIDEVICE_INTEL_COM_SRIOV_NET_A"), "0000:0a:01.0,0000:0b:01.1")
      << "envs stay";
  auto plain = allocateDevices(
      pool, {"0000:0a:01.0"}, [](const PoolDevice&) { return true; }, "/d");
  EXPECT_TRUE(plain->annotations.empty());
  EXPECT_FALSE(plain->devices.empty());
}

}  // namespace
}  // namespace vfplane::dp
