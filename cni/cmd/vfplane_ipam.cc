// vfplane-ipam: the IPAM plugin binary, host-local compatible. Interface plugins of vfplane run
// the same code in-process when ipam.type is "vfplane-ipam"; this binary serves every other
// plugin (and runtimes) that exec IPAM as the spec says.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <string>

#include "vfplane/cni/exec.h"
#include "vfplane/cni/ipam.h"

int main(int argc, char** argv) {
  if (argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::fputs(R"(vfplane-ipam: host-local compatible CNI IPAM plugin (run by a CNI plugin or runtime).

Config: host-local's "ipam" section unchanged: "ranges" (range sets of subnet, rangeStart,
rangeEnd, gateway) or the legacy "subnet" form, "routes", "dataDir" (default
/var/lib/cni/networks). Requested addresses from args.cni.ips, runtimeConfig.ips or CNI_ARGS IP=.
State: host-local's files in <dataDir>/<network>/, under its "lock" file, so a network can move
between host-local and vfplane-ipam without losing an allocation.
)",
               stdout);
    return 0;
  }
  using namespace vfplane;
  std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  cni::IpamPlugin plugin;
  // IPAM never enters the pod's namespace, so the netns checks only guard against mistakes.
  auto outcome = cni::runPlugin(plugin, cni::currentEnvironment(), input, cni::RunOptions{.allowOwnNetns = true});
  std::fwrite(outcome.out.data(), 1, outcome.out.size(), stdout);
  std::fflush(stdout);
  return outcome.exitCode;
}
