#include "vfplane/dp/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>

#include "vfplane/base/files.h"
#include "vfplane/base/json_keys.h"

namespace vfplane::dp {
namespace {

using Json = nlohmann::json;

std::string lower(std::string_view s) { return asciiLower(s); }

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// A JSON object read the way Go's encoding/json reads it: an exact key match wins, otherwise the
// first key equal ignoring case. Keys never asked for are reported as unknown.
class Fields {
 public:
  Fields(const Json& object, std::string path) : object_(object), path_(std::move(path)) {}

  const Json* get(std::string_view key) {
    known_.emplace_back(key);
    std::string matched;
    const Json* value = findGoKey(object_, key, &matched);
    if (value != nullptr) used_.push_back(std::move(matched));
    return value;
  }

  void reportUnknown(std::vector<std::string>& warnings) const {
    for (auto it = object_.begin(); it != object_.end(); ++it) {
      if (std::find(used_.begin(), used_.end(), it.key()) != used_.end()) continue;
      std::string hint;
      size_t best = 3;
      for (const auto& k : known_) {
        size_t d = editDistance(lower(it.key()), lower(k));
        if (d < best) {
          best = d;
          hint = fmt::format(" (did you mean \"{}\"?)", k);
        }
      }
      warnings.push_back(fmt::format("{}: unknown key \"{}\" ignored{}", path_, it.key(), hint));
    }
  }

  const std::string& path() const { return path_; }

 private:
  const Json& object_;
  std::string path_;
  std::vector<std::string> known_;
  std::vector<std::string> used_;
};

struct ParseError {
  std::string message;
};

[[noreturn]] void bad(const std::string& path, std::string_view what) {
  throw ParseError{fmt::format("{}: {}", path, what)};
}

std::vector<std::string> stringList(const Json& v, const std::string& path) {
  if (!v.is_array()) bad(path, "expected a list of strings");
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string()) bad(fmt::format("{}[{}]", path, i), "expected a string");
    out.push_back(v[i].get<std::string>());
  }
  return out;
}

bool boolean(const Json& v, const std::string& path) {
  if (!v.is_boolean()) bad(path, "expected true or false");
  return v.get<bool>();
}

std::vector<std::string> hexIds(const Json& v, const std::string& path) {
  std::vector<std::string> ids;
  auto list = stringList(v, path);
  for (size_t i = 0; i < list.size(); ++i) {
    std::string id = lower(list[i]);
    if (id.starts_with("0x")) id.erase(0, 2);
    bool hex = id.size() == 4 && std::all_of(id.begin(), id.end(), [](char c) {
                 return std::isxdigit(static_cast<unsigned char>(c));
               });
    if (!hex)
      bad(fmt::format("{}[{}]", path, i), fmt::format("\"{}\" is not a 4-digit hex ID", list[i]));
    ids.push_back(id);
  }
  return ids;
}

bool validIfName(std::string_view name) {
  if (name.empty() || name.size() > 15) return false;
  return std::none_of(name.begin(), name.end(), [](char c) {
    return c == '/' || c == ':' || c == '#' || std::isspace(static_cast<unsigned char>(c));
  });
}

std::vector<PfRef> pfRefs(const Json& v, const std::string& path, bool byPci) {
  std::vector<PfRef> refs;
  auto list = stringList(v, path);
  for (size_t i = 0; i < list.size(); ++i) {
    std::string item = fmt::format("{}[{}]", path, i);
    std::string_view text = list[i];
    PfRef ref;
    size_t hash = text.find('#');
    ref.pf = std::string(text.substr(0, hash));
    if (byPci) {
      auto addr = sriov::PciAddress::parse(ref.pf);
      if (!addr) bad(item, addr.error().message());
      ref.pf = addr->str();
    } else if (!validIfName(ref.pf)) {
      bad(item, fmt::format("\"{}\" is not an interface name", ref.pf));
    }
    if (hash != std::string_view::npos) {
      auto ranges = parseVfRanges(text.substr(hash + 1));
      if (!ranges) bad(item, fmt::format("\"{}\": {}", text, ranges.error().message()));
      ref.vfRanges = std::move(*ranges);
    }
    refs.push_back(std::move(ref));
  }
  return refs;
}

