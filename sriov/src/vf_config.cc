#include "vfplane/sriov/vf_config.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include <cerrno>
#include <cstring>

namespace vfplane::sriov {
namespace {

// Drivers that do not implement a boolean setting leave the kernel's "unknown" (-1) in it.
constexpr uint32_t kUnknownSetting = 0xffffffffu;

template <class T>
void putStruct(nl_msg* msg, int type, const T& value) {
  if (nla_put(msg, type, sizeof(T), &value) < 0) std::abort();
}

template <class T>
bool readStruct(const nlattr* a, T& out) {
  if (static_cast<size_t>(nla_len(a)) < sizeof(T)) return false;
  std::memcpy(&out, nla_data(a), sizeof(T));
  return true;
}

}  // namespace

const char* vlanProtoName(VlanProto p) { return p == VlanProto::k8021AD ? "802.1ad" : "802.1q"; }

const char* vfLinkStateName(VfLinkState s) {
  switch (s) {
    case VfLinkState::kEnable:
      return "enable";
    case VfLinkState::kDisable:
      return "disable";
    case VfLinkState::kAuto:
      break;
  }
  return "auto";
}

bool VfSettings::empty() const { return names().empty(); }

std::vector<std::string> VfSettings::names() const {
  std::vector<std::string> out;
  if (mac) out.push_back("mac");
  if (vlan) out.push_back("vlan");
  if (qos) out.push_back("vlanQoS");
  if (vlanProto) out.push_back("vlanProto");
  if (spoofchk) out.push_back("spoofchk");
  if (trust) out.push_back("trust");
  if (minTxRate) out.push_back("min_tx_rate");
  if (maxTxRate) out.push_back("max_tx_rate");
  if (linkState) out.push_back("link_state");
  return out;
}

VfSettings VfSettings::restoring(const VfState& state) const {
  VfSettings r;
  if (mac) r.mac = state.mac;
  if (vlan || qos || vlanProto) {
    r.vlan = state.vlan;
    r.qos = state.qos;
    r.vlanProto = state.vlanProto;
  }
  if (spoofchk && state.spoofchk) r.spoofchk = state.spoofchk;
  if (trust && state.trust) r.trust = state.trust;
  if (minTxRate || maxTxRate) {
    r.minTxRate = state.minTxRate;
    r.maxTxRate = state.maxTxRate;
  }
  if (linkState && state.linkState) r.linkState = state.linkState;
  return r;
}

std::vector<std::string> VfSettings::mismatches(const VfState& s) const {
  std::vector<std::string> out;
  auto check = [&](bool differs, std::string what) {
    if (differs) out.push_back(std::move(what));
  };
  if (mac) check(s.mac != *mac, fmt::format("mac is {}, want {}", s.mac.str(), mac->str()));
  if (vlan) check(s.vlan != *vlan, fmt::format("vlan is {}, want {}", s.vlan, *vlan));
  if (qos) check(s.qos != *qos, fmt::format("vlanQoS is {}, want {}", s.qos, *qos));
  if (vlanProto) {
    check(s.vlanProto != *vlanProto,
          fmt::format("vlanProto is {}, want {}", vlanProtoName(s.vlanProto),
                      vlanProtoName(*vlanProto)));
  }
  if (spoofchk)
    check(s.spoofchk != spoofchk, fmt::format("spoofchk is not {}", *spoofchk ? "on" : "off"));
  if (trust) check(s.trust != trust, fmt::format("trust is not {}", *trust ? "on" : "off"));
  if (minTxRate)
    check(s.minTxRate != *minTxRate,
          fmt::format("min_tx_rate is {}, want {}", s.minTxRate, *minTxRate));
  if (maxTxRate)
    check(s.maxTxRate != *maxTxRate,
          fmt::format("max_tx_rate is {}, want {}", s.maxTxRate, *maxTxRate));
  if (linkState) {
    check(s.linkState != linkState,
          fmt::format("link_state is not {}", vfLinkStateName(*linkState)));
  }
  return out;
}

netlink::NlMsg buildGetVfInfo(std::string_view pf) {
  netlink::NlMsg msg = netlink::buildGetLink(pf);
  uint32_t mask = RTEXT_FILTER_VF;
  if (nla_put(msg.get(), IFLA_EXT_MASK, sizeof(mask), &mask) < 0) std::abort();
  return msg;
}

netlink::NlMsg buildSetVf(int pfIndex, int vf, const VfSettings& s, const VfState& current) {
  netlink::NlMsg msg(nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK));
  if (!msg) std::abort();
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = pfIndex;
  if (nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0) std::abort();
  nl_msg* m = msg.get();
  nlattr* list = nla_nest_start(m, IFLA_VFINFO_LIST);
  nlattr* info = nla_nest_start(m, IFLA_VF_INFO);
  auto index = static_cast<uint32_t>(vf);
  if (s.mac) {
    ifla_vf_mac v{};
    v.vf = index;
    std::memcpy(v.mac, s.mac->bytes.data(), s.mac->bytes.size());
    putStruct(m, IFLA_VF_MAC, v);
  }
  if (s.vlan || s.qos || s.vlanProto) {
    // VLAN_LIST rather than the legacy VLAN attribute: only it carries the protocol.
    ifla_vf_vlan_info v{};
    v.vf = index;
    v.vlan = static_cast<uint32_t>(s.vlan.value_or(current.vlan));
    v.qos = static_cast<uint32_t>(s.qos.value_or(current.qos));
    v.vlan_proto = htons(static_cast<uint16_t>(s.vlanProto.value_or(current.vlanProto)));
    nlattr* vlans = nla_nest_start(m, IFLA_VF_VLAN_LIST);
    putStruct(m, IFLA_VF_VLAN_INFO, v);
    nla_nest_end(m, vlans);
  }
  if (s.spoofchk) putStruct(m, IFLA_VF_SPOOFCHK, ifla_vf_spoofchk{index, *s.spoofchk ? 1u : 0u});
  if (s.trust) putStruct(m, IFLA_VF_TRUST, ifla_vf_trust{index, *s.trust ? 1u : 0u});
  if (s.minTxRate || s.maxTxRate) {
    putStruct(m, IFLA_VF_RATE,
              ifla_vf_rate{index, s.minTxRate.value_or(current.minTxRate),
                           s.maxTxRate.value_or(current.maxTxRate)});
  }
  if (s.linkState) {
    putStruct(m, IFLA_VF_LINK_STATE,
              ifla_vf_link_state{index, static_cast<uint32_t>(*s.linkState)});
  }
  nla_nest_end(m, info);
  nla_nest_end(m, list);
  return msg;
}

