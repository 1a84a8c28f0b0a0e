// Renderings of a NodeInventory for people (a table) and programs (JSON).
//
// The JSON keys are a stable interface: pfs[]/nics[] with pci, netdev, driver, vendor, device,
// numa_node, link_type; PFs add sriov_totalvfs, sriov_numvfs and vfs[]; VFs carry index, pci,
// netdev, driver, vendor, device, mode, iommu_group and numa_node. Absent values are null.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "vfplane/sriov/inventory.h"

namespace vfplane::sriov {

nlohmann::ordered_json inventoryToJson(const NodeInventory& inventory);
std::string inventoryToTable(const NodeInventory& inventory);

}  // namespace vfplane::sriov
