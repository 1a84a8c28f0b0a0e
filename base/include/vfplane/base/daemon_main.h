// What the mains of vfplane's daemons share, so that each fits on one screen: the logger and
// --log-level, --metrics-address with its Prometheus exposer, signals delivered to a callback on
// a thread of their own (never in a handler), durations on the command line, and the exit code
// of an Error (2 for a usage error, 1 for any other).
//
//   int main(int argc, char** argv) {
//     vfplane::DaemonMain m("vfplane-x", "what it does");
//     m.app().add_option(...);
//     if (auto rc = m.parse(argc, argv)) return *rc;
//     if (auto ok = m.bindMetrics(); !ok) return m.exitWith(ok.error());
//     auto daemon = X::start(...);
//     if (!daemon) return m.exitWith(daemon.error());
//     m.serve("/metrics", makeMetrics(**daemon));
//     m.onSignals([&](int sig) { (*daemon)->stop(); return false; });
//     return m.run([&] { (*daemon)->run(); });
//   }
#pragma once

#include <signal.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "vfplane/base/error.h"

namespace CLI {
class App;
}
namespace prometheus {
class Collectable;
class Exposer;
}  // namespace prometheus

namespace vfplane {

class DaemonMain {
 public:
  // Installs the process's logger (stderr, "<time> <level> <message>", named `name`) and blocks
  // SIGINT, SIGTERM and SIGHUP in this thread and every thread started after it: construct it
  // first in main(). Adds --log-level and --metrics-address to app().
  DaemonMain(std::string name, std::string description);
  ~DaemonMain();
  DaemonMain(const DaemonMain&) = delete;
  DaemonMain& operator=(const DaemonMain&) = delete;

  CLI::App& app() { return *app_; }
  // Parses the command line and applies --log-level. nullopt: go on; a value: return it from
  // main() (0 after --help, kExitUsage for a bad command line, with CLI11's message printed).
  std::optional<int> parse(int argc, char** argv);

  // Binds --metrics-address when it was given, before anything is touched: a usage error naming
  // the flag when the address is taken or malformed. Nothing happens without the flag.
  Result<void> bindMetrics();
  const std::string& metricsAddress() const { return metricsAddress_; }
  // Serves collectable at path (e.g. "/metrics", "/healthz") once bound; kept alive until run()
  // returns. A no-op without --metrics-address.
  void serve(const std::string& path, std::shared_ptr<prometheus::Collectable> collectable);

  // Calls handler(signal) on a thread of its own for each SIGINT, SIGTERM or SIGHUP, until it
  // returns false. Call at most once.
  void onSignals(std::function<bool(int)> handler);

  // Runs loop() on this thread. When it returns, stops serving and stops the signal thread, so
  // that neither reaches what loop() used once it is gone. Returns kExitOk.
  int run(const std::function<void()>& loop);

  // Logs e as an error and returns its exit code (kExitUsage or kExitFailure).
  int exitWith(const Error& e) const;

 private:
  void finish();

  std::string name_;
  std::unique_ptr<CLI::App> app_;
  std::string logLevel_ = "info";
  std::string metricsAddress_;
  sigset_t signals_{};
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::vector<std::shared_ptr<prometheus::Collectable>> served_;
  std::thread signalThread_;
  std::atomic<bool> finished_{false};
};

// A flag's value as a positive duration ("500ms", "30s", "5m", "1h"); a usage error naming the
// flag otherwise.
Result<std::chrono::milliseconds> durationFlag(std::string_view flag, std::string_view value);
// The same, where "0" turns the thing off (nullopt).
Result<std::optional<std::chrono::milliseconds>> intervalFlag(std::string_view flag,
                                                              std::string_view value);

}  // namespace vfplane
