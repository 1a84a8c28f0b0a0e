#include "vfplane/cni/ipam.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "vfplane/base/json_keys.h"
#include "vfplane/cni/attachment_store.h"
#include "vfplane/cni/exec.h"
#include "vfplane/sriov/device_lock.h"

namespace vfplane::cni {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using netlink::IpPrefix;

constexpr std::chrono::milliseconds kLockTimeout{10000};
constexpr const char* kLineBreak =
    "\r\n";  // host-local's separator between container ID and ifname
constexpr const char* kLastReserved = "last_reserved_ip.";

std::unexpected<CniError> invalid(std::string_view field, std::string_view why) {
  return cniFail(ErrorCode::kInvalidConfig, fmt::format("ipam: {}: {}", field, why));
}

int cmp(const IpPrefix& a, const IpPrefix& b) {
  if (a.family != b.family) return a.family < b.family ? -1 : 1;
  return std::memcmp(a.addr.data(), b.addr.data(), a.addrLen());
}

IpPrefix host(IpPrefix p) {
  p.length = static_cast<int>(p.addrLen() * 8);
  return p;
}

// The first (or, with ones, last) address of a prefix.
IpPrefix edge(const IpPrefix& p, bool ones) {
  IpPrefix out = host(p);
  for (size_t bit = static_cast<size_t>(p.length); bit < p.addrLen() * 8; ++bit) {
    uint8_t mask = static_cast<uint8_t>(0x80 >> (bit % 8));
    if (ones) {
      out.addr[bit / 8] |= mask;
    } else {
      out.addr[bit / 8] &= static_cast<uint8_t>(~mask);
    }
  }
  return out;
}

IpPrefix step(IpPrefix a, int delta) {
  for (size_t i = a.addrLen(); i-- > 0;) {
    if (delta > 0) {
      if (++a.addr[i] != 0) break;
    } else {
      if (a.addr[i]-- != 0) break;
    }
  }
  return a;
}

bool contains(const IpPrefix& subnet, const IpPrefix& a) {
  return a.family == subnet.family && cmp(edge(subnet, false), a) <= 0 &&
         cmp(a, edge(subnet, true)) <= 0;
}

bool inRange(const IpamRange& r, const IpPrefix& a) {
  return a.family == r.start.family && cmp(r.start, a) <= 0 && cmp(a, r.end) <= 0;
}

CniExpected<IpPrefix> address(const Json& v, std::string_view field) {
  if (!v.is_string()) return invalid(field, "must be a string");
  std::string s = v.get<std::string>();
  auto a = IpPrefix::parse(s.substr(0, s.find('/')));
  if (!a) return invalid(field, a.error().message());
  return host(*a);
}

CniExpected<IpamRange> parseRange(const Json& r, const std::string& field) {
  if (!r.is_object()) return invalid(field, "must be an object");
  const Json* subnet = findGoKey(r, "subnet");
  if (subnet == nullptr || !subnet->is_string())
    return invalid(field + ".subnet", "is required (a CIDR)");
  auto net = IpPrefix::parse(subnet->get<std::string>());
  if (!net || subnet->get<std::string>().find('/') == std::string::npos) {
    return invalid(field + ".subnet",
                   fmt::format("\"{}\" is not a CIDR", subnet->get<std::string>()));
  }
  int bits = static_cast<int>(net->addrLen() * 8);
  if (net->length > bits - 2) {
    return invalid(field + ".subnet", fmt::format("{} is too small to allocate from", net->str()));
  }
  IpamRange range;
  range.subnet = edge(*net, false);
  range.subnet.length = net->length;
  range.start = step(edge(*net, false), +1);
  range.end = edge(*net, true);
  if (net->family == AF_INET) range.end = step(range.end, -1);  // the broadcast address
  range.gateway = step(edge(*net, false), +1);
  for (auto [key, target] :
       {std::pair{"rangeStart", &range.start}, std::pair{"rangeEnd", &range.end}}) {
    if (const Json* v = findGoKey(r, key); v != nullptr && !v->is_null()) {
      auto a = address(*v, field + "." + key);
      if (!a) return std::unexpected(a.error());
      if (!contains(*net, *a))
        return invalid(field + "." + key,
                       fmt::format("{} is outside {}", a->addressStr(), net->str()));
      *target = *a;
    }
  }
  if (const Json* v = findGoKey(r, "gateway"); v != nullptr && !v->is_null()) {
    auto a = address(*v, field + ".gateway");
    if (!a) return std::unexpected(a.error());
    if (!contains(*net, *a))
      return invalid(field + ".gateway",
                     fmt::format("{} is outside {}", a->addressStr(), net->str()));
    range.gateway = *a;
  }
  if (cmp(range.start, range.end) > 0) {
    return invalid(field, fmt::format("rangeStart {} is after rangeEnd {}",
                                      range.start.addressStr(), range.end.addressStr()));
  }
  return range;
}

// What a reservation file says: "<id>\r\n<ifname>" (or a bare "<id>" from old host-local).
std::optional<AttachmentId> readOwner(const fs::path& file) {
  auto text = readFile(file);
  if (!text) return std::nullopt;
  std::string s = std::move(*text);
  auto sep = s.find(kLineBreak);
  if (sep == std::string::npos) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    return AttachmentId{s, ""};
  }
  return AttachmentId{s.substr(0, sep), s.substr(sep + 2)};
}

