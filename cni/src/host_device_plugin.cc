#include "vfplane/cni/host_device_plugin.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <fstream>

#include "vfplane/base/json_keys.h"
#include "vfplane/cni/attachment_store.h"
#include "vfplane/cni/config_keys.h"
#include "vfplane/cni/ip_config.h"
#include "vfplane/cni/ipam.h"
#include "vfplane/cni/netdev_move.h"
#include "vfplane/sriov/device_lock.h"
#include "vfplane/sriov/inventory.h"

namespace vfplane::cni {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using netlink::LinkChange;
using netlink::LinkInfo;

constexpr const char* kPlugin = "vfplane-host-device";

// What ADD leaves for DEL: written before the move, so a DEL after a crash mid-ADD still knows the
// device's own name.
struct HostDeviceState {
  std::string containerId;
  std::string ifname;
  std::string netns;
  std::string originalName;  // "" in DPDK mode
  std::string pci;           // "" when the device was not chosen by PCI address
  bool dpdk = false;
  std::vector<std::string> droppedAltnames;  // clashed in the pod; given back at home

  Json toJson() const {
    return {{"containerID", containerId},        {"ifname", ifname}, {"netns", netns},
            {"originalName", originalName},      {"pci", pci},       {"dpdk", dpdk},
            {"droppedAltnames", droppedAltnames}};
  }
  static std::optional<HostDeviceState> fromJson(const Json& j) {
    if (!j.is_object()) return std::nullopt;
    HostDeviceState s;
    s.containerId = j.value("containerID", "");
    s.ifname = j.value("ifname", "");
    s.netns = j.value("netns", "");
    s.originalName = j.value("originalName", "");
    s.pci = j.value("pci", "");
    s.dpdk = j.value("dpdk", false);
    // Records written before altnames were handled have none.
    if (auto it = j.find("droppedAltnames"); it != j.end() && it->is_array()) {
      for (const auto& a : *it) {
        if (a.is_string()) s.droppedAltnames.push_back(a.get<std::string>());
      }
    }
    return s;
  }
};

// nullopt when there is no record; an error naming the file when it cannot be read or is not a
// record (a corrupt record is not the same as none: DEL then says so before it falls back).
Result<std::optional<HostDeviceState>> loadState(const fs::path& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return std::optional<HostDeviceState>();
    return fail(systemError("read " + path.string(), errno));
  }
  auto state = HostDeviceState::fromJson(Json::parse(in, nullptr, false));
  if (!state)
    return fail(
        Error(path.string() + ": not a vfplane-host-device record (corrupt JSON?)", EINVAL));
  return std::optional<HostDeviceState>(std::move(*state));
}

bool validKernelPath(const std::string& p) {
  if (!p.starts_with("/sys/devices/")) return false;
  // No climbing out with "..", and nothing but plain path characters.
  for (const auto& part : fs::path(p)) {
    if (part == "..") return false;
  }
  return std::all_of(p.begin(), p.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("/:._-").find(c) != std::string_view::npos;
  });
}

}  // namespace

CniExpected<HostDeviceConfig> parseHostDeviceConfig(const NetConf& conf) {
  ConfigKeys keys(kPlugin, conf.raw);
  HostDeviceConfig c;
  std::optional<std::string> pci;
  if (auto v = keys.string("pciBusID"); !v) {
    return std::unexpected(v.error());
  } else if (*v && !(**v).empty()) {
    pci = **v;
    c.pciKey = "pciBusID";
  }
  if (const Json* d = ConfigKeys(kPlugin, conf.runtimeConfig).find("deviceID")) {
    if (!d->is_string()) return keys.invalid("runtimeConfig.deviceID", "must be a string");
    if (!d->get<std::string>().empty()) {
      pci = d->get<std::string>();
      c.pciKey = "runtimeConfig.deviceID";
    }
  }
  if (pci) {
    auto parsed = sriov::PciAddress::parse(*pci);
    if (!parsed) return keys.invalid(c.pciKey, parsed.error().message());
    c.pci = *parsed;
  }
  auto device = keys.string("device");
  if (!device) return std::unexpected(device.error());
  if (*device && !(**device).empty()) {
    if (auto problem = ifNameProblem(**device)) return keys.invalid("device", *problem);
    c.device = **device;
  }
  auto hwaddr = keys.string("hwaddr");
  if (!hwaddr) return std::unexpected(hwaddr.error());
  if (*hwaddr && !(**hwaddr).empty()) {
    auto mac = netlink::MacAddress::parse(**hwaddr);
    if (!mac) return keys.invalid("hwaddr", mac.error().message());
    c.hwaddr = *mac;
  }
  auto kernelPath = keys.string("kernelpath");
  if (!kernelPath) return std::unexpected(kernelPath.error());
  if (*kernelPath && !(**kernelPath).empty()) {
    if (!validKernelPath(**kernelPath)) {
      return keys.invalid(
          "kernelpath",
          fmt::format("\"{}\" must be an absolute path under /sys/devices/", **kernelPath));
    }
    c.kernelPath = **kernelPath;
  }
  auto allowDefaultRoute = keys.boolean("allowDefaultRouteDevice");
  if (!allowDefaultRoute) return std::unexpected(allowDefaultRoute.error());
  c.allowDefaultRouteDevice = allowDefaultRoute->value_or(false);
  auto resource = parseDeviceResource(keys);
  if (!resource) return std::unexpected(resource.error());
  c.resource = std::move(*resource);
  if (!c.pci && c.device.empty() && !c.hwaddr && c.kernelPath.empty() && !c.resource) {
    return keys.invalid(
        "device",
        "name the device with one of \"device\", \"hwaddr\", \"kernelpath\", \"pciBusID\", "
        "runtimeConfig.deviceID or \"resourceName\"");
  }
  return c;
}

