// The load's progress display, drawn by the shared renderer (core/progress_renderer.h): a
// bar with rows/s, bytes/s and an ETA from source bytes on a TTY (redrawn 10 times a
// second), plain lines every interval otherwise.
// Thread safety: the counters are atomics other threads move; Start/Stop from one thread.
#ifndef FORKLIFT_LOAD_LOAD_PROGRESS_H_
#define FORKLIFT_LOAD_LOAD_PROGRESS_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>

#include "core/progress_renderer.h"
#include "forklift/progress.h"
#include "load/chunker.h"

namespace forklift::load {

struct WriteCounters {
  std::atomic<uint64_t> rows_loaded{0};
  std::atomic<uint64_t> rows_rejected{0};
  std::atomic<uint64_t> rows_skipped{0};  // in chunks an earlier run committed
  std::atomic<uint64_t> chunks_committed{0};
  std::atomic<uint64_t> chunks_skipped{0};
  std::atomic<uint64_t> retries{0};
};

// The renderer's snapshot of a load's counters (total_bytes 0: unknown, as for stdin).
// Pure, for tests.
core::ProgressSnapshot LoadSnapshot(uint64_t total_bytes, const ReadCounters& read,
                                    const WriteCounters& write);

class LoadProgress {
 public:
  LoadProgress(ProgressDisplay display, std::chrono::milliseconds interval, FILE* out,
               uint64_t total_bytes, const ReadCounters* read, const WriteCounters* write);
  ~LoadProgress();  // Stop()
  void Start();
  // Draws the final state and ends the bar's line. Idempotent.
  void Stop();

 private:
  core::ProgressTicker ticker_;
};

}  // namespace forklift::load

#endif  // FORKLIFT_LOAD_LOAD_PROGRESS_H_