bool isReservationName(const std::string& name) {
  return name != "lock" && !name.starts_with(kLastReserved) && !name.starts_with(".") &&
         IpPrefix::parse(name).has_value();
}

std::vector<std::string> reservationNames(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (isReservationName(n)) out.push_back(std::move(n));
  }
  return out;
}

bool matches(const std::optional<AttachmentId>& owner, const std::string& id,
             const std::string& ifname) {
  // A bare ID (old host-local) belongs to every interface of that container.
  return owner && owner->containerId == id && (owner->ifname == ifname || owner->ifname.empty());
}

CniExpected<sriov::DeviceLock> lockStore(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return cniFail(ErrorCode::kIoFailure, fmt::format("create {}: {}", dir.string(), ec.message()));
  auto lock = sriov::DeviceLock::acquireFile(dir / "lock", kLockTimeout);
  if (!lock) {
    return cniFail(
        lock.error().sysErrno() == ETIMEDOUT ? ErrorCode::kTryAgainLater : ErrorCode::kIoFailure,
        lock.error().message());
  }
  return std::move(*lock);
}

// O_EXCL: two allocators that both think an address is free cannot both get it, even without the
// lock (a host-local without it, or a stale lock). False when the address is taken; an error (code
// 5, naming the file) when the data dir cannot take the reservation at all, so that a read-only or
// full dir is not reported as an exhausted range after walking all of it.
CniExpected<bool> reserve(const fs::path& dir, const IpPrefix& a, const std::string& id,
                          const std::string& ifname) {
  fs::path file = dir / a.addressStr();
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return false;
    return cniFail(ErrorCode::kIoFailure,
                   fmt::format("reserve {}: {}", file.string(), std::strerror(errno)));
  }
  std::string content = id + kLineBreak + ifname;
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  int err = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(file.c_str());
    return cniFail(ErrorCode::kIoFailure,
                   fmt::format("write {}: {}", file.string(), std::strerror(err ? err : EIO)));
  }
  return true;
}

std::string rangeSetName(const std::vector<IpamRange>& set) {
  std::vector<std::string> parts;
  for (const auto& r : set) parts.push_back(r.str());
  return fmt::format("{}", fmt::join(parts, ","));
}

}  // namespace

std::string IpamRange::str() const {
  return fmt::format("{}-{}", start.addressStr(), end.addressStr());
}

