// vfplane-sriov's PF-side VF attributes, through a recording VfConfigurator that also serves the
// snapshot (this kernel has no SR-IOV; the netlink encoding is tested in netlink_build_test).
// The VFs are on vfio-pci in a fake sysfs tree, so the plugin runs in-process without root.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "test_support.h"
#include "vfplane/cni/sriov_plugin.h"
#include "vfplane/sriov/sim_node.h"

namespace vfplane::cni {
namespace {
using Json = nlohmann::json;
using testing::HasSubstr;

class RecordingVfConfigurator : public sriov::VfConfigurator {
 public:
  Result<std::optional<sriov::VfState>> snapshot(std::string_view pf, int vf) override {
    if (noVfInfo) return std::optional<sriov::VfState>();
    return std::optional<sriov::VfState>(state(pf, vf));
  }
  Result<void> apply(std::string_view pf, int vf, const sriov::VfSettings& s,
                     const sriov::VfState&) override {
    applied.push_back(s.names());
    if (failApplies > 0) {
      --failApplies;
      return fail("set VF: Operation not permitted", EPERM);
    }
    sriov::VfState& st = state(pf, vf);
    if (s.mac) st.mac = *s.mac;
    if (s.vlan) st.vlan = *s.vlan;
    if (s.qos) st.qos = *s.qos;
    if (s.vlanProto) st.vlanProto = *s.vlanProto;
    if (s.spoofchk) st.spoofchk = s.spoofchk;
    if (s.trust) st.trust = s.trust;
    if (s.minTxRate) st.minTxRate = *s.minTxRate;
    if (s.maxTxRate) st.maxTxRate = *s.maxTxRate;
    if (s.linkState) st.linkState = s.linkState;
    return {};
  }
  sriov::VfState& state(std::string_view pf, int vf) {
    auto key = std::string(pf) + "/" + std::to_string(vf);
    if (!states.contains(key)) {
      sriov::VfState s;
      s.vf = vf;
      s.mac = *netlink::MacAddress::parse("02:00:00:00:00:aa");
      s.vlan = 42;  // an admin's trunk policy that must survive
      s.spoofchk = true;
      s.trust = false;
      s.linkState = sriov::VfLinkState::kAuto;
      states[key] = s;
    }
    return states[key];
  }
  std::map<std::string, sriov::VfState> states;
  std::vector<std::vector<std::string>> applied;
  int failApplies = 0;  // how many apply calls fail before they work again
  bool noVfInfo = false;
};

class CniSriovPfTest : public testing::Test {
 protected:
  void SetUp() override {
    sriov::SimNodeSpec spec;
    spec.root = dir_.path() / "sim";
    spec.pfs = 1;
    spec.vfs = 2;
    spec.vfio = 2;
    auto node = sriov::createSimNode(spec, nullptr);
    ASSERT_TRUE(node) << node.error().message();
    node_ = *node;
    options_.sysfsRoot = dir_.path() / "sim";
    options_.stateDir = dir_.path() / "state";
  }
  std::string dev() const { return node_.pfs[0].vfs[0].address.str(); }
  std::string pf() const { return node_.pfs[0].netdev; }
  RunOutcome run(const std::string& command, const std::string& extra,
                 const std::string& version = "1.0.0") {
    SriovPlugin plugin(options_, &vf_);
    std::string conf = R"({"cniVersion":")" + version +
                       R"(","name":"n","type":"vfplane-sriov","deviceID":")" + dev() + "\"" +
                       extra + "}";
    std::map<std::string, std::string> env = {{"CNI_COMMAND", command},
                                              {"CNI_CONTAINERID", "ctr1"},
                                              {"CNI_NETNS", "/proc/self/ns/net"},
                                              {"CNI_IFNAME", "net1"},
                                              {"CNI_PATH", "/usr/lib/cni"}};
    return runPlugin(plugin, env, conf, RunOptions{.allowOwnNetns = true});
  }
  static int codeOf(const RunOutcome& o) { return Json::parse(o.out).value("code", 0); }

