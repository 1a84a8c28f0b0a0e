// The XDP fast path: the program built into this binary (ebpf/), its forwarding table kept equal
// to what the forwarding model compiles, attached to the router's ports.
//
// Errors name the failing call: "attach XDP to ifindex 4 (native): Operation not supported".
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/dataplane/dir24_8.h"
#include "vfplane/dataplane/fast_path.h"
#include "vfplane/dataplane/stride_table.h"
#include "vfplane/ebpf/xdp_router_program.h"

namespace vfplane::dataplane {

enum class XdpMode {
  kNative,   // in the driver (veth, most NICs)
  kGeneric,  // after the skb is built: works everywhere, for testing
};

class XdpRouter final : public FastPath {
 public:
  struct Options {
    // Routes per family: sizes each family's 8-bit groups (IPv4: one per /24 that holds longer
    // prefixes; IPv6: one per /16, /24, ... that does), maxEntries / 8 of them, 1024 to 65536,
    // and the next-hop groups (maxEntries / 16, 4096 to 65536, 520 bytes each).
    uint32_t maxEntries = 65536;
    XdpMode mode = XdpMode::kNative;  // how addPort() attaches
    uint32_t hashSeed = 0;            // seeds flowHash() for ECMP
  };
  static Result<XdpRouter> load(const Options& options);

  XdpRouter(XdpRouter&&) noexcept;
  XdpRouter& operator=(XdpRouter&&) noexcept;
  ~XdpRouter() override;  // detaches from every interface it attached to

  const char* name() const override { return "xdp"; }
  // setPort(), then attach() in the mode of the options.
  Result<void> addPort(const Port& port) override;
  // Writes only what changed and deletes what is gone, so packets in flight always see either
  // the old or the new entry, never a gap: egress ports and next-hop groups are added before the
  // entries that use them and removed after the last of those.
  Result<InstallStats> install(const Fib& fib) override;
  // Packets seen since the program was loaded, summed over CPUs (txDropped and puntDropped stay
  // 0: the kernel drops those itself).
  Result<FastPathCounters> counters() const override;
  Result<std::vector<PortCounters>> portCounters() const override;
  size_t installedEntries() const override { return installed_.size(); }

  // The two halves of addPort, for tests that run the program without attaching it:
  // declares an ingress port and its MAC (frames arriving elsewhere, or addressed to another
  // MAC, go to the kernel), and attaches the router program to a link.
  Result<void> setPort(int ifindex, const MacAddress& mac);
  Result<void> attach(int ifindex, XdpMode mode);
  Result<void> detach(int ifindex);
  // Attaches the pass-through program, for the far end of a veth the router sends into (veth
  // hands redirected frames only to a peer that runs XDP). That end usually lives in another
  // namespace, so this attachment is not tracked: it goes with the device.
  Result<void> attachPass(int ifindex, XdpMode mode);

  int routerFd() const { return program_->routerFd(); }
  int passFd() const { return program_->passFd(); }
  int groupsFd() const { return program_->groupsFd(); }
  // The group array's ids the installed routes use.
  std::set<uint32_t> groupIdsInUse() const;

 private:
  XdpRouter(Options options, ebpf::XdpRouterProgram program);
  Result<uint32_t> attachProgram(int ifindex, int progFd, XdpMode mode);
  Result<void> writeEntry(const Prefix& prefix, const Action& action);
  Result<void> deleteEntry(const Prefix& prefix);
  Result<uint32_t> newGroupId();
  Result<uint16_t> portSlot(int ifindex);  // the interface's slot, given on first use

  Options options_;
  std::unique_ptr<ebpf::XdpRouterProgram> program_;
  std::unique_ptr<Dir24_8> fib4_;      // over the program's mapped IPv4 arrays
  std::unique_ptr<StrideTable> fib6_;  // and its IPv6 ones
  std::map<Prefix, Action> installed_;
  std::map<NextHopGroup, uint32_t> liveGroups_;  // what the group array holds for the routes
  // Group ids index the program's group array (below groupIds_, which fits the IPv4 entry's 20
  // bits): fresh ones first, then the longest freed, and a freed id only once kGroupReuseDelay
  // has passed since the last route left it, long after any packet that read it is gone.
  static constexpr auto kGroupReuseDelay = Dir24_8::kGroupReuseDelay;
  uint32_t groupIds_ = 0;
  uint32_t nextGroupId_ = 1;
  std::deque<std::pair<uint32_t, Dir24_8::Clock::time_point>> freedGroupIds_;
  std::map<int, uint16_t> slots_;     // ifindex -> slot in the port counters and tx_ports
  std::map<int, std::string> names_;  // ifindex -> the name addPort() gave
  std::set<uint16_t> txPorts_;        // slots in the egress devmap
  std::map<int, uint32_t> attached_;  // ifindex -> XDP flags used
};

}  // namespace vfplane::dataplane
