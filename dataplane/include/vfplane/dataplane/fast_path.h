// The interface every fast path (XDP, DPDK) implements with the same signatures, so that the loop
// that follows the kernel (RouterLoop) is written once, above them.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/dataplane/counters.h"
#include "vfplane/dataplane/forwarding_model.h"

namespace vfplane::dataplane {

// What install() changed.
struct InstallStats {
  size_t added = 0;
  size_t updated = 0;
  size_t removed = 0;
  size_t unchanged = 0;
  size_t changed() const { return added + updated + removed; }
};

// The table entry by entry from what a fast path holds to what it must hold: the same diff for
// a backend that writes entries one by one (XDP) and one that rebuilds (DPDK) and only reports.
struct FibDiff {
  std::vector<FibEntry> upserts;  // added or updated, sorted by prefix
  std::vector<Prefix> removals;   // sorted
  InstallStats stats;
};
FibDiff diffFib(const std::map<Prefix, Action>& installed, const Fib& desired);

struct TableBuilds {
  uint64_t inPlace = 0;
  uint64_t rebuilt = 0;
};

// Frames per port: received on it, of those forwarded, and transmitted out of it.
struct PortCounters {
  std::string name;
  uint64_t rx = 0;
  uint64_t forwarded = 0;
  uint64_t tx = 0;
};

// A polling worker's loops, and those that received something (DPDK).
struct WorkerPolls {
  uint64_t polls = 0;
  uint64_t busy = 0;
};

// An interface of the router's network namespace that the fast path serves.
struct Port {
  int ifindex = 0;   // in the router's namespace: what the model's routes name
  std::string name;  // the kernel's name (a DPDK port's TAP mirror has the port's name)
  MacAddress mac;    // only frames sent to it are routed
};

class FastPath {
 public:
  virtual ~FastPath() = default;
  // "xdp", "dpdk": for logs and metric names.
  virtual const char* name() const = 0;
  // Starts routing frames that arrive on port addressed to its MAC; everything else it receives
  // goes to the kernel. Errors name the port.
  virtual Result<void> addPort(const Port& port) = 0;
  // Makes the table equal to fib (as ForwardingModel::compile() makes it). Packets in flight see
  // the old or the new entry, never a gap. Groups pick paths by flowHash() under the seed the
  // backend was created with.
  virtual Result<InstallStats> install(const Fib& fib) = 0;
  virtual Result<FastPathCounters> counters() const = 0;
  // By port, in the order addPort() saw them.
  virtual Result<std::vector<PortCounters>> portCounters() const = 0;
  // None for a fast path without polling workers.
  virtual std::vector<WorkerPolls> workerPolls() const { return {}; }
  // Installs that changed the tables in place and that built them anew; none for a fast path
  // that only ever changes them in place.
  virtual std::optional<TableBuilds> tableBuilds() const { return std::nullopt; }
  virtual size_t installedEntries() const = 0;
};

}  // namespace vfplane::dataplane
