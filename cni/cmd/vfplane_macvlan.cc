// vfplane-macvlan: the CNI plugin binary. Everything lives in the cni library.
#include "vfplane/cni/exec.h"
#include "vfplane/cni/macvlan_plugin.h"

int main(int argc, char** argv) {
  constexpr const char* kHelp =
      R"(vfplane-macvlan: CNI plugin that gives a pod a macvlan link on a host NIC.

It is run by the container runtime (or Multus) with CNI_* in the environment and the network
config on stdin; `vfplane cni exec` runs it by hand as a runtime would.

Commands: ADD, DEL, CHECK (cniVersion >= 0.4.0), GC and STATUS (1.1.0), VERSION.
Config: the reference macvlan plugin's keys, unchanged:
  master           host link to attach to (default: the link of the default route)
  linkInContainer  look the master up in the pod's namespace instead
  mode             bridge (default), private, vepa or passthru
  mtu              0 (the master's) up to the master's MTU
  mac              also from CNI_ARGS MAC=, args.cni.mac or runtimeConfig.mac
  ipam             optional; "vfplane-ipam" runs in-process, anything else is exec'd from
                   CNI_PATH. Without it the link is L2-only.
  logLevel, logFile
See docs/cni-macvlan.md.

Environment: VFPLANE_CNI_ALLOW_OWN_NETNS=1 accepts CNI_NETNS equal to the plugin's own namespace.
)";
  vfplane::cni::MacvlanPlugin plugin;
  return vfplane::cni::pluginMain(
      argc, argv, kHelp, plugin,
      {.allowOwnNetns = vfplane::cni::environmentOr("VFPLANE_CNI_ALLOW_OWN_NETNS", "") == "1"});
}
