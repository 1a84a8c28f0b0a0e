#include "vfplane/dataplane/counters.h"

#include <fmt/format.h>

namespace vfplane::dataplane {

uint64_t FastPathCounters::*puntCounter(Punt punt) {
  switch (punt) {
    case Punt::kNoRoute:
      return &FastPathCounters::puntNoRoute;
    case Punt::kLocal:
      return &FastPathCounters::puntLocal;
    case Punt::kUnresolved:
      return &FastPathCounters::puntUnresolved;
    case Punt::kNotPort:
      return &FastPathCounters::puntNotPort;
    case Punt::kReject:
      return &FastPathCounters::puntReject;
  }
  return &FastPathCounters::puntNoRoute;
}

std::string describeCounters(const FastPathCounters& c) {
  std::string out = fmt::format("{} in", c.rx);
  std::string punts, drops;
  for (const auto& v : kVerdicts) {
    uint64_t n = c.*v.count;
    switch (v.kind) {
      case Verdict::kForwarded:
        out += fmt::format(", {} {}", n, v.words);
        break;
      case Verdict::kPunted:
        punts += fmt::format("{}{} {}", punts.empty() ? "" : ", ", n, v.words);
        break;
      case Verdict::kDropped:
        if (n > 0) drops += fmt::format("; {} {}", n, v.words);
        break;
    }
  }
  return out + "; to the kernel: " + punts + drops;
}

}  // namespace vfplane::dataplane