CniExpected<IpamConfig> parseIpamConfig(const NetConf& conf, const Environment& env) {
  const Json& ipam = conf.ipam;
  if (!ipam.is_object()) return invalid("ipam", "is required");
  IpamConfig c;
  c.network = conf.name;
  if (c.network.empty() || c.network.find('/') != std::string::npos || c.network == "." ||
      c.network == "..") {
    return cniFail(ErrorCode::kInvalidConfig,
                   fmt::format("network name \"{}\" cannot name a state directory", c.network));
  }
  if (const Json* d = findGoKey(ipam, "dataDir"); d != nullptr && !d->is_null()) {
    if (!d->is_string() || d->get<std::string>().empty())
      return invalid("dataDir", "must be a non-empty string");
    c.dataDir = d->get<std::string>();
  }
  if (const Json* ranges = findGoKey(ipam, "ranges"); ranges != nullptr && !ranges->is_null()) {
    if (!ranges->is_array() || ranges->empty())
      return invalid("ranges", "must be a non-empty list of range sets");
    for (size_t i = 0; i < ranges->size(); ++i) {
      const Json& set = (*ranges)[i];
      if (!set.is_array() || set.empty())
        return invalid(fmt::format("ranges[{}]", i), "must be a non-empty list of ranges");
      std::vector<IpamRange> out;
      for (size_t j = 0; j < set.size(); ++j) {
        auto r = parseRange(set[j], fmt::format("ranges[{}][{}]", i, j));
        if (!r) return std::unexpected(r.error());
        out.push_back(*r);
      }
      c.rangeSets.push_back(std::move(out));
    }
  } else if (findGoKey(ipam, "subnet") != nullptr) {
    auto r = parseRange(ipam, "subnet");
    if (!r) return std::unexpected(r.error());
    c.rangeSets.push_back({*r});
  } else {
    return invalid("ranges", "either \"ranges\" or \"subnet\" is required");
  }
  // Overlaps would hand out one address twice under two names.
  std::vector<std::pair<std::string, const IpamRange*>> all;
  for (size_t i = 0; i < c.rangeSets.size(); ++i) {
    for (size_t j = 0; j < c.rangeSets[i].size(); ++j)
      all.emplace_back(fmt::format("ranges[{}][{}]", i, j), &c.rangeSets[i][j]);
  }
  for (size_t x = 0; x < all.size(); ++x) {
    for (size_t y = x + 1; y < all.size(); ++y) {
      const IpamRange& a = *all[x].second;
      const IpamRange& b = *all[y].second;
      if (a.start.family == b.start.family && cmp(a.start, b.end) <= 0 &&
          cmp(b.start, a.end) <= 0) {
        return invalid(all[y].first,
                       fmt::format("{} overlaps {} ({})", b.str(), all[x].first, a.str()));
      }
    }
  }
  if (const Json* routes = findGoKey(ipam, "routes"); routes != nullptr && !routes->is_null()) {
    if (!routes->is_array()) return invalid("routes", "must be a list");
    for (size_t i = 0; i < routes->size(); ++i) {
      const Json& r = (*routes)[i];
      std::string field = fmt::format("routes[{}]", i);
      const Json* dst = findGoKey(r, "dst");
      if (dst == nullptr || !dst->is_string() || !IpPrefix::parse(dst->get<std::string>()) ||
          dst->get<std::string>().find('/') == std::string::npos) {
        return invalid(field + ".dst", "must be a CIDR");
      }
      Route route{dst->get<std::string>(), "", Json::object()};
      if (const Json* gw = findGoKey(r, "gw"); gw != nullptr && !gw->is_null()) {
        auto a = address(*gw, field + ".gw");
        if (!a) return std::unexpected(a.error());
        route.gw = a->addressStr();
      }
      c.routes.push_back(std::move(route));
    }
  }
  // Requested addresses, as host-local takes them.
  auto addRequested = [&](const Json& list, const std::string& field) -> CniExpected<void> {
    if (!list.is_array()) return invalid(field, "must be a list of addresses");
    for (size_t i = 0; i < list.size(); ++i) {
      auto a = address(list[i], fmt::format("{}[{}]", field, i));
      if (!a) return std::unexpected(a.error());
      c.requested.push_back(*a);
    }
    return {};
  };
  if (const Json* cniArgs = findGoKey(conf.args, "cni"); cniArgs != nullptr) {
    if (const Json* ips = findGoKey(*cniArgs, "ips"); ips != nullptr) {
      if (auto r = addRequested(*ips, "args.cni.ips"); !r) return std::unexpected(r.error());
    }
  }
  if (const Json* ips = findGoKey(conf.runtimeConfig, "ips"); ips != nullptr) {
    if (auto r = addRequested(*ips, "runtimeConfig.ips"); !r) return std::unexpected(r.error());
  }
  if (auto ip = env.arg("IP")) {
    std::stringstream ss(*ip);
    Json list = Json::array();
    for (std::string part; std::getline(ss, part, ',');) list.push_back(part);
    if (auto r = addRequested(list, "CNI_ARGS IP"); !r) return std::unexpected(r.error());
  }
  for (const auto& want : c.requested) {
    bool found = false;
    for (const auto& set : c.rangeSets) {
      for (const auto& r : set) found = found || inRange(r, want);
    }
    if (!found)
      return invalid("requested IP", fmt::format("{} is in none of the ranges", want.addressStr()));
  }
  return c;
}

// ---- store ----------------------------------------------------------------------------------

