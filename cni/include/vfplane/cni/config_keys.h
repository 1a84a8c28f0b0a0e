// Reading a plugin's own keys from its network config, as the Go reference plugins decode them:
// keys match case-insensitively (an exact match wins), and a JSON null is the same as an absent
// key. Every problem is code 7 naming the plugin and the key.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "vfplane/cni/plugin.h"
#include "vfplane/netlink/rtnl.h"

namespace vfplane::cni {

// "<plugin> config: <key>: <why>", code 7: for a key whose value is wrong on this node (a master
// that does not exist), found after parsing.
std::unexpected<CniError> invalidKey(std::string_view plugin, std::string_view key,
                                     std::string_view why);

class ConfigKeys {
 public:
  ConfigKeys(std::string plugin, const nlohmann::json& obj)
      : plugin_(std::move(plugin)), obj_(obj) {}

  // "<plugin> config: <key>: <why>", code 7.
  std::unexpected<CniError> invalid(std::string_view key, std::string_view why) const;

  const nlohmann::json* find(std::string_view key) const;
  CniExpected<std::optional<int64_t>> integer(std::string_view key, int64_t lo, int64_t hi) const;
  CniExpected<std::optional<std::string>> string(std::string_view key) const;
  CniExpected<std::optional<bool>> boolean(std::string_view key) const;
  CniExpected<std::optional<bool>> onOff(std::string_view key) const;  // "on" / "off", any case

 private:
  std::string plugin_;
  const nlohmann::json& obj_;
};

// The MAC the pod's interface should get, from the least to the most specific source: the config's
// "mac", CNI_ARGS MAC=, args.cni.mac, then runtimeConfig.mac. Multicast and all-zero addresses are
// refused with the source named.
CniExpected<std::optional<netlink::MacAddress>> requestedMac(const ConfigKeys& keys,
                                                             const NetConf& conf,
                                                             const Environment& env);

}  // namespace vfplane::cni
