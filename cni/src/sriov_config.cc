#include "vfplane/cni/sriov_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "vfplane/base/json_keys.h"
#include "vfplane/cni/config_keys.h"

namespace vfplane::cni {

CniExpected<SriovConfig> parseSriovConfig(const NetConf& conf, const Environment& env) {
  using Json = nlohmann::json;
  ConfigKeys keys("vfplane-sriov", conf.raw);
  ConfigKeys runtime("vfplane-sriov", conf.runtimeConfig);
  auto invalid = [&](std::string_view key, std::string_view why) { return keys.invalid(key, why); };
  auto lower = [](std::string_view v) { return asciiLower(v); };
  SriovConfig c;

  // deviceID: a PCI address, strictly. Path tricks ("../../..") and sloppy forms are refused here,
  // before the value is ever joined to a sysfs path.
  std::optional<std::string> device;
  std::string deviceKey = "deviceID";
  if (auto d = keys.string("deviceID"); !d) {
    return std::unexpected(d.error());
  } else {
    device = *d;
  }
  if (const Json* rc = runtime.find("deviceID")) {
    if (!rc->is_string()) return invalid("runtimeConfig.deviceID", "must be a string");
    device = rc->get<std::string>();
    deviceKey = "runtimeConfig.deviceID";
  }
  if (device) {
    auto pci = sriov::PciAddress::parse(*device);
    if (!pci) return invalid(deviceKey, pci.error().message());
    c.deviceId = *pci;
  }
  auto resource = parseDeviceResource(keys);
  if (!resource) return std::unexpected(resource.error());
  c.resource = std::move(*resource);

  auto vlan = keys.integer("vlan", 0, 4094);
  if (!vlan) return std::unexpected(vlan.error());
  auto qos = keys.integer("vlanQoS", 0, 7);
  if (!qos) return std::unexpected(qos.error());
  auto proto = keys.string("vlanProto");
  if (!proto) return std::unexpected(proto.error());
  if (*vlan) c.vf.vlan = static_cast<int>(**vlan);
  if (*qos) {
    if (!*vlan) return invalid("vlanQoS", "needs \"vlan\" to be set");
    if (**qos != 0 && **vlan == 0)
      return invalid("vlanQoS", "a QoS on vlan 0 has no VLAN tag to ride in");
    c.vf.qos = static_cast<int>(**qos);
  }
  if (*proto) {
    std::string p = lower(**proto);
    if (p != "802.1q" && p != "802.1ad")
      return invalid("vlanProto", fmt::format("\"{}\" must be 802.1q or 802.1ad", **proto));
    if (!*vlan) return invalid("vlanProto", "needs \"vlan\" to be set");
    if (p == "802.1ad" && **vlan == 0) return invalid("vlanProto", "802.1ad needs a non-zero vlan");
    c.vf.vlanProto = p == "802.1ad" ? sriov::VlanProto::k8021AD : sriov::VlanProto::k8021Q;
  }

  auto spoof = keys.onOff("spoofchk");
  if (!spoof) return std::unexpected(spoof.error());
  c.vf.spoofchk = *spoof;
  auto trust = keys.onOff("trust");
  if (!trust) return std::unexpected(trust.error());
  c.vf.trust = *trust;

  auto linkState = keys.string("link_state");
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
      return invalid("link_state",
                     fmt::format("\"{}\" must be auto, enable or disable", **linkState));
    }
  }

  auto minRate = keys.integer("min_tx_rate", 0, UINT32_MAX);
  if (!minRate) return std::unexpected(minRate.error());
  auto maxRate = keys.integer("max_tx_rate", 0, UINT32_MAX);
  if (!maxRate) return std::unexpected(maxRate.error());
  if (*minRate) c.vf.minTxRate = static_cast<uint32_t>(**minRate);
  if (*maxRate) c.vf.maxTxRate = static_cast<uint32_t>(**maxRate);
  if (*minRate && *maxRate && **maxRate != 0 && **minRate > **maxRate) {
    return invalid("min_tx_rate", fmt::format("{} is above max_tx_rate {}", **minRate, **maxRate));
  }

  auto mtu = keys.integer("mtu", 68, 65535);
  if (!mtu) return std::unexpected(mtu.error());
  if (*mtu) c.mtu = static_cast<int>(**mtu);

  auto mac = requestedMac(keys, conf, env);
  if (!mac) return std::unexpected(mac.error());
  if (*mac) {
    c.mac = *mac;
    c.vf.mac = *mac;
  }
  return c;
}

}  // namespace vfplane::cni