CniExpected<NetResult> IpamStore::allocate(const IpamConfig& config, const std::string& id,
                                           const std::string& ifname) {
  auto lock = lockStore(dir_);
  if (!lock) return std::unexpected(lock.error());

  // What this attachment already holds (a repeated ADD), by range set.
  std::vector<std::optional<IpPrefix>> held(config.rangeSets.size());
  for (const auto& name : reservationNames(dir_)) {
    if (!matches(readOwner(dir_ / name), id, ifname)) continue;
    auto a = IpPrefix::parse(name);
    for (size_t i = 0; i < config.rangeSets.size(); ++i) {
      for (const auto& r : config.rangeSets[i]) {
        if (inRange(r, *a) && !held[i]) held[i] = *a;
      }
    }
  }

  NetResult result;
  std::vector<IpPrefix> reservedNow;
  auto undo = [&] {
    for (const auto& a : reservedNow) ::unlink((dir_ / a.addressStr()).c_str());
  };
  for (size_t i = 0; i < config.rangeSets.size(); ++i) {
    const auto& set = config.rangeSets[i];
    std::optional<IpPrefix> got = held[i];
    const IpamRange* range = nullptr;
    if (!got) {
      for (const auto& want : config.requested) {
        for (const auto& r : set) {
          if (!inRange(r, want)) continue;
          if (r.gateway && cmp(*r.gateway, want) == 0) {
            undo();
            return invalid("requested IP", fmt::format("{} is the gateway of {}", want.addressStr(),
                                                       r.subnet.str()));
          }
          auto reserved = reserve(dir_, want, id, ifname);
          if (!reserved || !*reserved) {
            undo();
            if (!reserved) return std::unexpected(reserved.error());
            return cniFail(ErrorCode::kInvalidConfig,
                           fmt::format("requested IP {} is already reserved in {}",
                                       want.addressStr(), config.network));
          }
          got = want;
          break;
        }
        if (got) break;
      }
    }
    if (!got) {
      // Start after the last address handed out in this set, when it is still in the set.
      std::optional<IpPrefix> last;
      {
        std::ifstream in(dir_ / fmt::format("{}{}", kLastReserved, i));
        std::string s;
        if (in >> s) {
          if (auto a = IpPrefix::parse(s)) last = host(*a);
        }
      }
      // Walk every address of the set once, range by range, wrapping around.
      size_t k0 = 0;
      IpPrefix start = set[0].start;
      for (size_t k = 0; last && k < set.size(); ++k) {
        if (!inRange(set[k], *last)) continue;
        k0 = k;
        if (cmp(*last, set[k].end) == 0) {
          k0 = (k + 1) % set.size();
          start = set[k0].start;
        } else {
          start = step(*last, +1);
        }
      }
      size_t k = k0;
      IpPrefix cur = start;
      do {
        bool isGateway = set[k].gateway && cmp(*set[k].gateway, cur) == 0;
        if (!isGateway) {
          auto reserved = reserve(dir_, cur, id, ifname);
          if (!reserved) {
            undo();
            return std::unexpected(reserved.error());
          }
          if (*reserved) {
            got = cur;
            range = &set[k];
            break;
          }
        }
        if (cmp(cur, set[k].end) == 0) {
          k = (k + 1) % set.size();
          cur = set[k].start;
        } else {
          cur = step(cur, +1);
        }
      } while (!(k == k0 && cmp(cur, start) == 0));
      if (!got) {
        undo();
        return cniFail(
            ErrorCode::kTryAgainLater,
            fmt::format("no IP addresses available in range set {}: {}", i, rangeSetName(set)));
      }
      reservedNow.push_back(*got);
      (void)writeFileAtomic(dir_ / fmt::format("{}{}", kLastReserved, i), got->addressStr());
    } else if (!held[i]) {
      reservedNow.push_back(*got);
    }
    if (range == nullptr) {
      for (const auto& r : set) {
        if (inRange(r, *got)) range = &r;
      }
    }
    IpConfig ip;
    IpPrefix withLen = *got;
    withLen.length = range->subnet.length;
    ip.address = withLen.str();
    if (range->gateway) ip.gateway = range->gateway->addressStr();
    result.ips.push_back(std::move(ip));
  }
  result.routes = config.routes;
  return result;
}

CniExpected<void> IpamStore::release(const std::string& id, const std::string& ifname) {
  if (!fs::exists(dir_)) return {};
  auto lock = lockStore(dir_);
  if (!lock) return std::unexpected(lock.error());
  for (const auto& name : reservationNames(dir_)) {
    if (!matches(readOwner(dir_ / name), id, ifname)) continue;
    if (::unlink((dir_ / name).c_str()) != 0 && errno != ENOENT) {
      return cniFail(ErrorCode::kIoFailure,
                     fmt::format("release {}: {}", (dir_ / name).string(), std::strerror(errno)));
    }
  }
  return {};
}

