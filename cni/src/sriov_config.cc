#include "vfplane/cni/sriov_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "vfplane/sriov/json_keys.h"

namespace vfplane::cni {
namespace {

using Json = nlohmann::json;

std::string lower(std::string_view s) { return asciiLower(s); }

// As Go decodes sriov-cni's config; a JSON null is the same as an absent key.
const Json* find(const Json& obj, std::string_view key) {
  const Json* v = findGoKey(obj, key);
  return v != nullptr && !v->is_null() ? v : nullptr;
}

std::unexpected<CniError> invalid(std::string_view key, std::string_view why) {
  return cniFail(ErrorCode::kInvalidConfig, fmt::format("vfplane-sriov config: {}: {}", key, why));
}

CniExpected<std::optional<int64_t>> intKey(const Json& raw, std::string_view key, int64_t lo, int64_t hi) {
  const Json* v = find(raw, key);
  if (v == nullptr) return std::optional<int64_t>();
  if (!v->is_number_integer()) return invalid(key, fmt::format("must be an integer, got {}", v->dump()));
  int64_t n = v->get<int64_t>();
  if (n < lo || n > hi) return invalid(key, fmt::format("{} is out of range {}-{}", n, lo, hi));
  return std::optional<int64_t>(n);
}

CniExpected<std::optional<std::string>> stringKey(const Json& raw, std::string_view key) {
  const Json* v = find(raw, key);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) return invalid(key, fmt::format("must be a string, got {}", v->dump()));
  return std::optional<std::string>(v->get<std::string>());
}

CniExpected<std::optional<bool>> onOffKey(const Json& raw, std::string_view key) {
  auto s = stringKey(raw, key);
  if (!s) return std::unexpected(s.error());
  if (!*s) return std::optional<bool>();
  std::string v = lower(**s);
  if (v == "on") return std::optional<bool>(true);
  if (v == "off") return std::optional<bool>(false);
  return invalid(key, fmt::format("\"{}\" must be \"on\" or \"off\"", **s));
}

CniExpected<std::optional<sriov::MacAddress>> macFrom(std::string_view where, const std::string& text) {
  auto mac = sriov::MacAddress::parse(text);
  if (!mac) return invalid(where, mac.error().message());
  if (mac->bytes[0] & 1) return invalid(where, fmt::format("{} is a multicast address", text));
  if (mac->isZero()) return invalid(where, "the all-zero MAC cannot be assigned");
  return std::optional<sriov::MacAddress>(*mac);
}

}  // namespace

