#include "vfplane/cni/plugin.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>

#include "vfplane/cni/exec.h"

namespace vfplane::cni {
namespace {

using Json = nlohmann::json;

CniExpected<std::string> stringKey(const Json& j, const char* key, bool required) {
  if (!j.contains(key)) {
    if (required)
      return cniFail(ErrorCode::kInvalidConfig,
                     fmt::format("network config: \"{}\" is required", key));
    return std::string();
  }
  if (!j[key].is_string()) {
    return cniFail(ErrorCode::kInvalidConfig,
                   fmt::format("network config: \"{}\" must be a string", key));
  }
  return j[key].get<std::string>();
}

CniExpected<std::vector<AttachmentId>> validAttachments(const Json& raw) {
  std::vector<AttachmentId> out;
  constexpr const char* kKey = "cni.dev/valid-attachments";
  if (!raw.contains(kKey)) return out;
  const Json& list = raw[kKey];
  if (!list.is_array())
    return cniFail(ErrorCode::kInvalidConfig, fmt::format("\"{}\" must be a list", kKey));
  for (size_t i = 0; i < list.size(); ++i) {
    const Json& a = list[i];
    if (!a.is_object() || !a.contains("containerID") || !a["containerID"].is_string() ||
        !a.contains("ifname") || !a["ifname"].is_string()) {
      return cniFail(
          ErrorCode::kInvalidConfig,
          fmt::format("\"{}\"[{}] must be an object with string containerID and ifname", kKey, i));
    }
    out.push_back({a["containerID"].get<std::string>(), a["ifname"].get<std::string>()});
  }
  return out;
}

RunOutcome errorOutcome(const CniError& e, std::string_view version) {
  return RunOutcome{1,
                    e.toJson(version.empty() ? supportedVersions().back() : version).dump() + "\n"};
}

// The version to answer errors in: the config's when it can be read at all.
std::string versionOf(std::string_view stdinData) {
  auto j = Json::parse(stdinData, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("cniVersion") ||
      !j["cniVersion"].is_string())
    return "";
  std::string v = j["cniVersion"].get<std::string>();
  return isSupportedVersion(v) ? v : "";
}

}  // namespace

std::string NetConf::ipamType() const {
  if (!ipam.is_object() || !ipam.contains("type") || !ipam["type"].is_string()) return "";
  return ipam["type"].get<std::string>();
}

CniExpected<NetConf> parseNetConf(std::string_view stdinData) {
  auto j = Json::parse(stdinData, nullptr, false);
  if (j.is_discarded()) {
    return cniFail(ErrorCode::kDecodeFailure, "network config on stdin is not valid JSON");
  }
  if (!j.is_object())
    return cniFail(ErrorCode::kDecodeFailure, "network config on stdin is not a JSON object");
  NetConf c;
  auto version = stringKey(j, "cniVersion", true);
  if (!version) return std::unexpected(version.error());
  c.cniVersion = *version;
  if (!isSupportedVersion(c.cniVersion)) {
    return cniFail(ErrorCode::kIncompatibleVersion,
                   fmt::format("cniVersion \"{}\" is not supported; this plugin speaks {}",
                               c.cniVersion, fmt::join(supportedVersions(), ", ")));
  }
  auto name = stringKey(j, "name", true);
  if (!name) return std::unexpected(name.error());
  c.name = *name;
  auto type = stringKey(j, "type", true);
  if (!type) return std::unexpected(type.error());
  c.type = *type;
  if (j.contains("ipam") && !j["ipam"].is_null()) {
    if (!j["ipam"].is_object())
      return cniFail(ErrorCode::kInvalidConfig, "network config: \"ipam\" must be an object");
    // An empty ipam object means no IPAM, as the reference plugins treat it.
    if (!j["ipam"].empty()) {
      c.ipam = j["ipam"];
      if (!c.ipam.contains("type") || !c.ipam["type"].is_string() ||
          c.ipam["type"].get<std::string>().empty()) {
        return cniFail(ErrorCode::kInvalidConfig,
                       "network config: \"ipam.type\" is required when ipam is set");
      }
    }
  }
  if (j.contains("prevResult") && !j["prevResult"].is_null()) {
    auto prev = parseResult(j["prevResult"]);
    if (!prev) {
      return cniFail(ErrorCode::kDecodeFailure,
                     fmt::format("network config: prevResult: {}", prev.error().msg));
    }
    c.prevResult = std::move(*prev);
  }
  for (auto [key, target] :
       {std::pair{"runtimeConfig", &c.runtimeConfig}, std::pair{"args", &c.args}}) {
    if (!j.contains(key) || j[key].is_null()) continue;
    if (!j[key].is_object()) {
      return cniFail(ErrorCode::kInvalidConfig,
                     fmt::format("network config: \"{}\" must be an object", key));
    }
    *target = j[key];
  }
  auto level = stringKey(j, "logLevel", false);
  if (!level) return std::unexpected(level.error());
  c.logLevel = *level;
  auto file = stringKey(j, "logFile", false);
  if (!file) return std::unexpected(file.error());
  c.logFile = *file;
  c.raw = std::move(j);
  return c;
}

CniExpected<std::shared_ptr<spdlog::logger>> makePluginLogger(std::string_view plugin,
                                                              const NetConf& conf) {
  spdlog::level::level_enum level = spdlog::level::warn;
  if (!conf.logLevel.empty()) {
    static const std::map<std::string, spdlog::level::level_enum, std::less<>> kLevels = {
        {"panic", spdlog::level::critical}, {"fatal", spdlog::level::critical},
        {"error", spdlog::level::err},      {"warning", spdlog::level::warn},
        {"warn", spdlog::level::warn},      {"info", spdlog::level::info},
        {"debug", spdlog::level::debug}};
    auto it = kLevels.find(conf.logLevel);
    if (it == kLevels.end()) {
      return cniFail(
          ErrorCode::kInvalidConfig,
          fmt::format("logLevel: \"{}\" is not one of panic, error, warning, info, debug",
                      conf.logLevel));
    }
    level = it->second;
  }
  std::shared_ptr<spdlog::logger> logger;
  if (!conf.logFile.empty()) {
    try {
      logger = std::make_shared<spdlog::logger>(
          std::string(plugin), std::make_shared<spdlog::sinks::basic_file_sink_st>(conf.logFile));
    } catch (const spdlog::spdlog_ex& e) {
      return cniFail(ErrorCode::kInvalidConfig, fmt::format("logFile: {}", e.what()));
    }
  } else {
    // stdout belongs to the result; logs go to stderr, which runtimes keep.
    logger = std::make_shared<spdlog::logger>(std::string(plugin),
                                              std::make_shared<spdlog::sinks::stderr_sink_st>());
  }
  logger->set_level(level);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %n[%P] %l: %v", spdlog::pattern_time_type::utc);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

RunOutcome runPlugin(Plugin& plugin, const std::map<std::string, std::string>& envMap,
                     std::string_view stdinData, const RunOptions& options) {
  // The config's version is read on its own only where the full parse has not happened (yet).
  auto commandIt = envMap.find("CNI_COMMAND");
  if (commandIt != envMap.end() && commandIt->second == "VERSION") {
    return RunOutcome{0, versionInfo(versionOf(stdinData)).dump() + "\n"};
  }
  auto env = parseEnvironment(envMap);
  if (!env) return errorOutcome(env.error(), versionOf(stdinData));
  auto conf = parseNetConf(stdinData);
  if (!conf) return errorOutcome(conf.error(), versionOf(stdinData));

  Request req{.env = std::move(*env),
              .config = std::string(stdinData),
              .conf = std::move(*conf),
              .netns = std::nullopt,
              .validAttachments = {}};
  const std::string& version = req.conf.cniVersion;
  Command cmd = req.env.command;
  if (cmd == Command::kCheck && compareVersions(version, "0.4.0") < 0) {
    return errorOutcome(
        CniError{ErrorCode::kIncompatibleVersion,
                 fmt::format("CHECK needs cniVersion 0.4.0 or later; the config says {}", version),
                 ""},
        version);
  }
  if ((cmd == Command::kGc || cmd == Command::kStatus) && compareVersions(version, "1.1.0") < 0) {
    return errorOutcome(CniError{ErrorCode::kIncompatibleVersion,
                                 fmt::format("{} needs cniVersion 1.1.0; the config says {}",
                                             commandName(cmd), version),
                                 ""},
                        version);
  }
  auto logger = makePluginLogger(req.conf.type, req.conf);
  if (!logger) return errorOutcome(logger.error(), version);
  req.env.log = std::move(*logger);

  if (cmd == Command::kAdd || cmd == Command::kCheck || cmd == Command::kDel) {
    auto ns = netlink::Netns::open(req.env.netns);
    if (!ns) {
      bool gone = ns.error().sysErrno() == ENOENT || req.env.netns.empty();
      // DEL must succeed for a namespace that is already gone; the plugin cleans up without it.
      if (!(cmd == Command::kDel && gone)) {
        return errorOutcome(CniError{ErrorCode::kInvalidEnvironment,
                                     fmt::format("CNI_NETNS: {}", ns.error().message()), ""},
                            version);
      }
    } else {
      auto own = netlink::Netns::current();
      if (!own)
        return errorOutcome(CniError{ErrorCode::kIoFailure, own.error().message(), ""}, version);
      if (ns->sameAs(*own) && !options.allowOwnNetns) {
        return errorOutcome(
            CniError{kNetnsIsOwn,
                     fmt::format("CNI_NETNS {} is the plugin's own network namespace; refusing to "
                                 "move host devices around",
                                 req.env.netns),
                     ""},
            version);
      }
      req.netns = std::move(*ns);
    }
  }

  switch (cmd) {
    case Command::kAdd: {
      auto result = plugin.add(req);
      if (!result) return errorOutcome(result.error(), version);
      return RunOutcome{0, renderResult(*result, version).dump() + "\n"};
    }
    case Command::kDel: {
      auto r = plugin.del(req);
      return r ? RunOutcome{0, ""} : errorOutcome(r.error(), version);
    }
    case Command::kCheck: {
      auto r = plugin.check(req);
      return r ? RunOutcome{0, ""} : errorOutcome(r.error(), version);
    }
    case Command::kGc: {
      auto valid = validAttachments(req.conf.raw);
      if (!valid) return errorOutcome(valid.error(), version);
      req.validAttachments = std::move(*valid);
      auto r = plugin.gc(req);
      return r ? RunOutcome{0, ""} : errorOutcome(r.error(), version);
    }
    case Command::kStatus: {
      auto r = plugin.status(req);
      return r ? RunOutcome{0, ""} : errorOutcome(r.error(), version);
    }
    case Command::kVersion:
      break;
  }
  return RunOutcome{0, versionInfo(version).dump() + "\n"};
}

int pluginMain(int argc, char** argv, std::string_view help, Plugin& plugin,
               const RunOptions& options) {
  if (argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::fwrite(help.data(), 1, help.size(), stdout);
    return 0;
  }
  std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  auto outcome = runPlugin(plugin, currentEnvironment(), input, options);
  std::fwrite(outcome.out.data(), 1, outcome.out.size(), stdout);
  std::fflush(stdout);
  return outcome.exitCode;
}

}  // namespace vfplane::cni
