// The XDP router program built into this binary: its skeleton (embedded at build time, so no
// object file is read at run time) opened, sized and loaded, with one owner.
//
// What the maps hold is xdp_router_abi.h; what goes into them is the XDP backend's business
// (dataplane/xdp). Errors name the failing call: "load XDP router: bpf_object__load: ...".
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <utility>

#include "vfplane/base/error.h"
#include "vfplane/ebpf/xdp_router_abi.h"

struct vfp_xdp_router;

namespace vfplane::ebpf {

class XdpRouterProgram {
 public:
  // tbl8Groups sizes each family's table of 8-bit groups (IPv4 prefixes longer than /24, IPv6
  // ones longer than /16: one group per level a prefix reaches); groupIds the next-hop group
  // array (ids 0 to groupIds - 1); hashSeed seeds the ECMP flow hash. The tables' arrays come
  // mapped into this process, zeroed.
  static Result<XdpRouterProgram> load(uint32_t tbl8Groups, uint32_t groupIds, uint32_t hashSeed);
  XdpRouterProgram(XdpRouterProgram&&) noexcept = default;
  XdpRouterProgram& operator=(XdpRouterProgram&&) noexcept = default;

  int routerFd() const;  // the router program
  int passFd() const;    // the pass-through program, for the far ends of veth links
  std::span<uint32_t> tbl24() const { return tbl24_.words; }    // VFP_TBL24_ENTRIES entries
  std::span<uint32_t> tbl8() const { return tbl8_.words; }      // tbl8Groups x 256 entries
  std::span<uint32_t> tbl16() const { return tbl16_.words; }    // VFP_TBL16_ENTRIES entries
  std::span<uint32_t> tbl8v6() const { return tbl8v6_.words; }  // tbl8Groups x 256 entries
  int groupsFd() const;                                         // array: group id -> vfp_group
  int txPortsFd() const;                                        // devmap: port slot -> ifindex
  int portsFd() const;         // array: ingress ifindex below VFP_PORT_DIRECT -> vfp_port
  int portsHighFd() const;     // hash: ingress ifindex from VFP_PORT_DIRECT up -> vfp_port
  int countersFd() const;      // per-CPU array of VFP_CNT_* slots
  int portCountersFd() const;  // per-CPU array of vfp_port_counters by port slot

 private:
  struct Destroy {
    void operator()(vfp_xdp_router* skel) const;
  };
  // An mmapped BPF array, unmapped with its owner.
  struct Mapping {
    std::span<uint32_t> words;
    Mapping() = default;
    explicit Mapping(std::span<uint32_t> w) : words(w) {}
    Mapping(Mapping&& o) noexcept : words(std::exchange(o.words, {})) {}
    Mapping& operator=(Mapping&& o) noexcept;
    ~Mapping();
  };
  XdpRouterProgram(std::unique_ptr<vfp_xdp_router, Destroy> skel, Mapping tbl24, Mapping tbl8,
                   Mapping tbl16, Mapping tbl8v6)
      : skel_(std::move(skel)),
        tbl24_(std::move(tbl24)),
        tbl8_(std::move(tbl8)),
        tbl16_(std::move(tbl16)),
        tbl8v6_(std::move(tbl8v6)) {}
  // Unmapped before the skeleton closes the maps: members go in reverse order.
  std::unique_ptr<vfp_xdp_router, Destroy> skel_;
  Mapping tbl24_, tbl8_, tbl16_, tbl8v6_;
};

}  // namespace vfplane::ebpf