Result<std::vector<VfState>> parseVfInfo(const nlmsghdr* hdr) {
  if (hdr->nlmsg_type != RTM_NEWLINK || hdr->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) {
    return fail("netlink: not a link message", EIO);
  }
  nlattr* tb[IFLA_MAX + 1] = {};
  if (nlmsg_parse(const_cast<nlmsghdr*>(hdr), sizeof(ifinfomsg), tb, IFLA_MAX, nullptr) < 0) {
    return fail("netlink: malformed link message", EIO);
  }
  std::vector<VfState> out;
  if (!tb[IFLA_VFINFO_LIST]) return out;
  nlattr* info = nullptr;
  int rem = 0;
  nla_for_each_nested(info, tb[IFLA_VFINFO_LIST], rem) {
    if (nla_type(info) != IFLA_VF_INFO) continue;
    nlattr* vt[IFLA_VF_MAX + 1] = {};
    if (nla_parse_nested(vt, IFLA_VF_MAX, info, nullptr) < 0)
      return fail("netlink: malformed IFLA_VF_INFO", EIO);
    VfState st;
    bool haveIndex = false;
    if (ifla_vf_mac v{}; vt[IFLA_VF_MAC] && readStruct(vt[IFLA_VF_MAC], v)) {
      st.vf = static_cast<int>(v.vf);
      haveIndex = true;
      std::memcpy(st.mac.bytes.data(), v.mac, st.mac.bytes.size());
    }
    if (ifla_vf_vlan v{}; vt[IFLA_VF_VLAN] && readStruct(vt[IFLA_VF_VLAN], v)) {
      st.vf = static_cast<int>(v.vf);
      haveIndex = true;
      st.vlan = static_cast<int>(v.vlan);
      st.qos = static_cast<int>(v.qos);
    }
    if (vt[IFLA_VF_VLAN_LIST]) {
      nlattr* vi = nullptr;
      int vrem = 0;
      nla_for_each_nested(vi, vt[IFLA_VF_VLAN_LIST], vrem) {
        ifla_vf_vlan_info v{};
        if (nla_type(vi) != IFLA_VF_VLAN_INFO || !readStruct(vi, v)) continue;
        st.vf = static_cast<int>(v.vf);
        haveIndex = true;
        st.vlan = static_cast<int>(v.vlan);
        st.qos = static_cast<int>(v.qos);
        st.vlanProto = ntohs(v.vlan_proto) == 0x88a8 ? VlanProto::k8021AD : VlanProto::k8021Q;
        break;  // one entry: QinQ lists are not configured by vfplane
      }
    }
    if (ifla_vf_spoofchk v{}; vt[IFLA_VF_SPOOFCHK] && readStruct(vt[IFLA_VF_SPOOFCHK], v)) {
      st.vf = static_cast<int>(v.vf);
      haveIndex = true;
      if (v.setting != kUnknownSetting) st.spoofchk = v.setting != 0;
    }
    if (ifla_vf_trust v{}; vt[IFLA_VF_TRUST] && readStruct(vt[IFLA_VF_TRUST], v)) {
      st.vf = static_cast<int>(v.vf);
      haveIndex = true;
      if (v.setting != kUnknownSetting) st.trust = v.setting != 0;
    }
    if (ifla_vf_rate v{}; vt[IFLA_VF_RATE] && readStruct(vt[IFLA_VF_RATE], v)) {
      st.vf = static_cast<int>(v.vf);
      haveIndex = true;
      st.minTxRate = v.min_tx_rate;
      st.maxTxRate = v.max_tx_rate;
    }
    if (ifla_vf_link_state v{}; vt[IFLA_VF_LINK_STATE] && readStruct(vt[IFLA_VF_LINK_STATE], v)) {
      st.vf = static_cast<int>(v.vf);
      haveIndex = true;
      if (v.link_state <= IFLA_VF_LINK_STATE_DISABLE)
        st.linkState = static_cast<VfLinkState>(v.link_state);
    }
    if (haveIndex) out.push_back(st);
  }
  return out;
}

