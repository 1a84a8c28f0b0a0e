// What SR-IOV hardware a node has: the model every other part of vfplane starts from.
//
// discoverNode() walks sys/bus/pci/devices once and returns every PCI network device (class 0x02)
// and processing accelerator (class 0x12: FEC/LDPC offload, crypto, AI inference): a PF when it
// has sriov_totalvfs, with its VFs from the virtfnN links, otherwise a plain function.
// It reads only sysfs: no processes, no netlink dump, so it is cheap enough to run on every rescan.
//
// A device that cannot be read fully is still listed, with warnings saying what is missing;
// discovery fails only when the PCI device directory itself cannot be listed.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/sriov/pci_address.h"
#include "vfplane/sriov/sysfs.h"

namespace vfplane::sriov {

// ARPHRD_* values from net/<if>/type that matter to SR-IOV pools.
inline constexpr int kArpTypeEther = 1;
inline constexpr int kArpTypeInfiniband = 32;

struct NetInterface {
  std::string name;
  std::optional<int> arpType;            // net/<if>/type
  std::optional<std::string> operstate;  // net/<if>/operstate: "up", "down", "unknown", ...
};

// "ether", "infiniband", or "arphrd-<n>" for anything else.
std::string linkTypeName(int arpType);

// The attributes every PCI network function has, PF, VF or plain NIC.
struct PciFunction {
  PciAddress address{0, 0, 0, 0};
  std::optional<std::string> vendor;  // 4 lower-case hex digits, no 0x
  std::optional<std::string> device;
  std::optional<std::string> driver;  // nullopt when unbound
  std::optional<int> numaNode;        // nullopt when the kernel says -1 or the file is missing
  std::optional<int> iommuGroup;
  bool noIommu = false;  // the group is a vfio-noiommu group (/dev/vfio/noiommu-N)
  std::vector<NetInterface> netdevs;
  std::vector<std::string> rdmaDevices;  // names under infiniband/
  // Its RDMA character devices under /dev/infiniband: uverbsN (infiniband_verbs/), umadN and
  // issmN (infiniband_mad/). Read only for devices that have an RDMA device.
  std::vector<std::string> rdmaCharDevices;
  std::optional<int> acpiIndex;
  // What could not be read, one line each, e.g. "numa_node: No such file or directory".
  std::vector<std::string> warnings;

  // The first netdev, if any. A VF or NIC has at most one in practice.
  const NetInterface* primaryNetdev() const { return netdevs.empty() ? nullptr : &netdevs.front(); }
  // link type of the primary netdev, when known.
  std::optional<std::string> linkType() const;
};

enum class VfMode {
  kNetdev,   // bound to a kernel network driver
  kDpdk,     // bound to vfio-pci, uio_pci_generic or igb_uio
  kUnbound,  // no driver
};
const char* vfModeName(VfMode mode);
// True for the drivers that hand the device to user space (vfio-pci, uio_pci_generic, igb_uio).
bool isUserspaceDriver(std::string_view driver);

struct VirtualFunction : PciFunction {
  int index = 0;  // N of the PF's virtfnN link
  VfMode mode = VfMode::kUnbound;
};

struct PhysicalFunction : PciFunction {
  std::optional<int> totalVfs;       // sriov_totalvfs
  std::optional<int> numVfs;         // sriov_numvfs
  std::vector<VirtualFunction> vfs;  // sorted by index
};

struct NodeInventory {
  // Network devices.
  std::vector<PhysicalFunction> pfs;  // sorted by address
  std::vector<PciFunction> nics;      // sorted by address
  // Processing accelerators, shaped the same way. Kept apart because nothing that works on
  // netdevs (carrier, default routes, the CNI) applies to them.
  std::vector<PhysicalFunction> accelPfs;  // sorted by address
  std::vector<PciFunction> accelerators;   // without SR-IOV; sorted by address
  // Problems that belong to no single device (e.g. a VF whose PF is missing).
  std::vector<std::string> warnings;

  // Network PFs and VFs only.
  const PhysicalFunction* findPf(const PciAddress& address) const;
  // The VF and, through pf, its parent.
  const VirtualFunction* findVf(const PciAddress& address,
                                const PhysicalFunction** pf = nullptr) const;
  // Every warning of the node and its devices, each prefixed with the device address.
  std::vector<std::string> allWarnings() const;
  // Calls f on every function of either class: PFs, their VFs, NICs, accelerators.
  template <class F>
  void forEachFunction(F&& f) const {
    for (const auto* list : {&pfs, &accelPfs}) {
      for (const auto& pf : *list) {
        f(static_cast<const PciFunction&>(pf));
        for (const auto& vf : pf.vfs) f(static_cast<const PciFunction&>(vf));
      }
    }
    for (const auto* list : {&nics, &accelerators}) {
      for (const auto& fn : *list) f(fn);
    }
  }
};

Result<NodeInventory> discoverNode(const Sysfs& sysfs);

inline constexpr std::string_view kVirtioPciDriver = "virtio-pci";

// A netdev the kernel made for a PCI function, and its sysfs directory relative to the function's.
struct FunctionNetdev {
  std::string name;
  std::string dir;  // "net/eth0"; "virtio0/net/eth0" for virtio-pci
};
// Every netdev of the PCI function whose device directory is `function` and whose driver is
// `driver` ("" when unbound), sorted by name: the ones under net/, and for virtio-pci the ones
// under virtio<N>/net/, where the kernel puts a virtio NIC's netdev. Directories that do not exist
// mean "none"; any other error is appended to *warnings (when given) and that directory skipped.
std::vector<FunctionNetdev> functionNetdevs(const SysfsDir& function, std::string_view driver,
                                            std::vector<std::string>* warnings);

// One VF and where it hangs, read fresh from sysfs. For a plugin that is handed a PCI address and
// must never trust a name it saw earlier.
struct VfLocation {
  VirtualFunction vf;
  PciAddress pf{0, 0, 0, 0};
  std::string pfNetdev;  // empty when the PF has no netdev (e.g. bound to a userspace driver)
};
// Errors: ENOENT "no such PCI device", EINVAL "is not a VF" (no physfn), or the PF not listing it.
Result<VfLocation> locateVf(const Sysfs& sysfs, const PciAddress& address);

}  // namespace vfplane::sriov
