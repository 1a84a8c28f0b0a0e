#include "vfplane/cni/exec.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace vfplane::cni {

CniExpected<std::string> findPlugin(std::string_view type, const std::vector<std::string>& path) {
  if (type.empty() || type.find('/') != std::string_view::npos || type == "." || type == "..") {
    return cniFail(ErrorCode::kInvalidConfig,
                   fmt::format("plugin type {:?} is not a plugin name", type));
  }
  for (const auto& dir : path) {
    std::string candidate = dir + "/" + std::string(type);
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return cniFail(ErrorCode::kInvalidConfig, fmt::format("failed to find plugin \"{}\" in path [{}]",
                                                        type, fmt::join(path, " ")));
}

std::map<std::string, std::string> currentEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv = *e;
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos)
      env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  return env;
}

std::string environmentOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

std::map<std::string, std::string> cniEnvironment(const Environment& e, Command command,
                                                  std::map<std::string, std::string> base) {
  base["CNI_COMMAND"] = commandName(command);
  auto set = [&](const char* key, const std::string& value) {
    if (value.empty()) {
      base.erase(key);
    } else {
      base[key] = value;
    }
  };
  set("CNI_CONTAINERID", e.containerId);
  set("CNI_NETNS", e.netns);
  set("CNI_IFNAME", e.ifname);
  std::string args;
  for (const auto& [k, v] : e.args) args += (args.empty() ? "" : ";") + k + "=" + v;
  set("CNI_ARGS", args);
  set("CNI_PATH", fmt::format("{}", fmt::join(e.path, ":")));
  return base;
}

