#include "vfplane/cni/spec.h"

#include <fmt/format.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace vfplane::cni {
namespace {

using Json = nlohmann::ordered_json;

std::optional<std::array<int, 3>> parseSemver(std::string_view v) {
  std::array<int, 3> out{};
  for (int i = 0; i < 3; ++i) {
    size_t dot = i < 2 ? v.find('.') : v.size();
    if (dot == std::string_view::npos) return std::nullopt;
    std::string_view part = v.substr(0, dot);
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), out[i]);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size()) return std::nullopt;
    v.remove_prefix(std::min(v.size(), dot + 1));
  }
  return out;
}

}  // namespace

Json CniError::toJson(std::string_view cniVersion) const {
  Json j;
  j["cniVersion"] = std::string(cniVersion);
  j["code"] = static_cast<int>(code);
  j["msg"] = msg;
  if (!details.empty()) j["details"] = details;
  return j;
}

const std::vector<std::string>& supportedVersions() {
  static const std::vector<std::string> versions = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};
  return versions;
}

bool isSupportedVersion(std::string_view v) {
  const auto& s = supportedVersions();
  return std::find(s.begin(), s.end(), v) != s.end();
}

int compareVersions(std::string_view a, std::string_view b) {
  auto x = parseSemver(a), y = parseSemver(b);
  if (!x || !y) return x ? 1 : (y ? -1 : 0);
  return *x < *y ? -1 : (*x > *y ? 1 : 0);
}

Json versionInfo(std::string_view requested) {
  Json j;
  j["cniVersion"] = std::string(requested.empty() ? supportedVersions().back() : requested);
  j["supportedVersions"] = supportedVersions();
  return j;
}

std::optional<Command> parseCommand(std::string_view s) {
  if (s == "ADD") return Command::kAdd;
  if (s == "DEL") return Command::kDel;
  if (s == "CHECK") return Command::kCheck;
  if (s == "VERSION") return Command::kVersion;
  if (s == "GC") return Command::kGc;
  if (s == "STATUS") return Command::kStatus;
  return std::nullopt;
}

const char* commandName(Command c) {
  switch (c) {
    case Command::kAdd:
      return "ADD";
    case Command::kDel:
      return "DEL";
    case Command::kCheck:
      return "CHECK";
    case Command::kVersion:
      return "VERSION";
    case Command::kGc:
      return "GC";
    case Command::kStatus:
      return "STATUS";
  }
  return "?";
}

std::optional<std::string> Environment::arg(std::string_view key) const {
  std::optional<std::string> out;
  for (const auto& [k, v] : args) {
    if (k == key) out = v;
  }
  return out;
}

std::optional<std::string> ifNameProblem(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.size() > 15) return fmt::format("\"{}\" is longer than 15 bytes", name);
  if (name == "." || name == "..") return fmt::format("\"{}\" is reserved", name);
  for (char c : name) {
    if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c))) {
      return fmt::format("{:?} contains '/', ':' or whitespace", name);
    }
  }
  return std::nullopt;
}

