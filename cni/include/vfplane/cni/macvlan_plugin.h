// vfplane-macvlan: a macvlan link on a host NIC for a pod, with the reference macvlan plugin's
// config unchanged.
//
// ADD: resolve the master (the config's, else the link of the default route; with
// linkInContainer it is looked up in the pod); refuse a CNI_IFNAME that already exists in the pod;
// create the macvlan directly in the pod's namespace under a temporary name (one request: the link
// never exists in the host); rename it, set arp_notify and bring it up (one request); then IPAM and
// the pod's addresses and routes. Any failure deletes the link and releases IPAM.
// DEL: IPAM first, then the link; a missing link or netns is success.
// CHECK: kind, mode, master, MTU, MAC and addresses, and the IPAM delegate's CHECK.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "vfplane/cni/plugin.h"
#include "vfplane/netlink/rtnl.h"

namespace vfplane::cni {

struct MacvlanConfig {
  std::string master;  // "" : the default route's link
  uint32_t mode = 0;   // MACVLAN_MODE_*
  std::string modeName = "bridge";
  int mtu = 0;  // 0: the kernel's choice (the master's MTU)
  std::optional<netlink::MacAddress> mac;
  bool linkInContainer = false;
};

// "master", "mode" (bridge, private, vepa, passthru), "mtu" (0 up to the master's; checked at ADD),
// "mac" (then CNI_ARGS MAC=, args.cni.mac, runtimeConfig.mac), "linkInContainer". Code 7 naming
// the key.
CniExpected<MacvlanConfig> parseMacvlanConfig(const NetConf& conf, const Environment& env);

// "bridge" for MACVLAN_MODE_BRIDGE, ...; "" for a mode vfplane does not create.
std::string macvlanModeName(uint32_t mode);

struct MacvlanPluginOptions {
  netlink::ClientFactory clients = netlink::kernelClients();
};

class MacvlanPlugin final : public Plugin {
 public:
  explicit MacvlanPlugin(MacvlanPluginOptions options = {}) : options_(std::move(options)) {}
  CniExpected<NetResult> add(Request& req) override;
  CniExpected<void> del(Request& req) override;
  CniExpected<void> check(Request& req) override;
  CniExpected<void> gc(Request& req) override;
  CniExpected<void> status(Request& req) override;

 private:
  MacvlanPluginOptions options_;
};

}  // namespace vfplane::cni