Result<ExecOutput> runProcess(const std::string& binary,
                              const std::map<std::string, std::string>& env,
                              std::string_view stdinData) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return fail(systemError("pipe", errno));
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
    return fail(systemError("pipe", errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  std::vector<std::string> envStrings;
  for (const auto& [k, v] : env) envStrings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : envStrings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string arg0 = binary;
  char* argv[] = {arg0.data(), nullptr};
  pid_t pid;
  int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(in[1]);
    ::close(out[0]);
    ::close(err[0]);
    return fail(systemError("run " + binary, rc));
  }
  ExecOutput result;
  // A child that exits without reading all of stdin (a plugin answering VERSION, one that fails
  // early) must not take the caller down with SIGPIPE: block it in this thread while writing, and
  // take a pending one off the queue before unblocking (the write already failed with EPIPE).
  sigset_t pipeSet, oldSet;
  sigemptyset(&pipeSet);
  sigaddset(&pipeSet, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipeSet, &oldSet);
  struct RestoreMask {
    sigset_t set, old;
    ~RestoreMask() {
      timespec zero{0, 0};
      while (sigtimedwait(&set, nullptr, &zero) > 0) {
      }
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
  } restoreMask{pipeSet, oldSet};
  // Write stdin and drain stdout/stderr together, so neither side can block on a full pipe.
  size_t written = 0;
  int stdinFd = in[1];
  // Non-blocking, or a large write could block while the child waits for us to drain its stdout.
  ::fcntl(stdinFd, F_SETFL, O_NONBLOCK);
  if (stdinData.empty()) {
    ::close(stdinFd);
    stdinFd = -1;
  }
  pollfd fds[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {stdinFd, POLLOUT, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open = 2;
  while (open > 0) {
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[2].fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = ::write(fds[2].fd, stdinData.data() + written, stdinData.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      bool retry = n < 0 && (errno == EAGAIN || errno == EINTR);
      if ((n < 0 && !retry) || written == stdinData.size()) {
        ::close(fds[2].fd);
        fds[2].fd = -1;
      }
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[8192];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
  }
  if (fds[2].fd >= 0) ::close(fds[2].fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

CniExpected<nlohmann::json> invokePlugin(const std::string& binary, const Environment& env,
                                         Command command, std::string_view config) {
  auto out = runProcess(binary, cniEnvironment(env, command, env.base), config);
  if (!out) return cniFail(ErrorCode::kIoFailure, out.error().message());
  std::string name = binary.substr(binary.rfind('/') + 1);
  if (out->exitCode != 0) {
    auto j = nlohmann::json::parse(out->out, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("code") && j["code"].is_number_integer()) {
      return cniFail(static_cast<ErrorCode>(j["code"].get<int>()),
                     fmt::format("{}: {}", name, j.value("msg", "")), j.value("details", ""));
    }
    std::string stderrText = out->err.empty() ? "" : ": " + out->err.substr(0, 512);
    return cniFail(ErrorCode::kIoFailure,
                   fmt::format("{} {} exited with status {}{}", name, commandName(command),
                               out->exitCode, stderrText));
  }
  if (command != Command::kAdd && command != Command::kVersion) return nlohmann::json();
  auto j = nlohmann::json::parse(out->out, nullptr, false);
  if (j.is_discarded()) {
    return cniFail(ErrorCode::kDecodeFailure,
                   fmt::format("{} {}: output is not JSON", name, commandName(command)),
                   out->out.substr(0, 512));
  }
  return j;
}

namespace {

// Debian 12's reference plugins stop at spec 1.0.0. When a delegate refuses our version (code 1),
// ask it which versions it speaks and retry once with the newest common one; its result is then
// re-rendered in ours by the caller. Configs with a version it knows pay nothing extra.
CniExpected<nlohmann::json> invokeDelegate(const std::string& binary, const Environment& env,
                                           Command command, std::string_view config) {
  auto first = invokePlugin(binary, env, command, config);
  if (first || first.error().code != ErrorCode::kIncompatibleVersion) return first;
  auto j = nlohmann::json::parse(config, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return first;
  std::string ours = j.value("cniVersion", "");
  auto info = invokePlugin(binary, env, Command::kVersion, R"({"cniVersion":"0.4.0"})");
  if (!info || !info->contains("supportedVersions")) return first;
  std::string best;
  for (const auto& v : (*info)["supportedVersions"]) {
    std::string s = v.get<std::string>();
    if (isSupportedVersion(s) && compareVersions(s, ours) <= 0 && compareVersions(s, best) > 0)
      best = s;
  }
  if (best.empty() || best == ours) return first;
  j["cniVersion"] = best;
  if (j.contains("prevResult")) {
    if (auto prev = parseResult(j["prevResult"])) j["prevResult"] = renderResult(*prev, best);
  }
  return invokePlugin(binary, env, command, j.dump());
}

}  // namespace

CniExpected<NetResult> ipamAdd(const Environment& env, std::string_view config,
                               std::string_view ipamType) {
  auto binary = findPlugin(ipamType, env.path);
  if (!binary) return std::unexpected(binary.error());
  auto j = invokeDelegate(*binary, env, Command::kAdd, config);
  if (!j) return std::unexpected(j.error());
  return parseResult(*j);
}

CniExpected<void> ipamDelegate(const Environment& env, Command command, std::string_view config,
                               std::string_view ipamType) {
  auto binary = findPlugin(ipamType, env.path);
  if (!binary) return std::unexpected(binary.error());
  auto j = invokeDelegate(*binary, env, command, config);
  if (!j) return std::unexpected(j.error());
  return {};
}

CniExpected<bool> pluginSupports(const Environment& env, std::string_view type,
                                 std::string_view version) {
  auto binary = findPlugin(type, env.path);
  if (!binary) return std::unexpected(binary.error());
  auto info = invokePlugin(*binary, env, Command::kVersion, R"({"cniVersion":"0.4.0"})");
  if (!info) return std::unexpected(info.error());
  if (!info->contains("supportedVersions") || !(*info)["supportedVersions"].is_array()) {
    return cniFail(ErrorCode::kDecodeFailure,
                   fmt::format("{} VERSION: no \"supportedVersions\" list", type),
                   info->dump().substr(0, 512));
  }
  for (const auto& v : (*info)["supportedVersions"]) {
    if (v.is_string() && v.get<std::string>() == version) return true;
  }
  return false;
}

}  // namespace vfplane::cni
