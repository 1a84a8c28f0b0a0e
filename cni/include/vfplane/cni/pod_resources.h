// The kubelet's PodResources API (v1.PodResourcesLister) as the CNI plugins read it, to find the
// devices a pod was given when a network names a resourceName and no deviceID: what Multus does
// for a NetworkAttachmentDefinition's k8s.v1.cni.cncf.io/resourceName, done by the plugin itself.
//
// The plugins are static binaries that a runtime execs on the host, so this holds no gRPC or
// protobuf runtime: one unary gRPC call over HTTP/2 (nghttp2) on the kubelet's Unix socket, and
// a decoder of the protobuf wire format for the few fields that matter (pod name and namespace,
// container resources, device IDs); every other field is skipped, as protobuf readers must.
// Where the socket is absent, the device manager's checkpoint file says the same by pod UID.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/cni/spec.h"

namespace vfplane::cni {

// The devices of one resource in one container, in the order the kubelet lists them.
struct ContainerDevices {
  std::string container;
  std::string resource;  // "intel.com/sriov_net_a"
  std::vector<std::string> ids;
};

struct PodResources {
  std::string ns;
  std::string name;
  std::vector<ContainerDevices> devices;
};

// ---- the wire format (pure; fuzzed) ---------------------------------------------------------

// ListPodResourcesResponse: every pod the kubelet knows.
Result<std::vector<PodResources>> parseListResponse(std::string_view message);
// GetPodResourcesResponse: one pod (nullopt when the answer holds none).
Result<std::optional<PodResources>> parseGetResponse(std::string_view message);
// GetPodResourcesRequest{name, namespace}.
std::string encodeGetRequest(std::string_view name, std::string_view ns);

// The kubelet's device manager checkpoint (device-plugins/kubelet_internal_checkpoint): the IDs of
// `resource` allocated to the pod with this UID, over all its containers, in file order. Both
// forms of DeviceIDs are read: a list (kubelet < 1.20) and NUMA node -> list.
Result<std::vector<std::string>> checkpointDevices(std::string_view json, std::string_view podUid,
                                                   std::string_view resource);

// ---- the call -------------------------------------------------------------------------------

struct GrpcReply {
  int status = 0;       // grpc-status: 0 OK, 12 UNIMPLEMENTED, ...
  std::string message;  // grpc-message, percent-decoded
  std::string body;     // the response message (without gRPC's 5-byte prefix)
};
inline constexpr int kGrpcUnimplemented = 12;

// One unary call (`path` as "/v1.PodResourcesLister/List") over HTTP/2 with prior knowledge on
// a Unix socket. Errors: the socket cannot be reached (ENOENT, ECONNREFUSED...), the deadline
// passes (ETIMEDOUT), the peer breaks the protocol (EPROTO). A gRPC error status is a reply.
Result<GrpcReply> grpcUnaryCall(const std::filesystem::path& socket, std::string_view path,
                                std::string_view request, std::chrono::milliseconds timeout);

// ---- a pod's devices ------------------------------------------------------------------------

struct PodRef {
  std::string ns;
  std::string name;
  std::string uid;  // may be empty: only the checkpoint needs it
  std::string str() const { return ns + "/" + name; }
};
// K8S_POD_NAMESPACE, K8S_POD_NAME and K8S_POD_UID from CNI_ARGS, as Multus and the CRI runtimes
// set them. Code 7 naming what is missing and `why` it is needed.
CniExpected<PodRef> podFromArgs(const Environment& env, std::string_view why);

// Where the kubelet keeps its sockets and state: its --root-dir (k0s, MicroK8s and others move it).
struct KubeletPaths {
  std::filesystem::path root = "/var/lib/kubelet";
  std::filesystem::path socket() const { return root / "pod-resources" / "kubelet.sock"; }
  std::filesystem::path checkpoint() const {
    return root / "device-plugins" / "kubelet_internal_checkpoint";
  }
};

struct PodDeviceList {
  std::vector<std::string> ids;  // in the kubelet's order: containers, then their lists
  std::string source;            // "PodResources Get", "PodResources List", "the device checkpoint"
};

// The IDs of `resource` the kubelet allocated to the pod: PodResources Get (kubelet 1.27+ with
// KubeletPodResourcesGet), List where Get is not served, and the device checkpoint where the
// socket is absent. Errors name the pod and the resource: code 11 when the kubelet cannot be asked
// now (refused, timed out, or the pod not yet known), code 7 when the pod has no such devices
// (it requests none) or there is no kubelet state at `paths` at all.
CniExpected<PodDeviceList> podDevices(const PodRef& pod, const std::string& resource,
                                      const KubeletPaths& paths, std::chrono::milliseconds timeout);

}  // namespace vfplane::cni
