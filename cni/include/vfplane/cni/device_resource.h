// A network's "resourceName": the device-plugin resource whose devices the pod's interfaces come
// from, as the NetworkAttachmentDefinition's k8s.v1.cni.cncf.io/resourceName names it. Where no
// deviceID arrives (no Multus, or a chain that broke), vfplane-sriov and vfplane-host-device ask
// the kubelet which devices of that resource the pod was given (pod_resources.h) and attach the
// first one no other attachment holds.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "vfplane/cni/config_keys.h"
#include "vfplane/cni/pod_resources.h"
#include "vfplane/sriov/pci_address.h"

namespace vfplane::cni {

struct DeviceResource {
  std::string name;  // "intel.com/sriov_net_a"
  KubeletPaths kubelet;
};

// "resourceName" (<prefix>/<name>, as Kubernetes spells an extended resource) and
// "kubeletRootDir" (an absolute path; default /var/lib/kubelet). nullopt without resourceName.
CniExpected<std::optional<DeviceResource>> parseDeviceResource(const ConfigKeys& keys);

// The PCI addresses of the resource's devices the kubelet gave the pod named in CNI_ARGS, in the
// kubelet's order, and where that came from. A device ID that is not a PCI address is code 7
// (the resource is not a pool of PCI devices).
struct ResourceDevices {
  PodRef pod;
  std::vector<sriov::PciAddress> devices;
  std::string source;
};
CniExpected<ResourceDevices> resourceDevices(const DeviceResource& resource,
                                             const Environment& env);

// The error when every one of them is attached already: names the pod, the resource, and who
// holds each device.
std::unexpected<CniError> allDevicesTaken(const ResourceDevices& found,
                                          const std::vector<std::string>& holders,
                                          const std::string& resource);

}  // namespace vfplane::cni
