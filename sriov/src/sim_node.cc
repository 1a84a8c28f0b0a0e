#include "vfplane/sriov/sim_node.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>

#include "vfplane/sriov/inventory.h"

namespace vfplane::sriov {
namespace fs = std::filesystem;
namespace {

// PCI topology of the simulated node. Each NUMA node owns a root complex whose bus numbers start
// at node * kBusesPerNode; every PF (and NIC) sits behind its own root port on its own bus.
constexpr int kBusesPerNode = 0x40;
constexpr int kMaxDevicesPerNode = kBusesPerNode - 1;
constexpr int kPortsPerFunction = 28;  // root ports 01.0-1c.0, then 01.1-1c.1, ...
// VFs follow the PF at routing-ID offset 8 with stride 1, as many Intel NICs do.
constexpr int kVfOffset = 8;
constexpr int kMaxVfs = 256 - kVfOffset;
constexpr int kMaxNumaNodes = 4;
constexpr int kFirstIommuGroup = 10;

constexpr const char* kPfVendor = "0x8086";
constexpr const char* kPfDevice = "0x1592";  // E810-C
constexpr const char* kPfDriver = "ice";
constexpr const char* kVfDevice = "0x1889";  // E810 adaptive VF
constexpr const char* kVfDriver = "iavf";
constexpr const char* kNicDevice = "0x1533";  // I210
constexpr const char* kNicDriver = "igb";
constexpr const char* kNetClass = "0x020000";
constexpr const char* kAccelDevice = "0x0d5c";  // ACC100 FEC PF
constexpr const char* kAccelVfDevice = "0x0d5d";
constexpr const char* kAccelDriver = "pci-pf-stub";
constexpr const char* kAccelClass = "0x120000";  // processing accelerator
// A modern (virtio 1.0) virtio-net function, as QEMU/KVM gives a VM: the PCI driver is virtio-pci,
// and the netdev hangs off the virtio device virtio<N> it creates, not off the PCI function.
constexpr const char* kVirtioVendor = "0x1af4";
constexpr const char* kVirtioNetDevice = "0x1041";
constexpr const char* kVirtioNetDriver = "virtio_net";  // on the virtio bus

Result<void> writeFile(const fs::path& path, std::string_view content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail(systemError("create " + path.string(), errno));
  std::string data(content);
  data += '\n';
  ssize_t n = ::write(fd, data.data(), data.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(data.size()))
    return fail(systemError("write " + path.string(), err));
  return {};
}

// Sysfs uses relative links; ours must too, or they would point into the host's /sys.
Result<void> relativeLink(const fs::path& root, const std::string& target,
                          const std::string& link) {
  fs::path linkPath = root / link;
  fs::path rel = fs::path(target).lexically_relative(fs::path(link).parent_path());
  std::error_code ec;
  fs::create_directories(linkPath.parent_path(), ec);
  if (ec)
    return fail(
        Error("create " + linkPath.parent_path().string() + ": " + ec.message(), ec.value()));
  fs::create_symlink(rel, linkPath, ec);
  if (ec) return fail(Error("symlink " + linkPath.string() + ": " + ec.message(), ec.value()));
  return {};
}

Result<void> makeDir(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return fail(Error("create " + path.string() + ": " + ec.message(), ec.value()));
  return {};
}

class TreeWriter {
 public:
  explicit TreeWriter(fs::path root) : root_(std::move(root)) {}

  Result<void> driverDir(const std::string& driver) {
    fs::path dir = root_ / "sys/bus/pci/drivers" / driver;
    if (fs::exists(dir)) return {};
    VFP_TRY(makeDir(dir));
    for (const char* f : {"bind", "unbind", "new_id", "remove_id"}) VFP_TRY(writeFile(dir / f, ""));
    return {};
  }

