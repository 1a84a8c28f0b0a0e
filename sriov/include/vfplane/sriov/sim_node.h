// A simulated SR-IOV node: a fake sysfs tree shaped like the real one, optionally backed by real
// veth links, for demos and tests on kernels without SR-IOV.
//
// The tree holds sys/devices/pci0000:xx/<root port>/<PF and VFs>, sys/bus/pci/devices links,
// sys/bus/pci/drivers, sys/kernel/iommu_groups and sys/class/net. PF p is "<prefix><p/2+1>f<p%2>"
// (two ports per card, like ens1f0 and ens1f1) and its VF i is "<pf>v<i>". The last `vfio` VFs
// of each PF are bound to vfio-pci and have no netdev.
//
// Accelerator cards (class 0x12, shaped like an Intel ACC100 FEC card: PF 8086:0d5c on
// pci-pf-stub, VFs 8086:0d5d on vfio-pci) come after the NICs, spread over the NUMA nodes like the
// PFs. They have no netdev and no link. Virtio NICs come last, shaped like a VM's: the netdev
// under <pci>/virtio<N>/net/, not <pci>/net/.
//
// With veth, each PF and netdev VF is one end of a real veth pair in the caller's network
// namespace; the other ends ("<name>_rep", like a switchdev representor) of one PF's links are
// enslaved to a bridge "<pf>_esw" that stands for the NIC's embedded switch. Taking a PF's _rep
// end down drops the PF's carrier, as a cable pull would. A plain NIC is a veth pair whose _rep
// end stands for the cable.
//
// create writes a manifest into the root; destroy uses it to delete exactly the links it made,
// and refuses to touch a directory that has none.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/netlink/links.h"
#include "vfplane/sriov/pci_address.h"

namespace vfplane::sriov {

struct SimNodeSpec {
  std::filesystem::path root{};
  int pfs = 2;
  int vfs = 4;           // per PF; sriov_totalvfs and sriov_numvfs
  int vfio = 0;          // the last `vfio` VFs of each PF are on vfio-pci
  int numaNodes = 1;     // PFs are spread over the nodes in contiguous blocks
  int nics = 0;          // plain (non-SR-IOV) NICs "<nicPrefix><n>"
  int accelerators = 0;  // SR-IOV accelerator cards
  int accelVfs = 4;      // VFs per accelerator card, all on vfio-pci
  // virtio-net NICs as a KVM guest has them (1af4:1041 on virtio-pci, netdev enp<bus>s0 under
  // <pci>/virtio<N>/net/), on NUMA node 0 after every other device.
  int virtio = 0;
  bool noIommu = false;  // vfio-pci VFs sit in vfio-noiommu groups
  bool veth = false;
  std::string pfPrefix = "ens";
  std::string nicPrefix = "eno";
};

// Errors name the field: "vfs: 300 is out of range 0-248".
Result<void> validateSimNodeSpec(const SimNodeSpec& spec);

struct SimVf {
  int index = 0;
  PciAddress address{0, 0, 0, 0};
  std::optional<std::string> netdev;  // nullopt for vfio-pci VFs
  std::string dir;                    // sysfs-relative device directory
};

struct SimPf {
  PciAddress address{0, 0, 0, 0};
  std::string netdev;
  std::string dir;
  int numaNode = 0;
  std::string bridge;  // the embedded switch, when veth
  std::vector<SimVf> vfs;
};

struct SimNic {
  PciAddress address{0, 0, 0, 0};
  std::string netdev;
  std::string dir;
};

struct SimAccelerator {
  PciAddress address{0, 0, 0, 0};
  std::string dir;
  int numaNode = 0;
  std::vector<SimVf> vfs;  // no netdevs
};

struct SimNode {
  SimNodeSpec spec;
  std::vector<SimPf> pfs;
  std::vector<SimNic> nics;
  std::vector<SimNic> virtioNics;  // dir is the PCI function's; the netdev is under virtio<N>/
  std::vector<SimAccelerator> accelerators;
  std::vector<std::string> links;  // kernel links created, deleted by destroy

  // "<name>_rep": the switch-side end of a simulated netdev.
  static std::string peerName(const std::string& netdev) { return netdev + "_rep"; }
};

inline constexpr const char* kSimManifestName = "vfplane-sim.json";

// Builds the node. links is needed only when spec.veth. The root must not exist or be empty.
// On failure everything made so far (files and links) is removed again.
Result<SimNode> createSimNode(const SimNodeSpec& spec, netlink::LinkOps* links);
// Reads the manifest that createSimNode wrote into root.
Result<SimNode> loadSimNode(const std::filesystem::path& root);
// Deletes the links named in the manifest (missing ones are fine) and the tree.
Result<void> destroySimNode(const std::filesystem::path& root, netlink::LinkOps* links);

}  // namespace vfplane::sriov
