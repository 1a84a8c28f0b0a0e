// vfplane-sriov's network config: sriov-cni's keys, unchanged, plus "mtu", "resourceName" and
// "kubeletRootDir".
//
// Parsing is a pass with no side effects: every value is checked before anything touches the
// kernel, and an invalid one is code 7 with the key named.
#pragma once

#include <optional>
#include <string>

#include "vfplane/cni/device_resource.h"
#include "vfplane/cni/plugin.h"
#include "vfplane/netlink/rtnl.h"
#include "vfplane/sriov/pci_address.h"
#include "vfplane/sriov/vf_config.h"

namespace vfplane::cni {

struct SriovConfig {
  // From "deviceID" (what Multus sets from the device plugin's allocation), or
  // runtimeConfig.deviceID, which wins when both are given. Through the strict PciAddress parser.
  std::optional<sriov::PciAddress> deviceId;
  // "resourceName" (and "kubeletRootDir"): without a deviceID, the VF is the pod's next device of
  // this resource that no attachment holds, as the kubelet allocated them.
  std::optional<DeviceResource> resource;
  // The PF-side attributes, each set only when the config names it. "mac" lands here (the
  // admin MAC) and also on the netdev.
  sriov::VfSettings vf;
  // The netdev MAC: "mac", overridden by CNI_ARGS MAC=, args.cni.mac, then runtimeConfig.mac.
  std::optional<netlink::MacAddress> mac;
  std::optional<int> mtu;
};

// Reads the plugin's keys from conf.raw and the runtime's sections. Keys match case-insensitively
// (an exact match wins), as Go's JSON decoding in sriov-cni does; so do the enums' values
// ("802.1Q", "On").
CniExpected<SriovConfig> parseSriovConfig(const NetConf& conf, const Environment& env);

}  // namespace vfplane::cni
