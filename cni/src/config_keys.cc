#include "vfplane/cni/config_keys.h"

#include <fmt/format.h>

#include "vfplane/base/json_keys.h"

namespace vfplane::cni {

using Json = nlohmann::json;

std::unexpected<CniError> invalidKey(std::string_view plugin, std::string_view key,
                                     std::string_view why) {
  return cniFail(ErrorCode::kInvalidConfig, fmt::format("{} config: {}: {}", plugin, key, why));
}

std::unexpected<CniError> ConfigKeys::invalid(std::string_view key, std::string_view why) const {
  return invalidKey(plugin_, key, why);
}

const Json* ConfigKeys::find(std::string_view key) const {
  const Json* v = findGoKey(obj_, key);
  return v != nullptr && !v->is_null() ? v : nullptr;
}

CniExpected<std::optional<int64_t>> ConfigKeys::integer(std::string_view key, int64_t lo,
                                                        int64_t hi) const {
  const Json* v = find(key);
  if (v == nullptr) return std::optional<int64_t>();
  if (!v->is_number_integer())
    return invalid(key, fmt::format("must be an integer, got {}", v->dump()));
  int64_t n = v->get<int64_t>();
  if (n < lo || n > hi) return invalid(key, fmt::format("{} is out of range {}-{}", n, lo, hi));
  return std::optional<int64_t>(n);
}

CniExpected<std::optional<std::string>> ConfigKeys::string(std::string_view key) const {
  const Json* v = find(key);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) return invalid(key, fmt::format("must be a string, got {}", v->dump()));
  return std::optional<std::string>(v->get<std::string>());
}

CniExpected<std::optional<bool>> ConfigKeys::boolean(std::string_view key) const {
  const Json* v = find(key);
  if (v == nullptr) return std::optional<bool>();
  if (!v->is_boolean())
    return invalid(key, fmt::format("must be true or false, got {}", v->dump()));
  return std::optional<bool>(v->get<bool>());
}

CniExpected<std::optional<bool>> ConfigKeys::onOff(std::string_view key) const {
  auto s = string(key);
  if (!s) return std::unexpected(s.error());
  if (!*s) return std::optional<bool>();
  std::string v = asciiLower(**s);
  if (v == "on") return std::optional<bool>(true);
  if (v == "off") return std::optional<bool>(false);
  return invalid(key, fmt::format("\"{}\" must be \"on\" or \"off\"", **s));
}

CniExpected<std::optional<netlink::MacAddress>> requestedMac(const ConfigKeys& keys,
                                                             const NetConf& conf,
                                                             const Environment& env) {
  auto mac = keys.string("mac");
  if (!mac) return std::unexpected(mac.error());
  std::optional<std::pair<std::string, std::string>> source;
  if (*mac) source = {"mac", **mac};
  if (auto a = env.arg("MAC")) source = {"CNI_ARGS MAC", *a};
  if (const Json* cniArgs = ConfigKeys("", conf.args).find("cni"); cniArgs != nullptr) {
    if (const Json* m = ConfigKeys("", *cniArgs).find("mac")) {
      if (!m->is_string()) return keys.invalid("args.cni.mac", "must be a string");
      source = {"args.cni.mac", m->get<std::string>()};
    }
  }
  if (const Json* m = ConfigKeys("", conf.runtimeConfig).find("mac")) {
    if (!m->is_string()) return keys.invalid("runtimeConfig.mac", "must be a string");
    source = {"runtimeConfig.mac", m->get<std::string>()};
  }
  if (!source) return std::optional<netlink::MacAddress>();
  auto parsed = netlink::MacAddress::parse(source->second);
  if (!parsed) return keys.invalid(source->first, parsed.error().message());
  if (parsed->bytes[0] & 1)
    return keys.invalid(source->first, fmt::format("{} is a multicast address", source->second));
  if (parsed->isZero()) return keys.invalid(source->first, "the all-zero MAC cannot be assigned");
  return std::optional<netlink::MacAddress>(*parsed);
}

}  // namespace vfplane::cni
