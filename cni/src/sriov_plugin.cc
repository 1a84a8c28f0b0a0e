#include "vfplane/cni/sriov_plugin.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "vfplane/cni/exec.h"
#include "vfplane/cni/ip_config.h"
#include "vfplane/cni/ipam.h"
#include "vfplane/cni/netdev_move.h"
#include "vfplane/netlink/netns.h"
#include "vfplane/netlink/rtnl.h"
#include "vfplane/sriov/device_lock.h"
#include "vfplane/sriov/inventory.h"

namespace vfplane::cni {
namespace {

using netlink::LinkChange;
using netlink::LinkInfo;

// A link found by name is only ours when it is the VF's: hardware netdevs name their PCI parent.
// Virtual ones (the simulated node's veth) have none, and the name has to do.
bool isDevice(const LinkInfo& link, const sriov::PciAddress& device) {
  return link.parentDevice.empty() || link.parentDevice == device.str();
}

Environment attachmentEnv(const VfAttachment& a, const Environment& base) {
  Environment e;
  e.command = Command::kDel;
  e.containerId = a.containerId;
  e.ifname = a.ifname;
  e.netns = a.netns;
  e.path = base.path;
  e.base = base.base;
  e.log = base.log;
  return e;
}

}  // namespace

// Where an ADD or DEL spends its time, for the log line that ends it: "lookup 0.4 ms, move 9.1 ms".
class StepClock {
 public:
  void lap(const char* step) {
    auto now = std::chrono::steady_clock::now();
    laps_.emplace_back(step, std::chrono::duration<double, std::milli>(now - last_).count());
    last_ = now;
  }
  std::string str() const {
    double total = 0;
    std::string parts;
    for (const auto& [step, ms] : laps_) {
      total += ms;
      parts += fmt::format("{}{} {:.1f}", parts.empty() ? "" : ", ", step, ms);
    }
    return fmt::format("{:.1f} ms ({})", total, parts);
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
  std::vector<std::pair<const char*, double>> laps_;
};

CniExpected<sriov::DeviceLock> SriovPlugin::lockVf(const sriov::PciAddress& device) const {
  auto lock = sriov::DeviceLock::acquire(store_.lockDir(), device, options_.lockTimeout);
  if (!lock) {
    return cniFail(
        lock.error().sysErrno() == ETIMEDOUT ? ErrorCode::kTryAgainLater : ErrorCode::kIoFailure,
        fmt::format("lock VF {}: {}", device.str(), lock.error().message()));
  }
  return std::move(*lock);
}

SriovPlugin::SriovPlugin(SriovPluginOptions options, sriov::VfConfigurator* vf)
    : options_(std::move(options)),
      sysfs_(options_.sysfsRoot),
      store_(options_.stateDir),
      vf_(vf) {}

// ---- ADD ------------------------------------------------------------------------------------

CniExpected<NetResult> SriovPlugin::add(Request& req) {
  const Environment& env = req.env;
  auto cfg = parseSriovConfig(req.conf, env);
  if (!cfg) return std::unexpected(cfg.error());
  StepClock clock;
  // The VF: deviceID when the runtime (Multus) names it; else each of the pod's devices of
  // resourceName in the kubelet's order, until one that no live attachment holds.
  std::optional<ResourceDevices> fromKubelet;
  std::vector<sriov::PciAddress> candidates;
  if (cfg->deviceId) {
    candidates.push_back(*cfg->deviceId);
  } else if (cfg->resource) {
    auto found = resourceDevices(*cfg->resource, env);
    if (!found) return std::unexpected(found.error());
    fromKubelet = std::move(*found);
    candidates = fromKubelet->devices;
    clock.lap("kubelet");
  } else {
    return cniFail(
        ErrorCode::kInvalidConfig,
        "vfplane-sriov config: no VF named: deviceID is required (Multus sets it from the device "
        "plugin's allocation), or give resourceName (the NAD's resource, which the plugin then "
        "asks the kubelet about), deviceID or runtimeConfig.deviceID");
  }
  if (const std::string ipamType = req.conf.ipamType();
      !ipamType.empty() && ipamType != "vfplane-ipam") {
    if (auto found = findPlugin(ipamType, env.path); !found) return std::unexpected(found.error());
  }

  std::optional<sriov::DeviceLock> lock;
  std::vector<std::string> holders;
  for (const auto& candidate : candidates) {
    auto l = lockVf(candidate);
    if (!l) return std::unexpected(l.error());
    auto owner = store_.owner(candidate);
    if (!owner) return ioError(owner.error(), "read owner record");
    if (*owner) {
      const VfOwner& o = **owner;
      if (netlink::Netns::open(o.netns)) {
        if (!fromKubelet) {
          return cniFail(ErrorCode::kTryAgainLater,
                         fmt::format("VF {} is in use by container {} (interface {} in {})",
                                     candidate.str(), o.containerId, o.ifname, o.netns));
        }
        holders.push_back(fmt::format("{} as {} of container {}", candidate.str(), o.ifname,
                                      o.containerId.substr(0, 12)));
        continue;  // the lock goes with l
      }
      env.logger().info("VF {}: previous owner {} is gone ({}); reclaiming", candidate.str(),
                        o.containerId, o.netns);
      if (auto r = reclaim(candidate, o, env); !r) return std::unexpected(r.error());
    }
    cfg->deviceId = candidate;
    lock.emplace(std::move(*l));
    break;
  }
  if (!lock) return allDevicesTaken(*fromKubelet, holders, cfg->resource->name);
  if (fromKubelet) {
    env.logger().info("resourceName {}: VF {} of pod {} (by {}; {} of its {} held already)",
                      cfg->resource->name, cfg->deviceId->str(), fromKubelet->pod.str(),
                      fromKubelet->source, holders.size(), fromKubelet->devices.size());
  }
  clock.lap("lock");

  NamespaceClients ns(options_.clients, req.netns ? &*req.netns : nullptr);
  auto plan = planAdd(req, *cfg, ns);
  if (!plan) return std::unexpected(plan.error());
  if (fromKubelet) plan->attachment.resourceName = cfg->resource->name;
  clock.lap("resolve");
  auto result = executeAdd(req, std::move(*plan), ns, clock);
  if (result) env.logger().info("ADD {} {}: done in {}", env.containerId, env.ifname, clock.str());
  return result;
}

CniExpected<SriovAddPlan> SriovPlugin::planAdd(const Request& req, const SriovConfig& cfg,
                                               NamespaceClients& ns) const {
  const Environment& env = req.env;
  const sriov::PciAddress device = *cfg.deviceId;
  auto loc = sriov::locateVf(sysfs_, device);
  if (!loc)
    return cniFail(ErrorCode::kInvalidConfig, fmt::format("deviceID: {}", loc.error().message()));
  if (loc->vf.mode == sriov::VfMode::kUnbound) {
    return cniFail(ErrorCode::kInvalidConfig,
                   fmt::format("deviceID: VF {} has no driver bound", device.str()));
  }
  const bool dpdk = loc->vf.mode == sriov::VfMode::kDpdk;

  SriovAddPlan plan;
  VfAttachment& a = plan.attachment;
  a.network = req.conf.name;
  a.containerId = env.containerId;
  a.ifname = env.ifname;
  a.netns = env.netns;
  a.cniVersion = req.conf.cniVersion;
  a.device = device;
  a.pf = loc->pfNetdev;
  a.vfIndex = loc->vf.index;
  a.dpdk = dpdk;
  a.pfSettings = cfg.vf;
  a.ipamType = req.conf.ipamType();
  a.config = req.config;

  // PF side: what is there now, to put back. A PF without VF information (a virtual PF, as on
  // the simulated node) is fine as long as nothing is to be set on it.
  const std::string wanted = fmt::format("{}", fmt::join(cfg.vf.names(), ", "));
  if (loc->pfNetdev.empty()) {
    if (!cfg.vf.empty()) {
      return cniFail(ErrorCode::kInvalidConfig,
                     fmt::format("{}: the PF {} of VF {} has no netdev to set them through", wanted,
                                 loc->pf.str(), device.str()));
    }
  } else {
    auto snap = vf_->snapshot(loc->pfNetdev, loc->vf.index);
    if (!snap) {
      if (!cfg.vf.empty())
        return ioError(snap.error(), fmt::format("read VF attributes before setting {}", wanted));
      env.logger().debug("VF {}: no PF-side snapshot ({}); nothing PF-side is configured",
                         device.str(), snap.error().message());
    } else if (!*snap) {
      if (!cfg.vf.empty()) {
        return cniFail(
            ErrorCode::kInvalidConfig,
            fmt::format("{}: PF {} reports no VF attributes (a virtual PF, as on a simulated "
                        "node), so they cannot be set on VF {}",
                        wanted, loc->pfNetdev, loc->vf.index));
      }
      env.logger().debug("VF {}: PF {} reports no VF attributes; skipping the PF-side snapshot",
                         device.str(), loc->pfNetdev);
    } else {
      a.pfSnapshot = **snap;
    }
  }
  if (dpdk) return plan;

  auto host = ns.host();
  if (!host) return std::unexpected(host.error());
  auto pod = ns.pod();
  if (!pod) return std::unexpected(pod.error());
  for (const auto& netdev : loc->vf.netdevs) {
    auto l = (*host)->link(netdev.name);
    if (!l) return ioError(l.error());
    if (*l && isDevice(**l, device)) {
      plan.hostLink = **l;
      break;
    }
  }
  if (!plan.hostLink) {
    std::string names;
    for (const auto& n : loc->vf.netdevs) names += (names.empty() ? "" : ", ") + n.name;
    return cniFail(
        ErrorCode::kTryAgainLater,
        fmt::format("VF {} has no netdev in the host namespace{} (still in a pod's namespace, or "
                    "on its way back from a deleted one)",
                    device.str(), names.empty() ? "" : " (sysfs names " + names + ")"));
  }
  auto clash = (*pod)->link(env.ifname);
  if (!clash) return ioError(clash.error());
  if (*clash) {
    return cniFail(ErrorCode::kInvalidEnvironment,
                   fmt::format("CNI_IFNAME {} already exists in {}", env.ifname, env.netns));
  }
  a.hostName = plan.hostLink->name;
  a.hostMac = plan.hostLink->mac;
  a.hostMtu = plan.hostLink->mtu;
  auto altnames = clashingAltnames(**pod, *plan.hostLink);
  if (!altnames) return std::unexpected(altnames.error());
  a.removedAltnames = std::move(*altnames);
  plan.podChange.mac = cfg.mac;
  plan.podChange.mtu = cfg.mtu;
  plan.podChange.up = true;
  plan.podChange.arpNotify = true;
  return plan;
}

CniExpected<NetResult> SriovPlugin::executeAdd(Request& req, SriovAddPlan plan,
                                               NamespaceClients& ns, StepClock& clock) {
  const Environment& env = req.env;
  VfAttachment& a = plan.attachment;
  const sriov::PciAddress device = a.device;
  // The journal is written once with every step this ADD will take marked as started, and once
  // more when it is done: playing back a step that never ran is harmless (the VF is found at
  // home, IPAM releases nothing, PF attributes are written to what they are), and each write of
  // the journal costs a few hundred microseconds on a journaling filesystem.
  a.pfApplyStarted = !a.pfSettings.empty();
  a.moveStarted = !a.dpdk;
  a.ipamStarted = !a.ipamType.empty();
  if (auto r = store_.setOwner(device, {env.containerId, env.ifname, env.netns, req.conf.name});
      !r) {
    return ioError(r.error(), "write owner record");
  }
  if (auto r = store_.save(a); !r) {
    (void)store_.clearOwner(device);
    return ioError(r.error(), "write journal");
  }
  env.logger().info("ADD {} {}: VF {} (PF {} vf {}, {} mode)", env.containerId, env.ifname,
                    device.str(), a.pf.empty() ? "?" : a.pf, a.vfIndex, a.dpdk ? "dpdk" : "netdev");

  // From here on every failure plays the journal back.
  auto rollback = [&](CniError err) -> std::unexpected<CniError> {
    env.logger().warn("ADD {} {} failed, rolling back: {}", env.containerId, env.ifname, err.msg);
    auto td = teardown(a, env, /*ipamBestEffort=*/true);
    if (!td) {
      env.logger().error("rollback of {} {}: {}", env.containerId, env.ifname, td.error().msg);
      err.details = fmt::format("rollback also failed: {}", td.error().msg);
      a.stranded = true;
      a.strandedReason = td.error().msg;
      (void)store_.save(a);
    } else if (td->stranded) {
      a.stranded = true;
      a.strandedReason = td->reason;
      (void)store_.save(a);
      err.details = fmt::format("VF could not be brought home: {}", td->reason);
    } else {
      (void)store_.remove(a.id());
      (void)store_.clearOwner(device);
    }
    // A VF that did not come home keeps its owner record: the next ADD of it reclaims it
    // (through the journal) once the namespace is gone, without scanning every journal.
    return std::unexpected(std::move(err));
  };

  if (!a.pfSettings.empty()) {
    if (auto r = vf_->apply(a.pf, a.vfIndex, a.pfSettings, *a.pfSnapshot); !r) {
      return rollback(CniError{
          ErrorCode::kIoFailure,
          fmt::format("set {}: {}", fmt::join(a.pfSettings.names(), ", "), r.error().message()),
          ""});
    }
  }

  Interface iface;
  iface.name = env.ifname;
  iface.sandbox = env.netns;
  iface.pciID = device.str();
  int podIndex = 0;
  netlink::Client* pod = nullptr;
  if (!a.dpdk) {
    auto host = ns.host();
    auto podClient = ns.pod();
    if (!host || !podClient) return rollback(!host ? host.error() : podClient.error());
    pod = *podClient;
    auto moved = moveIntoPod(**host, *pod, *req.netns,
                             {*plan.hostLink, env.ifname, plan.podChange, a.removedAltnames});
    if (!moved) return rollback(moved.error());
    clock.lap("move");
    podIndex = moved->ifindex;
    a.podMac = moved->mac;
    a.podMtu = moved->mtu;
    iface.mac = a.podMac;
    iface.mtu = a.podMtu;
  }

  NetResult result;
  if (!a.ipamType.empty()) {
    auto ipam = runIpamAdd(env, req.conf, req.config);
    if (!ipam) return rollback(ipam.error());
    result.ips = std::move(ipam->ips);
    result.routes = std::move(ipam->routes);
    result.dns = std::move(ipam->dns);
    for (auto& ip : result.ips) ip.interface = 0;
    clock.lap("ipam");
    if (pod != nullptr) {
      if (auto r = configureIps(*pod, podIndex, result, 0); !r) return rollback(r.error());
      clock.lap("addresses");
    }
  }
  a.complete = true;
  if (auto r = store_.save(a); !r) {
    return rollback(
        CniError{ErrorCode::kIoFailure, fmt::format("journal done: {}", r.error().message()), ""});
  }
  result.interfaces.push_back(std::move(iface));
  clock.lap("journal");
  return result;
}

// ---- teardown -------------------------------------------------------------------------------

CniExpected<void> SriovPlugin::bringHome(VfAttachment& a, Teardown& out, spdlog::logger& log) {
  NamespaceClients clients(options_.clients, nullptr);
  auto hostClient = clients.host();
  if (!hostClient) return std::unexpected(hostClient.error());
  netlink::Client& host = **hostClient;
  auto hostNs = netlink::Netns::current();
  if (!hostNs) return ioError(hostNs.error());

  auto ns = netlink::Netns::open(a.netns);
  std::unique_ptr<netlink::Client> pod;
  std::optional<LinkInfo> podLink;
  if (ns) {
    auto p = clients.open(*ns);
    if (!p) return std::unexpected(p.error());
    pod = std::move(*p);
    auto l = pod->link(a.ifname);
    if (!l) return ioError(l.error());
    if (*l && isDevice(**l, a.device)) podLink = **l;
  }

  auto nameFree = [&](const std::string& name) {
    auto l = host.link(name);
    return l && !*l;
  };

  if (podLink) {
    // MAC and MTU go back in the same request as the move (the kernel closes the link to move
    // it, and applies them in the host namespace right after).
    BringHome b{*podLink, a.hostName, a.device, {}, a.removedAltnames};
    if (auto mac = netlink::MacAddress::parse(a.hostMac); mac && a.hostMac != podLink->mac)
      b.restore.mac = *mac;
    if (a.hostMtu > 0 && a.hostMtu != podLink->mtu) b.restore.mtu = a.hostMtu;
    auto home = cni::bringHome(*pod, host, *hostNs, b, log);
    if (!home) {
      out.stranded = true;
      out.reason = home.error().msg;
      return {};
    }
    log.info("VF {}: home as {}", a.device.str(), home->name);
    return {};
  }

  // Not in the pod: the namespace is gone (a hardware VF then returns to the host by itself,
  // under its pod name, when the kernel gets round to it) or ADD stopped before the move.
  std::vector<std::string> candidates;
  if (auto loc = sriov::locateVf(sysfs_, a.device)) {
    for (const auto& n : loc->vf.netdevs) candidates.push_back(n.name);
  }
  candidates.push_back(a.hostName);
  for (const auto& name : candidates) {
    auto l = host.link(name);
    if (!l || !*l || !isDevice(**l, a.device)) continue;
    LinkChange change;
    if ((*l)->name != a.hostName && nameFree(a.hostName)) {
      change.name = a.hostName;
      change.up = false;  // a rename needs the link down
    }
    if (auto mac = netlink::MacAddress::parse(a.hostMac); mac && a.hostMac != (*l)->mac)
      change.mac = *mac;
    if (a.hostMtu > 0 && a.hostMtu != (*l)->mtu) change.mtu = a.hostMtu;
    if (change.name || change.mac || change.mtu) {
      if (auto r = host.execute(netlink::buildChangeLink((*l)->ifindex, change),
                                fmt::format("restore {}", name));
          !r) {
        log.warn("VF {}: {}", a.device.str(), r.error().message());
      }
    }
    log.info("VF {}: found in the host as {}", a.device.str(), name);
    return {};
  }
  out.stranded = true;
  out.reason =
      ns ? fmt::format("{} is neither in {} nor in the host", a.ifname, a.netns)
         : fmt::format("netns {} is gone and the VF's netdev is not back in the host (yet)",
                       a.netns);
  return {};
}

CniExpected<SriovPlugin::Teardown> SriovPlugin::teardown(VfAttachment& a, const Environment& env,
                                                         bool ipamBestEffort) {
  // Every step is tried even when an earlier one failed: an IPAM that cannot release must not
  // keep the VF in a dead pod. The first error is returned at the end, so DEL is retried for it.
  Teardown out;
  std::optional<CniError> firstError;
  if (a.ipamStarted && !a.ipamType.empty()) {
    auto conf = parseNetConf(a.config);
    CniExpected<void> r = conf ? runIpam(attachmentEnv(a, env), Command::kDel, *conf, a.config)
                               : CniExpected<void>(std::unexpected(conf.error()));
    if (r || ipamBestEffort) {
      if (!r)
        env.logger().warn("VF {}: IPAM release failed (ignored while rolling back): {}",
                          a.device.str(), r.error().msg);
      a.ipamStarted = false;
    } else {
      firstError = r.error();
    }
  }
  if (!a.dpdk && a.moveStarted) {
    if (auto r = bringHome(a, out, env.logger()); !r) {
      if (!firstError) firstError = r.error();
    } else if (!out.stranded) {
      a.moveStarted = false;
    }
  }
  if (a.pfSnapshot) {
    sriov::VfSettings restore =
        a.pfApplyStarted ? a.pfSettings.restoring(*a.pfSnapshot) : sriov::VfSettings{};
    auto now = vf_->snapshot(a.pf, a.vfIndex);
    // The admin MAC always goes back: a trusted VF may have changed it from inside the pod, and
    // the next pod must not inherit it.
    if (now && *now && (*now)->mac != a.pfSnapshot->mac) restore.mac = a.pfSnapshot->mac;
    bool done = true;
    if (!restore.empty()) {
      const sriov::VfState& current = now && *now ? **now : *a.pfSnapshot;
      if (auto r = vf_->apply(a.pf, a.vfIndex, restore, current); !r) {
        if (r.error().sysErrno() != ENODEV) {
          done = false;
          if (!firstError) {
            firstError = CniError{
                ErrorCode::kIoFailure,
                fmt::format("restore VF {} attributes: {}", a.device.str(), r.error().message()),
                ""};
          }
        } else {
          env.logger().warn("VF {}: PF {} is gone; nothing to restore", a.device.str(), a.pf);
        }
      }
    }
    if (done) a.pfApplyStarted = false;
  }
  // What is left to undo, for the retry; a clean teardown is followed by the journal's removal.
  if (firstError || out.stranded) (void)store_.save(a);
  if (firstError) return std::unexpected(*firstError);
  return out;
}

CniExpected<void> SriovPlugin::reclaim(const sriov::PciAddress& device, const VfOwner& owner,
                                       const Environment& env) {
  auto a = store_.load({owner.containerId, owner.ifname});
  if (!a) return ioError(a.error());
  if (*a) {
    auto td = teardown(**a, env, /*ipamBestEffort=*/false);
    if (!td) return std::unexpected(td.error());
    if (td->stranded) {
      (*a)->stranded = true;
      (*a)->strandedReason = td->reason;
      (void)store_.save(**a);
    } else {
      (void)store_.remove((*a)->id());
    }
  }
  if (auto r = store_.clearOwner(device); !r) return ioError(r.error());
  return {};
}

// ---- DEL ------------------------------------------------------------------------------------

CniExpected<void> SriovPlugin::del(Request& req) {
  const Environment& env = req.env;
  auto a = store_.load({env.containerId, env.ifname});
  if (!a) return ioError(a.error(), "read journal");
  if (!*a) {
    // Nothing recorded: ADD never got that far, or DEL already ran. IPAM is still asked to
    // release, so that a lost journal cannot leak an address; it is idempotent.
    std::string ipamType = req.conf.ipamType();
    if (!ipamType.empty()) {
      if (ipamType != "vfplane-ipam" && !findPlugin(ipamType, env.path)) {
        env.logger().warn("DEL {} {}: IPAM plugin {} not found; nothing recorded to release",
                          env.containerId, env.ifname, ipamType);
        return {};
      }
      // Without a journal there is no record that anything was allocated; a delegate that cannot
      // release (say, a config it cannot parse) must not wedge the pod in Terminating.
      if (auto r = runIpam(env, Command::kDel, req.conf, req.config); !r) {
        env.logger().warn("DEL {} {}: IPAM release without a journal failed: {}", env.containerId,
                          env.ifname, r.error().msg);
      }
    }
    env.logger().info("DEL {} {}: nothing recorded", env.containerId, env.ifname);
    return {};
  }
  VfAttachment& att = **a;
  StepClock clock;
  auto lock = lockVf(att.device);
  if (!lock) return std::unexpected(lock.error());
  clock.lap("lock");
  auto td = teardown(att, env, /*ipamBestEffort=*/false);
  if (!td) return std::unexpected(td.error());
  clock.lap("teardown");
  if (td->stranded) {
    att.stranded = true;
    att.strandedReason = td->reason;
    if (auto r = store_.save(att); !r) return ioError(r.error(), "journal");
    env.logger().warn("DEL {} {}: VF {} could not be brought home ({}); recorded for GC",
                      env.containerId, env.ifname, att.device.str(), td->reason);
    return {};
  }
  if (auto r = store_.remove(att.id()); !r) return ioError(r.error(), "journal");
  (void)store_.releaseOwner(att.device, att.id());
  env.logger().info("DEL {} {}: VF {} released in {}", env.containerId, env.ifname,
                    att.device.str(), clock.str());
  return {};
}

// ---- CHECK ----------------------------------------------------------------------------------

CniExpected<void> SriovPlugin::check(Request& req) {
  const Environment& env = req.env;
  auto cfg = parseSriovConfig(req.conf, env);
  if (!cfg) return std::unexpected(cfg.error());
  auto a = store_.load({env.containerId, env.ifname});
  if (!a) return ioError(a.error(), "read journal");
  if (!*a || !(*a)->complete) {
    return cniFail(ErrorCode::kUnknownContainer,
                   fmt::format("no attachment of container {} interface {} is recorded",
                               env.containerId, env.ifname));
  }
  const VfAttachment& att = **a;
  if (!att.dpdk) {
    NamespaceClients clients(options_.clients, &*req.netns);
    auto pod = clients.pod();
    if (!pod) return std::unexpected(pod.error());
    auto link = (*pod)->link(env.ifname);
    if (!link) return ioError(link.error());
    if (!*link)
      return cniFail(kCheckMismatch,
                     fmt::format("interface {} is missing from {}", env.ifname, env.netns));
    std::string wantMac = att.podMac;
    std::optional<int> wantMtu = att.podMtu;
    int resultIndex = 0;
    if (req.conf.prevResult) {
      const auto& ifs = req.conf.prevResult->interfaces;
      for (size_t i = 0; i < ifs.size(); ++i) {
        if (ifs[i].name == env.ifname && !ifs[i].sandbox.empty()) {
          resultIndex = static_cast<int>(i);
          if (!ifs[i].mac.empty()) wantMac = ifs[i].mac;
          if (ifs[i].mtu) wantMtu = ifs[i].mtu;
        }
      }
    }
    auto want = netlink::MacAddress::parse(wantMac);
    auto have = netlink::MacAddress::parse((*link)->mac);
    if (!wantMac.empty() && (!want || !have || *want != *have)) {
      return cniFail(kCheckMismatch,
                     fmt::format("{} has MAC {}, expected {}", env.ifname, (*link)->mac, wantMac));
    }
    if (wantMtu && *wantMtu > 0 && *wantMtu != (*link)->mtu) {
      return cniFail(kCheckMismatch,
                     fmt::format("{} has MTU {}, expected {}", env.ifname, (*link)->mtu, *wantMtu));
    }
    if (req.conf.prevResult) {
      if (auto r = checkIps(**pod, (*link)->ifindex, *req.conf.prevResult, resultIndex); !r)
        return r;
    }
  }
  if (att.pfSnapshot && !cfg->vf.empty()) {
    auto now = vf_->snapshot(att.pf, att.vfIndex);
    if (!now) return ioError(now.error());
    if (*now) {
      auto diff = cfg->vf.mismatches(**now);
      if (!diff.empty()) {
        return cniFail(kCheckMismatch,
                       fmt::format("VF {} on {}: {}", att.vfIndex, att.pf, fmt::join(diff, "; ")));
      }
    }
  }
  if (std::string ipamType = req.conf.ipamType(); !ipamType.empty()) {
    if (auto r = runIpam(env, Command::kCheck, req.conf, req.config); !r) return r;
  }
  return {};
}

// ---- GC and STATUS --------------------------------------------------------------------------

CniExpected<void> SriovPlugin::gc(Request& req) {
  std::vector<std::string> problems;
  auto all = store_.list(&problems);
  if (!all) return ioError(all.error(), "list journals");
  for (const auto& p : problems) req.env.logger().warn("GC: skipping unreadable journal {}", p);
  std::optional<CniError> firstError;
  for (auto& a : *all) {
    if (a.network != req.conf.name) continue;
    bool valid = std::find(req.validAttachments.begin(), req.validAttachments.end(), a.id()) !=
                 req.validAttachments.end();
    if (valid && !a.stranded) continue;
    auto lock = lockVf(a.device);
    if (!lock) {
      req.env.logger().warn("GC: VF {} is busy; next time", a.device.str());
      continue;
    }
    req.env.logger().info("GC: {} {} (VF {}){}", a.containerId, a.ifname, a.device.str(),
                          a.stranded ? ", stranded" : "");
    auto td = teardown(a, req.env, /*ipamBestEffort=*/false);
    if (!td) {
      if (!firstError) firstError = td.error();
      continue;
    }
    if (td->stranded) {
      a.stranded = true;
      a.strandedReason = td->reason;
      (void)store_.save(a);
      continue;
    }
    (void)store_.remove(a.id());
    (void)store_.releaseOwner(a.device, a.id());
  }
  // IPAM plugins that speak 1.1.0 get GC too; older ones (Debian 12's host-local) cannot, and
  // the attachments above released their addresses one by one.
  if (std::string ipamType = req.conf.ipamType(); !ipamType.empty()) {
    if (auto r = runIpam(req.env, Command::kGc, req.conf, req.config, req.validAttachments);
        !r && !firstError) {
      firstError = r.error();
    }
  }
  if (firstError) return std::unexpected(*firstError);
  return {};
}

CniExpected<void> SriovPlugin::status(Request& req) {
  if (auto r = store_.ensureWritable(); !r) {
    return cniFail(ErrorCode::kNotAvailable, fmt::format("state dir: {}", r.error().message()));
  }
  if (!sysfs_.exists("sys/bus/pci/devices")) {
    return cniFail(ErrorCode::kNotAvailable,
                   fmt::format("{} is missing", sysfs_.absolute("sys/bus/pci/devices").string()));
  }
  if (std::string ipamType = req.conf.ipamType(); !ipamType.empty()) {
    if (ipamType != "vfplane-ipam") {
      if (auto found = findPlugin(ipamType, req.env.path); !found) {
        return cniFail(ErrorCode::kNotAvailable, found.error().msg);
      }
    }
    if (auto r = runIpam(req.env, Command::kStatus, req.conf, req.config); !r) return r;
  }
  return {};
}

}  // namespace vfplane::cni
