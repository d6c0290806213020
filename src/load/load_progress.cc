#include "load/load_progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include "core/format_duration.h"

namespace forklift::load {

std::string RenderProgress(const ProgressSnapshot& s, bool bar) {
  const double secs = s.elapsed_s > 0 ? s.elapsed_s : 1e-9;
  const double rows_per_s = static_cast<double>(s.rows_loaded) / secs;
  const double mb_per_s = static_cast<double>(s.source_bytes) / 1e6 / secs;
  const double frac =
      s.total_bytes > 0
          ? std::min(1.0, static_cast<double>(s.source_bytes) / static_cast<double>(s.total_bytes))
          : 0.0;
  // Time left at the rate so far; "?" until there is one.
  double left = -1;
  if (frac >= 1) {
    left = 0;
  } else if (frac > 0 && s.elapsed_s > 0.2) {
    left = s.elapsed_s * (1 - frac) / frac;
  }
  const std::string eta =
      left < 0 ? std::string("?")
               : core::FormatDuration(
                     std::chrono::duration_cast<Duration>(std::chrono::duration<double>(left)));
  std::string counts = fmt::format(
      "{} rows loaded, {} rejected, {:.0f} rows/s, {:.1f} MB/s", core::FormatCount(s.rows_loaded),
      core::FormatCount(s.rows_rejected), rows_per_s, mb_per_s);
  if (s.rows_skipped > 0) {
    counts += fmt::format(", {} already loaded", core::FormatCount(s.rows_skipped));
  }
  if (!bar) {
    if (s.total_bytes == 0) return fmt::format("load: {}", counts);
    return fmt::format("load: {:.0f}% of {:.1f} MB read, {}, ETA {}", frac * 100,
                       static_cast<double>(s.total_bytes) / 1e6, counts, eta);
  }
  constexpr int kWidth = 24;
  const int filled = static_cast<int>(frac * kWidth);
  std::string b(static_cast<size_t>(filled), '=');
  if (filled < kWidth) b += '>';
  b.resize(kWidth, ' ');
  if (s.total_bytes == 0) return fmt::format("load {}", counts);
  return fmt::format("load [{}] {:3.0f}% {} ETA {}", b, frac * 100, counts, eta);
}

LoadProgress::LoadProgress(ProgressDisplay display, std::chrono::milliseconds interval, FILE* out,
                           uint64_t total_bytes, const ReadCounters* read,
                           const WriteCounters* write)
    : mode_(display), interval_(interval), out_(out), total_bytes_(total_bytes), read_(read),
      write_(write), start_(std::chrono::steady_clock::now()) {
  if (mode_ == ProgressDisplay::kAuto) {
    mode_ = (out_ && isatty(fileno(out_))) ? ProgressDisplay::kBar : ProgressDisplay::kLines;
  }
  if (!out_) mode_ = ProgressDisplay::kNone;
}

LoadProgress::~LoadProgress() { Stop(); }

ProgressSnapshot LoadProgress::Snapshot() const {
  return ProgressSnapshot{
      .source_bytes = read_->source_bytes.load(std::memory_order_relaxed),
      .total_bytes = total_bytes_,
      .rows_read = read_->rows.load(std::memory_order_relaxed),
      .rows_loaded = write_->rows_loaded.load(std::memory_order_relaxed),
      .rows_rejected = write_->rows_rejected.load(std::memory_order_relaxed),
      .rows_skipped = write_->rows_skipped.load(std::memory_order_relaxed),
      .elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(),
  };
}

void LoadProgress::Start() {
  start_ = std::chrono::steady_clock::now();
  if (mode_ == ProgressDisplay::kNone) return;
  thread_ = std::thread([this] { Loop(); });
}

void LoadProgress::Loop() {
  const auto period = mode_ == ProgressDisplay::kBar ? std::chrono::milliseconds(100) : interval_;
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, period, [&] { return stopping_; })) {
    if (mode_ == ProgressDisplay::kBar) {
      fmt::print(out_, "\r\x1b[2K{}", RenderProgress(Snapshot(), true));
    } else {
      fmt::print(out_, "{}\n", RenderProgress(Snapshot(), false));
    }
    std::fflush(out_);
  }
}

void LoadProgress::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (mode_ == ProgressDisplay::kBar) {
    fmt::print(out_, "\r\x1b[2K{}\n", RenderProgress(Snapshot(), true));
  } else if (mode_ == ProgressDisplay::kLines) {
    fmt::print(out_, "{}\n", RenderProgress(Snapshot(), false));
  }
  if (out_) std::fflush(out_);
}

}  // namespace forklift::load
