// run_batch's progress: turns completions into Progress values for on_progress and draws
// them through the shared renderer (progress_renderer.h): a redrawn bar on a TTY (at most
// 10 times a second), plain lines every interval otherwise. It draws on outcomes, on the
// batch's clock, so it needs no thread of its own.
// Thread safety: none; the engine calls it from the batch's calling thread only.
#ifndef FORKLIFT_CORE_PROGRESS_REPORTER_H_
#define FORKLIFT_CORE_PROGRESS_REPORTER_H_

#include <cstdio>
#include <functional>
#include <string>

#include "core/progress_renderer.h"
#include "forklift/clock.h"
#include "forklift/progress.h"

namespace forklift::core {

class ProgressReporter {
 public:
  struct Options {
    ProgressDisplay display = ProgressDisplay::kAuto;
    Duration interval = std::chrono::seconds(5);  // between plain lines
    uint64_t total = 0;                           // 0: unknown
    std::string label = "forklift";               // line prefix
    std::function<void(const Progress&)> callback;
    FILE* out = stderr;
  };
  ProgressReporter(Options options, Clock& clock);

  // One more outcome, failed or not.
  void OnOutcome(bool failed);
  // Draws the final state (and ends the bar's line). Idempotent.
  void Finish();

  const Progress& progress() const { return progress_; }
  // The text of the bar or line for the current state, without control characters.
  std::string Render(bool bar) const;

 private:
  void Update();
  ProgressSnapshot Snapshot() const;

  Options options_;
  Clock& clock_;
  ProgressPrinter printer_;
  TimePoint start_;
  Progress progress_;
  bool finished_ = false;
};

}  // namespace forklift::core

#endif  // FORKLIFT_CORE_PROGRESS_REPORTER_H_
