// vfplane-ipam: the IPAM plugin binary, host-local compatible. Interface plugins of vfplane run
// the same code in-process when ipam.type is "vfplane-ipam"; this binary serves every other
// plugin (and runtimes) that exec IPAM as the spec says.
#include "vfplane/cni/ipam.h"

int main(int argc, char** argv) {
  constexpr const char* kHelp =
      R"(vfplane-ipam: host-local compatible CNI IPAM plugin (run by a CNI plugin or runtime).

Config: host-local's "ipam" section unchanged: "ranges" (range sets of subnet, rangeStart,
rangeEnd, gateway) or the legacy "subnet" form, "routes", "dataDir" (default
/var/lib/cni/networks). Requested addresses from args.cni.ips, runtimeConfig.ips or CNI_ARGS IP=.
State: host-local's files in <dataDir>/<network>/, under its "lock" file, so a network can move
between host-local and vfplane-ipam without losing an allocation.
)";
  vfplane::cni::IpamPlugin plugin;
  // IPAM never enters the pod's namespace, so the netns checks only guard against mistakes.
  return vfplane::cni::pluginMain(argc, argv, kHelp, plugin, {.allowOwnNetns = true});
}
