// The live state of one resource: its devices and their health, shared between the rescan and
// health machinery (writers) and the gRPC handlers (readers). Every change bumps a version and
// wakes ListAndWatch streams.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "vfplane/dp/pool.h"

namespace vfplane::dp {

struct DeviceHealth {
  bool healthy = true;
  std::string reason;  // why unhealthy, for logs
  bool operator==(const DeviceHealth&) const = default;
};

// What makes a device unhealthy, computed from facts without I/O.
struct HealthFacts {
  std::set<std::string> presentIds;            // devices sysfs still shows
  std::map<std::string, std::string> drivers;  // current driver per id ("" if unbound)
  std::set<std::string> pfNetdevsWithoutCarrier;
};

// Unhealthy when the device vanished from sysfs, when its driver moved away from the drivers
// the pool's selectors name, or when its PF has no carrier.
DeviceHealth judgeHealth(const ResourcePool& pool, const PoolDevice& device,
                         const HealthFacts& facts);

struct PoolSnapshot {
  uint64_t version = 0;
  ResourcePool pool;
  std::map<std::string, DeviceHealth> health;  // by id; every device has an entry
  bool isHealthy(const std::string& id) const;
};

class PoolState {
 public:
  explicit PoolState(ResourcePool pool);

  // The current state, immutable and shared: readers on the RPC path take a reference instead of
  // copying hundreds of devices.
  std::shared_ptr<const PoolSnapshot> snapshot() const;
  const std::string& name() const { return name_; }

  // Replaces the devices after a rescan or reload. A device that leaves the pool but was
  // allocated since start stays listed, Unhealthy, so the kubelet never loses track of it.
  // Returns the health flips and membership changes as log lines.
  std::vector<std::string> update(ResourcePool pool, const HealthFacts& facts);
  void markAllocated(const std::vector<std::string>& ids);

  // Blocks until the version differs from `seen`, `stop` is set (then wake() is called), or the
  // timeout passes. Returns the current version.
  uint64_t waitForChange(uint64_t seen, std::chrono::milliseconds timeout,
                         const std::atomic<bool>& stop) const;
  // Wakes every waiter so that it rechecks its stop flag.
  void wake() const;

 private:
  std::string name_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::shared_ptr<const PoolSnapshot> state_;
  std::set<std::string> allocated_;
};

}  // namespace vfplane::dp
