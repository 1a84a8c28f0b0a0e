#include "vfplane/cni/device_resource.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>

namespace vfplane::cni {
namespace {

constexpr std::chrono::milliseconds kKubeletTimeout{5000};

// Kubernetes' rule for an extended resource's name: a DNS subdomain prefix, '/', then up to 63
// of [A-Za-z0-9_.-] starting and ending alphanumeric.
std::optional<std::string> resourceNameProblem(std::string_view v) {
  size_t slash = v.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == v.size() ||
      v.find('/', slash + 1) != std::string_view::npos) {
    return "must be <prefix>/<name>, as in the NAD's k8s.v1.cni.cncf.io/resourceName (e.g. "
           "intel.com/sriov_net_a)";
  }
  std::string_view prefix = v.substr(0, slash), name = v.substr(slash + 1);
  for (char c : prefix) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-'))
      return fmt::format("the prefix \"{}\" must be a DNS name (lower case, digits, '.', '-')",
                         prefix);
  }
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (name.size() > 63 || !alnum(name.front()) || !alnum(name.back()))
    return fmt::format("the name \"{}\" must be 1-63 characters, alphanumeric at both ends", name);
  for (char c : name) {
    if (!alnum(c) && c != '_' && c != '.' && c != '-')
      return fmt::format("the name \"{}\" may hold only letters, digits, '_', '.' and '-'", name);
  }
  return std::nullopt;
}

}  // namespace

CniExpected<std::optional<DeviceResource>> parseDeviceResource(const ConfigKeys& keys) {
  auto name = keys.string("resourceName");
  if (!name) return std::unexpected(name.error());
  auto root = keys.string("kubeletRootDir");
  if (!root) return std::unexpected(root.error());
  if (!*name || (**name).empty()) {
    if (*root) return keys.invalid("kubeletRootDir", "is only read with \"resourceName\"");
    return std::optional<DeviceResource>();
  }
  if (auto problem = resourceNameProblem(**name)) return keys.invalid("resourceName", *problem);
  DeviceResource r{**name, {}};
  if (*root) {
    if ((**root).empty() || (**root)[0] != '/')
      return keys.invalid("kubeletRootDir", fmt::format("\"{}\" must be an absolute path", **root));
    r.kubelet.root = **root;
  }
  return std::optional<DeviceResource>(std::move(r));
}

CniExpected<ResourceDevices> resourceDevices(const DeviceResource& resource,
                                             const Environment& env) {
  auto pod = podFromArgs(env, fmt::format("resourceName {} (with no deviceID)", resource.name));
  if (!pod) return std::unexpected(pod.error());
  auto ids = podDevices(*pod, resource.name, resource.kubelet, kKubeletTimeout);
  if (!ids) return std::unexpected(ids.error());
  ResourceDevices out{*pod, {}, ids->source};
  for (const auto& id : ids->ids) {
    auto pci = sriov::PciAddress::parse(id);
    if (!pci) {
      return cniFail(ErrorCode::kInvalidConfig,
                     fmt::format("pod {}: device \"{}\" of {} (by {}) is not a PCI address: is {} "
                                 "a pool of vfplane-device-plugin or sriov-network-device-plugin?",
                                 pod->str(), id, resource.name, ids->source, resource.name));
    }
    out.devices.push_back(*pci);
  }
  return out;
}

std::unexpected<CniError> allDevicesTaken(const ResourceDevices& found,
                                          const std::vector<std::string>& holders,
                                          const std::string& resource) {
  return cniFail(
      ErrorCode::kInvalidConfig,
      fmt::format("pod {} has {} device{} of {} (by {}), all attached already: {}; "
                  "request one per network of this resource in resources.limits",
                  found.pod.str(), found.devices.size(), found.devices.size() == 1 ? "" : "s",
                  resource, found.source, fmt::join(holders, ", ")));
}

}  // namespace vfplane::cni
