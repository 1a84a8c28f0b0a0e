#include "vfplane/base/daemon_main.h"

#include <fmt/format.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <pthread.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "vfplane/base/duration.h"
#include "vfplane/base/exit_code.h"

namespace vfplane {

DaemonMain::DaemonMain(std::string name, std::string description)
    : name_(std::move(name)), app_(std::make_unique<CLI::App>(std::move(description), name_)) {
  auto logger = spdlog::stderr_color_mt(name_);
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  // Blocked before any other thread exists, so that only sigwait() ever takes them.
  sigemptyset(&signals_);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals_, s);
  pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
  app_->add_option("--log-level", logLevel_, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  app_->add_option("--metrics-address", metricsAddress_,
                   "Serve Prometheus /metrics here, e.g. 127.0.0.1:9105 (off by default)");
}

DaemonMain::~DaemonMain() { finish(); }

std::optional<int> DaemonMain::parse(int argc, char** argv) {
  try {
    app_->parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app_->exit(e) == 0 ? kExitOk : kExitUsage;
  }
  spdlog::set_level(spdlog::level::from_str(logLevel_));
  return std::nullopt;
}

Result<void> DaemonMain::bindMetrics() {
  if (metricsAddress_.empty()) return {};
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(metricsAddress_);
  } catch (const std::exception& e) {
    return usageError(fmt::format("--metrics-address {}: {}", metricsAddress_, e.what()));
  }
  spdlog::info("metrics on http://{}/metrics", metricsAddress_);
  return {};
}

void DaemonMain::serve(const std::string& path,
                       std::shared_ptr<prometheus::Collectable> collectable) {
  if (!exposer_) return;
  exposer_->RegisterCollectable(collectable, path);
  served_.push_back(std::move(collectable));
}

void DaemonMain::onSignals(std::function<bool(int)> handler) {
  signalThread_ = std::thread([this, handler = std::move(handler)] {
    for (;;) {
      int sig = 0;
      if (sigwait(&signals_, &sig) != 0) continue;
      if (finished_) return;
      if (!handler(sig)) return;
    }
  });
}

int DaemonMain::run(const std::function<void()>& loop) {
  loop();
  finish();
  return kExitOk;
}

void DaemonMain::finish() {
  if (finished_.exchange(true)) return;
  // No scrape may reach the daemon once it is gone.
  exposer_.reset();
  served_.clear();
  // The signal thread waits for a signal only; wake it so that it sees it is finished.
  if (signalThread_.joinable()) {
    pthread_kill(signalThread_.native_handle(), SIGTERM);
    signalThread_.join();
  }
}

int DaemonMain::exitWith(const Error& e) const {
  spdlog::error("{}", e.message());
  return exitCodeOf(e);
}

Result<std::chrono::milliseconds> durationFlag(std::string_view flag, std::string_view value) {
  if (auto d = parseDuration(value)) return *d;
  return usageError(
      fmt::format("{} {}: expected a positive duration like 30s, 500ms or 5m", flag, value));
}

Result<std::optional<std::chrono::milliseconds>> intervalFlag(std::string_view flag,
                                                              std::string_view value) {
  if (value == "0") return std::optional<std::chrono::milliseconds>();
  if (auto d = parseDuration(value)) return std::optional<std::chrono::milliseconds>(*d);
  return usageError(
      fmt::format("{} {}: expected 0 (off) or a positive duration like 60s", flag, value));
}

}  // namespace vfplane