  test::TempDir dir_;
  sriov::SimNode node_;
  SriovPluginOptions options_;
  RecordingVfConfigurator vf_;
};

TEST_F(CniSriovPfTest, AppliesExactlyWhatIsConfiguredAndRestoresItOnDel) {
  sriov::VfState before = vf_.state(pf(), 0);
  auto add = run(
      "ADD", R"(,"vlan":100,"vlanQoS":3,"spoofchk":"off","trust":"on","mac":"02:00:00:00:11:22")");
  ASSERT_EQ(add.exitCode, 0) << add.out;
  ASSERT_EQ(vf_.applied.size(), 1u);
  EXPECT_EQ(vf_.applied[0],
            (std::vector<std::string>{"mac", "vlan", "vlanQoS", "spoofchk", "trust"}));
  EXPECT_EQ(vf_.state(pf(), 0).vlan, 100);
  EXPECT_EQ(vf_.state(pf(), 0).mac.str(), "02:00:00:00:11:22");
  EXPECT_EQ(
      run("CHECK",
          R"(,"vlan":100,"vlanQoS":3,"spoofchk":"off","trust":"on","mac":"02:00:00:00:11:22")")
          .exitCode,
      0);
  auto del = run("DEL", R"(,"vlan":100)");
  ASSERT_EQ(del.exitCode, 0) << del.out;
  EXPECT_EQ(vf_.state(pf(), 0), before) << "every attribute ADD changed is back";
  EXPECT_EQ(run("DEL", "").exitCode, 0);
  EXPECT_EQ(vf_.applied.size(), 2u) << "a second DEL writes nothing";
}

TEST_F(CniSriovPfTest, NothingConfiguredWritesNothingPfSide) {
  ASSERT_EQ(run("ADD", "").exitCode, 0);
  ASSERT_EQ(run("DEL", "").exitCode, 0);
  EXPECT_TRUE(vf_.applied.empty()) << "vlan 0 written unasked breaks trunk policies";
  EXPECT_EQ(vf_.state(pf(), 0).vlan, 42);
}

TEST_F(CniSriovPfTest, AdminMacChangedFromThePodIsAlwaysRestored) {
  netlink::MacAddress original = vf_.state(pf(), 0).mac;
  ASSERT_EQ(run("ADD", "").exitCode, 0);
  vf_.state(pf(), 0).mac =
      *netlink::MacAddress::parse("02:00:00:00:66:66");  // a trusted VF did this
  ASSERT_EQ(run("DEL", "").exitCode, 0);
  ASSERT_EQ(vf_.applied.size(), 1u);
  EXPECT_EQ(vf_.applied[0], std::vector<std::string>{"mac"});
  EXPECT_EQ(vf_.state(pf(), 0).mac, original);
}

TEST_F(CniSriovPfTest, CheckNamesTheDriftedAttribute) {
  ASSERT_EQ(run("ADD", R"(,"vlan":100)").exitCode, 0);
  vf_.state(pf(), 0).vlan = 7;
  auto check = run("CHECK", R"(,"vlan":100)");
  EXPECT_EQ(codeOf(check), 100);
  EXPECT_THAT(check.out, HasSubstr("vlan is 7, want 100"));
}

TEST_F(CniSriovPfTest, FailedApplyLeavesNothingBehind) {
  vf_.failApplies = 1;
  auto add = run("ADD", R"(,"trust":"on")");
  EXPECT_EQ(codeOf(add), 5);
  EXPECT_THAT(add.out, HasSubstr("trust"));
  EXPECT_EQ(vf_.applied.size(), 2u)
      << "the rollback put the attribute back, in case it half-applied";
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "state/attachments/ctr1_net1.json"));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "state/owners" / (dev() + ".json")));
}

TEST_F(CniSriovPfTest, RollbackThatCannotRestoreIsKeptForGc) {
  vf_.failApplies = 2;
  auto add = run("ADD", R"(,"trust":"on")");
  EXPECT_EQ(codeOf(add), 5);
  EXPECT_THAT(add.out, HasSubstr("rollback also failed"));
  Json j = Json::parse(test::readFile(dir_.path() / "state/attachments/ctr1_net1.json"));
  EXPECT_TRUE(j["stranded"].get<bool>());
  // The next DEL (or GC) finishes the job.
  ASSERT_EQ(run("DEL", "").exitCode, 0);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "state/attachments/ctr1_net1.json"));
  EXPECT_EQ(vf_.state(pf(), 0).trust, false);
}

TEST_F(CniSriovPfTest, PfWithoutVfInfoRefusesConfiguredAttributesByName) {
  vf_.noVfInfo = true;
  auto add = run("ADD", R"(,"max_tx_rate":100)");
  EXPECT_EQ(codeOf(add), 7);
  EXPECT_THAT(add.out, HasSubstr("max_tx_rate"));
  EXPECT_EQ(run("ADD", "").exitCode, 0) << "without PF-side attributes a virtual PF is fine";
}

TEST_F(CniSriovPfTest, JournalRecordsTheModeAndTheSnapshot) {
  ASSERT_EQ(run("ADD", R"(,"vlan":100)").exitCode, 0);
  Json j = Json::parse(test::readFile(dir_.path() / "state/attachments/ctr1_net1.json"));
  EXPECT_EQ(j["mode"], "dpdk");
  EXPECT_EQ(j["pfSnapshot"]["vlan"], 42);
  EXPECT_EQ(j["pfSettings"]["vlan"], 100);
  EXPECT_TRUE(j["complete"].get<bool>());
}

}  // namespace
}  // namespace vfplane::cni
