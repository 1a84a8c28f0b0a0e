// What the CNI reads from the kubelet: PodResources List and Get answers (protobuf wire format)
// and the device manager's checkpoint (JSON). The first byte picks the parser. Beyond not
// crashing: a refusal says why, and a Get answer agrees with the same bytes read as a List answer.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "vfplane/cni/pod_resources.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      auto pods = vfplane::cni::parseListResponse(text);
      if (!pods && pods.error().message().empty()) std::abort();
      break;
    }
    case 1: {
      auto pod = vfplane::cni::parseGetResponse(text);
      if (!pod && pod.error().message().empty()) std::abort();
      // GetPodResourcesResponse and ListPodResourcesResponse both hold PodResources as field 1,
      // once (Get merges repeats) or repeated (List): where every pod parses on its own, their
      // merge parses too and holds all their devices.
      auto list = vfplane::cni::parseListResponse(text);
      if (!list) break;
      if (!pod || pod->has_value() == list->empty()) std::abort();
      size_t devices = 0;
      for (const auto& p : *list) devices += p.devices.size();
      if (*pod && (**pod).devices.size() != devices) std::abort();
      break;
    }
    default: {
      auto ids = vfplane::cni::checkpointDevices(text, "uid-1", "intel.com/sriov");
      if (!ids && ids.error().message().empty()) std::abort();
      break;
    }
  }
  return 0;
}
