// The load's progress display: a bar with rows/s, MB/s and an ETA from source bytes on a
// TTY (redrawn 10 times a second), plain lines every interval otherwise.
// Thread safety: the counters are atomics other threads move; Start/Stop from one thread.
#ifndef FORKLIFT_LOAD_LOAD_PROGRESS_H_
#define FORKLIFT_LOAD_LOAD_PROGRESS_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

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

// One progress state, as text (no control characters); a pure function for tests.
struct ProgressSnapshot {
  uint64_t source_bytes = 0;
  uint64_t total_bytes = 0;  // 0: unknown (stdin)
  uint64_t rows_read = 0;
  uint64_t rows_loaded = 0;
  uint64_t rows_rejected = 0;
  uint64_t rows_skipped = 0;  // committed by an earlier run
  double elapsed_s = 0;
};
std::string RenderProgress(const ProgressSnapshot& s, bool bar);

class LoadProgress {
 public:
  LoadProgress(ProgressDisplay display, std::chrono::milliseconds interval, FILE* out,
               uint64_t total_bytes, const ReadCounters* read, const WriteCounters* write);
  ~LoadProgress();  // Stop()
  void Start();
  // Draws the final state and ends the bar's line. Idempotent.
  void Stop();

 private:
  ProgressSnapshot Snapshot() const;
  void Loop();

  ProgressDisplay mode_;
  std::chrono::milliseconds interval_;
  FILE* out_;
  uint64_t total_bytes_;
  const ReadCounters* read_;
  const WriteCounters* write_;
  std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace forklift::load

#endif  // FORKLIFT_LOAD_LOAD_PROGRESS_H_