// Upstream reads an accelerator pool's selectors as vendors, devices, drivers and pciAddresses
// only, and silently ignores the rest. vfplane ignores them too, so that a config selects the same
// devices as upstream, but says so.
void keepAcceleratorSelectors(SelectorSet& s, const std::string& path,
                              std::vector<std::string>& warnings) {
  std::vector<std::string> dropped;
  auto drop = [&](bool set, const char* key) {
    if (set) dropped.emplace_back(key);
  };
  drop(!s.pfNames.empty(), "pfNames");
  drop(!s.rootDevices.empty(), "rootDevices");
  drop(!s.linkTypes.empty(), "linkTypes");
  drop(!s.acpiIndexes.empty(), "acpiIndexes");
  drop(s.isRdma, "isRdma");
  drop(s.needVhostNet, "needVhostNet");
  for (const auto& key : s.unsupported) dropped.push_back(key);
  for (const auto& key : dropped) {
    warnings.push_back(
        fmt::format("{}.{}: not a selector of accelerator pools; ignored, as upstream "
                    "does (they select by vendors, devices, drivers and pciAddresses)",
                    path, key));
  }
  SelectorSet kept;
  kept.vendors = std::move(s.vendors);
  kept.devices = std::move(s.devices);
  kept.drivers = std::move(s.drivers);
  kept.pciAddresses = std::move(s.pciAddresses);
  s = std::move(kept);
}

SelectorSet parseSelectors(const Json& v, const std::string& path, DeviceType type,
                           std::vector<std::string>& warnings) {
  if (!v.is_object()) bad(path, "expected an object of selectors");
  Fields f(v, path);
  SelectorSet s;
  auto field = [&](std::string_view key) { return fmt::format("{}.{}", path, key); };
  if (auto* x = f.get("vendors")) s.vendors = hexIds(*x, field("vendors"));
  if (auto* x = f.get("devices")) s.devices = hexIds(*x, field("devices"));
  if (auto* x = f.get("drivers")) s.drivers = stringList(*x, field("drivers"));
  if (auto* x = f.get("pciAddresses")) {
    auto list = stringList(*x, field("pciAddresses"));
    for (size_t i = 0; i < list.size(); ++i) {
      auto addr = sriov::PciAddress::parse(list[i]);
      if (!addr) bad(fmt::format("{}[{}]", field("pciAddresses"), i), addr.error().message());
      s.pciAddresses.push_back(*addr);
    }
  }
  if (auto* x = f.get("pfNames")) s.pfNames = pfRefs(*x, field("pfNames"), false);
  if (auto* x = f.get("rootDevices")) s.rootDevices = pfRefs(*x, field("rootDevices"), true);
  if (auto* x = f.get("linkTypes")) {
    for (auto& t : stringList(*x, field("linkTypes"))) s.linkTypes.push_back(lower(t));
  }
  if (auto* x = f.get("acpiIndexes")) {
    auto list = stringList(*x, field("acpiIndexes"));
    for (size_t i = 0; i < list.size(); ++i) {
      int n;
      auto [end, ec] = std::from_chars(list[i].data(), list[i].data() + list[i].size(), n);
      if (list[i].empty() || ec != std::errc() || end != list[i].data() + list[i].size() || n < 0) {
        bad(fmt::format("{}[{}]", field("acpiIndexes"), i),
            fmt::format("\"{}\" is not a number", list[i]));
      }
      s.acpiIndexes.push_back(list[i]);
    }
  }
  if (auto* x = f.get("isRdma")) s.isRdma = boolean(*x, field("isRdma"));
  if (auto* x = f.get("needVhostNet")) s.needVhostNet = boolean(*x, field("needVhostNet"));
  for (const char* key : {"ddpProfiles", "vdpaType", "pKeys", "auxTypes"}) {
    if (f.get(key) != nullptr) {
      s.unsupported.emplace_back(key);
      if (type != DeviceType::kAccelerator) {
        warnings.push_back(
            fmt::format("{}: selector \"{}\" is not supported by vfplane; this selector "
                        "object will match no device",
                        path, key));
      }
    }
  }
  f.reportUnknown(warnings);
  if (type == DeviceType::kAccelerator) keepAcceleratorSelectors(s, path, warnings);
  return s;
}