struct HostDevicePlugin::Selected {
  std::optional<netlink::LinkInfo> link;  // nullopt in DPDK mode
  std::optional<sriov::PciAddress> pci;
  std::string driver;
};

HostDevicePlugin::HostDevicePlugin(HostDevicePluginOptions options)
    : options_(std::move(options)), sysfs_(options_.sysfsRoot) {}

fs::path HostDevicePlugin::statePath(const std::string& containerId,
                                     const std::string& ifname) const {
  return options_.stateDir / "host-device" / fmt::format("{}_{}.json", containerId, ifname);
}

CniExpected<HostDevicePlugin::Selected> HostDevicePlugin::select(const HostDeviceConfig& cfg,
                                                                 netlink::Client& host) const {
  Selected out;
  auto byName = [&](const std::string& name, std::string_view key) -> CniExpected<void> {
    auto l = host.link(name);
    if (!l) return ioError(l.error());
    if (!*l) return invalidKey(kPlugin, key, fmt::format("link {} not found in the host", name));
    out.link = **l;
    return {};
  };
  // The netdev under a sysfs device directory; none and a user-space driver means DPDK mode.
  auto fromSysfsDir = [&](const std::string& rel, std::string_view key) -> CniExpected<void> {
    auto dir = sysfs_.openDir(rel);
    if (!dir) {
      if (dir.error().sysErrno() == ENOENT) {
        return invalidKey(kPlugin, key,
                          fmt::format("{} does not exist", sysfs_.absolute(rel).string()));
      }
      return ioError(dir.error());
    }
    auto driver = dir->readLinkName("driver");
    if (auto netdevs = sriov::functionNetdevs(*dir, driver ? *driver : "", nullptr);
        !netdevs.empty()) {
      return byName(netdevs.front().name, key);
    }
    if (driver && sriov::isUserspaceDriver(*driver)) {
      out.driver = *driver;
      return {};
    }
    return invalidKey(
        kPlugin, key,
        fmt::format("{} has no network device{}", sysfs_.absolute(rel).string(),
                    driver ? fmt::format(" (driver {})", *driver) : " and no driver"));
  };

  if (cfg.pci) {
    out.pci = cfg.pci;
    auto r = fromSysfsDir("sys/bus/pci/devices/" + cfg.pci->str(), cfg.pciKey);
    if (!r) return std::unexpected(r.error());
  } else if (!cfg.device.empty()) {
    auto r = byName(cfg.device, "device");
    if (!r) return std::unexpected(r.error());
  } else if (cfg.hwaddr) {
    auto all = host.links();
    if (!all) return ioError(all.error());
    auto it = std::find_if(all->begin(), all->end(),
                           [&](const netlink::LinkInfo& l) { return l.mac == cfg.hwaddr->str(); });
    if (it == all->end())
      return invalidKey(kPlugin, "hwaddr",
                        fmt::format("no link in the host has MAC {}", cfg.hwaddr->str()));
    out.link = *it;
  } else {
    auto r = fromSysfsDir(cfg.kernelPath.substr(1), "kernelpath");
    if (!r) return std::unexpected(r.error());
  }
  if (out.link && !out.pci && !out.link->parentDevice.empty()) {
    if (auto p = sriov::PciAddress::parse(out.link->parentDevice)) out.pci = *p;
  }
  return out;
}

