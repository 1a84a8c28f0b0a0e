#include "vfplane/dp/allocation.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>

namespace vfplane::dp {
namespace fs = std::filesystem;
namespace {

using Json = nlohmann::ordered_json;

// The PF a device shares bandwidth with; a NIC or a PF offered itself is its own group.
std::string groupKey(const PoolDevice& d) { return d.pf ? d.pf->str() : d.id; }

struct Group {
  std::string key;
  std::optional<int> numa;
  std::vector<const PoolDevice*> free;  // by VF index
  bool hasMustInclude = false;
};

std::optional<int> mostCommonNuma(const std::vector<const PoolDevice*>& devices) {
  std::map<int, int> count;
  for (const auto* d : devices) {
    if (d->numaNode()) ++count[*d->numaNode()];
  }
  if (count.empty()) return std::nullopt;
  return std::max_element(count.begin(), count.end(),
                          [](const auto& a, const auto& b) { return a.second < b.second; })
      ->first;
}

}  // namespace

std::vector<std::string> preferredAllocation(const ResourcePool& pool,
                                             const PreferredRequest& req) {
  std::vector<std::string> out;
  std::set<std::string> taken;
  std::vector<const PoolDevice*> must;
  for (const auto& id : req.mustInclude) {
    if (taken.insert(id).second) {
      out.push_back(id);
      if (const auto* d = pool.find(id)) must.push_back(d);
    }
  }
  if (static_cast<int>(out.size()) >= req.size) return out;
  size_t remaining = static_cast<size_t>(req.size) - out.size();

  std::map<std::string, Group> groups;
  std::set<std::string> mustGroups;
  for (const auto* d : must) mustGroups.insert(groupKey(*d));
  for (const auto& id : req.available) {
    const PoolDevice* d = pool.find(id);
    if (d == nullptr || taken.contains(id)) continue;
    taken.insert(id);
    Group& g = groups[groupKey(*d)];
    g.key = groupKey(*d);
    g.numa = d->numaNode();
    g.hasMustInclude = mustGroups.contains(g.key);
    g.free.push_back(d);
  }
  for (auto& [key, g] : groups) {
    std::sort(g.free.begin(), g.free.end(), [](const PoolDevice* a, const PoolDevice* b) {
      return std::tie(a->vfIndex, a->id) < std::tie(b->vfIndex, b->id);
    });
  }

  std::optional<int> numa = mostCommonNuma(must);
  if (!numa) {
    std::map<int, size_t> freePerNode;
    for (const auto& [key, g] : groups) {
      if (g.numa) freePerNode[*g.numa] += g.free.size();
    }
    for (const auto& [node, count] : freePerNode) {
      if (count >= remaining && (!numa || count > freePerNode[*numa])) numa = node;
    }
  }
  bool packed = pool.config.allocationPolicy == AllocationPolicy::kPacked;
  std::vector<Group*> order;
  for (auto& [key, g] : groups) order.push_back(&g);
  // Rank: the preferred NUMA node first, then PFs the must-include devices already use; within
  // that, packed prefers fuller PFs (fewest free) and spread emptier ones. Ties go by PF address.
  auto rank = [&](const Group* g) {
    return std::tuple(numa && g->numa != numa, !g->hasMustInclude);
  };
  std::stable_sort(order.begin(), order.end(), [&](const Group* a, const Group* b) {
    if (rank(a) != rank(b)) return rank(a) < rank(b);
    if (a->free.size() != b->free.size()) {
      return packed ? a->free.size() < b->free.size() : a->free.size() > b->free.size();
    }
    return a->key < b->key;
  });

  auto take = [&](Group* g, size_t n) {
    for (size_t i = 0; i < n && !g->free.empty(); ++i) {
      out.push_back(g->free.front()->id);
      g->free.erase(g->free.begin());
      --remaining;
    }
  };
  if (packed) {
    while (remaining > 0) {
      // Within the best rank still holding devices: the smallest PF that fits the rest whole,
      // or else the largest one, so the request spans as few PFs as possible.
      Group* best = nullptr;
      for (Group* g : order) {
        if (g->free.empty()) continue;
        if (best != nullptr && rank(g) != rank(best)) break;
        if (best == nullptr) {
          best = g;
          continue;
        }
        bool gFits = g->free.size() >= remaining, bestFits = best->free.size() >= remaining;
        if ((gFits && (!bestFits || g->free.size() < best->free.size())) ||
            (!gFits && !bestFits && g->free.size() > best->free.size())) {
          best = g;
        }
      }
      if (best == nullptr) break;
      take(best, remaining);
    }
  } else {
    // Round-robin over the PFs of the preferred NUMA node; other nodes only once it is empty.
    auto offNode = [&](const Group* g) { return numa && g->numa != numa; };
    while (remaining > 0) {
      auto first =
          std::find_if(order.begin(), order.end(), [](const Group* g) { return !g->free.empty(); });
      if (first == order.end()) break;
      bool tier = offNode(*first);
      for (Group* g : order) {
        if (remaining == 0) break;
        if (!g->free.empty() && offNode(g) == tier) take(g, 1);
      }
    }
  }
  return out;
}

std::string resourceEnvName(std::string_view resourceName) {
  std::string out = "PCIDEVICE_";
  for (char c : resourceName) {
    out += (c == '.' || c == '/' || c == '-')
               ? '_'
               : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

std::vector<DeviceSpecEntry> deviceNodesFor(const ResourcePool& pool, const PoolDevice& device) {
  std::vector<DeviceSpecEntry> out;
  auto add = [&](std::string container, std::string host) {
    DeviceSpecEntry spec{std::move(container), std::move(host), "rw"};
    if (std::find(out.begin(), out.end(), spec) == out.end()) out.push_back(std::move(spec));
  };
  const auto& fn = device.function;
  if (fn.driver == "vfio-pci") {
    add("/dev/vfio/vfio", "/dev/vfio/vfio");
    if (fn.iommuGroup) {
      // A noiommu group's node is /dev/vfio/noiommu-N on the host; DPDK in the pod expects N.
      std::string container = fmt::format("/dev/vfio/{}", *fn.iommuGroup);
      add(container, fn.noIommu ? fmt::format("/dev/vfio/noiommu-{}", *fn.iommuGroup) : container);
    }
  }
  if (pool.isRdma && !fn.rdmaDevices.empty()) {
    // The device's own verbs and MAD nodes, plus the node-wide connection manager.
    for (const auto& c : fn.rdmaCharDevices) add("/dev/infiniband/" + c, "/dev/infiniband/" + c);
    add("/dev/infiniband/rdma_cm", "/dev/infiniband/rdma_cm");
  }
  if (pool.needVhostNet) {
    add("/dev/vhost-net", "/dev/vhost-net");
    add("/dev/net/tun", "/dev/net/tun");
  }
  return out;
}

namespace {

// The resource name as one token: "intel.com/sriov_net_a" -> "intel.com_sriov_net_a".
std::string flatName(const ResourcePool& pool) {
  std::string s = pool.name;
  std::replace(s.begin(), s.end(), '/', '_');
  return s;
}

}  // namespace

std::string cdiKind(const ResourcePool& pool) {
  auto slash = pool.name.find('/');
  return (slash == std::string::npos ? pool.name : pool.name.substr(0, slash)) + "/net-pci";
}

std::string cdiSpecFileName(const ResourcePool& pool) {
  return "vfplane-" + flatName(pool) + ".json";
}

std::string cdiAnnotationKey(const ResourcePool& pool) {
  std::string name = "vfplane_" + flatName(pool);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  }
  if (name.size() > 63) name.resize(63);  // an annotation key's name part
  while (!name.empty() && !std::isalnum(static_cast<unsigned char>(name.back()))) name.pop_back();
  return "cdi.k8s.io/" + name;
}

nlohmann::json cdiSpec(const ResourcePool& pool) {
  Json devices = Json::array();
  for (const auto& d : pool.devices) {
    Json edits = Json::object();
    Json nodes = Json::array();
    for (const auto& n : deviceNodesFor(pool, d)) {
      nodes.push_back(
          {{"path", n.containerPath}, {"hostPath", n.hostPath}, {"permissions", n.permissions}});
    }
    if (!nodes.empty()) {
      edits["deviceNodes"] = std::move(nodes);
    } else {
      std::string var = resourceEnvName(pool.name) + "_CDI_" + d.id;
      std::replace_if(
          var.begin(), var.end(), [](char c) { return c == ':' || c == '.'; }, '_');
      edits["env"] = Json::array({var + "=" + d.id});
    }
    devices.push_back({{"name", d.id}, {"containerEdits", std::move(edits)}});
  }
  return {{"cdiVersion", "0.5.0"}, {"kind", cdiKind(pool)}, {"devices", std::move(devices)}};
}

namespace {

// The resource name without its prefix's '/', as device-info file names carry it.
std::string deviceInfoStem(std::string_view resourceName) {
  std::string stem(resourceName);
  std::replace(stem.begin(), stem.end(), '/', '-');
  return stem;
}

}  // namespace

size_t removeDeviceInfoFiles(const std::string& dir, std::string_view resourceName,
                             bool prefixOnly) {
  const std::string start = deviceInfoStem(resourceName) + "-";
  constexpr std::string_view kEnd = "-device.json";
  size_t removed = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (!name.starts_with(start) || !name.ends_with(kEnd)) continue;
    std::string_view id(name);
    id.remove_prefix(start.size());
    id.remove_suffix(kEnd.size());
    // <stem>-<id>: with the whole name known, the rest must be one device ID (no '-' in a PCI
    // address); with the prefix only, the resource's name comes first.
    if (id.empty() || (!prefixOnly && id.find('-') != std::string_view::npos)) continue;
    std::error_code rm;
    if (fs::remove(e.path(), rm)) {
      ++removed;
    } else if (rm) {
      spdlog::warn("remove device-info file {}: {}", e.path().string(), rm.message());
    }
  }
  return removed;
}

ContainerAllocation buildAllocation(const ResourcePool& pool,
                                    const std::vector<const PoolDevice*>& devices,
                                    const std::string& devinfoDir, bool cdi) {
  ContainerAllocation alloc;
  std::string envName = resourceEnvName(pool.name);
  std::string ids;
  std::string cdiNames;
  Json info = Json::object();
  std::string fileStem = deviceInfoStem(pool.name);
  for (const auto* d : devices) {
    ids += (ids.empty() ? "" : ",") + d->id;
    if (cdi) {
      cdiNames += (cdiNames.empty() ? "" : ",") + cdiKind(pool) + "=" + d->id;
    } else {
      for (auto& spec : deviceNodesFor(pool, *d)) {
        if (std::find(alloc.devices.begin(), alloc.devices.end(), spec) == alloc.devices.end()) {
          alloc.devices.push_back(std::move(spec));
        }
      }
    }
    Json entry;
    entry["generic"] = {{"deviceID", d->id}};
    const auto& fn = d->function;
    if (fn.driver == "vfio-pci") {
      Json vfio = {{"mount", "/dev/vfio/vfio"}};
      if (fn.iommuGroup) vfio["dev-mount"] = fmt::format("/dev/vfio/{}", *fn.iommuGroup);
      entry["vfio"] = std::move(vfio);
    }
    if (pool.isRdma && !fn.rdmaDevices.empty()) {
      Json rdma = {{"rdma_dev", fn.rdmaDevices.front()}};
      for (const auto& c : fn.rdmaCharDevices) {
        for (const char* kind : {"uverbs", "umad", "issm"}) {
          if (c.starts_with(kind)) rdma[kind] = "/dev/infiniband/" + c;
        }
      }
      rdma["rdma_cm"] = "/dev/infiniband/rdma_cm";
      entry["rdma"] = std::move(rdma);
    }
    if (pool.needVhostNet) {
      entry["vhost"] = {{"net-mount", "/dev/vhost-net"}, {"tun-mount", "/dev/net/tun"}};
    }
    Json extra = Json::object();
    for (const char* key : {"*", d->id.c_str()}) {
      if (auto it = pool.config.additionalInfo.find(key); it != pool.config.additionalInfo.end()) {
        for (const auto& [k, v] : it->second) extra[k] = v;
      }
    }
    if (!extra.empty()) entry["extra"] = std::move(extra);
    info[d->id] = std::move(entry);

    // Device-info files tell a CNI (through Multus) about the device behind a network
    // attachment; an accelerator has none, and upstream writes none for it either.
    if (pool.config.deviceType == DeviceType::kAccelerator) continue;
    Json devinfo;
    devinfo["type"] = "pci";
    devinfo["version"] = "1.1.0";
    Json pci = {{"pci-address", d->id}};
    if (d->pf) pci["pf-pci-address"] = d->pf->str();
    if (pool.needVhostNet) pci["vhost-net"] = "/dev/vhost-net";
    if (pool.isRdma && !fn.rdmaDevices.empty()) pci["rdma-device"] = fn.rdmaDevices.front();
    devinfo["pci"] = std::move(pci);
    alloc.deviceInfoFiles.push_back(
        {fmt::format("{}/{}-{}-device.json", devinfoDir, fileStem, d->id), devinfo.dump()});
  }
  alloc.envs[envName] = ids;
  alloc.envs[envName + "_INFO"] = info.dump();
  if (cdi && !cdiNames.empty()) alloc.annotations[cdiAnnotationKey(pool)] = cdiNames;
  return alloc;
}

}  // namespace vfplane::dp