// A Kubernetes qualified-name part: at most 63 characters of [A-Za-z0-9_.-], starting and ending
// alphanumeric. Upstream is stricter ([A-Za-z0-9_]+), so every config it accepts passes here too.
std::optional<std::string> resourceNameProblem(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > 63) return "is longer than 63 characters";
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return fmt::format("contains '{}'; use letters, digits, '_', '.' and '-'", c);
    }
  }
  if (!std::isalnum(static_cast<unsigned char>(name.front())) ||
      !std::isalnum(static_cast<unsigned char>(name.back()))) {
    return "must start and end with a letter or digit";
  }
  return std::nullopt;
}

std::optional<std::string> prefixProblem(std::string_view prefix) {
  if (prefix.empty()) return "must not be empty";
  if (prefix.size() > 253) return "is longer than 253 characters";
  for (char c : prefix) {
    if (!std::islower(static_cast<unsigned char>(c)) &&
        !std::isdigit(static_cast<unsigned char>(c)) && c != '.' && c != '-') {
      return fmt::format(
          "contains '{}'; a DNS subdomain has lower-case letters, digits, '.' and '-'", c);
    }
  }
  return std::nullopt;
}

ResourceConfig parseResource(const Json& v, const std::string& path,
                             std::vector<std::string>& warnings) {
  if (!v.is_object()) bad(path, "expected an object");
  Fields f(v, path);
  ResourceConfig rc;
  const Json* name = f.get("resourceName");
  if (name == nullptr) bad(path, "resourceName: missing");
  if (!name->is_string()) bad(path + ".resourceName", "expected a string");
  rc.resourceName = name->get<std::string>();
  // From here on the entry is named in messages, which is what an operator searches for.
  std::string where = fmt::format("{} ({})", path, rc.resourceName);
  if (auto problem = resourceNameProblem(rc.resourceName)) {
    bad(where, fmt::format("resourceName \"{}\" {}", rc.resourceName, *problem));
  }
  if (auto* x = f.get("resourcePrefix")) {
    if (!x->is_string()) bad(where + ": resourcePrefix", "expected a string");
    rc.resourcePrefix = x->get<std::string>();
    if (auto problem = prefixProblem(*rc.resourcePrefix)) {
      bad(where, fmt::format("resourcePrefix \"{}\" {}", *rc.resourcePrefix, *problem));
    }
  }
  if (auto* x = f.get("deviceType")) {
    std::string t = x->is_string() ? x->get<std::string>() : "";
    if (t == "netDevice") {
      rc.deviceType = DeviceType::kNetDevice;
    } else if (t == "accelerator") {
      rc.deviceType = DeviceType::kAccelerator;
    } else if (t == "auxNetDevice") {
      rc.deviceType = DeviceType::kAuxNetDevice;
    } else {
      bad(where,
          fmt::format("deviceType {}: must be \"netDevice\", \"accelerator\" or \"auxNetDevice\"",
                      x->dump()));
    }
  }
  if (auto* x = f.get("excludeTopology"))
    rc.excludeTopology = boolean(*x, where + ": excludeTopology");
  if (auto* x = f.get("allocationPolicy")) {
    std::string p = x->is_string() ? x->get<std::string>() : "";
    if (p == "packed") {
      rc.allocationPolicy = AllocationPolicy::kPacked;
    } else if (p == "spread") {
      rc.allocationPolicy = AllocationPolicy::kSpread;
    } else {
      bad(where, fmt::format("allocationPolicy {}: must be \"packed\" or \"spread\"", x->dump()));
    }
  }
  if (auto* x = f.get("additionalInfo")) {
    if (!x->is_object())
      bad(where + ": additionalInfo", "expected an object keyed by device ID or \"*\"");
    for (auto it = x->begin(); it != x->end(); ++it) {
      std::string at = fmt::format("{}: additionalInfo.{}", where, it.key());
      if (!it->is_object()) bad(at, "expected an object of string values");
      auto& out = rc.additionalInfo[it.key()];
      for (auto kv = it->begin(); kv != it->end(); ++kv) {
        if (!kv->is_string()) bad(at + "." + kv.key(), "expected a string");
        out[kv.key()] = kv->get<std::string>();
      }
    }
  }
  const Json* selectors = f.get("selectors");
  if (selectors == nullptr) {
    bad(where, "selectors: missing; a pool needs at least one selector object");
  }
  if (selectors->is_array()) {
    for (size_t i = 0; i < selectors->size(); ++i) {
      rc.selectors.push_back(parseSelectors(
          (*selectors)[i], fmt::format("{}: selectors[{}]", where, i), rc.deviceType, warnings));
    }
  } else {
    rc.selectors.push_back(
        parseSelectors(*selectors, where + ": selectors", rc.deviceType, warnings));
  }
  f.reportUnknown(warnings);
  return rc;
}

}  // namespace

