#include "vfplane/ebpf/xdp_router_program.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>

// The generated skeleton is C; its embedded object bytes trip warnings meant for our own code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "xdp_router.skel.h"
#pragma GCC diagnostic pop

namespace vfplane::ebpf {
namespace {

// libbpf returns -errno (and sets errno) on failure.
Error bpfError(std::string_view what, int rc) { return systemError(what, rc < 0 ? -rc : errno); }

}  // namespace

void XdpRouterProgram::Destroy::operator()(vfp_xdp_router* skel) const {
  vfp_xdp_router__destroy(skel);
}

Result<XdpRouterProgram> XdpRouterProgram::load(uint32_t fibEntries, uint32_t hashSeed) {
  std::unique_ptr<vfp_xdp_router, Destroy> skel(vfp_xdp_router__open());
  if (!skel) return fail(systemError("load XDP router: open skeleton", errno));
  for (bpf_map* map : {skel->maps.fib4, skel->maps.fib6}) {
    if (int rc = bpf_map__set_max_entries(map, fibEntries); rc != 0) {
      return fail(bpfError("load XDP router: size the forwarding tables", rc));
    }
  }
  skel->rodata->hash_seed = hashSeed;
  if (int rc = vfp_xdp_router__load(skel.get()); rc != 0) {
    return fail(bpfError("load XDP router: bpf_object__load", rc));
  }
  return XdpRouterProgram(std::move(skel));
}

int XdpRouterProgram::routerFd() const { return bpf_program__fd(skel_->progs.vfp_xdp_router); }
int XdpRouterProgram::passFd() const { return bpf_program__fd(skel_->progs.vfp_xdp_pass); }
int XdpRouterProgram::fib4Fd() const { return bpf_map__fd(skel_->maps.fib4); }
int XdpRouterProgram::fib6Fd() const { return bpf_map__fd(skel_->maps.fib6); }
int XdpRouterProgram::groupsFd() const { return bpf_map__fd(skel_->maps.groups); }
int XdpRouterProgram::txPortsFd() const { return bpf_map__fd(skel_->maps.tx_ports); }
int XdpRouterProgram::portsFd() const { return bpf_map__fd(skel_->maps.ports); }
int XdpRouterProgram::countersFd() const { return bpf_map__fd(skel_->maps.counters); }
int XdpRouterProgram::portCountersFd() const { return bpf_map__fd(skel_->maps.port_counters); }

}  // namespace vfplane::ebpf
