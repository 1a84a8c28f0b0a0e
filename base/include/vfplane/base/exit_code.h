// The exit statuses of every vfplane command and daemon (the CNI plugins follow the CNI spec
// instead: they report errors as JSON and exit 1).
#pragma once

#include "vfplane/base/error.h"

namespace vfplane {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command was right but the work failed
inline constexpr int kExitUsage = 2;    // bad arguments or config: fix the command line

// kExitUsage for a usage error, kExitFailure for any other.
inline int exitCodeOf(const Error& e) { return e.isUsage() ? kExitUsage : kExitFailure; }

}  // namespace vfplane
