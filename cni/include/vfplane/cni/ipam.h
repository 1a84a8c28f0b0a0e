// vfplane-ipam: host-local's allocator, with host-local's config and on-disk state, so that a
// network can switch between the two without losing or duplicating an allocation.
//
// State lives in <dataDir>/<network name>/ (dataDir defaults to /var/lib/cni/networks), guarded by
// an flock on its "lock" file: one file per reserved address, named by the address and holding
// "<containerID>\r\n<ifname>", and "last_reserved_ip.<N>" per range set N, from which the next
// search starts (loosely round-robin).
//
// It runs as a standalone IPAM plugin (vfplane-ipam) and in-process inside vfplane's interface
// plugins when ipam.type is "vfplane-ipam", which saves an exec per ADD and per DEL.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "vfplane/cni/plugin.h"
#include "vfplane/netlink/rtnl.h"

namespace vfplane::cni {

struct IpamRange {
  netlink::IpPrefix subnet;  // the network address, prefix length kept
  netlink::IpPrefix start;   // host prefixes (length 32/128)
  netlink::IpPrefix end;
  std::optional<netlink::IpPrefix> gateway;
  std::string str() const;  // "10.1.0.2-10.1.0.254", as host-local names a range
};

struct IpamConfig {
  std::string network;  // the network's name: the state directory under dataDir
  std::vector<std::vector<IpamRange>> rangeSets;
  std::vector<Route> routes;
  std::filesystem::path dataDir = "/var/lib/cni/networks";
  std::vector<netlink::IpPrefix> requested;  // args.cni.ips, runtimeConfig.ips, CNI_ARGS IP=
};

// Reads conf.ipam: "ranges" (range sets) or the legacy subnet/rangeStart/rangeEnd/gateway,
// "routes", "dataDir", and the requested addresses. Code 7 naming the field for anything wrong:
// a range outside its subnet, start after end, a subnet too small, overlapping range sets.
CniExpected<IpamConfig> parseIpamConfig(const NetConf& conf, const Environment& env);

class IpamStore {
 public:
  explicit IpamStore(const IpamConfig& config) : dir_(config.dataDir / config.network) {}

  // One address per range set (the requested one when it falls in the set), reserved for
  // containerId/ifname. An attachment that already holds addresses gets them again. Code 11 when
  // the lock cannot be had; a plain error naming the range set when it is exhausted.
  CniExpected<NetResult> allocate(const IpamConfig& config, const std::string& containerId,
                                  const std::string& ifname);
  // Frees every address of the attachment; none is fine.
  CniExpected<void> release(const std::string& containerId, const std::string& ifname);
  // Code 100 unless the attachment holds an address in every range set.
  CniExpected<void> check(const IpamConfig& config, const std::string& containerId,
                          const std::string& ifname);
  // Frees every reservation whose attachment is not in `valid`.
  CniExpected<void> gc(const std::vector<AttachmentId>& valid, spdlog::logger& log);

  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

// The IPAM step of an interface plugin: in-process for "vfplane-ipam", else the delegate found on
// CNI_PATH, exec'd with the same environment and stdin.
CniExpected<NetResult> runIpamAdd(const Environment& env, const NetConf& conf,
                                  std::string_view config);
// DEL, CHECK, GC (with the valid attachments) and STATUS; GC and STATUS reach exec'd delegates only
// when they speak 1.1.0 (Debian 12's host-local stops at 1.0.0).
CniExpected<void> runIpam(const Environment& env, Command command, const NetConf& conf,
                          std::string_view config, const std::vector<AttachmentId>& valid = {});

// The request's IPAM step for `command` (DEL, CHECK, GC with the request's valid attachments,
// STATUS): success when the network has no IPAM.
CniExpected<void> runIpamFor(const Request& req, Command command);

// The standalone vfplane-ipam plugin.
class IpamPlugin final : public Plugin {
 public:
  CniExpected<NetResult> add(Request& req) override;
  CniExpected<void> del(Request& req) override;
  CniExpected<void> check(Request& req) override;
  CniExpected<void> gc(Request& req) override;
  CniExpected<void> status(Request& req) override;
};

}  // namespace vfplane::cni
