// PF-side VF attributes (IFLA_VF_*) built and parsed back without a kernel. This kernel has no
// SR-IOV, so this is where their encoding is proven.
#include <gtest/gtest.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include <map>

#include "netlink_messages.h"
#include "vfplane/netlink/rtnl.h"
#include "vfplane/sriov/vf_config.h"

namespace vfplane::sriov {
namespace {

using netlink::MacAddress;
using netlink::NlMsg;

using test::hdr;
using test::linkAttrs;

// The attribute types inside the one IFLA_VF_INFO of a set request.
std::vector<int> vfAttrTypes(const NlMsg& m) {
  auto attrs = linkAttrs(m);
  std::vector<int> out;
  nlattr* info = static_cast<nlattr*>(nla_data(attrs.at(IFLA_VFINFO_LIST)));
  nlattr* pos = nullptr;
  int rem = 0;
  nla_for_each_nested(pos, info, rem) out.push_back(nla_type(pos));
  return out;
}

VfState current() {
  VfState s;
  s.vf = 3;
  s.mac = *MacAddress::parse("02:00:00:00:00:03");
  s.vlan = 7;
  s.qos = 2;
  s.minTxRate = 10;
  s.maxTxRate = 500;
  return s;
}

TEST(VfConfigBuildTest, SetsOnlyConfiguredAttributes) {
  VfSettings s;
  s.spoofchk = false;
  NlMsg m = buildSetVf(11, 3, s, current());
  EXPECT_EQ(static_cast<ifinfomsg*>(nlmsg_data(hdr(m)))->ifi_index, 11);
  // Nothing but spoof checking: no VLAN attribute that would reset a trunk policy to vlan 0.
  EXPECT_EQ(vfAttrTypes(m), std::vector<int>{IFLA_VF_SPOOFCHK});
  auto vfs = parseVfInfo(hdr(m));
  ASSERT_TRUE(vfs);
  ASSERT_EQ(vfs->size(), 1u);
  EXPECT_EQ((*vfs)[0].vf, 3);
  EXPECT_EQ((*vfs)[0].spoofchk, false);
}

TEST(VfConfigBuildTest, EverythingRoundTrips) {
  VfSettings s;
  s.mac = *MacAddress::parse("02:aa:bb:cc:dd:ee");
  s.vlan = 100;
  s.qos = 5;
  s.vlanProto = VlanProto::k8021AD;
  s.spoofchk = true;
  s.trust = true;
  s.minTxRate = 100;
  s.maxTxRate = 1000;
  s.linkState = VfLinkState::kDisable;
  NlMsg m = buildSetVf(11, 3, s, current());
  auto vfs = parseVfInfo(hdr(m));
  ASSERT_TRUE(vfs);
  ASSERT_EQ(vfs->size(), 1u);
  const VfState& v = (*vfs)[0];
  EXPECT_EQ(v.vf, 3);
  EXPECT_EQ(v.mac.str(), "02:aa:bb:cc:dd:ee");
  EXPECT_EQ(v.vlan, 100);
  EXPECT_EQ(v.qos, 5);
  EXPECT_EQ(v.vlanProto, VlanProto::k8021AD);
  EXPECT_EQ(v.spoofchk, true);
  EXPECT_EQ(v.trust, true);
  EXPECT_EQ(v.minTxRate, 100u);
  EXPECT_EQ(v.maxTxRate, 1000u);
  EXPECT_EQ(v.linkState, VfLinkState::kDisable);
  EXPECT_TRUE(s.mismatches(v).empty());
}

TEST(VfConfigBuildTest, VlanAndRateAreCompletedFromTheCurrentState) {
  VfSettings s;
  s.vlan = 20;  // QoS and protocol not configured: keep what the VF has
  s.maxTxRate = 800;
  NlMsg m = buildSetVf(11, 3, s, current());
  auto v = parseVfInfo(hdr(m))->at(0);
  EXPECT_EQ(v.vlan, 20);
  EXPECT_EQ(v.qos, 2);
  EXPECT_EQ(v.vlanProto, VlanProto::k8021Q);
  EXPECT_EQ(v.minTxRate, 10u);
  EXPECT_EQ(v.maxTxRate, 800u);
}

TEST(VfConfigBuildTest, RestoringPutsBackOnlyWhatWasSet) {
  VfSettings s;
  s.vlan = 20;
  s.trust = true;
  VfState before = current();
  before.trust = false;
  VfSettings back = s.restoring(before);
  EXPECT_EQ(back.vlan, 7);
  EXPECT_EQ(back.qos, 2);
  EXPECT_EQ(back.trust, false);
  EXPECT_FALSE(back.mac);
  EXPECT_FALSE(back.spoofchk);
  EXPECT_FALSE(back.maxTxRate);
  EXPECT_EQ(back.names(), (std::vector<std::string>{"vlan", "vlanQoS", "vlanProto", "trust"}));
}

TEST(VfConfigBuildTest, MismatchesNameTheAttribute) {
  VfSettings s;
  s.vlan = 20;
  s.spoofchk = true;
  VfState now = current();
  now.spoofchk = true;
  auto diff = s.mismatches(now);
  ASSERT_EQ(diff.size(), 1u);
  EXPECT_EQ(diff[0], "vlan is 7, want 20");
}

TEST(VfConfigBuildTest, GetRequestAsksForVfInfo) {
  NlMsg m = buildGetVfInfo("ens1f0");
  EXPECT_EQ(hdr(m)->nlmsg_type, RTM_GETLINK);
  auto attrs = linkAttrs(m);
  ASSERT_TRUE(attrs.contains(IFLA_EXT_MASK));
  EXPECT_EQ(nla_get_u32(attrs[IFLA_EXT_MASK]) & RTEXT_FILTER_VF,
            static_cast<uint32_t>(RTEXT_FILTER_VF));
}

TEST(VfConfigBuildTest, LinkWithoutVfInfoParsesEmpty) {
  NlMsg m = netlink::buildMoveLink(1, 3, "x");
  auto vfs = parseVfInfo(hdr(m));
  ASSERT_TRUE(vfs);
  EXPECT_TRUE(vfs->empty());
}

}  // namespace
}  // namespace vfplane::sriov
