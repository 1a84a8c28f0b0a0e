#include "vfplane/ebpf/xdp_router_program.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/mman.h>
#include <unistd.h>

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

// The whole of an mmapable array map of vfp_dir_pair (8-byte elements, as the kernel lays out
// every array), as the __u32 entries it holds, shared with the program.
Result<std::span<uint32_t>> mapWords(bpf_map* map, std::string_view what) {
  size_t words = size_t{bpf_map__max_entries(map)} * 2;
  size_t bytes = words * sizeof(uint32_t);
  size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  bytes = (bytes + page - 1) / page * page;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(map), 0);
  if (p == MAP_FAILED) {
    return fail(systemError(std::string("load XDP router: mmap ") + std::string(what), errno));
  }
  return std::span<uint32_t>(static_cast<uint32_t*>(p), words);
}

}  // namespace

XdpRouterProgram::Mapping& XdpRouterProgram::Mapping::operator=(Mapping&& o) noexcept {
  if (this != &o) {
    if (words.data()) ::munmap(words.data(), words.size_bytes());
    words = std::exchange(o.words, {});
  }
  return *this;
}

XdpRouterProgram::Mapping::~Mapping() {
  if (words.data()) ::munmap(words.data(), words.size_bytes());
}

void XdpRouterProgram::Destroy::operator()(vfp_xdp_router* skel) const {
  vfp_xdp_router__destroy(skel);
}

Result<XdpRouterProgram> XdpRouterProgram::load(uint32_t tbl8Groups, uint32_t groupIds,
                                                uint32_t hashSeed) {
  std::unique_ptr<vfp_xdp_router, Destroy> skel(vfp_xdp_router__open());
  if (!skel) return fail(systemError("load XDP router: open skeleton", errno));
  if (int rc = bpf_map__set_max_entries(skel->maps.tbl8, tbl8Groups * 128); rc != 0)
    return fail(bpfError("load XDP router: size the IPv4 table's groups", rc));
  if (int rc = bpf_map__set_max_entries(skel->maps.tbl8_6, tbl8Groups * 128); rc != 0)
    return fail(bpfError("load XDP router: size the IPv6 table's groups", rc));
  if (int rc = bpf_map__set_max_entries(skel->maps.groups, groupIds); rc != 0)
    return fail(bpfError("load XDP router: size the next-hop groups", rc));
  skel->rodata->hash_seed = hashSeed;
  if (int rc = vfp_xdp_router__load(skel.get()); rc != 0) {
    return fail(bpfError("load XDP router: bpf_object__load", rc));
  }
  Mapping maps[4];
  const std::pair<bpf_map*, const char*> arrays[] = {{skel->maps.tbl24, "tbl24"},
                                                     {skel->maps.tbl8, "tbl8"},
                                                     {skel->maps.tbl16, "tbl16"},
                                                     {skel->maps.tbl8_6, "tbl8_6"}};
  for (size_t i = 0; i < 4; ++i) {
    auto words = mapWords(arrays[i].first, arrays[i].second);
    if (!words) return fail(std::move(words.error()));
    maps[i] = Mapping(*words);
  }
  return XdpRouterProgram(std::move(skel), std::move(maps[0]), std::move(maps[1]),
                          std::move(maps[2]), std::move(maps[3]));
}

int XdpRouterProgram::routerFd() const { return bpf_program__fd(skel_->progs.vfp_xdp_router); }
int XdpRouterProgram::passFd() const { return bpf_program__fd(skel_->progs.vfp_xdp_pass); }
int XdpRouterProgram::groupsFd() const { return bpf_map__fd(skel_->maps.groups); }
int XdpRouterProgram::txPortsFd() const { return bpf_map__fd(skel_->maps.tx_ports); }
int XdpRouterProgram::portsFd() const { return bpf_map__fd(skel_->maps.ports); }
int XdpRouterProgram::portsHighFd() const { return bpf_map__fd(skel_->maps.ports_high); }
int XdpRouterProgram::countersFd() const { return bpf_map__fd(skel_->maps.counters); }
int XdpRouterProgram::portCountersFd() const { return bpf_map__fd(skel_->maps.port_counters); }

}  // namespace vfplane::ebpf
