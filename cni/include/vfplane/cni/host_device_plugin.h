// vfplane-host-device: hands a whole host device to a pod, with the reference host-device plugin's
// config unchanged.
//
// The device is selected by "device" (name), "hwaddr", "kernelpath" (/sys/devices/...),
// "pciBusID" or runtimeConfig.deviceID. A PCI device bound to a user-space driver (vfio-pci, uio)
// is not moved: only IPAM runs and the result names it by pciID. A netdev moves into the pod and
// is renamed to CNI_IFNAME in one netlink request that also brings it up and writes its original
// name into the interface alias; the original name, MAC and MTU are also written to a state file
// before the move. Any failure after the move brings the device home and releases IPAM.
//
// A netdev that carries the host namespace's IPv4 or IPv6 default route is refused (code 7
// naming it) unless the config sets "allowDefaultRouteDevice": true: moving it would cut the
// node off the network, as the reference plugin does on a VM with one NIC.
//
// DEL releases IPAM first, also when the netns is gone (the reference plugin leaks the address
// then), then brings the device home under its original name (from the state file, else the
// alias) in one request, clearing the alias; a name taken meanwhile gives fallbackName(). Altnames
// that clash in the pod are dropped on the way in and given back at home, as vfplane-sriov does
// (both use netdev_move.h). A missing device or netns is success.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "vfplane/cni/device_resource.h"
#include "vfplane/cni/plugin.h"
#include "vfplane/netlink/rtnl.h"
#include "vfplane/sriov/pci_address.h"
#include "vfplane/sriov/sysfs.h"

namespace vfplane::cni {

struct HostDeviceConfig {
  // Exactly one way of naming the device is used, in this order of precedence:
  // runtimeConfig.deviceID, pciBusID, device, hwaddr, kernelpath, resourceName.
  std::optional<sriov::PciAddress> pci;
  std::string pciKey;  // which key gave `pci`, for messages
  std::string device;
  std::optional<netlink::MacAddress> hwaddr;
  std::string kernelPath;
  // "allowDefaultRouteDevice": move the device even when the host's IPv4 or IPv6 default route
  // leaves by it. Off by default: that device is how the node reaches the network.
  bool allowDefaultRouteDevice = false;
  // "resourceName" (and "kubeletRootDir"), used when nothing else names the device: the pod's
  // next device of that resource, by the kubelet's allocation, that no attachment of this plugin
  // holds.
  std::optional<DeviceResource> resource;
};

// Code 7 naming the key: none of the selectors given, a malformed PCI address or MAC, a kernelpath
// that is not absolute under /sys/devices/ or that tries to climb out of it.
CniExpected<HostDeviceConfig> parseHostDeviceConfig(const NetConf& conf);

struct HostDevicePluginOptions {
  std::filesystem::path sysfsRoot = "/";
  std::filesystem::path stateDir = "/var/lib/cni/vfplane";
  netlink::ClientFactory clients = netlink::kernelClients();
  // How long an ADD by resourceName waits for another one's choice (then code 11).
  std::chrono::milliseconds choiceLockTimeout{10000};
};

class HostDevicePlugin final : public Plugin {
 public:
  explicit HostDevicePlugin(HostDevicePluginOptions options);

  CniExpected<NetResult> add(Request& req) override;
  CniExpected<void> del(Request& req) override;
  CniExpected<void> check(Request& req) override;
  CniExpected<void> gc(Request& req) override;
  CniExpected<void> status(Request& req) override;

 private:
  struct Selected;
  CniExpected<Selected> select(const HostDeviceConfig& cfg, netlink::Client& host) const;
  // The pod's next device of the resource that no live attachment of this plugin holds.
  CniExpected<sriov::PciAddress> fromResource(const DeviceResource& resource,
                                              const Environment& env) const;
  std::filesystem::path statePath(const std::string& containerId, const std::string& ifname) const;

  HostDevicePluginOptions options_;
  sriov::Sysfs sysfs_;
};

}  // namespace vfplane::cni
