// Moving a host netdev into a pod and bringing it home: the one routine vfplane-sriov and
// vfplane-host-device share, so that both name, rename and restore a device alike.
//
// A move is one netlink request: into the target namespace, renamed, and configured there (MAC,
// MTU, alias, up, arp_notify) by the kernel right after the move. No temporary name, no window
// in which udev sees a half-done rename. Altnames travel with a link, so one that already names
// a link on the other side would make the move fail with EEXIST; those are dropped first, and the
// ones dropped on the way in are given back at home.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vfplane/cni/spec.h"
#include "vfplane/netlink/netns.h"
#include "vfplane/netlink/rtnl.h"
#include "vfplane/sriov/pci_address.h"

namespace vfplane::cni {

// The host's and the pod's rtnetlink clients for one request, each opened when first needed
// (a DPDK-mode ADD needs neither). Errors are code 5.
class NamespaceClients {
 public:
  // podNs may be null (a DEL whose namespace is gone); pod() is then an error.
  NamespaceClients(const netlink::ClientFactory& factory, const netlink::Netns* podNs)
      : factory_(factory), podNs_(podNs) {}
  CniExpected<netlink::Client*> host();
  CniExpected<netlink::Client*> pod();
  // Both, for a request that needs the two.
  CniExpected<std::pair<netlink::Client*, netlink::Client*>> hostAndPod();
  // Another namespace than the request's, by handle (a journal's, for a DEL or a reclaim).
  CniExpected<std::unique_ptr<netlink::Client>> open(const netlink::Netns& ns) const;

 private:
  const netlink::ClientFactory& factory_;
  const netlink::Netns* podNs_;
  std::unique_ptr<netlink::Client> host_, pod_;
};

// The name a netdev comes home under when its own is taken meanwhile (udev, another plugin, an
// operator): after its PCI function when it has one ("pci" and 9 hex digits: pci00003b0201 for
// 0000:3b:02.1), else after its index in the pod ("if" and the index). Unique, and inside the
// kernel's 15 bytes.
std::string fallbackName(const netlink::LinkInfo& podLink,
                         const std::optional<sriov::PciAddress>& pci);

// The link's altnames that already name a link in `other`: the move would fail on them.
CniExpected<std::vector<std::string>> clashingAltnames(netlink::Client& other,
                                                       const netlink::LinkInfo& link);

struct MoveIntoPod {
  netlink::LinkInfo hostLink;  // as the host sees it now
  std::string podName;         // CNI_IFNAME
  netlink::LinkChange then;    // applied in the pod by the same request; its name is ignored
  std::vector<std::string> dropAltnames;  // from clashingAltnames(pod, hostLink)
};

// Drops m.dropAltnames in the host, then moves, renames and configures the link in one request.
// Returns the link as the pod sees it. Errors are code 5 naming the step; when the move itself
// fails the link is still at home and gets its altnames back. A link that moved but is not found
// in the pod is the caller's to roll back (its record says what was done).
CniExpected<netlink::LinkInfo> moveIntoPod(netlink::Client& host, netlink::Client& pod,
                                           const netlink::Netns& podNs, const MoveIntoPod& m);

struct BringHome {
  netlink::LinkInfo podLink;             // as the pod sees it now
  std::string home;                      // the name it had in the host
  std::optional<sriov::PciAddress> pci;  // for the fallback name
  netlink::LinkChange restore;           // MAC, MTU, alias: applied at home by the move request
  std::vector<std::string> altnames;     // to give back at home (dropped on the way in)
};

struct Homecoming {
  std::string name;       // what it is called at home now
  bool fallback = false;  // its own name was taken
};

// Brings the link home under its own name, or fallbackName() when that is taken (logged); drops
// its pod-side altnames that would clash at home first, and gives b.altnames back once home
// (those still free). A MAC or MTU the device refuses must not keep it in the pod: the move is
// then retried without them. Errors (code 5): both names taken, or the move failed.
CniExpected<Homecoming> bringHome(netlink::Client& pod, netlink::Client& host,
                                  const netlink::Netns& hostNs, const BringHome& b,
                                  spdlog::logger& log);

}  // namespace vfplane::cni
