// vfplane-sriov's config: sriov-cni's keys unchanged, every bad value code 7 with the key named.
#include "vfplane/cni/sriov_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vfplane::cni {
namespace {
using testing::HasSubstr;

CniExpected<SriovConfig> parse(const std::string& extra, const std::string& args = "") {
  std::string text = R"({"cniVersion":"1.0.0","name":"n","type":"vfplane-sriov")" +
                     std::string(extra.empty() ? "" : ",") + extra + "}";
  auto conf = parseNetConf(text);
  if (!conf) return std::unexpected(conf.error());
  auto env = parseEnvironment({{"CNI_COMMAND", "ADD"},
                               {"CNI_CONTAINERID", "c"},
                               {"CNI_NETNS", "/x"},
                               {"CNI_IFNAME", "net1"},
                               {"CNI_ARGS", args},
                               {"CNI_PATH", "/usr/lib/cni"}});
  if (!env) return std::unexpected(env.error());
  return parseSriovConfig(*conf, *env);
}

TEST(SriovConfigTest, SriovCniConfigUnchanged) {
  auto c = parse(
      R"("deviceID":"0000:3b:02.1","vlan":100,"vlanQoS":3,"vlanProto":"802.1ad","mac":"02:00:00:00:00:01",
                   "spoofchk":"off","trust":"on","link_state":"enable","min_tx_rate":10,"max_tx_rate":100,
                   "mtu":9000,"logLevel":"debug","logFile":"/tmp/x.log",
                   "ipam":{"type":"host-local","subnet":"10.1.0.0/24"})");
  ASSERT_TRUE(c) << c.error().msg;
  EXPECT_EQ(c->deviceId->str(), "0000:3b:02.1");
  EXPECT_EQ(c->vf.vlan, 100);
  EXPECT_EQ(c->vf.qos, 3);
  EXPECT_EQ(c->vf.vlanProto, sriov::VlanProto::k8021AD);
  EXPECT_EQ(c->vf.spoofchk, false);
  EXPECT_EQ(c->vf.trust, true);
  EXPECT_EQ(c->vf.linkState, sriov::VfLinkState::kEnable);
  EXPECT_EQ(c->vf.minTxRate, 10u);
  EXPECT_EQ(c->vf.maxTxRate, 100u);
  EXPECT_EQ(c->mtu, 9000);
  EXPECT_EQ(c->mac->str(), "02:00:00:00:00:01");
  EXPECT_EQ(c->vf.mac->str(), "02:00:00:00:00:01");
}

TEST(SriovConfigTest, NothingConfiguredTouchesNothing) {
  auto c = parse(R"("deviceID":"0000:3b:02.1")");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->vf.empty());
  EXPECT_FALSE(c->mac);
  EXPECT_FALSE(c->mtu);
}

TEST(SriovConfigTest, KeysAndEnumValuesMatchCaseInsensitivelyAsGoDoes) {
  auto c = parse(R"("DeviceId":"0000:3b:02.1","VLAN":5,"vlanproto":"802.1Q","SpoofChk":"OFF")");
  ASSERT_TRUE(c) << c.error().msg;
  EXPECT_EQ(c->vf.vlan, 5);
  EXPECT_EQ(c->vf.vlanProto, sriov::VlanProto::k8021Q);
  EXPECT_EQ(c->vf.spoofchk, false);
}

TEST(SriovConfigTest, MacPrecedenceRuntimeConfigWins) {
  std::string base = R"("deviceID":"0000:3b:02.1","mac":"02:00:00:00:00:01")";
  EXPECT_EQ(parse(base)->mac->str(), "02:00:00:00:00:01");
  EXPECT_EQ(parse(base, "IgnoreUnknown=1;MAC=02:00:00:00:00:02")->mac->str(), "02:00:00:00:00:02");
  EXPECT_EQ(parse(base + R"(,"args":{"cni":{"mac":"02:00:00:00:00:03"}})", "MAC=02:00:00:00:00:02")
                ->mac->str(),
            "02:00:00:00:00:03");
  EXPECT_EQ(
      parse(
          base +
          R"(,"args":{"cni":{"mac":"02:00:00:00:00:03"}},"runtimeConfig":{"mac":"02:00:00:00:00:04"})")
          ->mac->str(),
      "02:00:00:00:00:04");
}

TEST(SriovConfigTest, RuntimeConfigDeviceIdWins) {
  auto c = parse(R"("deviceID":"0000:3b:02.1","runtimeConfig":{"deviceID":"0000:3b:02.2"})");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->deviceId->str(), "0000:3b:02.2");
}