Result<netlink::Rtnl*> NetlinkVfConfigurator::rtnl() {
  if (!rtnl_) {
    auto opened = netlink::Rtnl::open();
    if (!opened) return fail(std::move(opened.error()));
    rtnl_ = std::move(*opened);
  }
  return &*rtnl_;
}

Result<std::optional<VfState>> NetlinkVfConfigurator::snapshot(std::string_view pf, int vf) {
  auto rtnl = this->rtnl();
  if (!rtnl) return fail(std::move(rtnl.error()));
  auto replies = (*rtnl)->query(buildGetVfInfo(pf), fmt::format("get VF info of {}", pf));
  if (!replies) return fail(std::move(replies.error()));
  for (const auto& r : *replies) {
    auto* h = reinterpret_cast<const nlmsghdr*>(r.data());
    if (h->nlmsg_type != RTM_NEWLINK) continue;
    auto vfs = parseVfInfo(h);
    if (!vfs) return fail(std::move(vfs.error()).withContext(pf));
    if (vfs->empty()) return std::optional<VfState>();
    for (const auto& st : *vfs) {
      if (st.vf == vf) return std::optional<VfState>(st);
    }
    return fail(fmt::format("{} reports {} VFs but not VF {}", pf, vfs->size(), vf), ENOENT);
  }
  return fail(fmt::format("get VF info of {}: no reply", pf), EIO);
}

Result<void> NetlinkVfConfigurator::apply(std::string_view pf, int vf, const VfSettings& settings,
                                          const VfState& current) {
  if (settings.empty()) return {};
  auto rtnl = this->rtnl();
  if (!rtnl) return fail(std::move(rtnl.error()));
  auto link = (*rtnl)->link(pf);
  if (!link) return fail(std::move(link.error()));
  if (!*link) return fail(fmt::format("PF {} does not exist", pf), ENODEV);
  return (*rtnl)->execute(
      buildSetVf((*link)->ifindex, vf, settings, current),
      fmt::format("set VF {} {} on {}", vf, fmt::join(settings.names(), ","), pf));
}

}  // namespace vfplane::sriov