  // One PCI function: the attributes, the bus link, the driver link and an iommu group.
  Result<int> function(const std::string& dir, const PciAddress& address, const char* device,
                       const char* driver, int numa, bool noIommu, const char* cls = kNetClass,
                       const char* vendor = kPfVendor) {
    fs::path abs = root_ / dir;
    std::string addr = address.str();
    VFP_TRY(makeDir(abs));
    VFP_TRY(writeFile(abs / "vendor", vendor));
    VFP_TRY(writeFile(abs / "device", device));
    VFP_TRY(writeFile(abs / "class", cls));
    VFP_TRY(writeFile(abs / "numa_node", std::to_string(numa)));
    VFP_TRY(relativeLink(root_, dir, "sys/bus/pci/devices/" + addr));
    if (driver != nullptr) {
      VFP_TRY(driverDir(driver));
      std::string driverDirRel = std::string("sys/bus/pci/drivers/") + driver;
      VFP_TRY(relativeLink(root_, driverDirRel, dir + "/driver"));
      VFP_TRY(relativeLink(root_, dir, driverDirRel + "/" + addr));
    }
    int group = nextGroup_++;
    std::string groupDir = fmt::format("sys/kernel/iommu_groups/{}", group);
    VFP_TRY(makeDir(root_ / groupDir / "devices"));
    if (noIommu) VFP_TRY(writeFile(root_ / groupDir / "name", "vfio-noiommu"));
    VFP_TRY(relativeLink(root_, dir, groupDir + "/devices/" + addr));
    VFP_TRY(relativeLink(root_, groupDir, dir + "/iommu_group"));
    return group;
  }

  // dir is the device the netdev hangs off: the PCI function, or a virtio device under it.
  Result<void> netdev(const std::string& dir, const std::string& name, const char* operstate) {
    fs::path net = root_ / dir / "net" / name;
    VFP_TRY(makeDir(net));
    VFP_TRY(writeFile(net / "type", "1"));
    VFP_TRY(writeFile(net / "operstate", operstate));
    return relativeLink(root_, dir + "/net/" + name, "sys/class/net/" + name);
  }

  // virtio<index> under a virtio-pci function, bound to virtio_net on the virtio bus; returns its
  // sysfs-relative directory.
  Result<std::string> virtioDevice(const std::string& pciDir, int index) {
    std::string name = fmt::format("virtio{}", index);
    std::string dir = pciDir + "/" + name;
    VFP_TRY(makeDir(root_ / dir));
    VFP_TRY(writeFile(root_ / dir / "device", "0x0001"));  // virtio device ID 1: network card
    VFP_TRY(writeFile(root_ / dir / "vendor", kVirtioVendor));
    std::string drivers = std::string("sys/bus/virtio/drivers/") + kVirtioNetDriver;
    VFP_TRY(makeDir(root_ / drivers));
    VFP_TRY(relativeLink(root_, drivers, dir + "/driver"));
    VFP_TRY(relativeLink(root_, dir, drivers + "/" + name));
    VFP_TRY(relativeLink(root_, dir, "sys/bus/virtio/devices/" + name));
    return dir;
  }

