// The device plugin's config: sriov-network-device-plugin's config.json, accepted unchanged.
//
//   {"resourceList": [{"resourceName": "sriov_net_a", "resourcePrefix": "intel.com",
//                      "deviceType": "netDevice", "excludeTopology": false,
//                      "allocationPolicy": "packed",
//                      "additionalInfo": {"*": {"k": "v"}, "0000:3b:01.0": {"k": "v"}},
//                      "selectors": {"vendors": ["8086"], "pfNames": ["ens1f0#0-3,5"]}}]}
//
// Keys match case-insensitively, as Go's encoding/json does upstream. An unknown key is a warning.
// Everything else that is wrong is an error naming the file, the entry and the field. Parsing has
// no side effects.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/sriov/pci_address.h"

namespace vfplane::dp {

enum class DeviceType { kNetDevice, kAccelerator, kAuxNetDevice };
const char* deviceTypeName(DeviceType type);

// Which free devices GetPreferredAllocation proposes: `packed` fills one PF before the next,
// keeping whole PFs free for large requests; `spread` takes one per PF in turn.
enum class AllocationPolicy { kPacked, kSpread };
const char* allocationPolicyName(AllocationPolicy policy);

// "ens1f0", "ens1f0#0-3,5" or "0000:3b:00.0#2": a PF (by netdev name or PCI address), optionally
// limited to some of its VF indexes.
struct PfRef {
  std::string pf;
  std::vector<std::pair<int, int>> vfRanges;  // inclusive; empty means every VF
  bool containsVf(int index) const;
};

// One selector object. Fields within it are ANDed; a missing field does not filter.
struct SelectorSet {
  std::vector<std::string> vendors;  // lower-case hex
  std::vector<std::string> devices;
  std::vector<std::string> drivers;
  std::vector<sriov::PciAddress> pciAddresses;
  std::vector<PfRef> pfNames;
  std::vector<PfRef> rootDevices;  // PF PCI addresses
  std::vector<std::string> linkTypes;
  std::vector<std::string> acpiIndexes;
  bool isRdma = false;
  bool needVhostNet = false;
  // Upstream selectors vfplane cannot evaluate (ddpProfiles, vdpaType, pKeys, auxTypes). A set that
  // uses one matches nothing, rather than more than the operator asked for.
  std::vector<std::string> unsupported;
};

struct ResourceConfig {
  std::string resourceName;
  std::optional<std::string> resourcePrefix;  // overrides --resource-prefix
  DeviceType deviceType = DeviceType::kNetDevice;
  bool excludeTopology = false;
  AllocationPolicy allocationPolicy = AllocationPolicy::kPacked;
  std::vector<SelectorSet> selectors;  // ORed; empty selects nothing
  // Extra key/values for the _INFO env, per device ID, or "*" for every device.
  std::map<std::string, std::map<std::string, std::string>> additionalInfo;

  // "<prefix>/<name>", with this entry's prefix or the default.
  std::string fullName(std::string_view defaultPrefix) const;
};

struct DevicePluginConfig {
  std::vector<ResourceConfig> resources;
  std::vector<std::string> warnings;  // unknown keys and other things worth a log line
};

// source names the input in messages (usually the file path). defaultPrefix is used to detect
// duplicate full resource names. Every error is a usage error naming source, entry and field.
Result<DevicePluginConfig> parseConfig(std::string_view json, std::string_view source,
                                       std::string_view defaultPrefix);
// As parseConfig, from a file; a file that does not exist is a usage error too, one that cannot be
// read is not.
Result<DevicePluginConfig> loadConfig(const std::string& path, std::string_view defaultPrefix);

// "0-3,5" into ranges; errors say what is wrong with the text.
Result<std::vector<std::pair<int, int>>> parseVfRanges(std::string_view text);

}  // namespace vfplane::dp
