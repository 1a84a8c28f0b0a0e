#include "vfplane/sriov/inventory.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <unordered_map>
#include <unordered_set>

namespace vfplane::sriov {
namespace {

constexpr std::string_view kPciDevices = "sys/bus/pci/devices";
constexpr int64_t kNetworkClass = 0x02;

std::optional<int> parseIndex(std::string_view s) {
  int value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || value < 0) return std::nullopt;
  return value;
}

// Reads the attributes every PCI network function has. `dir` is sysfs-relative and may be a
// symlink to the device directory (bus/pci/devices/X or a PF's virtfnN).
PciFunction probeFunction(const Sysfs& sysfs, const std::string& dir, const PciAddress& address) {
  PciFunction fn;
  fn.address = address;
  auto warn = [&](const Error& e) { fn.warnings.push_back(e.message()); };
  auto attr = [&](std::string_view name) { return dir + "/" + std::string(name); };

  auto hexId = [&](std::string_view name) -> std::optional<std::string> {
    auto v = sysfs.readInt(attr(name));
    if (!v) {
      warn(v.error());
      return std::nullopt;
    }
    return fmt::format("{:04x}", *v & 0xffff);
  };
  fn.vendor = hexId("vendor");
  fn.device = hexId("device");

  if (auto driver = sysfs.readLinkName(attr("driver"))) {
    fn.driver = std::move(*driver);
  } else if (driver.error().sysErrno() != ENOENT) {
    warn(driver.error());
  }

  if (auto numa = sysfs.readInt(attr("numa_node"))) {
    if (*numa >= 0) fn.numaNode = static_cast<int>(*numa);
  } else {
    warn(numa.error());
  }

  // No iommu_group link is normal without an IOMMU; the device just cannot go to vfio-pci.
  if (auto group = sysfs.readLinkName(attr("iommu_group"))) {
    if (auto n = parseIndex(*group)) {
      fn.iommuGroup = *n;
    } else {
      fn.warnings.push_back(fmt::format("{}: not an iommu group number: \"{}\"",
                                        sysfs.absolute(attr("iommu_group")).string(), *group));
    }
    if (auto name = sysfs.readString(attr("iommu_group/name"))) {
      fn.noIommu = *name == "vfio-noiommu";
    }
  } else if (group.error().sysErrno() != ENOENT) {
    warn(group.error());
  }

  if (auto names = sysfs.listDir(attr("net"))) {
    std::sort(names->begin(), names->end());
    for (auto& name : *names) {
      NetInterface netif{.name = name, .arpType = std::nullopt, .operstate = std::nullopt};
      std::string base = attr("net/" + name);
      if (auto type = sysfs.readInt(base + "/type")) {
        netif.arpType = static_cast<int>(*type);
      } else {
        warn(type.error());
      }
      if (auto state = sysfs.readString(base + "/operstate")) {
        netif.operstate = std::move(*state);
      } else {
        warn(state.error());
      }
      fn.netdevs.push_back(std::move(netif));
    }
  } else if (names.error().sysErrno() != ENOENT) {
    warn(names.error());
  }

  if (auto rdma = sysfs.listDir(attr("infiniband"))) {
    std::sort(rdma->begin(), rdma->end());
    fn.rdmaDevices = std::move(*rdma);
  } else if (rdma.error().sysErrno() != ENOENT) {
    warn(rdma.error());
  }

  // acpi_index exists only where the firmware provides one.
  if (auto index = sysfs.readInt(attr("acpi_index"))) {
    fn.acpiIndex = static_cast<int>(*index);
  } else if (index.error().sysErrno() != ENOENT) {
    warn(index.error());
  }
  return fn;
}

VirtualFunction probeVf(const Sysfs& sysfs, const std::string& pfDir, const PciAddress& pf,
                        int index, const PciAddress& address) {
  std::string dir = fmt::format("{}/virtfn{}", pfDir, index);
  VirtualFunction vf;
  if (!sysfs.exists(dir)) {
    // A dangling virtfn link: the VF is gone (or going) but the PF still lists it.
    static_cast<PciFunction&>(vf).address = address;
    vf.warnings.push_back(fmt::format("{}: link to missing device", sysfs.absolute(dir).string()));
  } else {
    static_cast<PciFunction&>(vf) = probeFunction(sysfs, dir, address);
    auto physfn = sysfs.readLinkName(dir + "/physfn");
    if (!physfn) {
      vf.warnings.push_back(physfn.error().message());
    } else if (*physfn != pf.str()) {
      vf.warnings.push_back(fmt::format("physfn points to {}, expected {}", *physfn, pf.str()));
    }
  }
  vf.index = index;
  if (!vf.driver) {
    vf.mode = VfMode::kUnbound;
  } else if (isUserspaceDriver(*vf.driver)) {
    vf.mode = VfMode::kDpdk;
  } else {
    vf.mode = VfMode::kNetdev;
    if (vf.netdevs.empty() && sysfs.exists(dir)) {
      vf.warnings.push_back(fmt::format("bound to {} but has no netdev under net/", *vf.driver));
    }
  }
  return vf;
}

PhysicalFunction probePf(const Sysfs& sysfs, const std::string& dir, const PciAddress& address,
                         std::unordered_set<PciAddress>& claimedVfs) {
  PhysicalFunction pf;
  static_cast<PciFunction&>(pf) = probeFunction(sysfs, dir, address);
  auto readCount = [&](std::string_view name) -> std::optional<int> {
    auto v = sysfs.readInt(dir + "/" + std::string(name));
    if (!v) {
      pf.warnings.push_back(v.error().message());
      return std::nullopt;
    }
    return static_cast<int>(*v);
  };
  pf.totalVfs = readCount("sriov_totalvfs");
  pf.numVfs = readCount("sriov_numvfs");

  auto entries = sysfs.listDir(dir);
  if (!entries) {
    pf.warnings.push_back(entries.error().message());
    return pf;
  }
  for (const auto& entry : *entries) {
    if (!entry.starts_with("virtfn")) continue;
    auto index = parseIndex(std::string_view(entry).substr(6));
    if (!index) continue;
    auto target = sysfs.readLinkName(dir + "/" + entry);
    if (!target) {
      pf.warnings.push_back(target.error().message());
      continue;
    }
    auto vfAddress = PciAddress::parse(*target);
    if (!vfAddress) {
      pf.warnings.push_back(fmt::format("{}: {}", sysfs.absolute(dir + "/" + entry).string(),
                                        vfAddress.error().message()));
      continue;
    }
    claimedVfs.insert(*vfAddress);
    pf.vfs.push_back(probeVf(sysfs, dir, address, *index, *vfAddress));
  }
  std::sort(pf.vfs.begin(), pf.vfs.end(),
            [](const VirtualFunction& a, const VirtualFunction& b) { return a.index < b.index; });
  return pf;
}

}  // namespace

