#include "vfplane/cni/macvlan_plugin.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/if_link.h>
#include <spdlog/spdlog.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "vfplane/base/json_keys.h"
#include "vfplane/cni/config_keys.h"
#include "vfplane/cni/ip_config.h"
#include "vfplane/cni/ipam.h"
#include "vfplane/cni/netdev_move.h"

namespace vfplane::cni {
namespace {

using netlink::LinkChange;

constexpr const char* kPlugin = "vfplane-macvlan";

struct ModeName {
  const char* name;
  uint32_t mode;
};
constexpr ModeName kModes[] = {{"bridge", MACVLAN_MODE_BRIDGE},
                               {"private", MACVLAN_MODE_PRIVATE},
                               {"vepa", MACVLAN_MODE_VEPA},
                               {"passthru", MACVLAN_MODE_PASSTHRU}};

// A name no other ADD picks at the same time: the link is born under it in the pod and renamed to
// CNI_IFNAME right after, so a clash with the final name is found by the rename, never adopted.
std::string temporaryName() {
  uint32_t r = 0;
  if (::getrandom(&r, sizeof(r), 0) != sizeof(r))
    r = static_cast<uint32_t>(::getpid()) * 2654435761u;
  return fmt::format("vfptmp{:08x}", r);
}

// Best effort, as the reference plugins do: unsolicited neighbour advertisements after a MAC
// change. A pod without IPv6 has no such file.
void setNdiscNotify(const netlink::Netns& ns, const std::string& ifname, spdlog::logger& log) {
  auto entered = netlink::NetnsEntered::enter(ns);
  if (!entered) return;
  std::string path = fmt::format("/proc/sys/net/ipv6/conf/{}/ndisc_notify", ifname);
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  if (::write(fd, "1", 1) != 1) log.debug("{}: cannot set {}", kPlugin, path);
  ::close(fd);
}

struct Master {
  netlink::LinkInfo link;
};

// The master link, resolved in `where` (the host, or the pod with linkInContainer).
CniExpected<Master> resolveMaster(netlink::Client& where, const MacvlanConfig& cfg) {
  std::string name = cfg.master;
  if (name.empty()) {
    auto idx = where.defaultRouteLink();
    if (!idx) return ioError(idx.error());
    if (!*idx)
      return invalidKey(kPlugin, "master",
                        "not set, and there is no default route to take its link from");
    auto l = where.link(**idx);
    if (!l) return ioError(l.error());
    if (!*l)
      return invalidKey(kPlugin, "master",
                        fmt::format("not set, and the default route's link #{} is gone", **idx));
    return Master{**l};
  }
  auto l = where.link(name);
  if (!l) return ioError(l.error());
  if (!*l) {
    return invalidKey(
        kPlugin, "master",
        fmt::format("link {} not found{}", name, cfg.linkInContainer ? " in the pod" : ""));
  }
  return Master{**l};
}

}  // namespace

std::string macvlanModeName(uint32_t mode) {
  for (const auto& m : kModes) {
    if (m.mode == mode) return m.name;
  }
  return "";
}

CniExpected<MacvlanConfig> parseMacvlanConfig(const NetConf& conf, const Environment& env) {
  ConfigKeys keys(kPlugin, conf.raw);
  MacvlanConfig c;
  auto master = keys.string("master");
  if (!master) return std::unexpected(master.error());
  if (*master) {
    if (auto problem = ifNameProblem(**master); problem && !(**master).empty())
      return keys.invalid("master", *problem);
    c.master = **master;
  }
  auto mode = keys.string("mode");
  if (!mode) return std::unexpected(mode.error());
  c.mode = MACVLAN_MODE_BRIDGE;
  if (*mode && !(**mode).empty()) {
    std::string want = asciiLower(**mode);
    auto it = std::find_if(std::begin(kModes), std::end(kModes),
                           [&](const ModeName& m) { return want == m.name; });
    if (it == std::end(kModes)) {
      return keys.invalid("mode",
                          fmt::format("\"{}\" must be bridge, private, vepa or passthru", **mode));
    }
    c.mode = it->mode;
    c.modeName = it->name;
  }
  auto mtu = keys.integer("mtu", 0, 65535);
  if (!mtu) return std::unexpected(mtu.error());
  if (*mtu) c.mtu = static_cast<int>(**mtu);
  auto inContainer = keys.boolean("linkInContainer");
  if (!inContainer) return std::unexpected(inContainer.error());
  c.linkInContainer = inContainer->value_or(false);
  auto mac = requestedMac(keys, conf, env);
  if (!mac) return std::unexpected(mac.error());
  c.mac = *mac;
  return c;
}

CniExpected<NetResult> MacvlanPlugin::add(Request& req) {
  const auto& env = req.env;
  auto cfg = parseMacvlanConfig(req.conf, env);
  if (!cfg) return std::unexpected(cfg.error());
  NamespaceClients ns(options_.clients, &*req.netns);
  auto clients = ns.hostAndPod();
  if (!clients) return std::unexpected(clients.error());
  auto [host, pod] = *clients;

  if (auto existing = pod->link(env.ifname); !existing) {
    return ioError(existing.error());
  } else if (*existing) {
    return cniFail(
        ErrorCode::kInvalidEnvironment,
        fmt::format("CNI_IFNAME {} already exists in {}; vfplane-macvlan does not adopt links",
                    env.ifname, env.netns));
  }
  netlink::Client& masterNs = cfg->linkInContainer ? *pod : *host;
  auto master = resolveMaster(masterNs, *cfg);
  if (!master) return std::unexpected(master.error());
  if (cfg->mtu > master->link.mtu) {
    return invalidKey(kPlugin, "mtu",
                      fmt::format("{} is above master {}'s MTU {}", cfg->mtu, master->link.name,
                                  master->link.mtu));
  }

  netlink::MacvlanSpec spec;
  spec.name = temporaryName();
  spec.masterIndex = master->link.ifindex;
  spec.mode = cfg->mode;
  if (cfg->mtu > 0) spec.mtu = cfg->mtu;
  spec.mac = cfg->mac;
  if (!cfg->linkInContainer) spec.netnsFd = req.netns->fd();
  if (auto r =
          masterNs.execute(netlink::buildCreateMacvlan(spec),
                           fmt::format("create macvlan on {} in {}", master->link.name, env.netns));
      !r) {
    return ioError(r.error());
  }
  auto created = pod->link(spec.name);
  if (!created || !*created) {
    return cniFail(ErrorCode::kIoFailure,
                   fmt::format("macvlan {} vanished from {} right after it was created", spec.name,
                               env.netns));
  }
  const int ifindex = (*created)->ifindex;
  auto undoLink = [&] {
    if (auto r = pod->execute(netlink::buildDeleteLink(ifindex), "delete macvlan"); !r) {
      env.logger().warn("{}: rollback: {}", kPlugin, r.error().message());
    }
  };

  LinkChange change;
  change.name = env.ifname;
  change.up = true;
  change.arpNotify = true;
  // A passthru macvlan is born with its master's MAC whatever the request said; setting it now
  // gives the master that MAC too, which is what passthru (the pod owns the NIC) means.
  if (cfg->mode == MACVLAN_MODE_PASSTHRU) change.mac = cfg->mac;
  if (auto r = pod->execute(netlink::buildChangeLink(ifindex, change),
                            fmt::format("rename {} to {}", spec.name, env.ifname));
      !r) {
    undoLink();
    return ioError(r.error());
  }

  NetResult result;
  bool ipam = !req.conf.ipamType().empty();
  if (ipam) {
    auto allocated = runIpamAdd(env, req.conf, req.config);
    if (!allocated) {
      undoLink();
      return std::unexpected(allocated.error());
    }
    result = std::move(*allocated);
    auto undoIpam = [&] {
      if (auto r = runIpam(env, Command::kDel, req.conf, req.config); !r) {
        env.logger().warn("{}: rollback: IPAM DEL: {}", kPlugin, r.error().msg);
      }
    };
    if (result.ips.empty()) {
      undoIpam();
      undoLink();
      return cniFail(ErrorCode::kInvalidConfig,
                     fmt::format("ipam: {} returned no IP address", req.conf.ipamType()));
    }
    for (auto& ip : result.ips) ip.interface = 0;
    if (auto r = configureIps(*pod, ifindex, result, 0); !r) {
      undoIpam();
      undoLink();
      return std::unexpected(r.error());
    }
    if (std::any_of(result.ips.begin(), result.ips.end(),
                    [](const IpConfig& ip) { return ip.isV6(); })) {
      setNdiscNotify(*req.netns, env.ifname, env.logger());
    }
  }
  // The link as read right after creation; the rename changed only the name (and, for passthru,
  // the MAC to the one asked for), so there is no need to read it again.
  Interface iface;
  iface.name = env.ifname;
  iface.mac = change.mac ? change.mac->str() : (*created)->mac;
  iface.mtu = (*created)->mtu;
  iface.sandbox = env.netns;
  result.interfaces.insert(result.interfaces.begin(), iface);
  env.logger().info("{}: ADD {} {}: macvlan ({}) on {} as {} {}", kPlugin, env.containerId,
                    env.ifname, cfg->modeName, master->link.name, iface.mac,
                    ipam ? fmt::format("with {} address(es)", result.ips.size()) : "(L2 only)");
  return result;
}

CniExpected<void> MacvlanPlugin::del(Request& req) {
  const auto& env = req.env;
  // IPAM first: its reservation outlives the pod otherwise, and the link dies with the netns.
  if (auto r = runIpamFor(req, Command::kDel); !r) return r;
  if (!req.netns) return {};
  NamespaceClients ns(options_.clients, &*req.netns);
  auto pod = ns.pod();
  if (!pod) return std::unexpected(pod.error());
  auto link = (*pod)->link(env.ifname);
  if (!link) return ioError(link.error());
  if (!*link) return {};
  if ((*link)->kind != "macvlan") {
    env.logger().warn("{}: DEL {}: {} in {} is a {} link, not ours; left alone", kPlugin,
                      env.containerId, env.ifname, env.netns,
                      (*link)->kind.empty() ? "hardware" : (*link)->kind);
    return {};
  }
  if (auto r = (*pod)->execute(netlink::buildDeleteLink((*link)->ifindex),
                               fmt::format("delete {}", env.ifname));
      !r) {
    if (r.error().sysErrno() != ENODEV) return ioError(r.error());
  }
  return {};
}

CniExpected<void> MacvlanPlugin::check(Request& req) {
  const auto& env = req.env;
  auto cfg = parseMacvlanConfig(req.conf, env);
  if (!cfg) return std::unexpected(cfg.error());
  if (!req.conf.prevResult)
    return cniFail(ErrorCode::kInvalidConfig, "vfplane-macvlan CHECK: prevResult is required");
  const NetResult& prev = *req.conf.prevResult;
  auto it = std::find_if(prev.interfaces.begin(), prev.interfaces.end(), [&](const Interface& i) {
    return i.name == env.ifname && !i.sandbox.empty();
  });
  if (it == prev.interfaces.end()) {
    return cniFail(kCheckMismatch,
                   fmt::format("prevResult has no interface {} in a sandbox", env.ifname));
  }
  const int resultIndex = static_cast<int>(it - prev.interfaces.begin());
  if (auto r = runIpamFor(req, Command::kCheck); !r) return r;
  NamespaceClients ns(options_.clients, &*req.netns);
  auto clients = ns.hostAndPod();
  if (!clients) return std::unexpected(clients.error());
  auto [host, pod] = *clients;
  auto link = pod->link(env.ifname);
  if (!link) return ioError(link.error());
  if (!*link)
    return cniFail(kCheckMismatch, fmt::format("{} is missing from {}", env.ifname, env.netns));
  const netlink::LinkInfo& l = **link;
  if (l.kind != "macvlan") {
    return cniFail(kCheckMismatch, fmt::format("{} is a {} link, not a macvlan", env.ifname,
                                               l.kind.empty() ? "hardware" : l.kind));
  }
  if (l.macvlanMode != cfg->mode) {
    return cniFail(kCheckMismatch, fmt::format("{} is in mode {}, the config says {}", env.ifname,
                                               macvlanModeName(l.macvlanMode), cfg->modeName));
  }
  auto master = resolveMaster(cfg->linkInContainer ? *pod : *host, *cfg);
  if (!master) return std::unexpected(master.error());
  if (l.parentIndex != master->link.ifindex) {
    return cniFail(kCheckMismatch,
                   fmt::format("{} is not on master {}", env.ifname, master->link.name));
  }
  if (cfg->mtu > 0 && l.mtu != cfg->mtu) {
    return cniFail(kCheckMismatch,
                   fmt::format("{} has MTU {}, the config says {}", env.ifname, l.mtu, cfg->mtu));
  }
  if (!it->mac.empty() && asciiLower(it->mac) != l.mac) {
    return cniFail(kCheckMismatch,
                   fmt::format("{} has MAC {}, ADD gave it {}", env.ifname, l.mac, it->mac));
  }
  return checkIps(*pod, l.ifindex, prev, resultIndex);
}

CniExpected<void> MacvlanPlugin::gc(Request& req) {
  // The links die with their namespaces; only IPAM keeps state.
  return runIpamFor(req, Command::kGc);
}

CniExpected<void> MacvlanPlugin::status(Request& req) { return runIpamFor(req, Command::kStatus); }

}  // namespace vfplane::cni
