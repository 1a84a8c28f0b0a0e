// Resource pools: which of the node's devices each configured resource offers.
//
// buildPools() applies the config's selectors to a NodeInventory. It is a pure function: the
// facts it needs from outside sysfs (which links carry the default route) come in as options.
// Every decision is explained: each device that joins a pool, is excluded, or is left to an
// earlier pool produces a log line, and a pool left empty says why.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "vfplane/dp/config.h"
#include "vfplane/sriov/inventory.h"

namespace vfplane::dp {

// One device as a pool offers it. Copied out of the inventory so a pool outlives a rescan.
struct PoolDevice {
  std::string id;  // the PCI address, as the kubelet and the CNI (deviceID) see it
  sriov::PciFunction function;
  std::optional<sriov::PciAddress> pf;  // nullopt for a plain NIC or a PF offered itself
  std::string pfNetdev;                 // the PF's netdev ("" if none); the device's own for a NIC
  int vfIndex = -1;                     // -1 unless a VF
  std::optional<int> numaNode() const { return function.numaNode; }
};

struct ResourcePool {
  ResourceConfig config;
  std::string name;                 // full resource name, "intel.com/sriov_net_a"
  std::vector<PoolDevice> devices;  // sorted by id
  bool needVhostNet = false;        // any selector set asked for it
  bool isRdma = false;
  std::string emptyReason;  // set when devices is empty

  const PoolDevice* find(std::string_view id) const;
};

struct PoolOptions {
  std::string defaultPrefix = "intel.com";
  // Upstream never offers the NIC that carries the node's default route; neither do we, unless
  // told to (--allow-default-route-devices).
  bool excludeDefaultRoute = true;
  std::set<std::string> defaultRouteLinks;  // netdev names holding a default route
};

struct PoolPlan {
  std::vector<ResourcePool> pools;  // in config order
  std::vector<std::string> log;     // one line per decision
};

PoolPlan buildPools(const DevicePluginConfig& config, const sriov::NodeInventory& inventory,
                    const PoolOptions& options);

}  // namespace vfplane::dp
