#include "core/progress_reporter.h"

#include <unistd.h>

#include <fmt/format.h>

#include "core/format_duration.h"

namespace forklift::core {
namespace {
constexpr auto kBarPeriod = std::chrono::milliseconds(100);
constexpr int kBarWidth = 30;
}  // namespace

ProgressReporter::ProgressReporter(Options options, Clock& clock)
    : options_(std::move(options)), clock_(clock), mode_(options_.display) {
  if (mode_ == ProgressDisplay::kAuto) {
    mode_ = (options_.out && isatty(fileno(options_.out))) ? ProgressDisplay::kBar
                                                            : ProgressDisplay::kLines;
  }
  start_ = last_draw_ = clock_.Now();
  progress_.total = options_.total;
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

std::string ProgressReporter::Render(bool bar) const {
  std::string s = options_.label + ": ";
  if (bar && progress_.total > 0) {
    int filled = static_cast<int>(kBarWidth * progress_.completed / progress_.total);
    s += "[" + std::string(filled, '#') + std::string(kBarWidth - filled, '.') + "] ";
  }
  s += FormatCount(static_cast<double>(progress_.completed));
  if (progress_.total > 0) {
    s += fmt::format("/{} ({:.0f}%)", FormatCount(static_cast<double>(progress_.total)),
                     100.0 * static_cast<double>(progress_.completed) /
                         static_cast<double>(progress_.total));
  }
  s += fmt::format(" done, {} failed, {}/s", progress_.failed, FormatCount(progress_.rate));
  if (progress_.eta) s += ", ETA " + FormatDuration(*progress_.eta);
  return s;
}

void ProgressReporter::OnOutcome(bool failed) {
  ++progress_.completed;
  if (failed) ++progress_.failed;
  Update();
  if (options_.callback) options_.callback(progress_);
  if (mode_ == ProgressDisplay::kNone || !options_.out) return;
  TimePoint now = clock_.Now();
  if (mode_ == ProgressDisplay::kBar && now - last_draw_ >= kBarPeriod) {
    fmt::print(options_.out, "\r\x1b[2K{}", Render(true));
    std::fflush(options_.out);
    last_draw_ = now;
  } else if (mode_ == ProgressDisplay::kLines && now - last_draw_ >= options_.interval) {
    fmt::print(options_.out, "{}\n", Render(false));
    std::fflush(options_.out);
    last_draw_ = now;
  }
}

void ProgressReporter::Finish() {
  if (finished_) return;
  finished_ = true;
  Update();
  if (mode_ == ProgressDisplay::kBar && options_.out) {
    fmt::print(options_.out, "\r\x1b[2K{}\n", Render(true));
    std::fflush(options_.out);
  }
}

}  // namespace forklift::core
