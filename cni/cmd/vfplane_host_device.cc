// vfplane-host-device: the CNI plugin binary. Everything lives in the cni library.
#include "vfplane/cni/exec.h"
#include "vfplane/cni/host_device_plugin.h"

int main(int argc, char** argv) {
  constexpr const char* kHelp =
      R"(vfplane-host-device: CNI plugin that hands a whole host device to a pod.

It is run by the container runtime (or Multus) with CNI_* in the environment and the network
config on stdin; `vfplane cni exec` runs it by hand as a runtime would.

Commands: ADD, DEL, CHECK (cniVersion >= 0.4.0), GC and STATUS (1.1.0), VERSION.
Config: the reference host-device plugin's keys, unchanged. The device is named by one of
  device       its link name in the host
  hwaddr       its MAC
  kernelpath   its sysfs directory, /sys/devices/...
  pciBusID     its PCI address (runtimeConfig.deviceID, from Multus, wins over it)
A PCI device on vfio-pci or uio is not moved: only IPAM runs. "ipam" is optional; "vfplane-ipam"
runs in-process. logLevel, logFile as the other vfplane plugins. See docs/cni-host-device.md.

Environment read at start:
  VFPLANE_SYSFS_ROOT          directory holding sys/ (default /)
  VFPLANE_STATE_DIR           where each attachment's record is kept (default /var/lib/cni/vfplane)
  VFPLANE_CNI_ALLOW_OWN_NETNS=1  accept CNI_NETNS equal to the plugin's own namespace
)";
  vfplane::cni::HostDevicePluginOptions options;
  options.sysfsRoot = vfplane::cni::environmentOr("VFPLANE_SYSFS_ROOT", "/");
  options.stateDir = vfplane::cni::environmentOr("VFPLANE_STATE_DIR", "/var/lib/cni/vfplane");
  vfplane::cni::HostDevicePlugin plugin(options);
  return vfplane::cni::pluginMain(
      argc, argv, kHelp, plugin,
      {.allowOwnNetns = vfplane::cni::environmentOr("VFPLANE_CNI_ALLOW_OWN_NETNS", "") == "1"});
}
