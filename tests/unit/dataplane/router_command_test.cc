#include "vfplane/dataplane/router_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

namespace vfplane::dataplane {
namespace {
using testing::AllOf;
using testing::ElementsAre;
using testing::HasSubstr;

Getenv envOf(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string errorOf(Backend b, std::vector<std::string> ports, std::vector<std::string> macs = {},
                    std::map<std::string, std::string> env = {}) {
  auto r = parsePorts(b, ports, macs, envOf(env));
  EXPECT_FALSE(r);
  if (r) return "";
  EXPECT_TRUE(r.error().isUsage()) << r.error().message();
  return r.error().message();
}

TEST(RouterCommand, Backends) {
  EXPECT_EQ(*parseBackend("xdp"), Backend::kXdp);
  EXPECT_EQ(*parseBackend("dpdk"), Backend::kDpdk);
  EXPECT_THAT(parseBackend("vpp").error().message(),
              HasSubstr("--backend vpp: must be xdp or dpdk"));
}

TEST(RouterCommand, DpdkDevicesArePciAddressesOrVdevs) {
  auto pci = parseDpdkDevice("03:02.0");
  ASSERT_TRUE(pci) << pci.error().message();
  EXPECT_EQ(pci->kind, DpdkDevice::kPci);
  EXPECT_EQ(pci->name, "0000:03:02.0") << "canonical, as DPDK names the port";
  auto vdev = parseDpdkDevice("net_af_packet0,iface=eth1,qpairs=2");
  ASSERT_TRUE(vdev) << vdev.error().message();
  EXPECT_EQ(vdev->kind, DpdkDevice::kVdev);
  EXPECT_EQ(vdev->name, "net_af_packet0");
  EXPECT_EQ(vdev->iface, "eth1");
  auto pcap = parseDpdkDevice("net_pcap1,rx_pcap=/tmp/in.pcap,tx_pcap=/tmp/out.pcap,infinite_rx=1");
  ASSERT_TRUE(pcap);
  EXPECT_THAT(pcap->files, ElementsAre("/tmp/in.pcap"));
  EXPECT_THAT(parseDpdkDevice("eth1").error().message(), HasSubstr("neither a PCI address"));
  EXPECT_THAT(parseDpdkDevice("net_af_packet,iface=x").error().message(),
              HasSubstr("net_<driver><n>"));
  EXPECT_THAT(parseDpdkDevice("net_Pcap0").error().message(), HasSubstr("net_<driver><n>"));
  EXPECT_THAT(parseDpdkDevice("net_pcap0,iface").error().message(),
              HasSubstr("\"iface\" is not a key=value argument"));
}

TEST(RouterCommand, PortsPerBackend) {
  auto xdp = parsePorts(Backend::kXdp, {"r1", "r2"}, {}, envOf({}));
  ASSERT_TRUE(xdp) << xdp.error().message();
  EXPECT_EQ(xdp->size(), 2u);
  EXPECT_FALSE((*xdp)[0].device);
  auto dpdk = parsePorts(Backend::kDpdk, {"r1=0000:03:02.0", "r2=net_af_packet0,iface=v2"},
                         {"r2=02:00:00:00:00:02"}, envOf({}));
  ASSERT_TRUE(dpdk) << dpdk.error().message();
  EXPECT_EQ((*dpdk)[0].device->name, "0000:03:02.0");
  EXPECT_EQ((*dpdk)[1].mac->str(), "02:00:00:00:00:02");
  EXPECT_FALSE((*dpdk)[0].mac);
  EXPECT_THAT(errorOf(Backend::kXdp, {}), HasSubstr("at least one port"));
  EXPECT_THAT(errorOf(Backend::kXdp, {"r1", "r1"}), HasSubstr("r1 is given twice"));
  EXPECT_THAT(errorOf(Backend::kXdp, {"r1=03:02.0"}), HasSubstr("for --backend dpdk"));
  EXPECT_THAT(errorOf(Backend::kXdp, {"averyveryverylongname"}), HasSubstr("longer than 15"));
  EXPECT_THAT(errorOf(Backend::kXdp, {"a/b"}), HasSubstr("'/'"));
  EXPECT_THAT(errorOf(Backend::kXdp, {"r1"}, {"r1=02:00:00:00:00:01"}), HasSubstr("--mac"));
  EXPECT_THAT(errorOf(Backend::kDpdk, {"r1"}), HasSubstr("takes NAME=DEVICE"));
  EXPECT_THAT(errorOf(Backend::kDpdk, {"r1="}), HasSubstr("takes NAME=DEVICE"));
  EXPECT_THAT(errorOf(Backend::kDpdk, {"r1=03:02.0", "r2=0000:03:02.0"}),
              HasSubstr("device 0000:03:02.0 is given twice"));
  EXPECT_THAT(errorOf(Backend::kDpdk, {"r1=03:02.0"}, {"r1=ff:ff:ff:ff:ff:ff"}),
              HasSubstr("not a unicast address"));
  EXPECT_THAT(errorOf(Backend::kDpdk, {"r1=03:02.0"}, {"r1=00:00:00:00:00:00"}),
              HasSubstr("not a unicast address"));
  EXPECT_THAT(errorOf(Backend::kDpdk, {"r1=03:02.0"}, {"r9=02:00:00:00:00:01"}),
              HasSubstr("for a --port NAME"));
  EXPECT_THAT(errorOf(Backend::kDpdk, {"r1=03:02.0"}, {"r1=zz"}), HasSubstr("--mac r1=zz"));
}

TEST(RouterCommand, MtusNameADpdkPortAndANumberOfBytes) {
  auto ports = *parsePorts(Backend::kDpdk, {"r1=03:02.0", "r2=03:02.1"}, {}, envOf({}));
  ASSERT_TRUE(parsePortMtus(Backend::kDpdk, {"r2=9000"}, ports));
  EXPECT_FALSE(ports[0].mtu) << "the device's own";
  EXPECT_EQ(ports[1].mtu, 9000);
  auto mtuError = [&](Backend b, const std::string& arg) {
    auto copy = ports;
    copy[1].mtu.reset();
    auto ok = parsePortMtus(b, {arg}, copy);
    EXPECT_FALSE(ok) << arg;
    if (ok) return std::string();
    EXPECT_TRUE(ok.error().isUsage());
    return ok.error().message();
  };
  EXPECT_THAT(mtuError(Backend::kDpdk, "r1=67"), HasSubstr("--mtu r1=67: the MTU must be"));
  EXPECT_THAT(mtuError(Backend::kDpdk, "r1=65518"), HasSubstr("68 to 65517"));
  EXPECT_THAT(mtuError(Backend::kDpdk, "r1=9k"), HasSubstr("a number of bytes"));
  EXPECT_THAT(mtuError(Backend::kDpdk, "r1="), HasSubstr("a number of bytes"));
  EXPECT_THAT(mtuError(Backend::kDpdk, "r3=1500"), HasSubstr("must be NAME=BYTES for a --port"));
  EXPECT_THAT(mtuError(Backend::kDpdk, "1500"), HasSubstr("must be NAME=BYTES"));
  EXPECT_THAT(mtuError(Backend::kXdp, "r1=1500"), HasSubstr("--mtu is for --backend dpdk"));
  auto twice = ports;
  EXPECT_THAT(parsePortMtus(Backend::kDpdk, {"r1=1500", "r1=1400"}, twice).error().message(),
              HasSubstr("r1 has an MTU already"));
}

TEST(RouterCommand, EnvReferencesTakeTheDevicePluginsIds) {
  std::map<std::string, std::string> env{
      {"PCIDEVICE_INTEL_COM_SRIOV_DPDK", "0000:03:02.0,0000:03:02.1"}};
  auto p = parsePorts(
      Backend::kDpdk,
      {"net1=env:PCIDEVICE_INTEL_COM_SRIOV_DPDK", "net2=env:PCIDEVICE_INTEL_COM_SRIOV_DPDK#2"}, {},
      envOf(env));
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ((*p)[0].device->name, "0000:03:02.0");
  EXPECT_EQ((*p)[1].device->name, "0000:03:02.1");
  EXPECT_THAT(errorOf(Backend::kDpdk, {"net1=env:PCIDEVICE_INTEL_COM_SRIOV_DPDK#3"}, {}, env),
              HasSubstr("lists 2 devices (\"0000:03:02.0,0000:03:02.1\"), not 3"));
  EXPECT_THAT(errorOf(Backend::kDpdk, {"net1=env:PCIDEVICE_INTEL_COM_SRIOV_DPDK#0"}, {}, env),
              HasSubstr("1 is the first"));
  EXPECT_THAT(errorOf(Backend::kDpdk, {"net1=env:PCIDEVICE_OTHER"}, {}, env),
              HasSubstr("PCIDEVICE_OTHER is not set"));
  EXPECT_THAT(errorOf(Backend::kDpdk,
                      {"net1=env:PCIDEVICE_INTEL_COM_SRIOV_DPDK#1",
                       "net2=env:PCIDEVICE_INTEL_COM_SRIOV_DPDK"},
                      {}, env),
              HasSubstr("given twice"))
      << "#1 is the default";
}

TEST(RouterCommand, ExistenceChecksNameThePort) {
  DeviceProbe probe{[](const std::string& pci) { return pci == "0000:03:02.0"; },
                    [](const std::string& dev) { return dev == "v1" || dev == "eth0"; },
                    [](const std::string& f) { return f == "/in.pcap"; }};
  auto check = [&](Backend b, std::vector<std::string> ports) {
    auto p = parsePorts(b, ports, {}, envOf({}));
    EXPECT_TRUE(p) << p.error().message();
    return checkPortsExist(b, *p, probe);
  };
  EXPECT_TRUE(check(Backend::kXdp, {"v1"}));
  EXPECT_THAT(check(Backend::kXdp, {"v1", "v2"}).error().message(),
              HasSubstr("port v2: no such link"));
  EXPECT_TRUE(check(Backend::kDpdk,
                    {"r1=03:02.0", "r2=net_af_packet0,iface=v1", "r3=net_pcap0,rx_pcap=/in.pcap"}));
  EXPECT_THAT(check(Backend::kDpdk, {"r1=03:03.0"}).error().message(),
              HasSubstr("port r1: no PCI device 0000:03:03.0"));
  EXPECT_THAT(check(Backend::kDpdk, {"r1=net_af_packet0,iface=v9"}).error().message(),
              HasSubstr("iface v9 is not a link"));
  EXPECT_THAT(check(Backend::kDpdk, {"r1=net_pcap0,rx_pcap=/nope.pcap"}).error().message(),
              HasSubstr("cannot read /nope.pcap"));
  EXPECT_THAT(check(Backend::kDpdk, {"eth0=03:02.0"}).error().message(),
              HasSubstr("TAP mirror under this name"));
}

TEST(RouterCommand, EalArgumentsAddWhatThePortsNeed) {
  auto ports =
      *parsePorts(Backend::kDpdk, {"r1=03:02.0", "r2=net_af_packet0,iface=v1"}, {}, envOf({}));
  EXPECT_THAT(*ealArguments("vfplane-router", ports, 2, {}, {4, 5, 6, 7}),
              ElementsAre("vfplane-router", "--lcores", "0@4,1@5,2@6", "--in-memory", "-a",
                          "0000:03:02.0", "--vdev", "net_af_packet0,iface=v1"))
      << "the main lcore and each worker on a CPU of the process's own cpuset";
  auto vdevs = *parsePorts(Backend::kDpdk, {"r2=net_af_packet0,iface=v1"}, {}, envOf({}));
  EXPECT_THAT(*ealArguments("r", vdevs, 1, {"--no-huge", "-m", "512", "-l", "0,3"}, {0}),
              ElementsAre("r", "--no-huge", "-m", "512", "-l", "0,3", "--vdev",
                          "net_af_packet0,iface=v1", "--no-pci"))
      << "the user's lcores and memory kept; --in-memory would conflict with --no-huge";
  EXPECT_THAT(*ealArguments("r", vdevs, 1, {"--file-prefix=x", "--lcores=0@0,1@1"}, {0}),
              ElementsAre("r", "--file-prefix=x", "--lcores=0@0,1@1", "--vdev",
                          "net_af_packet0,iface=v1", "--no-pci"));
}

TEST(RouterCommand, LcoresArePlacedOnTheCpusTheProcessMayUse) {
  auto vdevs = *parsePorts(Backend::kDpdk, {"r2=net_af_packet0,iface=v1"}, {}, envOf({}));
  auto lcores = [&](uint16_t workers, const std::vector<int>& cpus) {
    auto args = ealArguments("r", vdevs, workers, {}, cpus);
    return args ? (*args)[2] : "error: " + args.error().message();
  };
  EXPECT_EQ(lcores(1, {0, 1}), "0@0,1@1");
  EXPECT_EQ(lcores(2, {2, 9, 11}), "0@2,1@9,2@11") << "CPUs need not be contiguous";
  EXPECT_EQ(lcores(2, {0, 1}), "0@0,1@0,2@1")
      << "one CPU short: the control plane shares the first worker's";
  EXPECT_EQ(lcores(1, {3}), "0@3,1@3");
  auto tooFew = ealArguments("r", vdevs, 3, {}, {0, 1});
  ASSERT_FALSE(tooFew);
  EXPECT_TRUE(tooFew.error().isUsage());
  EXPECT_THAT(tooFew.error().message(),
              AllOf(HasSubstr("--lcores 3"), HasSubstr("need 3 CPUs"), HasSubstr("on 2 (0,1)")));
}

}  // namespace
}  // namespace vfplane::dataplane
