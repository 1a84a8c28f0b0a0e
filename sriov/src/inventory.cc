#include "vfplane/sriov/inventory.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace vfplane::sriov {
namespace {

constexpr std::string_view kPciDevices = "sys/bus/pci/devices";
constexpr int64_t kNetworkClass = 0x02;
constexpr int64_t kAcceleratorClass = 0x12;  // "processing accelerators"
constexpr size_t kMaxDiscoveryThreads = 8;

std::optional<int> parseIndex(std::string_view s) {
  int value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || value < 0)
    return std::nullopt;
  return value;
}

// The names under one "net" directory, as FunctionNetdevs relative to the function's directory.
void appendNetdevsIn(const SysfsDir& dir, const std::string& netDir,
                     std::vector<FunctionNetdev>& out, std::vector<std::string>* warnings) {
  auto names = dir.listDir(netDir);
  if (!names) {
    if (names.error().sysErrno() != ENOENT && warnings != nullptr)
      warnings->push_back(names.error().message());
    return;
  }
  for (auto& name : *names) out.push_back({name, netDir + "/" + name});
}

// Reads the attributes every PCI network function has from its device directory.
PciFunction probeFunction(const SysfsDir& dir, const PciAddress& address) {
  PciFunction fn;
  fn.address = address;
  auto warn = [&](const Error& e) { fn.warnings.push_back(e.message()); };

  auto hexId = [&](std::string_view name) -> std::optional<std::string> {
    auto v = dir.readInt(name);
    if (!v) {
      warn(v.error());
      return std::nullopt;
    }
    return fmt::format("{:04x}", *v & 0xffff);
  };
  fn.vendor = hexId("vendor");
  fn.device = hexId("device");

  if (auto driver = dir.readLinkName("driver")) {
    fn.driver = std::move(*driver);
  } else if (driver.error().sysErrno() != ENOENT) {
    warn(driver.error());
  }

  if (auto numa = dir.readInt("numa_node")) {
    if (*numa >= 0) fn.numaNode = static_cast<int>(*numa);
  } else {
    warn(numa.error());
  }

  // No iommu_group link is normal without an IOMMU; the device just cannot go to vfio-pci.
  if (auto group = dir.readLinkName("iommu_group")) {
    if (auto n = parseIndex(*group)) {
      fn.iommuGroup = *n;
    } else {
      fn.warnings.push_back(
          fmt::format("{}/iommu_group: not an iommu group number: \"{}\"", dir.path(), *group));
    }
    // Only vfio-pci creates vfio-noiommu groups (and drops them on unbind), so other devices
    // need not pay for the extra read.
    if (fn.driver == "vfio-pci") {
      if (auto name = dir.readString("iommu_group/name")) fn.noIommu = *name == "vfio-noiommu";
    }
  } else if (group.error().sysErrno() != ENOENT) {
    warn(group.error());
  }

  for (auto& entry : functionNetdevs(dir, fn.driver.value_or(""), &fn.warnings)) {
    NetInterface netif{
        .name = std::move(entry.name), .arpType = std::nullopt, .operstate = std::nullopt};
    if (auto type = dir.readInt(entry.dir + "/type")) {
      netif.arpType = static_cast<int>(*type);
    } else {
      warn(type.error());
    }
    if (auto state = dir.readString(entry.dir + "/operstate")) {
      netif.operstate = std::move(*state);
    } else {
      warn(state.error());
    }
    fn.netdevs.push_back(std::move(netif));
  }

  if (auto rdma = dir.listDir("infiniband")) {
    std::sort(rdma->begin(), rdma->end());
    fn.rdmaDevices = std::move(*rdma);
  } else if (rdma.error().sysErrno() != ENOENT) {
    warn(rdma.error());
  }
  if (!fn.rdmaDevices.empty()) {
    for (const char* sub : {"infiniband_verbs", "infiniband_mad"}) {
      if (auto chars = dir.listDir(sub)) {
        fn.rdmaCharDevices.insert(fn.rdmaCharDevices.end(), chars->begin(), chars->end());
      } else if (chars.error().sysErrno() != ENOENT) {
        warn(chars.error());
      }
    }
    std::sort(fn.rdmaCharDevices.begin(), fn.rdmaCharDevices.end());
  }

  // acpi_index exists only where the firmware provides one.
  if (auto index = dir.readInt("acpi_index")) {
    fn.acpiIndex = static_cast<int>(*index);
  } else if (index.error().sysErrno() != ENOENT) {
    warn(index.error());
  }
  return fn;
}

