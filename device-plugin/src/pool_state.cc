#include "vfplane/dp/pool_state.h"

#include <fmt/format.h>

#include <algorithm>

namespace vfplane::dp {

DeviceHealth judgeHealth(const ResourcePool& pool, const PoolDevice& device,
                         const HealthFacts& facts) {
  if (!facts.presentIds.contains(device.id)) return {false, "gone from sysfs"};
  std::set<std::string> drivers;
  for (const auto& s : pool.config.selectors) drivers.insert(s.drivers.begin(), s.drivers.end());
  if (!drivers.empty()) {
    auto it = facts.drivers.find(device.id);
    std::string now = it == facts.drivers.end() ? "" : it->second;
    if (!drivers.contains(now)) {
      return {false,
              now.empty() ? "unbound from its driver" : fmt::format("driver changed to {}", now)};
    }
  }
  if (!device.pfNetdev.empty() && facts.pfNetdevsWithoutCarrier.contains(device.pfNetdev)) {
    return {false, fmt::format("PF {} has no carrier", device.pfNetdev)};
  }
  return {true, ""};
}

bool PoolSnapshot::isHealthy(const std::string& id) const {
  auto it = health.find(id);
  return it != health.end() && it->second.healthy;
}

PoolState::PoolState(ResourcePool pool) : name_(pool.name) {
  auto snap = std::make_shared<PoolSnapshot>();
  snap->version = 1;
  for (const auto& d : pool.devices) snap->health[d.id] = DeviceHealth{};
  snap->pool = std::move(pool);
  state_ = std::move(snap);
}

std::shared_ptr<const PoolSnapshot> PoolState::snapshot() const {
  std::lock_guard lock(mu_);
  return state_;
}

std::vector<std::string> PoolState::update(ResourcePool pool, const HealthFacts& facts) {
  std::vector<std::string> log;
  std::lock_guard lock(mu_);
  std::map<std::string, DeviceHealth> health;
  for (const auto& d : pool.devices) health[d.id] = judgeHealth(pool, d, facts);
  // A device that left the pool stays listed, Unhealthy, when the kubelet may still count on it:
  // it was allocated since start, or it is still there but its driver changed under it (it
  // comes back Healthy when the driver does). Otherwise it leaves quietly.
  for (const auto& d : state_->pool.devices) {
    if (pool.find(d.id) != nullptr) continue;
    auto driver = facts.drivers.find(d.id);
    bool driverChanged = facts.presentIds.contains(d.id) && driver != facts.drivers.end() &&
                         driver->second != d.function.driver.value_or("");
    if (allocated_.contains(d.id) || driverChanged) {
      DeviceHealth h = judgeHealth(state_->pool, d, facts);
      if (h.healthy && driverChanged) {
        h = {false, fmt::format("driver changed from {} to {}", d.function.driver.value_or("none"),
                                driver->second.empty() ? "none" : driver->second)};
      } else if (h.healthy) {
        h = {false, "no longer matches the pool's selectors"};
      }
      health[d.id] = h;
      pool.devices.push_back(d);
    } else {
      log.push_back(fmt::format("{}: {} leaves the pool", name_, d.id));
    }
  }
  std::sort(pool.devices.begin(), pool.devices.end(),
            [](const PoolDevice& a, const PoolDevice& b) { return a.id < b.id; });
  for (const auto& [id, h] : health) {
    auto old = state_->health.find(id);
    if (old == state_->health.end()) {
      log.push_back(fmt::format("{}: {} joins the pool{}", name_, id,
                                h.healthy ? "" : fmt::format(" (Unhealthy: {})", h.reason)));
    } else if (old->second.healthy != h.healthy) {
      log.push_back(h.healthy ? fmt::format("{}: {} is Healthy again", name_, id)
                              : fmt::format("{}: {} is Unhealthy: {}", name_, id, h.reason));
    }
  }
  bool sameDevices =
      pool.devices.size() == state_->pool.devices.size() &&
      std::equal(pool.devices.begin(), pool.devices.end(), state_->pool.devices.begin(),
                 [](const PoolDevice& a, const PoolDevice& b) { return a.id == b.id; });
  bool changed = !sameDevices || health != state_->health;
  auto next = std::make_shared<PoolSnapshot>();
  next->version = state_->version + (changed ? 1 : 0);
  next->pool = std::move(pool);
  next->health = std::move(health);
  state_ = std::move(next);
  if (changed) cv_.notify_all();
  return log;
}

void PoolState::markAllocated(const std::vector<std::string>& ids) {
  std::lock_guard lock(mu_);
  allocated_.insert(ids.begin(), ids.end());
}

uint64_t PoolState::waitForChange(uint64_t seen, std::chrono::milliseconds timeout,
                                  const std::atomic<bool>& stop) const {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return stop.load() || state_->version != seen; });
  return state_->version;
}

void PoolState::wake() const {
  std::lock_guard lock(mu_);
  cv_.notify_all();
}

}  // namespace vfplane::dp
