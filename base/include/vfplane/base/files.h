// Writing the small state and hand-off files the plugins share with other processes (the CNI's
// journals, device-info files, CDI specs): never half-written as seen by a reader.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "vfplane/base/error.h"

namespace vfplane {

// The whole file. Errors carry open's or read's errno and name the path.
Result<std::string> readFile(const std::filesystem::path& path);

// Writes path atomically: a temporary file in the same directory (created if missing), then
// rename. No fsync: these files guard against a process dying, which the page cache survives.
Result<void> writeFileAtomic(const std::filesystem::path& path, std::string_view content,
                             mode_t mode = 0600);

// The same, but a file that already holds exactly `content` is left alone: no new inode for a
// reader to notice and nothing to write on a hot path. True when the file was written.
Result<bool> writeFileIfChanged(const std::filesystem::path& path, std::string_view content,
                                mode_t mode = 0644);

}  // namespace vfplane