 private:
  fs::path root_;
  int nextGroup_ = kFirstIommuGroup;
};

// Where each PF and NIC goes: contiguous blocks of PFs per NUMA node, NICs on node 0 after them.
struct Slot {
  int numa;
  int bus;
  std::string portDir;  // sysfs-relative root port directory
};

Slot slotFor(int numa, int indexInNode) {
  int rootBus = numa * kBusesPerNode;
  int port = 1 + indexInNode % kPortsPerFunction;
  int portFn = indexInNode / kPortsPerFunction;
  std::string rc = fmt::format("pci0000:{:02x}", rootBus);
  return Slot{numa, rootBus + 1 + indexInNode,
              fmt::format("sys/devices/{}/0000:{:02x}:{:02x}.{}", rc, rootBus, port, portFn)};
}

// VF i of the PF in slot: on the PF's bus at routing-ID offset kVfOffset + i.
SimVf vfInSlot(const Slot& slot, int i) {
  int devfn = kVfOffset + i;
  SimVf vf;
  vf.index = i;
  vf.address = PciAddress(0, static_cast<uint8_t>(slot.bus), static_cast<uint8_t>(devfn >> 3),
                          static_cast<uint8_t>(devfn & 7));
  vf.dir = slot.portDir + "/" + vf.address.str();
  return vf;
}

// The PF's virtfnN link and the VF's physfn link back.
Result<void> linkVf(const fs::path& root, const std::string& pfDir, const SimVf& vf) {
  VFP_TRY(relativeLink(root, vf.dir, fmt::format("{}/virtfn{}", pfDir, vf.index)));
  return relativeLink(root, pfDir, vf.dir + "/physfn");
}

// systemd's predictable name for function 0 of slot 0 on that bus, as a VM's virtio NIC gets.
std::string virtioNetdevName(int bus) { return fmt::format("enp{}s0", bus); }

std::string pfName(const SimNodeSpec& spec, int p) {
  return fmt::format("{}{}f{}", spec.pfPrefix, p / 2 + 1, p % 2);
}

nlohmann::json toManifest(const SimNode& node) {
  nlohmann::json j;
  const auto& s = node.spec;
  j["spec"] = {{"pfs", s.pfs},
               {"vfs", s.vfs},
               {"vfio", s.vfio},
               {"numa_nodes", s.numaNodes},
               {"nics", s.nics},
               {"noiommu", s.noIommu},
               {"veth", s.veth},
               {"pf_prefix", s.pfPrefix},
               {"nic_prefix", s.nicPrefix},
               {"accelerators", s.accelerators},
               {"accel_vfs", s.accelVfs},
               {"virtio", s.virtio}};
  j["pfs"] = nlohmann::json::array();
  for (const auto& pf : node.pfs) {
    nlohmann::json vfs = nlohmann::json::array();
    for (const auto& vf : pf.vfs) {
      vfs.push_back({{"index", vf.index},
                     {"pci", vf.address.str()},
                     {"netdev", vf.netdev ? nlohmann::json(*vf.netdev) : nlohmann::json(nullptr)},
                     {"dir", vf.dir}});
    }
    j["pfs"].push_back({{"pci", pf.address.str()},
                        {"netdev", pf.netdev},
                        {"dir", pf.dir},
                        {"numa_node", pf.numaNode},
                        {"bridge", pf.bridge},
                        {"vfs", vfs}});
  }
  j["nics"] = nlohmann::json::array();
  for (const auto& nic : node.nics) {
    j["nics"].push_back({{"pci", nic.address.str()}, {"netdev", nic.netdev}, {"dir", nic.dir}});
  }
  j["virtio_nics"] = nlohmann::json::array();
  for (const auto& nic : node.virtioNics) {
    j["virtio_nics"].push_back(
        {{"pci", nic.address.str()}, {"netdev", nic.netdev}, {"dir", nic.dir}});
  }
  j["accelerators"] = nlohmann::json::array();
  for (const auto& acc : node.accelerators) {
    nlohmann::json vfs = nlohmann::json::array();
    for (const auto& vf : acc.vfs) {
      vfs.push_back({{"index", vf.index}, {"pci", vf.address.str()}, {"dir", vf.dir}});
    }
    j["accelerators"].push_back(
        {{"pci", acc.address.str()}, {"dir", acc.dir}, {"numa_node", acc.numaNode}, {"vfs", vfs}});
  }
  j["links"] = node.links;
  return j;
}

Result<SimNode> fromManifest(const nlohmann::json& j) {
  SimNode node;
  auto address = [](const nlohmann::json& v) { return PciAddress::parse(v.get<std::string>()); };
  const auto& s = j.at("spec");
  node.spec.pfs = s.at("pfs");
  node.spec.vfs = s.at("vfs");
  node.spec.vfio = s.at("vfio");
  node.spec.numaNodes = s.at("numa_nodes");
  node.spec.nics = s.at("nics");
  node.spec.noIommu = s.at("noiommu");
  node.spec.veth = s.at("veth");
  node.spec.pfPrefix = s.at("pf_prefix");
  node.spec.nicPrefix = s.at("nic_prefix");
  // Manifests written before accelerators existed have none.
  node.spec.accelerators = s.value("accelerators", 0);
  node.spec.accelVfs = s.value("accel_vfs", 0);
  node.spec.virtio = s.value("virtio", 0);
  for (const auto& p : j.at("pfs")) {
    SimPf pf;
    auto a = address(p.at("pci"));
    if (!a) return fail(std::move(a.error()));
    pf.address = *a;
    pf.netdev = p.at("netdev");
    pf.dir = p.at("dir");
    pf.numaNode = p.at("numa_node");
    pf.bridge = p.at("bridge");
    for (const auto& v : p.at("vfs")) {
      SimVf vf;
      auto va = address(v.at("pci"));
      if (!va) return fail(std::move(va.error()));
      vf.address = *va;
      vf.index = v.at("index");
      if (!v.at("netdev").is_null()) vf.netdev = v.at("netdev").get<std::string>();
      vf.dir = v.at("dir");
      pf.vfs.push_back(std::move(vf));
    }
    node.pfs.push_back(std::move(pf));
  }
  for (const auto& n : j.at("nics")) {
    auto a = address(n.at("pci"));
    if (!a) return fail(std::move(a.error()));
    node.nics.push_back(SimNic{*a, n.at("netdev"), n.at("dir")});
  }
  for (const auto& n : j.value("virtio_nics", nlohmann::json::array())) {
    auto a = address(n.at("pci"));
    if (!a) return fail(std::move(a.error()));
    node.virtioNics.push_back(SimNic{*a, n.at("netdev"), n.at("dir")});
  }
  for (const auto& a : j.value("accelerators", nlohmann::json::array())) {
    SimAccelerator acc;
    auto aa = address(a.at("pci"));
    if (!aa) return fail(std::move(aa.error()));
    acc.address = *aa;
    acc.dir = a.at("dir");
    acc.numaNode = a.at("numa_node");
    for (const auto& v : a.at("vfs")) {
      auto va = address(v.at("pci"));
      if (!va) return fail(std::move(va.error()));
      acc.vfs.push_back(SimVf{v.at("index"), *va, std::nullopt, v.at("dir")});
    }
    node.accelerators.push_back(std::move(acc));
  }
  node.links = j.at("links").get<std::vector<std::string>>();
  return node;
}

Result<void> writeManifest(const SimNode& node) {
  fs::path path = node.spec.root / kSimManifestName;
  return writeFile(path, toManifest(node).dump(2));
}

void removeLinks(const std::vector<std::string>& names, netlink::LinkOps* links) {
  if (links == nullptr) return;
  for (auto it = names.rbegin(); it != names.rend(); ++it) (void)links->remove(*it);
}

Result<void> buildTree(SimNode& node) {
  const SimNodeSpec& spec = node.spec;
  TreeWriter tree(spec.root);
  for (const char* d :
       {"sys/bus/pci/devices", "sys/bus/pci/drivers", "sys/class/net", "sys/kernel/iommu_groups"}) {
    VFP_TRY(makeDir(spec.root / d));
  }
  std::vector<int> usedInNode(spec.numaNodes, 0);
  for (int p = 0; p < spec.pfs; ++p) {
    int numa = p * spec.numaNodes / spec.pfs;
    Slot slot = slotFor(numa, usedInNode[numa]++);
    SimPf pf;
    pf.address = PciAddress(0, static_cast<uint8_t>(slot.bus), 0, 0);
    pf.netdev = pfName(spec, p);
    pf.dir = slot.portDir + "/" + pf.address.str();
    pf.numaNode = numa;
    if (spec.veth) pf.bridge = pf.netdev + "_esw";
    auto group = tree.function(pf.dir, pf.address, kPfDevice, kPfDriver, numa, false);
    if (!group) return fail(std::move(group.error()));
    VFP_TRY(tree.netdev(pf.dir, pf.netdev, "up"));
    fs::path abs = spec.root / pf.dir;
    VFP_TRY(writeFile(abs / "sriov_totalvfs", std::to_string(spec.vfs)));
    VFP_TRY(writeFile(abs / "sriov_numvfs", std::to_string(spec.vfs)));
    VFP_TRY(writeFile(abs / "sriov_offset", std::to_string(kVfOffset)));
    VFP_TRY(writeFile(abs / "sriov_stride", "1"));
    VFP_TRY(writeFile(abs / "sriov_vf_device", std::string(kVfDevice).substr(2)));
    VFP_TRY(writeFile(abs / "sriov_drivers_autoprobe", "1"));
    VFP_TRY(writeFile(abs / "acpi_index", std::to_string(p + 1)));
    for (int i = 0; i < spec.vfs; ++i) {
      SimVf vf = vfInSlot(slot, i);
      bool vfio = i >= spec.vfs - spec.vfio;
      auto vfGroup = tree.function(vf.dir, vf.address, kVfDevice, vfio ? "vfio-pci" : kVfDriver,
                                   numa, vfio && spec.noIommu);
      if (!vfGroup) return fail(std::move(vfGroup.error()));
      if (!vfio) {
        vf.netdev = fmt::format("{}v{}", pf.netdev, i);
        VFP_TRY(tree.netdev(vf.dir, *vf.netdev, "down"));
      }
      VFP_TRY(linkVf(spec.root, pf.dir, vf));
      pf.vfs.push_back(std::move(vf));
    }
    node.pfs.push_back(std::move(pf));
  }
  for (int n = 0; n < spec.nics; ++n) {
    Slot slot = slotFor(0, usedInNode[0]++);
    SimNic nic{PciAddress(0, static_cast<uint8_t>(slot.bus), 0, 0),
               fmt::format("{}{}", spec.nicPrefix, n + 1), ""};
    nic.dir = slot.portDir + "/" + nic.address.str();
    auto group = tree.function(nic.dir, nic.address, kNicDevice, kNicDriver, 0, false);
    if (!group) return fail(std::move(group.error()));
    VFP_TRY(tree.netdev(nic.dir, nic.netdev, "up"));
    node.nics.push_back(std::move(nic));
  }
  for (int a = 0; a < spec.accelerators; ++a) {
    int numa = a * spec.numaNodes / spec.accelerators;
    Slot slot = slotFor(numa, usedInNode[numa]++);
    SimAccelerator acc;
    acc.address = PciAddress(0, static_cast<uint8_t>(slot.bus), 0, 0);
    acc.dir = slot.portDir + "/" + acc.address.str();
    acc.numaNode = numa;
    auto group =
        tree.function(acc.dir, acc.address, kAccelDevice, kAccelDriver, numa, false, kAccelClass);
    if (!group) return fail(std::move(group.error()));
    fs::path abs = spec.root / acc.dir;
    VFP_TRY(writeFile(abs / "sriov_totalvfs", std::to_string(spec.accelVfs)));
    VFP_TRY(writeFile(abs / "sriov_numvfs", std::to_string(spec.accelVfs)));
    for (int i = 0; i < spec.accelVfs; ++i) {
      SimVf vf = vfInSlot(slot, i);
      auto vfGroup = tree.function(vf.dir, vf.address, kAccelVfDevice, "vfio-pci", numa,
                                   spec.noIommu, kAccelClass);
      if (!vfGroup) return fail(std::move(vfGroup.error()));
      VFP_TRY(linkVf(spec.root, acc.dir, vf));
      acc.vfs.push_back(std::move(vf));
    }
    node.accelerators.push_back(std::move(acc));
  }
  // After the accelerators, so that adding virtio NICs moves no other device's address.
  for (int v = 0; v < spec.virtio; ++v) {
    Slot slot = slotFor(0, usedInNode[0]++);
    SimNic nic{PciAddress(0, static_cast<uint8_t>(slot.bus), 0, 0), virtioNetdevName(slot.bus), ""};
    nic.dir = slot.portDir + "/" + nic.address.str();
    auto group = tree.function(nic.dir, nic.address, kVirtioNetDevice, kVirtioPciDriver.data(), 0,
                               false, kNetClass, kVirtioVendor);
    if (!group) return fail(std::move(group.error()));
    auto virtio = tree.virtioDevice(nic.dir, v);
    if (!virtio) return fail(std::move(virtio.error()));
    VFP_TRY(tree.netdev(*virtio, nic.netdev, "up"));
    node.virtioNics.push_back(std::move(nic));
  }
  return {};
}

// One veth pair per netdev: `name` is what the host (and later the pod) sees, its _rep peer sits
// in the switch bridge. node.links records each link as soon as it exists, for rollback.
Result<void> addSwitchPort(SimNode& node, netlink::LinkOps& links, const std::string& name,
                           const std::string& bridge, bool up) {
  std::string peer = SimNode::peerName(name);
  VFP_TRY(links.addVethPair(name, peer));
  node.links.push_back(name);
  VFP_TRY(links.setMaster(peer, bridge));
  VFP_TRY(links.setUp(peer, true));
  if (up) VFP_TRY(links.setUp(name, true));
  return {};
}

Result<void> buildLinks(SimNode& node, netlink::LinkOps& links) {
  for (const auto& pf : node.pfs) {
    VFP_TRY(links.addBridge(pf.bridge));
    node.links.push_back(pf.bridge);
    VFP_TRY(links.setUp(pf.bridge, true));
    VFP_TRY(addSwitchPort(node, links, pf.netdev, pf.bridge, true));
    for (const auto& vf : pf.vfs) {
      if (vf.netdev) VFP_TRY(addSwitchPort(node, links, *vf.netdev, pf.bridge, false));
    }
  }
  // A plain NIC is a veth whose _rep end stands for the cable; nothing else hangs off it.
  for (const auto* list : {&node.nics, &node.virtioNics}) {
    for (const auto& nic : *list) {
      std::string peer = SimNode::peerName(nic.netdev);
      VFP_TRY(links.addVethPair(nic.netdev, peer));
      node.links.push_back(nic.netdev);
      VFP_TRY(links.setUp(peer, true));
      VFP_TRY(links.setUp(nic.netdev, true));
    }
  }
  return {};
}

}  // namespace

Result<void> validateSimNodeSpec(const SimNodeSpec& spec) {
  auto range = [](const char* field, int v, int lo, int hi) -> Result<void> {
    if (v < lo || v > hi)
      return fail(fmt::format("{}: {} is out of range {}-{}", field, v, lo, hi), EINVAL);
    return {};
  };
  if (spec.root.empty()) return fail("root: must be given", EINVAL);
  VFP_TRY(range("numa-nodes", spec.numaNodes, 1, kMaxNumaNodes));
  VFP_TRY(range("pfs", spec.pfs, 0, kMaxDevicesPerNode * spec.numaNodes));
  VFP_TRY(range("vfs", spec.vfs, 0, kMaxVfs));
  VFP_TRY(range("vfio", spec.vfio, 0, spec.vfs));
  int pfsOnNode0 = spec.pfs == 0 ? 0 : (spec.pfs + spec.numaNodes - 1) / spec.numaNodes;
  VFP_TRY(range("nics", spec.nics, 0, kMaxDevicesPerNode - pfsOnNode0));
  VFP_TRY(range("virtio", spec.virtio, 0, kMaxDevicesPerNode - pfsOnNode0 - spec.nics));
  VFP_TRY(range("accel-vfs", spec.accelVfs, 0, kMaxVfs));
  // Accelerators take the slots the PFs (and, on node 0, the NICs) left free; node 0 is the
  // fullest, and it gets the first ceil(accelerators / nodes) cards.
  int maxAccels = (kMaxDevicesPerNode - pfsOnNode0 - spec.nics - spec.virtio) * spec.numaNodes;
  VFP_TRY(range("accelerators", spec.accelerators, 0, std::max(0, maxAccels)));
  if (spec.accelerators > 0) {
    int accelsOnNode0 = (spec.accelerators + spec.numaNodes - 1) / spec.numaNodes;
    if (pfsOnNode0 + spec.nics + spec.virtio + accelsOnNode0 > kMaxDevicesPerNode) {
      return fail(fmt::format("accelerators: {} do not fit next to the PFs and NICs on NUMA node 0 "
                              "(at most {} devices per node)",
                              spec.accelerators, kMaxDevicesPerNode),
                  EINVAL);
    }
  }
  if (spec.pfs > 0) {
    // The longest names decide: the last PF's last VF with its _rep suffix, and its bridge.
    std::string pf = pfName(spec, spec.pfs - 1);
    std::string vf = fmt::format("{}v{}", pf, spec.vfs > 0 ? spec.vfs - 1 : 0);
    for (const auto& name : {SimNode::peerName(vf), SimNode::peerName(pf), pf + "_esw"}) {
      if (auto ok = netlink::validateIfName(name); !ok) {
        return fail(std::move(ok.error()).withContext("pf-prefix \"" + spec.pfPrefix + "\""));
      }
    }
  }
  if (spec.nics > 0) {
    if (auto ok = netlink::validateIfName(fmt::format("{}{}", spec.nicPrefix, spec.nics)); !ok) {
      return fail(std::move(ok.error()).withContext("nic-prefix \"" + spec.nicPrefix + "\""));
    }
  }
  return {};
}

Result<SimNode> createSimNode(const SimNodeSpec& spec, netlink::LinkOps* links) {
  VFP_TRY(validateSimNodeSpec(spec));
  if (spec.veth && links == nullptr) return fail("veth: no link operations given", EINVAL);
  std::error_code ec;
  if (fs::exists(spec.root, ec) && !fs::is_empty(spec.root, ec)) {
    return fail(Error(
        spec.root.string() + ": exists and is not empty; refusing to build a node there", EEXIST));
  }
  SimNode node;
  node.spec = spec;
  auto rollback = [&](Error e) {
    removeLinks(node.links, links);
    std::error_code rmEc;
    fs::remove_all(spec.root, rmEc);
    return fail(std::move(e).withContext("create simulated node in " + spec.root.string()));
  };
  if (auto ok = buildTree(node); !ok) return rollback(std::move(ok.error()));
  if (spec.veth) {
    if (auto ok = buildLinks(node, *links); !ok) return rollback(std::move(ok.error()));
  }
  if (auto ok = writeManifest(node); !ok) return rollback(std::move(ok.error()));
  return node;
}

Result<SimNode> loadSimNode(const fs::path& root) {
  fs::path path = root / kSimManifestName;
  std::ifstream in(path);
  if (!in) {
    return fail(Error(path.string() + ": cannot open (is " + root.string() +
                          " a node made by `vfplane sim create`?)",
                      ENOENT));
  }
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) return fail(Error(path.string() + ": not valid JSON", EINVAL));
  try {
    auto node = fromManifest(j);
    if (!node) return fail(std::move(node.error()).withContext(path.string()));
    node->spec.root = root;
    return node;
  } catch (const nlohmann::json::exception& e) {
    return fail(Error(path.string() + ": " + e.what(), EINVAL));
  }
}

