// PF-side VF attributes (the "ip link set <pf> vf N ..." settings): admin MAC, VLAN, spoof check,
// trust, rate limits and link state.
//
// They live on the PF, not on the VF's netdev, and they outlive the pod: whatever a plugin sets
// stays for the next pod unless it is put back. VfSettings therefore says only what the config
// names; an attribute that is not configured is never written (writing vlan 0 unasked breaks
// trunk policies that the admin set on the PF).
//
// VfConfigurator is the seam: NetlinkVfConfigurator speaks rtnetlink to the PF; tests use fakes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/netlink/rtnl.h"

namespace vfplane::sriov {

enum class VlanProto : uint16_t { k8021Q = 0x8100, k8021AD = 0x88a8 };
enum class VfLinkState : uint32_t { kAuto = 0, kEnable = 1, kDisable = 2 };  // IFLA_VF_LINK_STATE_*

const char* vlanProtoName(VlanProto p);      // "802.1q", "802.1ad"
const char* vfLinkStateName(VfLinkState s);  // "auto", "enable", "disable"

// What the PF reports for one VF.
struct VfState {
  int vf = 0;
  netlink::MacAddress mac;
  int vlan = 0;
  int qos = 0;
  VlanProto vlanProto = VlanProto::k8021Q;
  std::optional<bool> spoofchk;  // optional: not every driver reports it
  std::optional<bool> trust;
  uint32_t minTxRate = 0;  // Mbit/s
  uint32_t maxTxRate = 0;
  std::optional<VfLinkState> linkState;
  bool operator==(const VfState&) const = default;
};

// What to write. VLAN, QoS and protocol go in one attribute, as do the two rates; the setter
// fills the parts that are not configured from the current state.
struct VfSettings {
  std::optional<netlink::MacAddress> mac;
  std::optional<int> vlan;
  std::optional<int> qos;
  std::optional<VlanProto> vlanProto;
  std::optional<bool> spoofchk;
  std::optional<bool> trust;
  std::optional<uint32_t> minTxRate;
  std::optional<uint32_t> maxTxRate;
  std::optional<VfLinkState> linkState;

  bool empty() const;
  // The config names of what is set ("mac", "vlan", "spoofchk", ...), for messages.
  std::vector<std::string> names() const;
  // The settings that would put `state`'s values back for every attribute set here.
  VfSettings restoring(const VfState& state) const;
  // Whether `state` shows every attribute set here.
  std::vector<std::string> mismatches(const VfState& state) const;
};

class VfConfigurator {
 public:
  virtual ~VfConfigurator() = default;
  // The VF's current attributes; nullopt when the PF reports no VF information at all (a
  // virtual PF, as on the simulated node). Errors: ENODEV when the PF link does not exist.
  virtual Result<std::optional<VfState>> snapshot(std::string_view pf, int vf) = 0;
  // Writes exactly what is set. `current` is the snapshot used to complete VLAN and rate.
  virtual Result<void> apply(std::string_view pf, int vf, const VfSettings& settings,
                             const VfState& current) = 0;
};

class NetlinkVfConfigurator final : public VfConfigurator {
 public:
  // Talks to the PF in the namespace the calling thread is in at the first call (the host's). The
  // socket is opened then: commands that never touch the PF side do not pay for it.
  Result<std::optional<VfState>> snapshot(std::string_view pf, int vf) override;
  Result<void> apply(std::string_view pf, int vf, const VfSettings& settings,
                     const VfState& current) override;

 private:
  Result<netlink::Rtnl*> rtnl();
  std::optional<netlink::Rtnl> rtnl_;
};

// RTM_GETLINK of the PF with RTEXT_FILTER_VF, so the reply carries IFLA_VFINFO_LIST.
netlink::NlMsg buildGetVfInfo(std::string_view pf);
// RTM_NEWLINK on the PF with one IFLA_VF_INFO for `vf` holding the attributes that are set.
netlink::NlMsg buildSetVf(int pfIndex, int vf, const VfSettings& settings, const VfState& current);
// Every VF in a link message's IFLA_VFINFO_LIST (empty when there is none). Reads the set
// request's layout as well as the kernel's replies, which is what lets tests check a build.
Result<std::vector<VfState>> parseVfInfo(const nlmsghdr* hdr);

}  // namespace vfplane::sriov
