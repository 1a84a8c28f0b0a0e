// The XDP fast path's loader: owns the program built into this binary (its skeleton is embedded
// at build time; no object file is read at run time), keeps its forwarding table equal to what
// the forwarding model compiles, attaches it to interfaces and reads its counters.
//
// Errors name the failing call: "load XDP router: bpf_object__load: Operation not permitted".
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "vfplane/dataplane/counters.h"
#include "vfplane/dataplane/forwarding_model.h"
#include "vfplane/ebpf/xdp_router_abi.h"
#include "vfplane/base/error.h"

struct vfp_xdp_router;

namespace vfplane::ebpf {

enum class XdpMode {
  kNative,   // in the driver (veth, most NICs)
  kGeneric,  // after the skb is built: works everywhere, for testing
};

// Packets seen by the program since it was loaded, summed over CPUs (txDropped and puntDropped
// stay 0: the kernel drops those itself).
using XdpCounters = dataplane::FastPathCounters;

// What install() changed.
struct InstallStats {
  size_t added = 0;
  size_t updated = 0;
  size_t removed = 0;
  size_t unchanged = 0;
};

class XdpRouter {
 public:
  struct Options {
    uint32_t maxEntries = 65536;  // forwarding table size
  };
  static Result<XdpRouter> load(const Options& options);

  XdpRouter(XdpRouter&&) noexcept;
  XdpRouter& operator=(XdpRouter&&) noexcept;
  ~XdpRouter();  // detaches from every interface it attached to

  // Makes the program's table equal to fib: writes only what changed and deletes what is gone,
  // so packets in flight always see either the old or the new entry, never a gap. Egress ports
  // of forwarding entries are added to the devmap before the entries that use them.
  Result<InstallStats> install(const std::vector<dataplane::FibEntry>& fib);

  // Declares an ingress port and its MAC: frames arriving elsewhere, or addressed to another MAC,
  // go to the kernel. attach() alone does not make a port.
  Result<void> setPort(int ifindex, const dataplane::MacAddress& mac);

  Result<void> attach(int ifindex, XdpMode mode);
  Result<void> detach(int ifindex);
  // Attaches the pass-through program, for the far end of a veth the router sends into (veth
  // hands redirected frames only to a peer that runs XDP). That end usually lives in another
  // namespace, so this attachment is not tracked: it goes with the device.
  Result<void> attachPass(int ifindex, XdpMode mode);

  Result<XdpCounters> counters() const;
  int routerFd() const;
  int passFd() const;
  size_t installedEntries() const { return installed_.size(); }

 private:
  struct SkeletonDeleter {
    void operator()(vfp_xdp_router* skel) const;
  };
  explicit XdpRouter(std::unique_ptr<vfp_xdp_router, SkeletonDeleter> skel) : skel_(std::move(skel)) {}
  Result<uint32_t> attachProgram(int ifindex, int progFd, XdpMode mode);

  std::unique_ptr<vfp_xdp_router, SkeletonDeleter> skel_;
  std::map<dataplane::Ipv4Prefix, vfp_fib_value> installed_;
  std::set<int> ports_;
  std::map<int, uint32_t> attached_;  // ifindex -> XDP flags used
};

}  // namespace vfplane::ebpf
