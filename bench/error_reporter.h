// A console reporter that remembers whether any benchmark ended in an error, so that a smoke run
// whose benchmark could not do its work fails instead of printing an error line and exiting 0.
#pragma once

#include <benchmark/benchmark.h>

namespace vfplane::bench {

class ErrorCountingReporter : public benchmark::ConsoleReporter {
 public:
  ErrorCountingReporter() : ConsoleReporter(OO_Tabular) {}  // no colour: the output lands in logs
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& r : runs) errors_ += r.error_occurred ? 1 : 0;
  }
  int errors() const { return errors_; }

 private:
  int errors_ = 0;
};

}  // namespace vfplane::bench
