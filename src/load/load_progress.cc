#include "load/load_progress.h"

#include "core/format_duration.h"

namespace forklift::load {

core::ProgressSnapshot LoadSnapshot(uint64_t total_bytes, const ReadCounters& read,
                                    const WriteCounters& write) {
  core::ProgressSnapshot s{
      .label = "load",
      .unit = "rows loaded",
      .rate_unit = "rows",
      .done = write.rows_loaded.load(std::memory_order_relaxed),
      .failed = write.rows_rejected.load(std::memory_order_relaxed),
      .failed_word = "rejected",
      .bytes = read.source_bytes.load(std::memory_order_relaxed),
      .total_bytes = total_bytes,
  };
  if (uint64_t skipped = write.rows_skipped.load(std::memory_order_relaxed); skipped > 0) {
    s.notes.push_back(core::FormatCount(static_cast<double>(skipped)) + " already loaded");
  }
  return s;
}

LoadProgress::LoadProgress(ProgressDisplay display, std::chrono::milliseconds interval, FILE* out,
                           uint64_t total_bytes, const ReadCounters* read,
                           const WriteCounters* write)
    : ticker_({.display = display, .interval = interval, .out = out},
              [total_bytes, read, write] { return LoadSnapshot(total_bytes, *read, *write); }) {}

LoadProgress::~LoadProgress() { Stop(); }

void LoadProgress::Start() { ticker_.Start(); }

void LoadProgress::Stop() { ticker_.Stop(); }

}  // namespace forklift::load
