#include "vfplane/dp/pool.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace vfplane::dp {
namespace {

using sriov::NodeInventory;
using sriov::PciFunction;

struct Candidate {
  PoolDevice device;
};

// A device left out of every pool, and why, so that an empty pool can say it was this one.
struct Excluded {
  Candidate candidate;
  std::string why;
};

bool contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool matchesPfRefs(const std::vector<PfRef>& refs, const std::string& key, int vfIndex) {
  return std::any_of(refs.begin(), refs.end(), [&](const PfRef& r) {
    return r.pf == key && (vfIndex < 0 ? r.vfRanges.empty() : r.containsVf(vfIndex));
  });
}

// Why the device does not match the set, or nullopt when it does.
std::optional<std::string> mismatch(const SelectorSet& s, const Candidate& c) {
  const PciFunction& fn = c.device.function;
  if (!s.unsupported.empty()) return fmt::format("uses unsupported selector {}", s.unsupported[0]);
  if (!s.vendors.empty() && !(fn.vendor && contains(s.vendors, *fn.vendor))) return "vendor";
  if (!s.devices.empty() && !(fn.device && contains(s.devices, *fn.device))) return "device";
  if (!s.drivers.empty() && !(fn.driver && contains(s.drivers, *fn.driver))) return "driver";
  if (!s.pciAddresses.empty() &&
      std::find(s.pciAddresses.begin(), s.pciAddresses.end(), fn.address) == s.pciAddresses.end()) {
    return "pciAddresses";
  }
  if (!s.pfNames.empty() && !matchesPfRefs(s.pfNames, c.device.pfNetdev, c.device.vfIndex)) {
    return "pfNames";
  }
  if (!s.rootDevices.empty()) {
    std::string root = c.device.pf ? c.device.pf->str() : fn.address.str();
    if (!matchesPfRefs(s.rootDevices, root, c.device.vfIndex)) return "rootDevices";
  }
  if (!s.linkTypes.empty()) {
    auto type = fn.linkType();
    if (!type || !contains(s.linkTypes, *type)) return "linkTypes";
  }
  if (!s.acpiIndexes.empty()) {
    if (!fn.acpiIndex || !contains(s.acpiIndexes, std::to_string(*fn.acpiIndex)))
      return "acpiIndexes";
  }
  if (s.isRdma && fn.rdmaDevices.empty()) return "isRdma";
  return std::nullopt;
}

std::vector<Candidate> netCandidates(const NodeInventory& inv, const PoolOptions& options,
                                     std::vector<std::string>& log,
                                     std::vector<Excluded>& excluded) {
  std::vector<Candidate> out;
  auto defaultRoute = [&](const PciFunction& fn) -> const std::string* {
    for (const auto& n : fn.netdevs) {
      if (options.defaultRouteLinks.contains(n.name)) return &n.name;
    }
    return nullptr;
  };
  auto offer = [&](const PciFunction& fn, PoolDevice dev) {
    if (const std::string* link = defaultRoute(fn)) {
      if (options.excludeDefaultRoute) {
        std::string why = fmt::format(
            "its netdev {} carries a default route "
            "(--allow-default-route-devices offers it anyway)",
            *link);
        log.push_back(fmt::format("{}: excluded: {}", fn.address.str(), why));
        excluded.push_back({Candidate{std::move(dev)}, std::move(why)});
        return;
      }
    }
    out.push_back(Candidate{std::move(dev)});
  };
  for (const auto& pf : inv.pfs) {
    if (!pf.vfs.empty()) {
      // Upstream offers a PF only while it has no VFs: with VFs it is the uplink they share.
      log.push_back(fmt::format("{}: excluded: PF with {} VFs enabled; its VFs are offered instead",
                                pf.address.str(), pf.vfs.size()));
    } else {
      const auto* netif = pf.primaryNetdev();
      offer(pf, PoolDevice{pf.address.str(), pf, std::nullopt, netif ? netif->name : "", -1});
    }
    const auto* pfNetif = pf.primaryNetdev();
    for (const auto& vf : pf.vfs) {
      offer(vf,
            PoolDevice{vf.address.str(), vf, pf.address, pfNetif ? pfNetif->name : "", vf.index});
    }
  }
  for (const auto& nic : inv.nics) {
    const auto* netif = nic.primaryNetdev();
    offer(nic, PoolDevice{nic.address.str(), nic, std::nullopt, netif ? netif->name : "", -1});
  }
  return out;
}

// Accelerators follow the same PF rule as NICs: a PF with VFs enabled belongs to the host's
// management (the FEC card's pf_bb_config, for one), and its VFs are what pods get.
std::vector<Candidate> acceleratorCandidates(const NodeInventory& inv,
                                             std::vector<std::string>& log) {
  std::vector<Candidate> out;
  for (const auto& pf : inv.accelPfs) {
    if (!pf.vfs.empty()) {
      log.push_back(
          fmt::format("{}: excluded: accelerator PF with {} VFs enabled; its VFs are offered "
                      "instead",
                      pf.address.str(), pf.vfs.size()));
    } else {
      out.push_back(Candidate{PoolDevice{pf.address.str(), pf, std::nullopt, "", -1}});
    }
    for (const auto& vf : pf.vfs) {
      out.push_back(Candidate{PoolDevice{vf.address.str(), vf, pf.address, "", vf.index}});
    }
  }
  for (const auto& fn : inv.accelerators) {
    out.push_back(Candidate{PoolDevice{fn.address.str(), fn, std::nullopt, "", -1}});
  }
  return out;
}

}  // namespace