CniExpected<sriov::PciAddress> HostDevicePlugin::fromResource(const DeviceResource& resource,
                                                              const Environment& env) const {
  auto found = resourceDevices(resource, env);
  if (!found) return std::unexpected(found.error());
  // Who holds what: the records of attachments whose pods are still there.
  std::map<std::string, std::string> held;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.stateDir / "host-device", ec)) {
    auto state = loadState(e.path());
    if (!state || !*state || (**state).pci.empty()) continue;
    const HostDeviceState& s = **state;
    if (s.containerId == env.containerId && s.ifname == env.ifname) continue;  // this one, again
    if (!netlink::Netns::open(s.netns)) continue;  // a pod gone: its DEL or GC is due
    held[s.pci] =
        fmt::format("{} as {} of container {}", s.pci, s.ifname, s.containerId.substr(0, 12));
  }
  std::vector<std::string> holders;
  for (const auto& d : found->devices) {
    auto it = held.find(d.str());
    if (it == held.end()) {
      env.logger().info("resourceName {}: device {} of pod {} (by {}; {} of its {} held already)",
                        resource.name, d.str(), found->pod.str(), found->source, holders.size(),
                        found->devices.size());
      return d;
    }
    holders.push_back(it->second);
  }
  return allDevicesTaken(*found, holders, resource.name);
}

