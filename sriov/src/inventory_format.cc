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
  Json pfs = Json::array();
  for (const auto& pf : inventory.pfs) {
    Json j = deviceJson(pf);
    j["sriov_totalvfs"] = orNull(pf.totalVfs);
    j["sriov_numvfs"] = orNull(pf.numVfs);
    Json vfs = Json::array();
    for (const auto& vf : pf.vfs) vfs.push_back(vfJson(vf));
    j["vfs"] = std::move(vfs);
    pfs.push_back(std::move(j));
  }
  Json nics = Json::array();
  for (const auto& nic : inventory.nics) nics.push_back(deviceJson(nic));
  Json out;
  out["pfs"] = std::move(pfs);
  out["nics"] = std::move(nics);
  return out;
}

std::string inventoryToTable(const NodeInventory& inventory) {
  std::string out;
  if (inventory.pfs.empty()) out += "No SR-IOV physical functions found.\n";
  for (const auto& pf : inventory.pfs) {
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
                         vf.address.str(), netdevOrDash(vf), orDash(vf.driver),
                         vfModeName(vf.mode), group, orDash(vf.numaNode));
    }
  }
  if (!inventory.nics.empty()) {
    out += fmt::format("\nOther NICs:\n  {:<12}  {:<15}  {:<15}  {:>4}  {}\n", "PCI", "NETDEV",
                       "DRIVER", "NUMA", "LINK");
    for (const auto& nic : inventory.nics) {
      out += fmt::format("  {:<12}  {:<15}  {:<15}  {:>4}  {}\n", nic.address.str(),
                         netdevOrDash(nic), orDash(nic.driver), orDash(nic.numaNode),
                         orDash(nic.linkType()));
    }
  }
  bool anyNoIommu = false;
  for (const auto& pf : inventory.pfs) {
    for (const auto& vf : pf.vfs) anyNoIommu |= vf.noIommu;
  }
  if (anyNoIommu) out += "\n* vfio-noiommu group: no IOMMU isolation\n";
  return out;
}

}  // namespace vfplane::sriov
