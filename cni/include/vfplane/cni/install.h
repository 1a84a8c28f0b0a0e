// Installing the plugin binaries into a node's CNI bin dir, as the vfplane-cni DaemonSet's init
// container does: the runtime execs whatever file is there at the moment of an ADD, so no file may
// ever be seen half-written, and the plugins of one node must never be a mix of two releases
// (one release's sriov with another's ipam journal format).
//
// Each binary is copied to a temporary name in the target dir, fsync'd, and only when all are
// there renamed over the old ones, one rename each; then a stamp (vfplane-cni.version) says which
// release is installed. verifyPlugins() compares the installed files with the image's byte for
// byte, so a node where something else overwrote one is noticed and repaired.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "vfplane/base/error.h"

namespace vfplane::cni {

inline const std::vector<std::string> kPluginNames = {"vfplane-sriov", "vfplane-host-device",
                                                      "vfplane-macvlan", "vfplane-ipam"};

struct InstallReport {
  std::vector<std::string> installed;  // replaced or new
  std::vector<std::string> unchanged;  // already identical
};

// Installs `names` from `from` into `to` (created if missing), as above. Errors name the file;
// after an error the old set is still in place, apart from renames already done (reported in the
// message), and temporary files are removed.
Result<InstallReport> installPlugins(const std::filesystem::path& from,
                                     const std::filesystem::path& to,
                                     const std::vector<std::string>& names,
                                     const std::string& version);

// The names whose installed file differs from the image's (or is missing).
Result<std::vector<std::string>> verifyPlugins(const std::filesystem::path& from,
                                               const std::filesystem::path& to,
                                               const std::vector<std::string>& names);

inline constexpr const char* kVersionStamp = "vfplane-cni.version";

}  // namespace vfplane::cni
