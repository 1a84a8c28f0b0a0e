// What vfplane-sriov remembers between ADD and DEL, on disk under the state dir
// (default /var/lib/cni/vfplane):
//
//   attachments/<containerID>_<ifname>.json   the journal of one attachment
//   owners/<pci-address>.json                 which attachment holds a VF
//   locks/<pci-address>.lock                  the per-VF flock
//
// The journal is written before each step that changes the system, with that step marked as
// started, so that DEL (or GC, or the rollback of a failed ADD) can undo whatever may have
// happened, even after the plugin died in the middle. Files are replaced atomically (write,
// rename).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/base/files.h"
#include "vfplane/cni/plugin.h"
#include "vfplane/sriov/pci_address.h"
#include "vfplane/sriov/vf_config.h"

namespace vfplane::cni {

struct VfAttachment {
  std::string network;
  std::string containerId;
  std::string ifname;
  std::string netns;
  std::string cniVersion;
  sriov::PciAddress device{0, 0, 0, 0};
  // The resource the VF was chosen from, by the kubelet's allocation ("" when deviceID named it).
  std::string resourceName;
  std::string pf;  // PF netdev, for PF-side attributes
  int vfIndex = 0;
  bool dpdk = false;  // persisted: DEL must not guess from a driver that may have changed since

  // PF side.
  std::optional<sriov::VfState> pfSnapshot;
  sriov::VfSettings pfSettings;  // what ADD writes
  bool pfApplyStarted = false;

  // The VF netdev as it was in the host, to put back.
  std::string hostName;
  std::string hostMac;
  int hostMtu = 0;
  std::vector<std::string> removedAltnames;  // dropped because they clashed in the pod
  bool moveStarted = false;
  // What ADD left in the pod, for CHECK.
  std::string podMac;
  int podMtu = 0;

  bool ipamStarted = false;
  std::string ipamType;
  std::string config;  // the ADD's stdin, for the IPAM DEL

  bool complete = false;  // ADD returned a result
  bool stranded = false;  // DEL could not bring the VF home; GC retries
  std::string strandedReason;

  AttachmentId id() const { return {containerId, ifname}; }
};

nlohmann::json toJson(const VfAttachment& a);
Result<VfAttachment> attachmentFromJson(const nlohmann::json& j);

struct VfOwner {
  std::string containerId;
  std::string ifname;
  std::string netns;
  std::string network;
};

class AttachmentStore {
 public:
  explicit AttachmentStore(std::filesystem::path root) : root_(std::move(root)) {}
  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path lockDir() const { return root_ / "locks"; }

  Result<void> save(const VfAttachment& a) const;
  Result<std::optional<VfAttachment>> load(const AttachmentId& id) const;
  Result<void> remove(const AttachmentId& id) const;  // missing is fine
  // Every journal; unreadable ones are returned as errors in `problems` and skipped.
  Result<std::vector<VfAttachment>> list(std::vector<std::string>* problems = nullptr) const;

  Result<std::optional<VfOwner>> owner(const sriov::PciAddress& device) const;
  Result<void> setOwner(const sriov::PciAddress& device, const VfOwner& owner) const;
  Result<void> clearOwner(const sriov::PciAddress& device) const;
  // Clears the owner record only when `id` still owns the VF (another ADD may have taken it).
  Result<void> releaseOwner(const sriov::PciAddress& device, const AttachmentId& id) const;

  // Creates the directories and checks that they can be written (STATUS).
  Result<void> ensureWritable() const;

 private:
  std::filesystem::path attachmentPath(const AttachmentId& id) const;
  std::filesystem::path root_;
};

}  // namespace vfplane::cni