CniExpected<SriovConfig> parseSriovConfig(const NetConf& conf, const Environment& env) {
  const Json& raw = conf.raw;
  SriovConfig c;

  // deviceID: a PCI address, strictly. Path tricks ("../../..") and sloppy forms are refused here,
  // before the value is ever joined to a sysfs path.
  std::optional<std::string> device;
  std::string deviceKey = "deviceID";
  if (auto d = stringKey(raw, "deviceID"); !d) {
    return std::unexpected(d.error());
  } else {
    device = *d;
  }
  if (const Json* rc = find(conf.runtimeConfig, "deviceID")) {
    if (!rc->is_string()) return invalid("runtimeConfig.deviceID", "must be a string");
    device = rc->get<std::string>();
    deviceKey = "runtimeConfig.deviceID";
  }
  if (device) {
    auto pci = sriov::PciAddress::parse(*device);
    if (!pci) return invalid(deviceKey, pci.error().message());
    c.deviceId = *pci;
  }

  auto vlan = intKey(raw, "vlan", 0, 4094);
  if (!vlan) return std::unexpected(vlan.error());
  auto qos = intKey(raw, "vlanQoS", 0, 7);
  if (!qos) return std::unexpected(qos.error());
  auto proto = stringKey(raw, "vlanProto");
  if (!proto) return std::unexpected(proto.error());
  if (*vlan) c.vf.vlan = static_cast<int>(**vlan);
  if (*qos) {
    if (!*vlan) return invalid("vlanQoS", "needs \"vlan\" to be set");
    if (**qos != 0 && **vlan == 0) return invalid("vlanQoS", "a QoS on vlan 0 has no VLAN tag to ride in");
    c.vf.qos = static_cast<int>(**qos);
  }
  if (*proto) {
    std::string p = lower(**proto);
    if (p != "802.1q" && p != "802.1ad") return invalid("vlanProto", fmt::format("\"{}\" must be 802.1q or 802.1ad", **proto));
    if (!*vlan) return invalid("vlanProto", "needs \"vlan\" to be set");
    if (p == "802.1ad" && **vlan == 0) return invalid("vlanProto", "802.1ad needs a non-zero vlan");
    c.vf.vlanProto = p == "802.1ad" ? sriov::VlanProto::k8021AD : sriov::VlanProto::k8021Q;
  }

  auto spoof = onOffKey(raw, "spoofchk");
  if (!spoof) return std::unexpected(spoof.error());
  c.vf.spoofchk = *spoof;
  auto trust = onOffKey(raw, "trust");
  if (!trust) return std::unexpected(trust.error());
  c.vf.trust = *trust;

  auto linkState = stringKey(raw, "link_state");
  if (!linkState) return std::unexpected(linkState.error());
  if (*linkState) {
    std::string s = lower(**linkState);
    if (s == "auto") {
      c.vf.linkState = sriov::VfLinkState::kAuto;
    } else if (s == "enable") {
      c.vf.linkState = sriov::VfLinkState::kEnable;
    } else if (s == "disable") {
      c.vf.linkState = sriov::VfLinkState::kDisable;
    } else {
      return invalid("link_state", fmt::format("\"{}\" must be auto, enable or disable", **linkState));
    }
  }

  auto minRate = intKey(raw, "min_tx_rate", 0, UINT32_MAX);
  if (!minRate) return std::unexpected(minRate.error());
  auto maxRate = intKey(raw, "max_tx_rate", 0, UINT32_MAX);
  if (!maxRate) return std::unexpected(maxRate.error());
  if (*minRate) c.vf.minTxRate = static_cast<uint32_t>(**minRate);
  if (*maxRate) c.vf.maxTxRate = static_cast<uint32_t>(**maxRate);
  if (*minRate && *maxRate && **maxRate != 0 && **minRate > **maxRate) {
    return invalid("min_tx_rate", fmt::format("{} is above max_tx_rate {}", **minRate, **maxRate));
  }

  auto mtu = intKey(raw, "mtu", 68, 65535);
  if (!mtu) return std::unexpected(mtu.error());
  if (*mtu) c.mtu = static_cast<int>(**mtu);

  // The MAC, from the least to the most specific source.
  auto mac = stringKey(raw, "mac");
  if (!mac) return std::unexpected(mac.error());
  std::optional<std::pair<std::string, std::string>> macSource;
  if (*mac) macSource = {"mac", **mac};
  if (auto a = env.arg("MAC")) macSource = {"CNI_ARGS MAC", *a};
  if (const Json* cniArgs = find(conf.args, "cni"); cniArgs != nullptr) {
    if (const Json* m = find(*cniArgs, "mac")) {
      if (!m->is_string()) return invalid("args.cni.mac", "must be a string");
      macSource = {"args.cni.mac", m->get<std::string>()};
    }
  }
  if (const Json* m = find(conf.runtimeConfig, "mac")) {
    if (!m->is_string()) return invalid("runtimeConfig.mac", "must be a string");
    macSource = {"runtimeConfig.mac", m->get<std::string>()};
  }
  if (macSource) {
    auto parsed = macFrom(macSource->first, macSource->second);
    if (!parsed) return std::unexpected(parsed.error());
    c.mac = *parsed;
    c.vf.mac = *parsed;
  }
  return c;
}

}  // namespace vfplane::cni
