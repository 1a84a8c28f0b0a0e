// vfplane-sriov: hands an SR-IOV VF to a pod, as a kernel netdev or (VF on vfio-pci/uio) as a
// PCI device for DPDK, with sriov-cni's config.
//
// ADD, in order: validate; lock the VF (flock with a timeout); refuse a VF that a live namespace
// owns (code 11, owner named). Then a plan that changes nothing (planAdd): resolve the VF from
// sysfs by PCI address; snapshot the PF-side VF attributes and the netdev's name, MAC and MTU.
// Then its execution: apply the configured PF-side attributes; move and rename the netdev into
// the pod in one request that also sets MAC, MTU, arp_notify and up (after dropping altnames
// that clash there); run IPAM and put its addresses and routes on the link. Each step is
// journaled before it runs. If one fails, the journal is played back as a DEL.
//
// DEL plays the journal back: IPAM release, netdev home (name, MAC, MTU, altnames), PF-side
// attributes restored. It is idempotent. A VF that cannot be brought home is kept in the journal
// as stranded and retried by GC and by the next ADD of that VF; DEL itself still succeeds, so a
// pod never hangs in Terminating on it.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>

#include "vfplane/cni/attachment_store.h"
#include "vfplane/cni/netdev_move.h"
#include "vfplane/cni/plugin.h"
#include "vfplane/cni/sriov_config.h"
#include "vfplane/sriov/device_lock.h"
#include "vfplane/sriov/sysfs.h"
#include "vfplane/sriov/vf_config.h"

namespace vfplane::cni {

struct SriovPluginOptions {
  std::filesystem::path sysfsRoot = "/";
  std::filesystem::path stateDir = "/var/lib/cni/vfplane";
  std::chrono::milliseconds lockTimeout{10000};
  netlink::ClientFactory clients = netlink::kernelClients();
};

// What an ADD will do to which VF, decided before anything is touched.
struct SriovAddPlan {
  // The journal as ADD will write it: the VF, its PF and index, the mode, the PF-side attributes
  // to set and the snapshot to put back, the host netdev's name, MAC and MTU, and the altnames
  // that must go because they name a link in the pod.
  VfAttachment attachment;
  std::optional<netlink::LinkInfo> hostLink;  // the netdev that moves; nullopt in DPDK mode
  netlink::LinkChange podChange;              // MAC, MTU, arp_notify, up: set by the move
};

class StepClock;

class SriovPlugin final : public Plugin {
 public:
  // vf is borrowed and must outlive the plugin.
  SriovPlugin(SriovPluginOptions options, sriov::VfConfigurator* vf);

  CniExpected<NetResult> add(Request& req) override;
  CniExpected<void> del(Request& req) override;
  CniExpected<void> check(Request& req) override;
  CniExpected<void> gc(Request& req) override;
  CniExpected<void> status(Request& req) override;

  // ADD's first half: resolves the VF from sysfs, reads its PF-side attributes and both
  // namespaces' links, and checks them against the config; writes nothing. Errors are the ones
  // ADD returns (code 7 for the config or the VF, 4 for a CNI_IFNAME taken in the pod, 11 for a
  // netdev that is not back in the host yet).
  CniExpected<SriovAddPlan> planAdd(const Request& req, const SriovConfig& cfg,
                                    NamespaceClients& ns) const;

 private:
  // ADD's second half: journal, PF-side attributes, the move, IPAM, with the journal played back
  // on any failure.
  CniExpected<NetResult> executeAdd(Request& req, SriovAddPlan plan, NamespaceClients& ns,
                                    StepClock& clock);
  struct Teardown {
    bool stranded = false;
    std::string reason;
  };
  // Undoes whatever the journal says may have been done, every step even if one fails, and saves
  // what is left. IPAM and PF-side errors are returned (the runtime retries DEL) unless
  // ipamBestEffort (a rollback: the delegate's own ADD may be what failed); a VF that cannot come
  // home is reported in Teardown, not as an error.
  CniExpected<Teardown> teardown(VfAttachment& a, const Environment& env, bool ipamBestEffort);
  CniExpected<void> bringHome(VfAttachment& a, Teardown& out, spdlog::logger& log);
  // Releases what a dead owner left behind on this VF before a new ADD takes it.
  // The per-VF flock, as a CNI error: code 11 on timeout.
  CniExpected<sriov::DeviceLock> lockVf(const sriov::PciAddress& device) const;
  CniExpected<void> reclaim(const sriov::PciAddress& device, const VfOwner& owner,
                            const Environment& env);

  SriovPluginOptions options_;
  sriov::Sysfs sysfs_;
  AttachmentStore store_;
  sriov::VfConfigurator* vf_;
};

}  // namespace vfplane::cni