VirtualFunction probeVf(const SysfsDir& pfDir, const PciAddress& pf, int index,
                        const PciAddress& address) {
  std::string link = fmt::format("virtfn{}", index);
  VirtualFunction vf;
  auto dir = pfDir.openDir(link);
  if (!dir) {
    // A dangling virtfn link: the VF is gone (or going) but the PF still lists it.
    static_cast<PciFunction&>(vf).address = address;
    vf.warnings.push_back(dir.error().sysErrno() == ENOENT
                              ? fmt::format("{}/{}: link to missing device", pfDir.path(), link)
                              : dir.error().message());
  } else {
    static_cast<PciFunction&>(vf) = probeFunction(*dir, address);
    auto physfn = dir->readLinkName("physfn");
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
    if (vf.netdevs.empty() && dir) {
      vf.warnings.push_back(fmt::format("bound to {} but has no netdev", *vf.driver));
    }
  }
  return vf;
}

PhysicalFunction probePf(const SysfsDir& dir, const PciAddress& address,
                         std::unordered_set<PciAddress>& claimedVfs) {
  PhysicalFunction pf;
  static_cast<PciFunction&>(pf) = probeFunction(dir, address);
  auto readCount = [&](std::string_view name) -> std::optional<int> {
    auto v = dir.readInt(name);
    if (!v) {
      pf.warnings.push_back(v.error().message());
      return std::nullopt;
    }
    return static_cast<int>(*v);
  };
  pf.totalVfs = readCount("sriov_totalvfs");
  pf.numVfs = readCount("sriov_numvfs");

  auto entries = dir.listDir();
  if (!entries) {
    pf.warnings.push_back(entries.error().message());
    return pf;
  }
  for (const auto& entry : *entries) {
    if (!entry.starts_with("virtfn")) continue;
    auto index = parseIndex(std::string_view(entry).substr(6));
    if (!index) continue;
    auto target = dir.readLinkName(entry);
    if (!target) {
      pf.warnings.push_back(target.error().message());
      continue;
    }
    auto vfAddress = PciAddress::parse(*target);
    if (!vfAddress) {
      pf.warnings.push_back(
          fmt::format("{}/{}: {}", dir.path(), entry, vfAddress.error().message()));
      continue;
    }
    claimedVfs.insert(*vfAddress);
    pf.vfs.push_back(probeVf(dir, address, *index, *vfAddress));
  }
  std::sort(pf.vfs.begin(), pf.vfs.end(),
            [](const VirtualFunction& a, const VirtualFunction& b) { return a.index < b.index; });
  return pf;
}

// PFs are independent, and nearly all the time goes into per-file syscalls, so probing them on
// a few threads divides the wall time of a rescan on a big node by the number of cores.
std::vector<PhysicalFunction> probePfs(const std::vector<std::pair<PciAddress, SysfsDir>>& pfDirs,
                                       std::unordered_set<PciAddress>& claimedVfs) {
  std::vector<PhysicalFunction> pfs(pfDirs.size());
  std::vector<std::unordered_set<PciAddress>> claimed(pfDirs.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < pfDirs.size();) {
      pfs[i] = probePf(pfDirs[i].second, pfDirs[i].first, claimed[i]);
    }
  };
  size_t threads = std::min<size_t>(
      {std::max(1u, std::thread::hardware_concurrency()), kMaxDiscoveryThreads, pfDirs.size()});
  {
    std::vector<std::jthread> helpers;
    for (size_t t = 1; t < threads; ++t) helpers.emplace_back(work);
    work();
  }
  for (auto& set : claimed) claimedVfs.insert(set.begin(), set.end());
  return pfs;
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

std::vector<FunctionNetdev> functionNetdevs(const SysfsDir& function, std::string_view driver,
                                            std::vector<std::string>* warnings) {
  std::vector<FunctionNetdev> out;
  appendNetdevsIn(function, "net", out, warnings);
  // virtio-pci does not make the netdev itself: it creates a virtio device virtio<N> under the PCI
  // function, and virtio_net hangs the netdev off that. Only then is the directory listed, so
  // discovery of a node full of VFs pays nothing for it.
  if (driver == kVirtioPciDriver) {
    if (auto entries = function.listDir()) {
      for (const auto& entry : *entries) {
        if (entry.starts_with("virtio") && parseIndex(std::string_view(entry).substr(6))) {
          appendNetdevsIn(function, entry + "/net", out, warnings);
        }
      }
    } else if (warnings != nullptr) {
      warnings->push_back(entries.error().message());
    }
  }
  std::sort(out.begin(), out.end(),
            [](const FunctionNetdev& a, const FunctionNetdev& b) { return a.name < b.name; });
  return out;
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
  forEachFunction([&](const PciFunction& fn) {
    for (const auto& w : fn.warnings) out.push_back(fn.address.str() + ": " + w);
  });
  return out;
}

