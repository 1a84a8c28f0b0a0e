#include "vfplane/sriov/inventory_format.h"

#include <fmt/format.h>

namespace vfplane::sriov {
namespace {

using Json = nlohmann::ordered_json;

template <class T>
Json orNull(const std::optional<T>& v) {
  return v ? Json(*v) : Json(nullptr);
}

Json netdevOrNull(const PciFunction& fn) {
  const NetInterface* netif = fn.primaryNetdev();
  return netif ? Json(netif->name) : Json(nullptr);
}

// The keys shared by PFs and NICs, in the documented order.
Json deviceJson(const PciFunction& fn) {
  Json j;
  j["pci"] = fn.address.str();
  j["netdev"] = netdevOrNull(fn);
  j["driver"] = orNull(fn.driver);
  j["vendor"] = orNull(fn.vendor);
  j["device"] = orNull(fn.device);
  j["numa_node"] = orNull(fn.numaNode);
  j["link_type"] = orNull(fn.linkType());
  return j;
}

Json vfJson(const VirtualFunction& vf) {
  Json j;
  j["index"] = vf.index;
  j["pci"] = vf.address.str();
  j["netdev"] = netdevOrNull(vf);
  j["driver"] = orNull(vf.driver);
  j["vendor"] = orNull(vf.vendor);
  j["device"] = orNull(vf.device);
  j["mode"] = vfModeName(vf.mode);
  j["iommu_group"] = orNull(vf.iommuGroup);
  j["numa_node"] = orNull(vf.numaNode);
  return j;
}

template <class T>
std::string orDash(const std::optional<T>& v) {
  return v ? fmt::format("{}", *v) : std::string("-");
}

std::string netdevOrDash(const PciFunction& fn) {
  const NetInterface* netif = fn.primaryNetdev();
  return netif ? netif->name : "-";
}

}  // namespace

nlohmann::ordered_json inventoryToJson(const NodeInventory& inventory) {
  auto pfList = [](const std::vector<PhysicalFunction>& list) {
    Json pfs = Json::array();
    for (const auto& pf : list) {
      Json j = deviceJson(pf);
      j["sriov_totalvfs"] = orNull(pf.totalVfs);
      j["sriov_numvfs"] = orNull(pf.numVfs);
      Json vfs = Json::array();
      for (const auto& vf : pf.vfs) vfs.push_back(vfJson(vf));
      j["vfs"] = std::move(vfs);
      pfs.push_back(std::move(j));
    }
    return pfs;
  };
  auto plainList = [](const std::vector<PciFunction>& list) {
    Json out = Json::array();
    for (const auto& fn : list) out.push_back(deviceJson(fn));
    return out;
  };
  Json out;
  out["pfs"] = pfList(inventory.pfs);
  out["nics"] = plainList(inventory.nics);
  // Added after pfs and nics, so that readers of the older output see the same keys first.
  out["accelerator_pfs"] = pfList(inventory.accelPfs);
  out["accelerators"] = plainList(inventory.accelerators);
  return out;
}

namespace {

void pfTable(const std::vector<PhysicalFunction>& list, std::string& out) {
  for (const auto& pf : list) {
    std::string iommu = pf.iommuGroup ? fmt::format("{}", *pf.iommuGroup) : "-";
    out += fmt::format("PF {}  netdev {}  driver {}  id {}:{}  numa {}  link {}  VFs {}/{}\n",
                       pf.address.str(), netdevOrDash(pf), orDash(pf.driver), orDash(pf.vendor),
                       orDash(pf.device), orDash(pf.numaNode), orDash(pf.linkType()),
                       orDash(pf.numVfs), orDash(pf.totalVfs));
    if (pf.vfs.empty()) continue;
    out += fmt::format("  {:>5}  {:<12}  {:<15}  {:<15}  {:<7}  {:>5}  {:>4}\n", "VF", "PCI",
                       "NETDEV", "DRIVER", "MODE", "IOMMU", "NUMA");
    for (const auto& vf : pf.vfs) {
      std::string group = vf.iommuGroup ? fmt::format("{}", *vf.iommuGroup) : "-";
      if (vf.noIommu) group += "*";
      out += fmt::format("  {:>5}  {:<12}  {:<15}  {:<15}  {:<7}  {:>5}  {:>4}\n", vf.index,
                         vf.address.str(), netdevOrDash(vf), orDash(vf.driver), vfModeName(vf.mode),
                         group, orDash(vf.numaNode));
    }
  }
}

}  // namespace

std::string inventoryToTable(const NodeInventory& inventory) {
  std::string out;
  if (inventory.pfs.empty()) out += "No SR-IOV physical functions found.\n";
  pfTable(inventory.pfs, out);
  if (!inventory.nics.empty()) {
    out += fmt::format("\nOther NICs:\n  {:<12}  {:<15}  {:<15}  {:>4}  {}\n", "PCI", "NETDEV",
                       "DRIVER", "NUMA", "LINK");
    for (const auto& nic : inventory.nics) {
      out +=
          fmt::format("  {:<12}  {:<15}  {:<15}  {:>4}  {}\n", nic.address.str(), netdevOrDash(nic),
                      orDash(nic.driver), orDash(nic.numaNode), orDash(nic.linkType()));
    }
  }
  if (!inventory.accelPfs.empty() || !inventory.accelerators.empty()) {
    out += "\nAccelerators:\n";
    pfTable(inventory.accelPfs, out);
    for (const auto& fn : inventory.accelerators) {
      out +=
          fmt::format("  {}  driver {}  id {}:{}  numa {}\n", fn.address.str(), orDash(fn.driver),
                      orDash(fn.vendor), orDash(fn.device), orDash(fn.numaNode));
    }
  }
  bool anyNoIommu = false;
  for (const auto* list : {&inventory.pfs, &inventory.accelPfs}) {
    for (const auto& pf : *list) {
      for (const auto& vf : pf.vfs) anyNoIommu |= vf.noIommu;
    }
  }
  if (anyNoIommu) out += "\n* vfio-noiommu group: no IOMMU isolation\n";
  return out;
}

}  // namespace vfplane::sriov
