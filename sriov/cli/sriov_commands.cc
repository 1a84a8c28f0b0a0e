#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "vfplane/base/exit_code.h"
#include "vfplane/netlink/links.h"
#include "vfplane/sriov/cli.h"
#include "vfplane/sriov/inventory.h"
#include "vfplane/sriov/inventory_format.h"
#include "vfplane/sriov/sim_node.h"
#include "vfplane/sriov/sysfs.h"

namespace vfplane::sriov {
namespace {

namespace fs = std::filesystem;

struct DevicesOptions {
  std::string sysfsRoot = "/";
  bool json = false;
};

int runDevices(const DevicesOptions& opts) {
  std::error_code ec;
  if (!fs::is_directory(opts.sysfsRoot, ec)) {
    spdlog::error("--sysfs-root {}: {}", opts.sysfsRoot,
                  ec ? ec.message() : std::string("no such directory"));
    return kExitUsage;
  }
  Sysfs sysfs(opts.sysfsRoot);
  if (!fs::is_directory(sysfs.absolute("sys/bus/pci/devices"), ec)) {
    spdlog::error(
        "--sysfs-root {}: has no sys/bus/pci/devices; give the directory that holds sys/ "
        "(\"/\" for this host, or the --root of `vfplane sim create`)",
        opts.sysfsRoot);
    return kExitUsage;
  }
  auto inventory = discoverNode(sysfs);
  if (!inventory) {
    spdlog::error("{}", inventory.error().message());
    return kExitFailure;
  }
  if (opts.json) {
    fmt::print("{}\n", inventoryToJson(*inventory).dump(2));
  } else {
    fmt::print("{}", inventoryToTable(*inventory));
  }
  std::fflush(stdout);
  for (const auto& warning : inventory->allWarnings()) spdlog::warn("{}", warning);
  return kExitOk;
}

std::unique_ptr<netlink::LinkOps> openLinks() {
  auto links = netlink::NetlinkLinks::open();
  if (!links) {
    spdlog::error("{}", links.error().message());
    return nullptr;
  }
  return std::move(*links);
}

int runSimCreate(const SimNodeSpec& spec) {
  if (auto ok = validateSimNodeSpec(spec); !ok) {
    spdlog::error("sim create: --{}", ok.error().message());
    return kExitUsage;
  }
  std::unique_ptr<netlink::LinkOps> links;
  if (spec.veth && !(links = openLinks())) return kExitFailure;
  auto node = createSimNode(spec, links.get());
  if (!node) {
    spdlog::error("{}", node.error().message());
    if (node.error().sysErrno() == EPERM) spdlog::error("--veth needs root (CAP_NET_ADMIN)");
    return kExitFailure;
  }
  int vfs = 0;
  for (const auto& pf : node->pfs) vfs += static_cast<int>(pf.vfs.size());
  fmt::print("simulated node in {}: {} PFs, {} VFs ({} per PF on vfio-pci), {} NICs, {} NUMA nodes",
             spec.root.string(), node->pfs.size(), vfs, spec.vfio, node->nics.size(),
             spec.numaNodes);
  if (!node->virtioNics.empty()) fmt::print(", {} virtio NICs", node->virtioNics.size());
  if (!node->accelerators.empty()) {
    fmt::print(", {} accelerator cards with {} VFs each", node->accelerators.size(), spec.accelVfs);
  }
  if (spec.veth) fmt::print(", {} veth links and bridges", node->links.size());
  fmt::print("\n");
  return kExitOk;
}

int runSimDestroy(const fs::path& root) {
  auto node = loadSimNode(root);
  if (!node) {
    spdlog::error("sim destroy: {}", node.error().message());
    return kExitUsage;
  }
  std::unique_ptr<netlink::LinkOps> links;
  if (!node->links.empty() && !(links = openLinks())) return kExitFailure;
  if (auto ok = destroySimNode(root, links.get()); !ok) {
    spdlog::error("{}", ok.error().message());
    return kExitFailure;
  }
  fmt::print("removed simulated node {} ({} links)\n", root.string(), node->links.size());
  return kExitOk;
}

}  // namespace

void addCliCommands(CLI::App& app, int& exitCode) {
  auto devicesOpts = std::make_shared<DevicesOptions>();
  auto* devices = app.add_subcommand("devices",
                                     "List the node's SR-IOV PFs, their VFs, the other NICs and "
                                     "the accelerators, as sysfs shows them");
  devices
      ->add_option("--sysfs-root", devicesOpts->sysfsRoot,
                   "Directory that holds sys/: / for this host, or a simulated node's --root")
      ->capture_default_str();
  devices->add_flag("--json", devicesOpts->json,
                    "Print JSON (a stable interface) instead of a table");
  devices->callback([devicesOpts, &exitCode] { exitCode = runDevices(*devicesOpts); });

  auto* sim =
      app.add_subcommand("sim", "Build or remove a simulated SR-IOV node (fake sysfs, veth VFs)");
  sim->require_subcommand(1);

  auto spec = std::make_shared<SimNodeSpec>();
  auto* create = sim->add_subcommand("create", "Build a simulated node under --root");
  create
      ->add_option("--root", spec->root,
                   "Directory to build the node in (must not exist or be empty)")
      ->required();
  create->add_option("--pfs", spec->pfs, "Number of SR-IOV physical functions")
      ->capture_default_str();
  create->add_option("--vfs", spec->vfs, "VFs per PF")->capture_default_str();
  create->add_option("--vfio", spec->vfio, "The last K VFs of each PF are bound to vfio-pci")
      ->capture_default_str();
  create->add_option("--numa-nodes", spec->numaNodes, "NUMA nodes the PFs are spread over")
      ->capture_default_str();
  create->add_option("--nics", spec->nics, "Plain (non-SR-IOV) NICs to add")->capture_default_str();
  create
      ->add_option("--virtio", spec->virtio,
                   "virtio-net NICs as a KVM guest has them (1af4:1041 on virtio-pci, netdev "
                   "enp<bus>s0 under virtio<N>/net/)")
      ->capture_default_str();
  create
      ->add_option("--accelerators", spec->accelerators,
                   "SR-IOV accelerator cards (class 0x12, like an ACC100 FEC card) to add")
      ->capture_default_str();
  create->add_option("--accel-vfs", spec->accelVfs, "VFs per accelerator card, all on vfio-pci")
      ->capture_default_str();
  create->add_flag("--noiommu", spec->noIommu, "Put the vfio-pci VFs in vfio-noiommu groups");
  create->add_flag("--veth", spec->veth,
                   "Back each PF and netdev VF with a real veth link in this network namespace "
                   "(needs root)");
  create->add_option("--pf-prefix", spec->pfPrefix, "PF names are <prefix><card>f<port>")
      ->capture_default_str();
  create->add_option("--nic-prefix", spec->nicPrefix, "NIC names are <prefix><n>")
      ->capture_default_str();
  create->callback([spec, &exitCode] { exitCode = runSimCreate(*spec); });

  auto destroyRoot = std::make_shared<fs::path>();
  auto* destroy = sim->add_subcommand("destroy", "Remove a simulated node's links and tree");
  destroy->add_option("--root", *destroyRoot, "The --root given to `sim create`")->required();
  destroy->callback([destroyRoot, &exitCode] { exitCode = runSimDestroy(*destroyRoot); });
}

}  // namespace vfplane::sriov
