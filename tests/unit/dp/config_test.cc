#include "vfplane/dp/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vfplane::dp {
namespace {
using testing::HasSubstr;

Result<DevicePluginConfig> parse(const std::string& json) {
  return parseConfig(json, "config.json", "intel.com");
}

TEST(DpConfig, ParsesUpstreamExample) {
  auto c = parse(R"({
    "resourceList": [
      {"resourceName": "intel_sriov_netdevice",
       "selectors": {"vendors": ["8086"], "devices": ["154c", "10ed", "1889"],
                     "drivers": ["i40evf", "iavf", "ixgbevf"]}},
      {"resourceName": "intel_sriov_dpdk", "resourcePrefix": "example.com",
       "selectors": [{"vendors": ["8086"], "drivers": ["vfio-pci"], "pfNames": ["enp0s0f0", "ens1f0#0-3,5"]},
                     {"rootDevices": ["0000:3b:00.0#1-2"], "linkTypes": ["Ether"]}],
       "excludeTopology": true,
       "additionalInfo": {"*": {"token": "abc"}}},
      {"resourceName": "mlnx_sriov_rdma", "deviceType": "netDevice", "allocationPolicy": "spread",
       "selectors": {"isRdma": true, "needVhostNet": true, "acpiIndexes": ["101"],
                     "pciAddresses": ["3b:02.0"]}}
    ]})");
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_EQ(c->resources.size(), 3u);
  EXPECT_TRUE(c->warnings.empty()) << testing::PrintToString(c->warnings);
  const auto& a = c->resources[0];
  EXPECT_EQ(a.fullName("intel.com"), "intel.com/intel_sriov_netdevice");
  EXPECT_EQ(a.selectors.at(0).devices, (std::vector<std::string>{"154c", "10ed", "1889"}));
  const auto& b = c->resources[1];
  EXPECT_EQ(b.fullName("intel.com"), "example.com/intel_sriov_dpdk");
  EXPECT_TRUE(b.excludeTopology);
  ASSERT_EQ(b.selectors.size(), 2u);
  ASSERT_EQ(b.selectors[0].pfNames.size(), 2u);
  EXPECT_EQ(b.selectors[0].pfNames[1].pf, "ens1f0");
  EXPECT_TRUE(b.selectors[0].pfNames[1].containsVf(5));
  EXPECT_FALSE(b.selectors[0].pfNames[1].containsVf(4));
  EXPECT_TRUE(b.selectors[0].pfNames[0].containsVf(60));
  EXPECT_EQ(b.selectors[1].rootDevices.at(0).pf, "0000:3b:00.0");
  EXPECT_EQ(b.selectors[1].linkTypes.at(0), "ether");
  EXPECT_EQ(b.additionalInfo.at("*").at("token"), "abc");
  const auto& r = c->resources[2];
  EXPECT_EQ(r.allocationPolicy, AllocationPolicy::kSpread);
  EXPECT_TRUE(r.selectors[0].isRdma);
  EXPECT_TRUE(r.selectors[0].needVhostNet);
  EXPECT_EQ(r.selectors[0].pciAddresses.at(0).str(), "0000:3b:02.0");
}

TEST(DpConfig, KeysMatchCaseInsensitivelyLikeGo) {
  auto c = parse(
      R"({"ResourceList": [{"RESOURCENAME": "a", "Selectors": {"IsRdma": true, "PFNAMES": ["x"]}}]})");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->resources.at(0).resourceName, "a");
  EXPECT_TRUE(c->resources[0].selectors[0].isRdma);
  EXPECT_EQ(c->resources[0].selectors[0].pfNames.at(0).pf, "x");
}

TEST(DpConfig, UnknownKeysAreWarningsWithSuggestions) {
  auto c = parse(R"({"resourceList": [{"resourceName": "a", "colour": 1,
                     "selectors": {"vendor": ["8086"]}}], "extra": true})");
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_EQ(c->warnings.size(), 3u);
  EXPECT_THAT(c->warnings[0], HasSubstr("resourceList[0] (a): selectors: unknown key \"vendor\""));
  EXPECT_THAT(c->warnings[0], HasSubstr("did you mean \"vendors\""));
  EXPECT_THAT(c->warnings[1], HasSubstr("unknown key \"colour\""));
  EXPECT_THAT(c->warnings[2], HasSubstr("unknown key \"extra\""));
}

TEST(DpConfig, UnsupportedUpstreamSelectorsAreRecordedAndWarned) {
  auto c =
      parse(R"({"resourceList": [{"resourceName": "a", "selectors": {"ddpProfiles": ["GTP"]}}]})");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->resources[0].selectors[0].unsupported, std::vector<std::string>{"ddpProfiles"});
  ASSERT_EQ(c->warnings.size(), 1u);
  EXPECT_THAT(c->warnings[0], HasSubstr("will match no device"));
}

TEST(DpConfig, AcceleratorPoolsKeepOnlyTheirSelectorsAsUpstreamDoes) {
  auto c = parse(R"({"resourceList": [{"resourceName": "fec", "deviceType": "accelerator",
      "selectors": {"vendors": ["8086"], "devices": ["0d5d"], "drivers": ["vfio-pci"],
                    "pciAddresses": ["0000:8a:00.1"], "pfNames": ["ens1f0"], "isRdma": true,
                    "ddpProfiles": ["GTP"]}}]})");
  ASSERT_TRUE(c) << c.error().message();
  const auto& rc = c->resources[0];
  EXPECT_EQ(rc.deviceType, DeviceType::kAccelerator);
  const auto& s = rc.selectors[0];
  EXPECT_EQ(s.vendors, std::vector<std::string>{"8086"});
  EXPECT_EQ(s.devices, std::vector<std::string>{"0d5d"});
  EXPECT_EQ(s.drivers, std::vector<std::string>{"vfio-pci"});
  EXPECT_EQ(s.pciAddresses.size(), 1u);
  EXPECT_TRUE(s.pfNames.empty());
  EXPECT_FALSE(s.isRdma);
  EXPECT_TRUE(s.unsupported.empty()) << "ignored, so it does not empty the pool";
  ASSERT_EQ(c->warnings.size(), 3u) << testing::PrintToString(c->warnings);
  EXPECT_THAT(c->warnings[0],
              HasSubstr("resourceList[0] (fec): selectors.pfNames: not a selector of "
                        "accelerator pools; ignored"));
  EXPECT_THAT(c->warnings[1], HasSubstr("selectors.isRdma"));
  EXPECT_THAT(c->warnings[2], HasSubstr("selectors.ddpProfiles"));
}