struct BadCase {
  const char* json;
  const char* key;
};

TEST(SriovConfigTest, EveryBadValueIsCode7NamingTheKey) {
  const BadCase cases[] = {
      {R"("deviceID":"../../../etc")", "deviceID"},
      {R"("deviceID":"0000:3b:02.1/../x")", "deviceID"},
      {R"("deviceID":7)", "deviceID"},
      {R"("runtimeConfig":{"deviceID":"3b:02"})", "runtimeConfig.deviceID"},
      {R"("vlan":4095)", "vlan"},
      {R"("vlan":-1)", "vlan"},
      {R"("vlan":"10")", "vlan"},
      {R"("vlanQoS":3)", "vlanQoS"},
      {R"("vlan":10,"vlanQoS":8)", "vlanQoS"},
      {R"("vlan":0,"vlanQoS":1)", "vlanQoS"},
      {R"("vlanProto":"802.1ad")", "vlanProto"},
      {R"("vlan":10,"vlanProto":"qinq")", "vlanProto"},
      {R"("vlan":0,"vlanProto":"802.1ad")", "vlanProto"},
      {R"("mac":"02:00:00:00:00")", "mac"},
      {R"("mac":"01:00:5e:00:00:01")", "mac"},
      {R"("spoofchk":"yes")", "spoofchk"},
      {R"("trust":true)", "trust"},
      {R"("link_state":"up")", "link_state"},
      {R"("min_tx_rate":-5)", "min_tx_rate"},
      {R"("min_tx_rate":200,"max_tx_rate":100)", "min_tx_rate"},
      {R"("max_tx_rate":1.5)", "max_tx_rate"},
      {R"("mtu":67)", "mtu"},
      {R"("runtimeConfig":{"mac":"zz"})", "runtimeConfig.mac"},
      {R"("resourceName":"sriov_net_a")", "resourceName: must be <prefix>/<name>"},
      {R"("resourceName":"intel.com/")", "resourceName: must be <prefix>/<name>"},
      {R"("resourceName":"intel.com/a/b")", "resourceName: must be <prefix>/<name>"},
      {R"("resourceName":"Intel.com/sriov")", "resourceName: the prefix \"Intel.com\""},
      {R"("resourceName":"intel.com/-sriov")", "resourceName: the name \"-sriov\""},
      {R"("resourceName":"intel.com/sr iov")", "resourceName: the name \"sr iov\" may hold"},
      {R"("resourceName":7)", "resourceName"},
      {R"("resourceName":"intel.com/a","kubeletRootDir":"var/lib/kubelet")", "kubeletRootDir"},
      {R"("kubeletRootDir":"/var/lib/kubelet")", "kubeletRootDir: is only read with"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json);
    auto r = parse(c.json);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidConfig);
    EXPECT_THAT(r.error().msg, HasSubstr(c.key));
  }
}

TEST(SriovConfigTest, ResourceNameAndTheKubeletsRoot) {
  auto plain = parse(R"("resourceName":"intel.com/sriov_net_a")");
  ASSERT_TRUE(plain) << plain.error().msg;
  ASSERT_TRUE(plain->resource);
  EXPECT_EQ(plain->resource->name, "intel.com/sriov_net_a");
  EXPECT_EQ(plain->resource->kubelet.socket(), "/var/lib/kubelet/pod-resources/kubelet.sock");
  EXPECT_FALSE(plain->deviceId) << "the kubelet is asked at ADD, not here";
  auto moved = parse(
      R"("resourceName":"openshift.io/dpdk.nics-1","kubeletRootDir":"/var/snap/microk8s/common/var/lib/kubelet")");
  ASSERT_TRUE(moved) << moved.error().msg;
  EXPECT_EQ(moved->resource->kubelet.checkpoint(),
            "/var/snap/microk8s/common/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint");
  auto both = parse(R"("resourceName":"intel.com/a","deviceID":"0000:3b:02.1")");
  ASSERT_TRUE(both);
  EXPECT_TRUE(both->deviceId) << "Multus's deviceID, when it comes, is the VF";
  EXPECT_FALSE(parse("")->resource);
}

TEST(SriovConfigTest, BadMacFromCniArgs) {
  auto r = parse(R"("deviceID":"0000:3b:02.1")", "MAC=nope");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidConfig);
  EXPECT_THAT(r.error().msg, HasSubstr("CNI_ARGS MAC"));
}

}  // namespace
}  // namespace vfplane::cni
