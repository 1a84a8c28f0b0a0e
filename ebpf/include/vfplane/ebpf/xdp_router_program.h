// The XDP router program built into this binary: its skeleton (embedded at build time, so no
// object file is read at run time) opened, sized and loaded, with one owner.
//
// What the maps hold is xdp_router_abi.h; what goes into them is the XDP backend's business
// (dataplane/xdp). Errors name the failing call: "load XDP router: bpf_object__load: ...".
#pragma once

#include <cstdint>
#include <memory>

#include "vfplane/base/error.h"
#include "vfplane/ebpf/xdp_router_abi.h"

struct vfp_xdp_router;

namespace vfplane::ebpf {

class XdpRouterProgram {
 public:
  // fibEntries sizes each forwarding table (LPM tries of vfp_fib4_key and vfp_fib6_key ->
  // vfp_fib_value); hashSeed seeds the ECMP flow hash.
  static Result<XdpRouterProgram> load(uint32_t fibEntries, uint32_t hashSeed);

  int routerFd() const;        // the router program
  int passFd() const;          // the pass-through program, for the far ends of veth links
  int fib4Fd() const;          // vfp_fib4_key -> vfp_fib_value
  int fib6Fd() const;          // vfp_fib6_key -> vfp_fib_value
  int groupsFd() const;        // group id -> vfp_group
  int txPortsFd() const;       // devmap of egress ifindexes
  int portsFd() const;         // ingress ifindex -> vfp_port
  int countersFd() const;      // per-CPU array of VFP_CNT_* slots
  int portCountersFd() const;  // per-CPU array of vfp_port_counters by port slot

 private:
  struct Destroy {
    void operator()(vfp_xdp_router* skel) const;
  };
  explicit XdpRouterProgram(std::unique_ptr<vfp_xdp_router, Destroy> skel)
      : skel_(std::move(skel)) {}
  std::unique_ptr<vfp_xdp_router, Destroy> skel_;
};

}  // namespace vfplane::ebpf