struct BadConfig {
  const char* json;
  const char* message;
};

class DpConfigRejects : public testing::TestWithParam<BadConfig> {};

TEST_P(DpConfigRejects, NamingEntryAndField) {
  auto c = parse(GetParam().json);
  ASSERT_FALSE(c) << GetParam().json;
  EXPECT_THAT(c.error().message(), HasSubstr(GetParam().message));
  EXPECT_THAT(c.error().message(), testing::StartsWith("config.json"));
}

INSTANTIATE_TEST_SUITE_P(
    BadConfigs, DpConfigRejects,
    testing::Values(
        BadConfig{"{", "not valid JSON"}, BadConfig{"[]", "expected a JSON object"},
        BadConfig{"{}", "resourceList: missing"},
        BadConfig{R"({"resourceList": {}})", "resourceList: expected a list"},
        BadConfig{R"({"resourceList": [{"selectors": {}}]})",
                  "resourceList[0]: resourceName: missing"},
        BadConfig{R"({"resourceList": [{"resourceName": "a/b", "selectors": {}}]})",
                  "resourceList[0] (a/b): resourceName \"a/b\" contains '/'"},
        BadConfig{R"({"resourceList": [{"resourceName": "", "selectors": {}}]})",
                  "must not be empty"},
        BadConfig{R"({"resourceList": [{"resourceName": "-a", "selectors": {}}]})",
                  "must start and end"},
        BadConfig{
            R"({"resourceList": [{"resourceName": "a", "selectors": {}},
                                       {"resourceName": "a", "selectors": {}}]})",
            "resourceList[1] (a): resource intel.com/a is already defined by resourceList[0]"},
        BadConfig{
            R"({"resourceList": [{"resourceName": "a", "resourcePrefix": "intel.com", "selectors": {}},
                                       {"resourceName": "a", "selectors": {}}]})",
            "already defined"},
        BadConfig{
            R"({"resourceList": [{"resourceName": "a", "deviceType": "gpu", "selectors": {}}]})",
            "(a): deviceType \"gpu\": must be"},
        BadConfig{
            R"({"resourceList": [{"resourceName": "a", "selectors": {"pfNames": ["ens1#1-"]}}]})",
            "selectors.pfNames[0]: \"ens1#1-\": VF range \"1-\" is not N or N-M"},
        BadConfig{
            R"({"resourceList": [{"resourceName": "a", "selectors": {"pfNames": ["ens1#3-1"]}}]})",
            "ends before it starts"},
        BadConfig{
            R"({"resourceList": [{"resourceName": "a", "selectors": {"pfNames": ["ens1#"]}}]})",
            "empty VF range"},
        BadConfig{
            R"({"resourceList": [{"resourceName": "a", "selectors": {"rootDevices": ["3b:00.0/x"]}}]})",
            "rootDevices[0]: invalid PCI address"},
        BadConfig{
            R"({"resourceList": [{"resourceName": "a", "selectors": {"pciAddresses": ["../x"]}}]})",
            "pciAddresses[0]: invalid PCI address"},
        BadConfig{
            R"({"resourceList": [{"resourceName": "a", "selectors": {"vendors": ["80866"]}}]})",
            "vendors[0]: \"80866\" is not a 4-digit hex ID"},
        BadConfig{R"({"resourceList": [{"resourceName": "a", "selectors": {"vendors": "8086"}}]})",
                  "selectors.vendors: expected a list of strings"},
        BadConfig{R"({"resourceList": [{"resourceName": "a", "selectors": {"isRdma": "yes"}}]})",
                  "selectors.isRdma: expected true or false"},
        BadConfig{R"({"resourceList": [{"resourceName": "a"}]})", "(a): selectors: missing"},
        BadConfig{R"({"resourceList": [{"resourceName": "a", "selectors": [1]}]})",
                  "selectors[0]: expected an object"},
        BadConfig{
            R"({"resourceList": [{"resourceName": "a", "allocationPolicy": "tight", "selectors": {}}]})",
            "allocationPolicy \"tight\""},
        BadConfig{
            R"({"resourceList": [{"resourceName": "a", "resourcePrefix": "Intel.com", "selectors": {}}]})",
            "resourcePrefix \"Intel.com\" contains 'I'"}));

TEST(DpConfig, VfRanges) {
  auto r = parseVfRanges("0-3,5,7-7");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (std::vector<std::pair<int, int>>{{0, 3}, {5, 5}, {7, 7}}));
  for (const char* bad : {"", ",", "1,", "a", "1-2-3", "-1", "1--2"}) {
    EXPECT_FALSE(parseVfRanges(bad)) << bad;
  }
}

TEST(DpConfig, LoadConfigNamesMissingFile) {
  auto c = loadConfig("/nonexistent/config.json", "intel.com");
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error().message(), HasSubstr("/nonexistent/config.json"));
}

}  // namespace
}  // namespace vfplane::dp
