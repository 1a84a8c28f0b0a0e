// vfplane-sriov: the CNI plugin binary. The runtime runs it with CNI_* in the environment and the
// network config on stdin; everything else lives in the cni library.
#include "vfplane/cni/exec.h"
#include "vfplane/cni/sriov_plugin.h"
#include "vfplane/sriov/vf_config.h"

namespace {

constexpr const char* kHelp =
    R"(vfplane-sriov: CNI plugin that hands an SR-IOV VF to a pod (kernel netdev or DPDK).

It is run by the container runtime (or Multus), not by hand: CNI_COMMAND, CNI_CONTAINERID,
CNI_NETNS, CNI_IFNAME, CNI_ARGS and CNI_PATH in the environment, the network config on stdin,
the result or an error JSON on stdout. To run it by hand as a runtime would, use
`vfplane cni exec`.

Commands: ADD, DEL, CHECK (cniVersion >= 0.4.0), GC and STATUS (1.1.0), VERSION.
Config: sriov-cni's keys (deviceID, vlan, vlanQoS, vlanProto, mac, spoofchk, trust, link_state,
min_tx_rate, max_tx_rate, logLevel, logFile, ipam) plus mtu. See docs/cni-sriov.md.

Environment read at start:
  VFPLANE_SYSFS_ROOT          directory holding sys/ (default /)
  VFPLANE_STATE_DIR           journals, owner records, locks (default /var/lib/cni/vfplane)
  VFPLANE_CNI_ALLOW_OWN_NETNS=1  accept CNI_NETNS equal to the plugin's own namespace
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace vfplane;
  cni::SriovPluginOptions options;
  options.sysfsRoot = cni::environmentOr("VFPLANE_SYSFS_ROOT", "/");
  options.stateDir = cni::environmentOr("VFPLANE_STATE_DIR", "/var/lib/cni/vfplane");
  sriov::NetlinkVfConfigurator configurator;
  cni::SriovPlugin plugin(options, &configurator);
  return cni::pluginMain(
      argc, argv, kHelp, plugin,
      {.allowOwnNetns = cni::environmentOr("VFPLANE_CNI_ALLOW_OWN_NETNS", "") == "1"});
}
