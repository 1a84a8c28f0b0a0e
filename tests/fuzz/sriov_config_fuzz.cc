// vfplane-sriov's config arrives on stdin from whatever wrote the NetworkAttachmentDefinition.
// Beyond not crashing: an accepted config holds only values inside the ranges the plugin
// promises, and a refused one is a CNI error with a spec code.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "vfplane/cni/sriov_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vfplane::cni;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  static const auto env = parseEnvironment({{"CNI_COMMAND", "ADD"},
                                            {"CNI_CONTAINERID", "c"},
                                            {"CNI_NETNS", "/x"},
                                            {"CNI_IFNAME", "net1"},
                                            {"CNI_PATH", "/usr/lib/cni"}});
  auto conf = parseNetConf(text);
  if (!conf) {
    int code = static_cast<int>(conf.error().code);
    if (code != 1 && code != 6 && code != 7) std::abort();
    return 0;
  }
  auto c = parseSriovConfig(*conf, *env);
  if (!c) {
    if (c.error().code != ErrorCode::kInvalidConfig || c.error().msg.empty()) std::abort();
    return 0;
  }
  const auto& vf = c->vf;
  if (vf.vlan && (*vf.vlan < 0 || *vf.vlan > 4094)) std::abort();
  if (vf.qos && (!vf.vlan || *vf.qos < 0 || *vf.qos > 7)) std::abort();
  if (vf.vlanProto && !vf.vlan) std::abort();
  if (c->mtu && (*c->mtu < 68 || *c->mtu > 65535)) std::abort();
  if (c->mac && ((c->mac->bytes[0] & 1) || c->mac->isZero())) std::abort();
  if (c->deviceId && c->deviceId->str().find('/') != std::string::npos) std::abort();
  return 0;
}
