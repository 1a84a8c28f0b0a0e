// vfplane-macvlan's and vfplane-host-device's configs arrive on stdin from whatever wrote the
// NetworkAttachmentDefinition. Beyond not crashing: an accepted config holds only values the
// plugins promise (a known macvlan mode, an MTU in range, a unicast MAC, a kernelpath that stays
// under /sys/devices/, a PCI address with no path in it), and a refused one is code 7.
#include <linux/if_link.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "vfplane/cni/host_device_plugin.h"
#include "vfplane/cni/macvlan_plugin.h"

// Aborts with the broken promise and the input that broke it.
#define PROMISE(cond)                                                                         \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "broken: %s\ninput: %.*s\n", #cond, static_cast<int>(text.size()), \
                   text.data());                                                              \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vfplane::cni;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  static const auto env = parseEnvironment({{"CNI_COMMAND", "ADD"},
                                            {"CNI_CONTAINERID", "c"},
                                            {"CNI_NETNS", "/x"},
                                            {"CNI_IFNAME", "net1"},
                                            {"CNI_PATH", "/usr/lib/cni"},
                                            {"CNI_ARGS", "MAC=0a:00:00:00:00:01"}});
  auto conf = parseNetConf(text);
  if (!conf) {
    int code = static_cast<int>(conf.error().code);
    PROMISE(code == 1 || code == 6 || code == 7);
    return 0;
  }
  if (auto m = parseMacvlanConfig(*conf, *env); m) {
    PROMISE(!macvlanModeName(m->mode).empty() && m->mtu >= 0 && m->mtu <= 65535);
    PROMISE(!m->mac || (!(m->mac->bytes[0] & 1) && !m->mac->isZero()));
  } else {
    PROMISE(m.error().code == ErrorCode::kInvalidConfig && !m.error().msg.empty());
  }
  if (auto h = parseHostDeviceConfig(*conf); h) {
    PROMISE(h->pci || !h->device.empty() || h->hwaddr || !h->kernelPath.empty());
    PROMISE(h->kernelPath.empty() || (h->kernelPath.starts_with("/sys/devices/") &&
                                      h->kernelPath.find("/../") == std::string::npos));
    PROMISE(!h->pci || h->pci->str().find('/') == std::string::npos);
  } else {
    PROMISE(h.error().code == ErrorCode::kInvalidConfig && !h.error().msg.empty());
  }
  return 0;
}