bool validContainerId(std::string_view id) {
  if (id.empty() || !std::isalnum(static_cast<unsigned char>(id.front()))) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

spdlog::logger& Environment::logger() const {
  if (log) return *log;
  static spdlog::logger silent("vfplane-cni", std::make_shared<spdlog::sinks::null_sink_st>());
  return silent;
}

CniExpected<Environment> parseEnvironment(const std::map<std::string, std::string>& env) {
  auto get = [&](const char* k) -> std::optional<std::string> {
    auto it = env.find(k);
    return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  Environment e;
  e.base = env;
  auto cmd = get("CNI_COMMAND");
  if (!cmd) return cniFail(ErrorCode::kInvalidEnvironment, "CNI_COMMAND is not set");
  auto parsed = parseCommand(*cmd);
  if (!parsed) {
    return cniFail(
        ErrorCode::kInvalidEnvironment,
        fmt::format("CNI_COMMAND {:?} is not ADD, DEL, CHECK, GC, STATUS or VERSION", *cmd));
  }
  e.command = *parsed;
  bool perContainer =
      e.command == Command::kAdd || e.command == Command::kDel || e.command == Command::kCheck;
  if (perContainer) {
    auto id = get("CNI_CONTAINERID");
    if (!id || id->empty())
      return cniFail(ErrorCode::kInvalidEnvironment, "CNI_CONTAINERID is not set");
    if (!validContainerId(*id)) {
      return cniFail(
          ErrorCode::kInvalidEnvironment,
          fmt::format("CNI_CONTAINERID {:?} must start with a letter or digit and contain "
                      "only letters, digits, '_', '.' and '-'",
                      *id));
    }
    e.containerId = *id;
    auto ifname = get("CNI_IFNAME");
    if (!ifname) return cniFail(ErrorCode::kInvalidEnvironment, "CNI_IFNAME is not set");
    if (auto problem = ifNameProblem(*ifname)) {
      return cniFail(ErrorCode::kInvalidEnvironment, "CNI_IFNAME " + *problem);
    }
    e.ifname = *ifname;
    auto netns = get("CNI_NETNS");
    // DEL must work when the runtime has already lost the namespace.
    if ((!netns || netns->empty()) && e.command != Command::kDel) {
      return cniFail(ErrorCode::kInvalidEnvironment, "CNI_NETNS is not set");
    }
    e.netns = netns.value_or("");
  }
  if (auto args = get("CNI_ARGS")) {
    std::string_view rest = *args;
    while (!rest.empty()) {
      size_t semi = rest.find(';');
      std::string_view part = rest.substr(0, semi);
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      if (part.empty()) continue;
      size_t eq = part.find('=');
      if (eq == std::string_view::npos || eq == 0) {
        return cniFail(ErrorCode::kInvalidEnvironment,
                       fmt::format("CNI_ARGS part {:?} is not KEY=VALUE", part));
      }
      e.args.emplace_back(std::string(part.substr(0, eq)), std::string(part.substr(eq + 1)));
    }
  }
  if (auto path = get("CNI_PATH")) {
    std::string_view rest = *path;
    while (!rest.empty()) {
      size_t colon = rest.find(':');
      std::string_view part = rest.substr(0, colon);
      if (!part.empty()) e.path.emplace_back(part);
      rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    }
  }
  return e;
}

CniExpected<NetResult> parseResult(const nlohmann::json& j) {
  if (!j.is_object()) return cniFail(ErrorCode::kDecodeFailure, "result is not a JSON object");
  NetResult r;
  try {
    if (auto it = j.find("interfaces"); it != j.end()) {
      for (const auto& i : *it) {
        Interface iface;
        iface.name = i.at("name").get<std::string>();
        iface.mac = i.value("mac", "");
        if (i.contains("mtu")) iface.mtu = i.at("mtu").get<int>();
        iface.sandbox = i.value("sandbox", "");
        iface.socketPath = i.value("socketPath", "");
        iface.pciID = i.value("pciID", "");
        r.interfaces.push_back(std::move(iface));
      }
    }
    if (auto it = j.find("ips"); it != j.end()) {
      for (const auto& i : *it) {
        IpConfig ip;
        ip.address = i.at("address").get<std::string>();
        ip.gateway = i.value("gateway", "");
        if (i.contains("interface")) ip.interface = i.at("interface").get<int>();
        r.ips.push_back(std::move(ip));
      }
    }
    if (auto it = j.find("routes"); it != j.end()) {
      for (const auto& i : *it) {
        Route route{i.at("dst").get<std::string>(), i.value("gw", ""), nlohmann::json::object()};
        for (const auto& [k, v] : i.items()) {
          if (k != "dst" && k != "gw") route.extra[k] = v;
        }
        r.routes.push_back(std::move(route));
      }
    }
    if (auto it = j.find("dns"); it != j.end() && it->is_object()) {
      r.dns.nameservers = it->value("nameservers", std::vector<std::string>{});
      r.dns.domain = it->value("domain", "");
      r.dns.search = it->value("search", std::vector<std::string>{});
      r.dns.options = it->value("options", std::vector<std::string>{});
    }
  } catch (const nlohmann::json::exception& e) {
    return cniFail(ErrorCode::kDecodeFailure, "cannot decode result", e.what());
  }
  return r;
}

Json renderResult(const NetResult& r, std::string_view version) {
  bool v1 = compareVersions(version, "1.0.0") >= 0;
  bool v11 = compareVersions(version, "1.1.0") >= 0;
  Json j;
  j["cniVersion"] = std::string(version);
  if (!r.interfaces.empty()) {
    Json list = Json::array();
    for (const auto& i : r.interfaces) {
      Json o;
      o["name"] = i.name;
      if (!i.mac.empty()) o["mac"] = i.mac;
      if (v11 && i.mtu) o["mtu"] = *i.mtu;
      if (!i.sandbox.empty()) o["sandbox"] = i.sandbox;
      if (v11 && !i.socketPath.empty()) o["socketPath"] = i.socketPath;
      if (v11 && !i.pciID.empty()) o["pciID"] = i.pciID;
      list.push_back(std::move(o));
    }
    j["interfaces"] = std::move(list);
  }
  if (!r.ips.empty()) {
    Json list = Json::array();
    for (const auto& ip : r.ips) {
      Json o;
      if (!v1) o["version"] = ip.isV6() ? "6" : "4";
      if (ip.interface) o["interface"] = *ip.interface;
      o["address"] = ip.address;
      if (!ip.gateway.empty()) o["gateway"] = ip.gateway;
      list.push_back(std::move(o));
    }
    j["ips"] = std::move(list);
  }
  if (!r.routes.empty()) {
    Json list = Json::array();
    for (const auto& route : r.routes) {
      Json o;
      o["dst"] = route.dst;
      if (!route.gw.empty()) o["gw"] = route.gw;
      if (v11) {
        for (const auto& [k, v] : route.extra.items()) o[k] = v;
      }
      list.push_back(std::move(o));
    }
    j["routes"] = std::move(list);
  }
  {
    // Always present, as Go's result types print it (a struct is never omitted): a runtime or a
    // chained plugin sees the same keys from vfplane as from the reference plugins.
    Json d = Json::object();
    if (!r.dns.nameservers.empty()) d["nameservers"] = r.dns.nameservers;
    if (!r.dns.domain.empty()) d["domain"] = r.dns.domain;
    if (!r.dns.search.empty()) d["search"] = r.dns.search;
    if (!r.dns.options.empty()) d["options"] = r.dns.options;
    j["dns"] = std::move(d);
  }
  return j;
}

std::unexpected<CniError> ioError(const Error& e, std::string_view what) {
  return cniFail(ErrorCode::kIoFailure,
                 what.empty() ? e.message() : fmt::format("{}: {}", what, e.message()));
}

}  // namespace vfplane::cni