CniExpected<NetResult> HostDevicePlugin::add(Request& req) {
  const auto& env = req.env;
  auto cfg = parseHostDeviceConfig(req.conf);
  if (!cfg) return std::unexpected(cfg.error());
  // By resourceName, the choice and the record that claims it are one step under a node-wide
  // lock: two ADDs of one pod (or of two pods holding the same device by mistake) never pick the
  // same device. The record is written before the move, so the lock goes once it is.
  std::optional<sriov::DeviceLock> choiceLock;
  if (!cfg->pci && cfg->device.empty() && !cfg->hwaddr && cfg->kernelPath.empty()) {
    std::error_code mk;
    fs::create_directories(options_.stateDir / "locks", mk);
    auto lock = sriov::DeviceLock::acquireFile(
        options_.stateDir / "locks" / "host-device-choice.lock", options_.choiceLockTimeout);
    if (!lock) {
      return cniFail(
          lock.error().sysErrno() == ETIMEDOUT ? ErrorCode::kTryAgainLater : ErrorCode::kIoFailure,
          fmt::format("{}: resourceName {}: {}", kPlugin, cfg->resource->name,
                      lock.error().message()));
    }
    choiceLock.emplace(std::move(*lock));
    auto device = fromResource(*cfg->resource, env);
    if (!device) return std::unexpected(device.error());
    cfg->pci = *device;
    cfg->pciKey = "resourceName " + cfg->resource->name;
  }
  NamespaceClients ns(options_.clients, &*req.netns);
  auto hostClient = ns.host();
  if (!hostClient) return std::unexpected(hostClient.error());
  netlink::Client* host = *hostClient;
  auto selected = select(*cfg, *host);
  if (!selected) return std::unexpected(selected.error());
  const bool dpdk = !selected->link.has_value();

  if (!dpdk && !cfg->allowDefaultRouteDevice) {
    auto routed = host->defaultRouteLinks();
    if (!routed) return ioError(routed.error(), "list the host's default routes");
    if (std::find(routed->begin(), routed->end(), selected->link->ifindex) != routed->end()) {
      return cniFail(
          ErrorCode::kInvalidConfig,
          fmt::format("{}: {}{} carries the host's default route; moving it into the pod would cut "
                      "the node off the network (set \"allowDefaultRouteDevice\": true to move it "
                      "anyway)",
                      kPlugin, selected->link->name,
                      selected->pci ? fmt::format(" ({})", selected->pci->str()) : ""));
    }
  }

  netlink::Client* pod = nullptr;
  HostDeviceState state{env.containerId,
                        env.ifname,
                        env.netns,
                        dpdk ? "" : selected->link->name,
                        selected->pci ? selected->pci->str() : "",
                        dpdk,
                        {}};
  if (!dpdk) {
    auto podClient = ns.pod();
    if (!podClient) return std::unexpected(podClient.error());
    pod = *podClient;
    if (auto existing = pod->link(env.ifname); !existing) {
      return ioError(existing.error());
    } else if (*existing) {
      return cniFail(ErrorCode::kInvalidEnvironment,
                     fmt::format("CNI_IFNAME {} already exists in {}", env.ifname, env.netns));
    }
    auto altnames = clashingAltnames(*pod, *selected->link);
    if (!altnames) return std::unexpected(altnames.error());
    state.droppedAltnames = std::move(*altnames);
  }
  const fs::path path = statePath(env.containerId, env.ifname);
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (auto w = writeFileAtomic(path, state.toJson().dump()); !w) return ioError(w.error());
  choiceLock.reset();

  std::optional<LinkInfo> moved;
  if (!dpdk) {
    // Moved, renamed, marked with its own name and brought up in one request.
    LinkChange change;
    change.alias = selected->link->name;
    change.up = true;
    auto in = moveIntoPod(*host, *pod, *req.netns,
                          {*selected->link, env.ifname, change, state.droppedAltnames});
    if (!in) {
      fs::remove(path, ec);
      return std::unexpected(in.error());
    }
    moved = std::move(*in);
  }
  const int podIndex = moved ? moved->ifindex : 0;
  // Undoes the move (name back, alias cleared, altnames given back, home) for a failed ADD.
  auto undoMove = [&] {
    if (!moved) return;
    auto hostNs = netlink::Netns::current();
    if (!hostNs) return;
    LinkChange back;
    back.alias = "";
    BringHome b{*moved, state.originalName, selected->pci, back, state.droppedAltnames};
    if (auto r = bringHome(*pod, *host, *hostNs, b, env.logger()); !r) {
      env.logger().warn("{}: rollback: {}", kPlugin, r.error().msg);
    }
  };

  NetResult result;
  if (!req.conf.ipamType().empty()) {
    auto allocated = runIpamAdd(env, req.conf, req.config);
    if (!allocated) {
      undoMove();
      fs::remove(path, ec);
      return std::unexpected(allocated.error());
    }
    result = std::move(*allocated);
    for (auto& ip : result.ips) ip.interface = 0;
    if (!dpdk) {
      if (auto r = configureIps(*pod, podIndex, result, 0); !r) {
        if (auto d = runIpam(env, Command::kDel, req.conf, req.config); !d) {
          env.logger().warn("{}: rollback: IPAM DEL: {}", kPlugin, d.error().msg);
        }
        undoMove();
        fs::remove(path, ec);
        return std::unexpected(r.error());
      }
    }
  }
  Interface iface;
  iface.name = env.ifname;
  iface.sandbox = env.netns;
  if (selected->pci) iface.pciID = selected->pci->str();
  if (pod != nullptr) {
    auto l = pod->link(podIndex);
    if (l && *l) {
      iface.mac = (*l)->mac;
      iface.mtu = (*l)->mtu;
    }
  }
  result.interfaces.insert(result.interfaces.begin(), iface);
  env.logger().info(
      "{}: ADD {} {}: {} {}", kPlugin, env.containerId, env.ifname,
      dpdk ? fmt::format("PCI device {} on {} (DPDK mode, not moved)", state.pci, selected->driver)
           : fmt::format("{} moved in", state.originalName),
      result.ips.empty() ? "" : fmt::format("with {} address(es)", result.ips.size()));
  return result;
}