const PoolDevice* ResourcePool::find(std::string_view id) const {
  auto it = std::lower_bound(devices.begin(), devices.end(), id,
                             [](const PoolDevice& d, std::string_view v) { return d.id < v; });
  return it != devices.end() && it->id == id ? &*it : nullptr;
}

PoolPlan buildPools(const DevicePluginConfig& config, const NodeInventory& inventory,
                    const PoolOptions& options) {
  PoolPlan plan;
  std::vector<Excluded> excluded;
  const std::vector<Candidate> netDevices = netCandidates(inventory, options, plan.log, excluded);
  const std::vector<Candidate> accelerators = acceleratorCandidates(inventory, plan.log);
  std::map<std::string, std::string> claimedBy;  // device id -> pool name
  for (const auto& rc : config.resources) {
    ResourcePool pool;
    pool.config = rc;
    pool.name = rc.fullName(options.defaultPrefix);
    for (const auto& s : rc.selectors) {
      pool.needVhostNet |= s.needVhostNet;
      pool.isRdma |= s.isRdma;
    }
    if (rc.deviceType == DeviceType::kAuxNetDevice) {
      pool.emptyReason =
          "deviceType auxNetDevice (auxiliary-bus sub-functions) is not supported yet";
      plan.log.push_back(fmt::format("{}: empty: {}", pool.name, pool.emptyReason));
      plan.pools.push_back(std::move(pool));
      continue;
    }
    const auto& candidates = rc.deviceType == DeviceType::kAccelerator ? accelerators : netDevices;
    size_t alreadyClaimed = 0;
    for (const auto& c : candidates) {
      bool matched = false;
      for (const auto& s : rc.selectors) {
        if (!mismatch(s, c)) {
          matched = true;
          break;
        }
      }
      if (!matched) continue;
      if (auto it = claimedBy.find(c.device.id); it != claimedBy.end()) {
        ++alreadyClaimed;
        plan.log.push_back(
            fmt::format("{}: matches {} too, but stays in {} (the first pool that "
                        "claims a device keeps it)",
                        c.device.id, pool.name, it->second));
        continue;
      }
      claimedBy[c.device.id] = pool.name;
      plan.log.push_back(fmt::format("{}: joins {}", c.device.id, pool.name));
      pool.devices.push_back(c.device);
    }
    std::sort(pool.devices.begin(), pool.devices.end(),
              [](const PoolDevice& a, const PoolDevice& b) { return a.id < b.id; });
    if (pool.devices.empty()) {
      auto matches = [&](const Candidate& c) {
        return std::any_of(rc.selectors.begin(), rc.selectors.end(),
                           [&](const SelectorSet& s) { return !mismatch(s, c); });
      };
      const Excluded* excludedMatch = nullptr;
      if (rc.deviceType != DeviceType::kAccelerator) {
        for (const auto& e : excluded) {
          if (matches(e.candidate)) {
            excludedMatch = &e;
            break;
          }
        }
      }
      if (rc.selectors.empty()) {
        pool.emptyReason = "it has no selector object";
      } else if (excludedMatch != nullptr) {
        pool.emptyReason = fmt::format("its selectors match {}, which is excluded: {}",
                                       excludedMatch->candidate.device.id, excludedMatch->why);
      } else if (alreadyClaimed > 0) {
        pool.emptyReason =
            fmt::format("all {} matching devices are in earlier pools", alreadyClaimed);
      } else if (std::all_of(rc.selectors.begin(), rc.selectors.end(),
                             [](const SelectorSet& s) { return !s.unsupported.empty(); })) {
        pool.emptyReason = fmt::format("its selectors use {}, which vfplane does not support",
                                       rc.selectors[0].unsupported[0]);
      } else {
        // Name the selector that rejected the most candidates: that is usually the typo.
        std::map<std::string, size_t> rejections;
        for (const auto& c : candidates) {
          if (auto why = mismatch(rc.selectors[0], c)) ++rejections[*why];
        }
        auto worst =
            std::max_element(rejections.begin(), rejections.end(),
                             [](const auto& a, const auto& b) { return a.second < b.second; });
        pool.emptyReason = candidates.empty()
                               ? fmt::format("the node has no {} to offer",
                                             rc.deviceType == DeviceType::kAccelerator
                                                 ? "accelerator (PCI class 0x12)"
                                                 : "network device")
                               : fmt::format(
                                     "no device matches its selectors ({} of {} candidates "
                                     "fail on \"{}\")",
                                     worst->second, candidates.size(), worst->first);
      }
      plan.log.push_back(fmt::format("{}: empty: {}", pool.name, pool.emptyReason));
    }
    plan.pools.push_back(std::move(pool));
  }
  return plan;
}

}  // namespace vfplane::dp