CniExpected<void> IpamStore::check(const IpamConfig& config, const std::string& id,
                                   const std::string& ifname) {
  std::vector<bool> found(config.rangeSets.size(), false);
  for (const auto& name : reservationNames(dir_)) {
    if (!matches(readOwner(dir_ / name), id, ifname)) continue;
    auto a = IpPrefix::parse(name);
    for (size_t i = 0; i < config.rangeSets.size(); ++i) {
      for (const auto& r : config.rangeSets[i]) found[i] = found[i] || inRange(r, host(*a));
    }
  }
  for (size_t i = 0; i < found.size(); ++i) {
    if (!found[i]) {
      return cniFail(kCheckMismatch,
                     fmt::format("{} holds no address in range set {} ({}) of {}", id, i,
                                 rangeSetName(config.rangeSets[i]), config.network));
    }
  }
  return {};
}

CniExpected<void> IpamStore::gc(const std::vector<AttachmentId>& valid, spdlog::logger& log) {
  if (!fs::exists(dir_)) return {};
  auto lock = lockStore(dir_);
  if (!lock) return std::unexpected(lock.error());
  for (const auto& name : reservationNames(dir_)) {
    auto owner = readOwner(dir_ / name);
    if (!owner) continue;
    bool keep = std::any_of(valid.begin(), valid.end(), [&](const AttachmentId& v) {
      return v.containerId == owner->containerId &&
             (owner->ifname.empty() || v.ifname == owner->ifname);
    });
    if (!keep) {
      log.info("GC: releasing {} of {} {}", name, owner->containerId, owner->ifname);
      ::unlink((dir_ / name).c_str());
    }
  }
  return {};
}

// ---- in-process or delegated ----------------------------------------------------------------

CniExpected<NetResult> runIpamAdd(const Environment& env, const NetConf& conf,
                                  std::string_view config) {
  if (conf.ipamType() == "vfplane-ipam") {
    auto c = parseIpamConfig(conf, env);
    if (!c) return std::unexpected(c.error());
    return IpamStore(*c).allocate(*c, env.containerId, env.ifname);
  }
  return ipamAdd(env, config, conf.ipamType());
}

CniExpected<void> runIpam(const Environment& env, Command command, const NetConf& conf,
                          std::string_view config, const std::vector<AttachmentId>& valid) {
  std::string type = conf.ipamType();
  if (type != "vfplane-ipam") {
    // GC and STATUS exist from 1.1.0; older delegates (Debian 12's host-local) cannot take them.
    if (command == Command::kGc || command == Command::kStatus) {
      auto supports = pluginSupports(env, type, "1.1.0");
      if (!supports) {
        auto e = supports.error();
        e.msg = fmt::format("IPAM {}: cannot ask {} which versions it speaks: {}",
                            commandName(command), type, e.msg);
        return std::unexpected(std::move(e));
      }
      if (!*supports) return {};
    }
    return ipamDelegate(env, command, config, type);
  }
  auto c = parseIpamConfig(conf, env);
  if (!c) return std::unexpected(c.error());
  IpamStore store(*c);
  switch (command) {
    case Command::kDel:
      return store.release(env.containerId, env.ifname);
    case Command::kCheck:
      return store.check(*c, env.containerId, env.ifname);
    case Command::kStatus: {
      std::error_code ec;
      fs::create_directories(store.dir(), ec);
      if (ec || ::access(store.dir().c_str(), W_OK) != 0) {
        return cniFail(ErrorCode::kNotAvailable,
                       fmt::format("{} is not writable", store.dir().string()));
      }
      return {};
    }
    case Command::kGc:
      return store.gc(valid, env.logger());
    case Command::kAdd:
    case Command::kVersion:
      break;
  }
  return cniFail(ErrorCode::kInvalidConfig,
                 fmt::format("vfplane-ipam: {} is not run this way", commandName(command)));
}

// ---- standalone plugin ----------------------------------------------------------------------

CniExpected<void> runIpamFor(const Request& req, Command command) {
  if (req.conf.ipamType().empty()) return {};
  return runIpam(req.env, command, req.conf, req.config,
                 command == Command::kGc ? req.validAttachments : std::vector<AttachmentId>{});
}

CniExpected<NetResult> IpamPlugin::add(Request& req) {
  return runIpamAdd(req.env, req.conf, req.config);
}
CniExpected<void> IpamPlugin::del(Request& req) {
  return runIpam(req.env, Command::kDel, req.conf, req.config);
}
CniExpected<void> IpamPlugin::check(Request& req) {
  return runIpam(req.env, Command::kCheck, req.conf, req.config);
}
CniExpected<void> IpamPlugin::status(Request& req) {
  return runIpam(req.env, Command::kStatus, req.conf, req.config);
}
CniExpected<void> IpamPlugin::gc(Request& req) {
  return runIpam(req.env, Command::kGc, req.conf, req.config, req.validAttachments);
}

}  // namespace vfplane::cni
