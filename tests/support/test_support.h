// Helpers shared by vfplane's tests: temp directories, running commands, throwaway namespaces.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vfplane::test {

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exitCode = -1;  // -1 when the command did not exit normally
  std::string out;
  std::string err;
};

// Runs argv (argv[0] looked up in PATH) without a shell and captures its output.
CommandResult run(const std::vector<std::string>& argv, const std::string& stdinText = "");

// Moves the calling process into a new, empty network namespace. Returns why that is impossible
// (not root, no CAP_SYS_ADMIN, ...) so the caller can skip loudly, or nullopt on success.
std::optional<std::string> enterFreshNetns();

// A network namespace that stands for a pod: held by a child process, so nothing is mounted and
// nothing outlives the test. path() is /proc/<pid>/ns/net. kill() makes the namespace go away as a
// deleted pod's does (the path then no longer exists).
class PodNetns {
 public:
  // nullopt with the reason in *why when the namespace cannot be made (not root, ...).
  static std::optional<PodNetns> create(std::string* why);
  PodNetns(PodNetns&& other) noexcept;
  PodNetns& operator=(PodNetns&&) = delete;
  ~PodNetns();
  const std::string& path() const { return path_; }
  void kill();

 private:
  PodNetns(int pid, std::string path) : pid_(pid), path_(std::move(path)) {}
  int pid_;
  std::string path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int freePort();
// GET path from 127.0.0.1:port over HTTP/1.0; the whole response, or "" when nothing answers.
std::string httpGet(int port, const std::string& path);
// GETs path until the response contains needle, for at most `tries` times 50 ms (a bound for a
// process coming up, not a timing assumption). Returns the last response.
std::string httpGetUntil(int port, const std::string& path, const std::string& needle,
                         int tries = 200);

// Starts argv (argv[0] a path) in the background with this environment; -1 when it cannot.
pid_t spawnProcess(const std::vector<std::string>& argv);

void writeFile(const std::filesystem::path& path, const std::string& content);
std::string readFile(const std::filesystem::path& path);

// The directory of fixtures checked into tests/fixtures (set by meson as VFPLANE_FIXTURES).
std::filesystem::path fixturesDir();
// A built binary, from the environment variable meson sets for it (e.g. VFPLANE_BIN).
std::filesystem::path builtBinary(const char* envVar);

}  // namespace vfplane::test