Result<void> destroySimNode(const fs::path& root, netlink::LinkOps* links) {
  auto node = loadSimNode(root);
  if (!node) return fail(std::move(node.error()).withContext("destroy simulated node"));
  if (!node->links.empty() && links == nullptr) {
    return fail("destroy simulated node: it has links but no link operations were given", EINVAL);
  }
  std::vector<std::string> failures;
  for (auto it = node->links.rbegin(); it != node->links.rend(); ++it) {
    // Deleting either end of a veth deletes both. A VF end may have been moved into a pod, so
    // fall back to its _rep end, which never leaves this namespace. Gone already is fine.
    auto ok = links->remove(*it);
    if (!ok && ok.error().sysErrno() == ENODEV) ok = links->remove(SimNode::peerName(*it));
    if (!ok && ok.error().sysErrno() != ENODEV) failures.push_back(ok.error().message());
  }
  if (!failures.empty()) {
    std::string msg = "destroy simulated node: ";
    for (size_t i = 0; i < failures.size(); ++i) msg += (i ? "; " : "") + failures[i];
    // Keep the tree and manifest so that destroy can be run again.
    return fail(Error(msg, EBUSY));
  }
  std::error_code ec;
  fs::remove_all(root, ec);
  if (ec) return fail(Error("remove " + root.string() + ": " + ec.message(), ec.value()));
  return {};
}

}  // namespace vfplane::sriov
