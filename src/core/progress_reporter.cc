#include "core/progress_reporter.h"

#include "core/format_duration.h"

namespace forklift::core {

ProgressReporter::ProgressReporter(Options options, Clock& clock)
    : options_(std::move(options)),
      clock_(clock),
      printer_(options_.display, options_.interval, options_.out) {
  start_ = clock_.Now();
  progress_.total = options_.total;
  printer_.Update(Snapshot(), start_);  // starts the pacing
}

void ProgressReporter::Update() {
  Duration elapsed = clock_.Now() - start_;
  double secs = std::chrono::duration<double>(elapsed).count();
  progress_.rate = secs > 0 ? static_cast<double>(progress_.completed) / secs : 0;
  progress_.eta.reset();
  if (progress_.total > 0 && progress_.rate > 0 && progress_.completed <= progress_.total) {
    double left = static_cast<double>(progress_.total - progress_.completed) / progress_.rate;
    progress_.eta = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(left));
  }
}

ProgressSnapshot ProgressReporter::Snapshot() const {
  return ProgressSnapshot{.label = options_.label,
                          .unit = "items",
                          .rate_unit = "items",
                          .done = progress_.completed,
                          .total = progress_.total,
                          .failed = progress_.failed,
                          .elapsed = clock_.Now() - start_};
}

std::string ProgressReporter::Render(bool bar) const { return RenderProgress(Snapshot(), bar); }

void ProgressReporter::OnOutcome(bool failed) {
  ++progress_.completed;
  if (failed) ++progress_.failed;
  Update();
  if (options_.callback) options_.callback(progress_);
  printer_.Update(Snapshot(), clock_.Now());
}

void ProgressReporter::Finish() {
  if (finished_) return;
  finished_ = true;
  Update();
  // A batch too short for a periodic line adds none at its end: a library's default
  // (kAuto) must not write to a non-terminal stderr for every batch.
  printer_.Finish(Snapshot(), /*last_line=*/false);
}

}  // namespace forklift::core
