// Our own flags on a Google Benchmark command line: taken out before benchmark::Initialize, which
// rejects what it does not know.
#pragma once

#include <string>
#include <string_view>

namespace vfplane::bench {

// Removes every "name VALUE" pair from argv, keeping the last value. Returns whether one was seen.
inline bool takeOption(int& argc, char** argv, std::string_view name, std::string& value) {
  bool seen = false;
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    if (argv[i] == name && i + 1 < argc) {
      value = argv[++i];
      seen = true;
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  return seen;
}

}  // namespace vfplane::bench
