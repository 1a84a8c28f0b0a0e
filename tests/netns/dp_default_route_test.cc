// The node's own NIC is never offered to pods by default: on a simulated KVM guest (a --veth node
// whose virtio NICs have their netdevs under <pci>/virtio<N>/net/, as the kernel lays them out),
// the device plugin leaves out the NIC that carries the default route, and offers it only when
// told to with --allow-default-route-devices. Runs in a throwaway network namespace.
#include <gtest/gtest.h>

#include "dp_sim_fixture.h"
#include "vfplane/netlink/rtnl.h"

namespace vfplane::dp {
namespace {
using namespace std::chrono_literals;

constexpr const char* kResource = "example.com/virtio_nics";

class DpDefaultRouteTest : public test::DaemonOnSimNode {
 protected:
  void SetUp() override {
    buildNode({.pfs = 0, .vfs = 0, .virtio = 2},
              R"({"resourceList": [{"resourcePrefix": "example.com", "resourceName": "virtio_nics",
                  "selectors": {"vendors": ["1af4"]}}]})");
    if (IsSkipped() || HasFatalFailure()) return;
    // The VM's management NIC: the node's address and default route go through the first one.
    auto rtnl = netlink::Rtnl::open();
    ASSERT_TRUE(rtnl) << rtnl.error().message();
    auto link = rtnl->link(node_.virtioNics[0].netdev);
    ASSERT_TRUE(link && *link);
    int ifindex = (*link)->ifindex;
    ASSERT_TRUE(rtnl->execute(
        netlink::buildAddress(ifindex, *netlink::IpPrefix::parse("10.46.0.2/24"), true),
        "address"));
    ASSERT_TRUE(
        rtnl->execute(netlink::buildRoute(*netlink::IpPrefix::parse("0.0.0.0/0"),
                                          *netlink::IpPrefix::parse("10.46.0.1"), ifindex, true),
                      "default route"));
  }
  std::string pci(size_t i) const { return node_.virtioNics.at(i).address.str(); }
};

TEST_F(DpDefaultRouteTest, TheVirtioNicWithTheDefaultRouteIsLeftOut) {
  startDaemon();
  const std::string onlyTheOther = pci(1) + "=Healthy,";
  EXPECT_TRUE(kubelet_->waitFor([&] { return healths(kResource) == onlyTheOther; }, 10s))
      << healths(kResource)
      << ": only the second virtio NIC, which carries no default route, is offered";
}

TEST_F(DpDefaultRouteTest, AllowDefaultRouteDevicesOffersItToo) {
  startDaemon([](DaemonOptions& o) { o.excludeDefaultRoute = false; });
  const std::string both = pci(0) + "=Healthy," + pci(1) + "=Healthy,";
  EXPECT_TRUE(kubelet_->waitFor([&] { return healths(kResource) == both; }, 10s))
      << healths(kResource);
}

}  // namespace
}  // namespace vfplane::dp