CniExpected<void> HostDevicePlugin::del(Request& req) {
  const auto& env = req.env;
  // IPAM first, and whatever else happens: the address must not outlive the attachment, also when
  // the netns is already gone.
  if (auto r = runIpamFor(req, Command::kDel); !r) return r;
  const fs::path path = statePath(env.containerId, env.ifname);
  auto loaded = loadState(path);
  if (!loaded) {
    env.logger().warn("{}: DEL {}: {}; bringing the device home by its alias", kPlugin,
                      env.containerId, loaded.error().message());
  }
  std::optional<HostDeviceState> state = loaded ? *loaded : std::nullopt;
  std::error_code ec;
  if ((state && state->dpdk) || !req.netns) {
    // Nothing was moved, or the namespace is gone (a hardware device then returns to the host by
    // itself; a virtual one went with it).
    fs::remove(path, ec);
    return {};
  }
  NamespaceClients ns(options_.clients, &*req.netns);
  auto podClient = ns.pod();
  if (!podClient) return std::unexpected(podClient.error());
  netlink::Client& pod = **podClient;
  auto link = pod.link(env.ifname);
  if (!link) return ioError(link.error());
  if (!*link) {
    fs::remove(path, ec);
    return {};
  }
  std::string home = state ? state->originalName : (*link)->alias;
  if (home.empty()) {
    // Neither a state file nor an alias: not a device this plugin moved.
    env.logger().warn("{}: DEL {}: {} in {} carries no record of its host name; left alone",
                      kPlugin, env.containerId, env.ifname, env.netns);
    return {};
  }
  auto host = ns.host();
  if (!host) return std::unexpected(host.error());
  auto hostNs = netlink::Netns::current();
  if (!hostNs) return ioError(hostNs.error(), "open the host namespace");
  std::optional<sriov::PciAddress> pci;
  if (state && !state->pci.empty()) {
    if (auto p = sriov::PciAddress::parse(state->pci)) pci = *p;
  }
  LinkChange back;
  back.alias = "";
  BringHome b{**link, home, pci, back, state ? state->droppedAltnames : std::vector<std::string>{}};
  auto homecoming = bringHome(pod, **host, *hostNs, b, env.logger());
  if (!homecoming) return std::unexpected(homecoming.error());
  fs::remove(path, ec);
  env.logger().info("{}: DEL {} {}: home as {}", kPlugin, env.containerId, env.ifname,
                    homecoming->name);
  return {};
}

CniExpected<void> HostDevicePlugin::check(Request& req) {
  const auto& env = req.env;
  auto cfg = parseHostDeviceConfig(req.conf);
  if (!cfg) return std::unexpected(cfg.error());
  if (!req.conf.prevResult)
    return cniFail(ErrorCode::kInvalidConfig, "vfplane-host-device CHECK: prevResult is required");
  const NetResult& prev = *req.conf.prevResult;
  auto it = std::find_if(prev.interfaces.begin(), prev.interfaces.end(), [&](const Interface& i) {
    return i.name == env.ifname && !i.sandbox.empty();
  });
  if (it == prev.interfaces.end()) {
    return cniFail(kCheckMismatch,
                   fmt::format("prevResult has no interface {} in a sandbox", env.ifname));
  }
  if (auto r = runIpamFor(req, Command::kCheck); !r) return r;
  auto state = loadState(statePath(env.containerId, env.ifname));
  if (!state) return ioError(state.error(), "CHECK");
  if (*state && (*state)->dpdk) return {};
  NamespaceClients ns(options_.clients, &*req.netns);
  auto pod = ns.pod();
  if (!pod) return std::unexpected(pod.error());
  auto link = (*pod)->link(env.ifname);
  if (!link) return ioError(link.error());
  if (!*link)
    return cniFail(kCheckMismatch, fmt::format("{} is missing from {}", env.ifname, env.netns));
  if (!it->mac.empty() && asciiLower(it->mac) != (*link)->mac) {
    return cniFail(kCheckMismatch,
                   fmt::format("{} has MAC {}, ADD gave it {}", env.ifname, (*link)->mac, it->mac));
  }
  return checkIps(**pod, (*link)->ifindex, prev, static_cast<int>(it - prev.interfaces.begin()));
}

CniExpected<void> HostDevicePlugin::gc(Request& req) {
  // State files of attachments the runtime no longer has: their devices came home with their
  // namespaces (or went with them), so only the records are left.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.stateDir / "host-device", ec)) {
    auto loaded = loadState(e.path());
    if (!loaded) {
      req.env.logger().warn("{}: GC: skipping {}", kPlugin, loaded.error().message());
      continue;
    }
    if (!*loaded) continue;
    const HostDeviceState* state = &**loaded;
    AttachmentId id{state->containerId, state->ifname};
    if (std::find(req.validAttachments.begin(), req.validAttachments.end(), id) ==
        req.validAttachments.end()) {
      std::error_code rm;
      fs::remove(e.path(), rm);
      req.env.logger().info("{}: GC: dropped the record of {} {}", kPlugin, state->containerId,
                            state->ifname);
    }
  }
  return runIpamFor(req, Command::kGc);
}

CniExpected<void> HostDevicePlugin::status(Request& req) {
  const fs::path dir = options_.stateDir / "host-device";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || ::access(dir.c_str(), W_OK) != 0) {
    return cniFail(ErrorCode::kNotAvailable,
                   fmt::format("state directory {} is not writable", dir.string()));
  }
  return runIpamFor(req, Command::kStatus);
}

}  // namespace vfplane::cni
