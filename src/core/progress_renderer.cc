#include "core/progress_renderer.h"

#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "core/format_duration.h"

namespace forklift::core {
namespace {

constexpr auto kBarPeriod = std::chrono::milliseconds(100);
constexpr int kBarWidth = 24;

// Counts as every forklift summary writes them: "999", "5.0k", "1.25M".
std::string Count(uint64_t n) { return FormatCount(static_cast<double>(n)); }

std::string Rate(double per_second) {
  if (per_second < 100) return fmt::format("{:.1f}", per_second);
  return FormatCount(per_second);
}

}  // namespace

std::string FormatBytes(double bytes) {
  if (bytes < 1000) return fmt::format("{:.0f} B", bytes);
  if (bytes < 1e6) return fmt::format("{:.1f} kB", bytes / 1e3);
  if (bytes < 1e9) return fmt::format("{:.1f} MB", bytes / 1e6);
  return fmt::format("{:.2f} GB", bytes / 1e9);
}

std::string FormatEta(Duration d) {
  auto secs =
      std::chrono::duration_cast<std::chrono::seconds>(d + std::chrono::milliseconds(500)).count();
  if (secs < 0) secs = 0;
  if (secs < 60) return fmt::format("{}s", secs);
  if (secs < 3600) return fmt::format("{}m{:02}s", secs / 60, secs % 60);
  return fmt::format("{}h{:02}m", secs / 3600, (secs % 3600) / 60);
}

std::string RenderProgress(const ProgressSnapshot& s, bool bar) {
  const double secs = std::chrono::duration<double>(s.elapsed).count();
  std::optional<double> frac;
  if (s.total_bytes > 0) {
    frac = std::min(1.0, static_cast<double>(s.bytes) / static_cast<double>(s.total_bytes));
  } else if (s.total > 0) {
    frac = std::min(1.0, static_cast<double>(s.done) / static_cast<double>(s.total));
  }
  std::string out = s.label;
  if (bar && frac) {
    int filled = static_cast<int>(*frac * kBarWidth);
    std::string b(static_cast<size_t>(filled), '=');
    if (filled < kBarWidth) b += '>';
    b.resize(kBarWidth, ' ');
    out += fmt::format(" [{}] {:3.0f}%", b, *frac * 100);
  } else if (frac) {
    out += fmt::format(": {:.0f}%", *frac * 100);
  } else {
    out += bar ? "" : ":";
  }
  // The size read against is for the plain line; the bar shows it filling.
  if (s.total_bytes > 0 && !bar)
    out += " of " + FormatBytes(static_cast<double>(s.total_bytes)) + ",";
  out += " " + Count(s.done);
  if (s.total > 0 && s.total_bytes == 0) out += "/" + Count(s.total);
  out += " " + s.unit;
  if (s.failed) out += fmt::format(", {} {}", Count(*s.failed), s.failed_word);
  for (const std::string& note : s.notes) out += ", " + note;
  if (secs > 0) {
    if (!s.rate_unit.empty()) {
      out += fmt::format(", {} {}/s", Rate(static_cast<double>(s.done) / secs), s.rate_unit);
    }
    if (s.bytes > 0) out += ", " + FormatBytes(static_cast<double>(s.bytes) / secs) + "/s";
  }
  if (frac && *frac < 1) {
    if (*frac > 0 && secs > 0.2) {
      out += ", ETA " + FormatEta(std::chrono::duration_cast<Duration>(
                            std::chrono::duration<double>(secs * (1 - *frac) / *frac)));
    } else {
      out += ", ETA ?";
    }
  }
  return out;
}

ProgressPrinter::ProgressPrinter(ProgressDisplay display, Duration interval, FILE* out)
    : mode_(display), interval_(interval), out_(out) {
  if (!out_) mode_ = ProgressDisplay::kNone;
  if (mode_ == ProgressDisplay::kAuto) {
    mode_ = isatty(fileno(out_)) ? ProgressDisplay::kBar : ProgressDisplay::kLines;
  }
}

void ProgressPrinter::Draw(const ProgressSnapshot& s) {
  if (mode_ == ProgressDisplay::kBar) {
    fmt::print(out_, "\r\x1b[2K{}", RenderProgress(s, true));
  } else {
    fmt::print(out_, "{}\n", RenderProgress(s, false));
  }
  std::fflush(out_);
}

void ProgressPrinter::Update(const ProgressSnapshot& s, TimePoint now) {
  if (finished_ || mode_ == ProgressDisplay::kNone) return;
  if (!last_draw_) {
    last_draw_ = now;
    return;
  }
  Duration period = mode_ == ProgressDisplay::kBar ? Duration(kBarPeriod) : interval_;
  if (now - *last_draw_ < period) return;
  Draw(s);
  last_draw_ = now;
}

void ProgressPrinter::Finish(const ProgressSnapshot& s, bool last_line) {
  if (finished_) return;
  finished_ = true;
  if (mode_ == ProgressDisplay::kNone || (mode_ == ProgressDisplay::kLines && !last_line)) return;
  Draw(s);
  if (mode_ == ProgressDisplay::kBar) {
    std::fputc('\n', out_);
    std::fflush(out_);
  }
}

ProgressTicker::ProgressTicker(Options options, std::function<ProgressSnapshot()> snapshot)
    : printer_(options.display, options.interval, options.out),
      snapshot_(std::move(snapshot)),
      start_(std::chrono::steady_clock::now()) {}

ProgressTicker::~ProgressTicker() { Stop(); }

ProgressSnapshot ProgressTicker::Take() const {
  ProgressSnapshot s = snapshot_();
  s.elapsed = std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - start_);
  return s;
}

void ProgressTicker::Start() {
  start_ = std::chrono::steady_clock::now();
  if (printer_.mode() == ProgressDisplay::kNone) return;
  thread_ = std::thread([this] { Loop(); });
}

void ProgressTicker::Loop() {
  // Wakes at the bar's pace; the printer decides whether a line is due.
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, kBarPeriod, [&] { return stopping_; })) {
    printer_.Update(Take(), SystemClock().Now());
  }
}

void ProgressTicker::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (printer_.mode() != ProgressDisplay::kNone) printer_.Finish(Take());
}

}  // namespace forklift::core