const char* deviceTypeName(DeviceType type) {
  switch (type) {
    case DeviceType::kNetDevice:
      return "netDevice";
    case DeviceType::kAccelerator:
      return "accelerator";
    case DeviceType::kAuxNetDevice:
      return "auxNetDevice";
  }
  return "unknown";
}

const char* allocationPolicyName(AllocationPolicy policy) {
  return policy == AllocationPolicy::kSpread ? "spread" : "packed";
}

bool PfRef::containsVf(int index) const {
  if (vfRanges.empty()) return true;
  return std::any_of(vfRanges.begin(), vfRanges.end(),
                     [&](const auto& r) { return index >= r.first && index <= r.second; });
}

std::string ResourceConfig::fullName(std::string_view defaultPrefix) const {
  return fmt::format("{}/{}", resourcePrefix ? *resourcePrefix : std::string(defaultPrefix),
                     resourceName);
}

Result<std::vector<std::pair<int, int>>> parseVfRanges(std::string_view text) {
  std::vector<std::pair<int, int>> ranges;
  if (text.empty()) return fail("empty VF range after '#'");
  auto number = [](std::string_view s) -> std::optional<int> {
    int n;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || n < 0) return std::nullopt;
    return n;
  };
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view part = text.substr(start, comma == text.npos ? text.npos : comma - start);
    size_t dash = part.find('-');
    auto lo = number(part.substr(0, dash));
    auto hi = dash == part.npos ? lo : number(part.substr(dash + 1));
    if (!lo || !hi) return fail(fmt::format("VF range \"{}\" is not N or N-M", part));
    if (*hi < *lo) return fail(fmt::format("VF range \"{}\" ends before it starts", part));
    ranges.emplace_back(*lo, *hi);
    if (comma == text.npos) break;
    start = comma + 1;
  }
  return ranges;
}

Result<DevicePluginConfig> parseConfig(std::string_view text, std::string_view source,
                                       std::string_view defaultPrefix) {
  DevicePluginConfig config;
  Json root;
  try {
    root = Json::parse(text);
  } catch (const Json::parse_error& e) {
    // nlohmann's message starts with "[json.exception.parse_error.101] "; keep what follows.
    std::string what = e.what();
    if (auto at = what.find("] "); at != what.npos) what.erase(0, at + 2);
    return usageError(fmt::format("{}: not valid JSON: {}", source, what));
  }
  try {
    if (!root.is_object()) bad(std::string(source), "expected a JSON object with \"resourceList\"");
    Fields top(root, std::string(source));
    const Json* list = top.get("resourceList");
    if (list == nullptr) bad(std::string(source), "resourceList: missing");
    if (!list->is_array()) bad(std::string(source) + ": resourceList", "expected a list");
    std::map<std::string, std::string> seen;
    for (size_t i = 0; i < list->size(); ++i) {
      std::string path = fmt::format("{}: resourceList[{}]", source, i);
      ResourceConfig rc = parseResource((*list)[i], path, config.warnings);
      std::string full = rc.fullName(defaultPrefix);
      if (auto it = seen.find(full); it != seen.end()) {
        bad(fmt::format("{} ({})", path, rc.resourceName),
            fmt::format("resource {} is already defined by {}", full, it->second));
      }
      seen[full] = fmt::format("resourceList[{}]", i);
      config.resources.push_back(std::move(rc));
    }
    if (config.resources.empty()) {
      config.warnings.push_back(
          fmt::format("{}: resourceList is empty; no resource will be served", source));
    }
    top.reportUnknown(config.warnings);
  } catch (const ParseError& e) {
    return usageError(e.message);
  }
  return config;
}

Result<DevicePluginConfig> loadConfig(const std::string& path, std::string_view defaultPrefix) {
  auto text = readFile(path);
  if (!text) {
    // A config that is not there is a wrong --config; one that cannot be read is the node's
    // problem.
    Error e = std::move(text.error()).withContext("read config");
    if (e.sysErrno() == ENOENT || e.sysErrno() == ENOTDIR || e.sysErrno() == EISDIR) e.asUsage();
    return fail(std::move(e));
  }
  return parseConfig(*text, path, defaultPrefix);
}

}  // namespace vfplane::dp
