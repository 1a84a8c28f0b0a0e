// What the device plugin answers the kubelet, computed without any I/O: the preferred allocation
// for a request, and the envs, device specs and device-info files for an Allocate.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/dp/pool.h"

namespace vfplane::dp {

struct PreferredRequest {
  std::vector<std::string> available;
  std::vector<std::string> mustInclude;
  int size = 0;
};

// The devices to propose, must-include ones first. Policy comes from the pool's config:
// - the NUMA node of the must-include devices is preferred; without them, the node that can hold
//   the whole request alone (the fullest such node for packed);
// - packed fills the PF that best fits the remainder before opening another, so whole PFs stay
//   free for large requests; spread takes one device per PF in turn.
// IDs not in the pool are ignored; fewer devices than asked are returned if fewer are available.
std::vector<std::string> preferredAllocation(const ResourcePool& pool, const PreferredRequest& req);

struct DeviceSpecEntry {
  std::string containerPath;
  std::string hostPath;
  std::string permissions;
  auto operator<=>(const DeviceSpecEntry&) const = default;
};

struct DeviceInfoFile {
  std::string path;     // <devinfo-dir>/<prefix>-<name>-<id>-device.json
  std::string content;  // device-info spec 1.1.0 JSON
};

struct ContainerAllocation {
  std::map<std::string, std::string> envs;
  std::vector<DeviceSpecEntry> devices;            // de-duplicated, stable order; empty with CDI
  std::map<std::string, std::string> annotations;  // with CDI: the devices, for the runtime
  std::vector<DeviceInfoFile> deviceInfoFiles;
};

// The device-info files of a resource ("intel.com/sriov_net_a"), or with `prefixOnly` of every
// resource under its prefix ("intel.com"), that the plugin wrote in `dir`: removed when the
// resource stops being served (SIGTERM, a reload that drops it) and at start, so no file describes
// a VF that another pod may get next. Returns how many went; a file that cannot be removed is
// logged and skipped.
size_t removeDeviceInfoFiles(const std::string& dir, std::string_view resourceName,
                             bool prefixOnly = false);

// "PCIDEVICE_" + the resource name upper-cased, with '.', '/' and '-' as '_'.
std::string resourceEnvName(std::string_view resourceName);

// The device nodes one device needs in a container: vfio (container and noiommu paths), its RDMA
// character devices and rdma_cm when the pool is isRdma, vhost-net and tun when needVhostNet.
std::vector<DeviceSpecEntry> deviceNodesFor(const ResourcePool& pool, const PoolDevice& device);

// ---- CDI (--use-cdi) --------------------------------------------------------------------------
// With CDI the device nodes are not in the Allocate answer: they are in a CDI spec file the
// runtime reads, and the answer names the devices in an annotation. Each resource has its own
// spec file and its own annotation key, so several pools under one prefix neither overwrite each
// other's file nor each other's annotation (sriov-network-device-plugin wrote one file per prefix,
// and the last pool won: its #576/#731).

// "<prefix>/net-pci", as upstream names the kind; one kind may span several spec files.
std::string cdiKind(const ResourcePool& pool);
// "vfplane-<prefix>_<name>.json"
std::string cdiSpecFileName(const ResourcePool& pool);
// "cdi.k8s.io/vfplane_<prefix>_<name>" (the key's name part kept to what annotations allow).
std::string cdiAnnotationKey(const ResourcePool& pool);
// The spec (cdiVersion 0.5.0) with every device of the pool. A device without device nodes (a
// netdev VF) gets an env edit naming it, because CDI refuses a device with no edits.
nlohmann::json cdiSpec(const ResourcePool& pool);

// Builds one container's answer. Fails naming every ID that is unknown to the pool or that
// isHealthy rejects, so the kubelet's event says exactly what went wrong.
template <class HealthFn>
Result<ContainerAllocation> allocateDevices(const ResourcePool& pool,
                                            const std::vector<std::string>& ids, HealthFn isHealthy,
                                            const std::string& devinfoDir, bool cdi = false);

// The non-template part of allocateDevices, after the IDs were checked.
ContainerAllocation buildAllocation(const ResourcePool& pool,
                                    const std::vector<const PoolDevice*>& devices,
                                    const std::string& devinfoDir, bool cdi = false);

template <class HealthFn>
Result<ContainerAllocation> allocateDevices(const ResourcePool& pool,
                                            const std::vector<std::string>& ids, HealthFn isHealthy,
                                            const std::string& devinfoDir, bool cdi) {
  std::vector<const PoolDevice*> devices;
  std::string unknown, unhealthy;
  for (const auto& id : ids) {
    const PoolDevice* d = pool.find(id);
    if (d == nullptr) {
      unknown += (unknown.empty() ? "" : ", ") + id;
    } else if (!isHealthy(*d)) {
      unhealthy += (unhealthy.empty() ? "" : ", ") + id;
    } else {
      devices.push_back(d);
    }
  }
  if (!unknown.empty() || !unhealthy.empty()) {
    std::string msg = "allocate " + pool.name + ":";
    if (!unknown.empty()) msg += " unknown device IDs: " + unknown + ";";
    if (!unhealthy.empty()) msg += " unhealthy devices: " + unhealthy + ";";
    msg.pop_back();
    return fail(Error(msg, EINVAL));
  }
  return buildAllocation(pool, devices, devinfoDir, cdi);
}

}  // namespace vfplane::dp