Result<NodeInventory> discoverNode(const Sysfs& sysfs) {
  auto pciDir = sysfs.openDir(kPciDevices);
  if (!pciDir) return fail(std::move(pciDir.error()).withContext("discover PCI devices"));
  auto entries = pciDir->listDir();
  if (!entries) return fail(std::move(entries.error()).withContext("discover PCI devices"));

  NodeInventory inventory;
  std::unordered_set<PciAddress> claimedVfs;
  // VFs seen at the top level are probed through their PF's virtfn links; these are kept only to
  // find the ones no PF lists.
  std::vector<std::pair<PciAddress, std::string>> vfEntries;
  std::vector<std::pair<PciAddress, SysfsDir>> pfDirs, accelPfDirs;
  std::sort(entries->begin(), entries->end());
  for (const auto& entry : *entries) {
    auto address = PciAddress::parse(entry);
    if (!address) {
      inventory.warnings.push_back(
          fmt::format("{}/{}: skipped: {}", pciDir->path(), entry, address.error().message()));
      continue;
    }
    // Checked first and without opening the device: on an SR-IOV node nearly every entry is a VF.
    if (pciDir->hasEntry(entry + "/physfn")) {
      vfEntries.emplace_back(*address, entry);
      continue;
    }
    auto dir = pciDir->openDir(entry);
    if (!dir) {
      inventory.warnings.push_back(fmt::format("{}: skipped: {}", entry, dir.error().message()));
      continue;
    }
    auto cls = dir->readInt("class");
    if (!cls) {
      // Without the class we cannot tell whether it is a NIC at all; say so rather than guess.
      inventory.warnings.push_back(fmt::format("{}: skipped: {}", entry, cls.error().message()));
      continue;
    }
    int64_t base = *cls >> 16;
    if (base != kNetworkClass && base != kAcceleratorClass) continue;
    bool network = base == kNetworkClass;
    if (dir->hasEntry("sriov_totalvfs")) {
      (network ? pfDirs : accelPfDirs).emplace_back(*address, std::move(*dir));
    } else {
      (network ? inventory.nics : inventory.accelerators).push_back(probeFunction(*dir, *address));
    }
  }
  inventory.pfs = probePfs(pfDirs, claimedVfs);
  inventory.accelPfs = probePfs(accelPfDirs, claimedVfs);

  // A VF that no PF lists (its PF is not of its class, or its virtfn link is missing) is still a
  // usable device; keep it visible instead of dropping it.
  for (const auto& [address, entry] : vfEntries) {
    if (claimedVfs.contains(address)) continue;
    auto dir = pciDir->openDir(entry);
    if (!dir) continue;
    auto cls = dir->readInt("class");
    if (!cls || ((*cls >> 16) != kNetworkClass && (*cls >> 16) != kAcceleratorClass)) continue;
    PciFunction fn = probeFunction(*dir, address);
    auto physfn = dir->readLinkName("physfn");
    fn.warnings.push_back(
        fmt::format("VF of {} that no PF lists as a virtfn; shown as a plain device",
                    physfn ? *physfn : std::string("an unknown PF")));
    ((*cls >> 16) == kNetworkClass ? inventory.nics : inventory.accelerators)
        .push_back(std::move(fn));
  }
  return inventory;
}

Result<VfLocation> locateVf(const Sysfs& sysfs, const PciAddress& address) {
  std::string rel = fmt::format("{}/{}", kPciDevices, address.str());
  auto dir = sysfs.openDir(rel);
  if (!dir) {
    if (dir.error().sysErrno() == ENOENT) {
      return fail(fmt::format("{}: no such PCI device ({} does not exist)", address.str(),
                              sysfs.absolute(rel).string()),
                  ENOENT);
    }
    return fail(std::move(dir.error()).withContext(address.str()));
  }
  auto physfn = dir->readLinkName("physfn");
  if (!physfn) {
    if (physfn.error().sysErrno() == ENOENT) {
      return fail(fmt::format("{}: is not a VF (it has no physfn link)", address.str()), EINVAL);
    }
    return fail(std::move(physfn.error()).withContext(address.str()));
  }
  auto pf = PciAddress::parse(*physfn);
  if (!pf) return fail(std::move(pf.error()).withContext(fmt::format("{}: physfn", address.str())));
  auto pfDir = dir->openDir("physfn");
  if (!pfDir) return fail(std::move(pfDir.error()).withContext(address.str() + ": open PF"));
  auto entries = pfDir->listDir();
  if (!entries) return fail(std::move(entries.error()).withContext(address.str() + ": list PF"));
  for (const auto& entry : *entries) {
    if (!entry.starts_with("virtfn")) continue;
    auto index = parseIndex(std::string_view(entry).substr(6));
    if (!index) continue;
    auto target = pfDir->readLinkName(entry);
    if (!target || *target != address.str()) continue;
    VfLocation loc;
    loc.vf = probeVf(*pfDir, *pf, *index, address);
    loc.pf = *pf;
    auto pfDriver = pfDir->readLinkName("driver");
    if (auto netdevs = functionNetdevs(*pfDir, pfDriver ? *pfDriver : "", nullptr);
        !netdevs.empty()) {
      loc.pfNetdev = netdevs.front().name;
    }
    return loc;
  }
  return fail(fmt::format("{}: its PF {} lists it under no virtfn link", address.str(), pf->str()),
              ENOENT);
}

}  // namespace vfplane::sriov