std::string linkTypeName(int arpType) {
  switch (arpType) {
    case kArpTypeEther:
      return "ether";
    case kArpTypeInfiniband:
      return "infiniband";
    default:
      return fmt::format("arphrd-{}", arpType);
  }
}

std::optional<std::string> PciFunction::linkType() const {
  const NetInterface* netif = primaryNetdev();
  if (netif == nullptr || !netif->arpType) return std::nullopt;
  return linkTypeName(*netif->arpType);
}

const char* vfModeName(VfMode mode) {
  switch (mode) {
    case VfMode::kNetdev:
      return "netdev";
    case VfMode::kDpdk:
      return "dpdk";
    case VfMode::kUnbound:
      return "unbound";
  }
  return "unknown";
}

bool isUserspaceDriver(std::string_view driver) {
  return driver == "vfio-pci" || driver == "uio_pci_generic" || driver == "igb_uio";
}

const PhysicalFunction* NodeInventory::findPf(const PciAddress& address) const {
  for (const auto& pf : pfs) {
    if (pf.address == address) return &pf;
  }
  return nullptr;
}

const VirtualFunction* NodeInventory::findVf(const PciAddress& address,
                                             const PhysicalFunction** parent) const {
  for (const auto& pf : pfs) {
    for (const auto& vf : pf.vfs) {
      if (vf.address == address) {
        if (parent != nullptr) *parent = &pf;
        return &vf;
      }
    }
  }
  return nullptr;
}

std::vector<std::string> NodeInventory::allWarnings() const {
  std::vector<std::string> out = warnings;
  auto add = [&](const PciFunction& fn) {
    for (const auto& w : fn.warnings) out.push_back(fn.address.str() + ": " + w);
  };
  for (const auto& pf : pfs) {
    add(pf);
    for (const auto& vf : pf.vfs) add(vf);
  }
  for (const auto& nic : nics) add(nic);
  return out;
}

Result<NodeInventory> discoverNode(const Sysfs& sysfs) {
  auto entries = sysfs.listDir(kPciDevices);
  if (!entries) return fail(std::move(entries.error()).withContext("discover PCI devices"));

  NodeInventory inventory;
  std::unordered_set<PciAddress> claimedVfs;
  std::vector<std::pair<PciAddress, std::string>> vfEntries;  // VFs seen at the top level
  std::sort(entries->begin(), entries->end());
  for (const auto& entry : *entries) {
    std::string dir = std::string(kPciDevices) + "/" + entry;
    auto address = PciAddress::parse(entry);
    if (!address) {
      inventory.warnings.push_back(
          fmt::format("{}: skipped: {}", sysfs.absolute(dir).string(), address.error().message()));
      continue;
    }
    auto cls = sysfs.readInt(dir + "/class");
    if (!cls) {
      // Without the class we cannot tell whether it is a NIC at all; say so rather than guess.
      inventory.warnings.push_back(fmt::format("{}: skipped: {}", entry, cls.error().message()));
      continue;
    }
    if ((*cls >> 16) != kNetworkClass) continue;
    if (sysfs.exists(dir + "/physfn")) {
      vfEntries.emplace_back(*address, dir);  // listed under its PF below
    } else if (sysfs.exists(dir + "/sriov_totalvfs")) {
      inventory.pfs.push_back(probePf(sysfs, dir, *address, claimedVfs));
    } else {
      inventory.nics.push_back(probeFunction(sysfs, dir, *address));
    }
  }
  // A VF that no PF lists (its PF is not a network device, or its virtfn link is missing) is
  // still a usable NIC; keep it visible instead of dropping it.
  for (const auto& [address, dir] : vfEntries) {
    if (claimedVfs.contains(address)) continue;
    PciFunction fn = probeFunction(sysfs, dir, address);
    auto physfn = sysfs.readLinkName(dir + "/physfn");
    fn.warnings.push_back(fmt::format("VF of {} that no PF lists as a virtfn; shown as a plain NIC",
                                      physfn ? *physfn : std::string("an unknown PF")));
    inventory.nics.push_back(std::move(fn));
  }
  return inventory;
}

}  // namespace vfplane::sriov
