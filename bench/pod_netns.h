// A network namespace for a benchmark's pod: held by a forked child that pauses until killed,
// and dies with the benchmark even if the benchmark crashes, so nothing outlives a run.
#pragma once

#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <optional>

namespace vfplane::bench {

// The holder's pid (its namespace is /proc/<pid>/ns/net), or nullopt when it cannot be made.
inline std::optional<pid_t> forkPodNetns() {
  int ready[2];
  if (::pipe(ready) != 0) return std::nullopt;
  pid_t pid = ::fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    char ok = ::unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
    (void)!::write(ready[1], &ok, 1);
    ::pause();
    ::_exit(0);
  }
  char ok = 'n';
  (void)!::read(ready[0], &ok, 1);
  ::close(ready[0]);
  ::close(ready[1]);
  if (ok != 'y') return std::nullopt;
  return pid;
}

}  // namespace vfplane::bench
