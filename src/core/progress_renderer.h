// One progress display for every front door: a snapshot in, a line or a bar out.
//
//  - ProgressSnapshot: what a run has done so far, in its own unit (jobs, items, rows,
//    tasks), with an optional byte count (a load reads bytes it can measure before it
//    knows its rows) and extra notes.
//  - RenderProgress: the pure text of a snapshot, as a bar (for a terminal) or a plain line;
//    never a control character.
//  - ProgressPrinter: decides bar or lines (kAuto: a bar when the stream is a terminal),
//    paces the drawing (a bar at most 10 times a second, a line every interval) and writes
//    the control codes, on a terminal only.
//  - ProgressTicker: one thread that asks a snapshot function for the state and draws it
//    through a ProgressPrinter, for front doors whose progress moves on other threads
//    (map's jobs, a load's writers, a flow's tasks).
//
// A front door counts in atomics, hands the ticker a function that reads them, and calls
// Start() when the work starts and Stop() when it ends (Stop draws the final state):
//
//   core::ProgressTicker ticker({.display = ProgressDisplay::kAuto}, [&] {
//     return core::ProgressSnapshot{.label = "run", .unit = "tasks",
//                                   .done = done.load(), .total = total,
//                                   .failed = failed.load()};
//   });
//   ticker.Start(); ... ticker.Stop();
//
// Thread safety: RenderProgress is pure. A ProgressPrinter is used from one thread at a
// time. A ProgressTicker's Start/Stop are called from one thread; its snapshot function
// runs on the ticker's thread (and in Stop, on the caller's) and must be thread-safe.
#ifndef FORKLIFT_CORE_PROGRESS_RENDERER_H_
#define FORKLIFT_CORE_PROGRESS_RENDERER_H_

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "forklift/clock.h"
#include "forklift/progress.h"

namespace forklift::core {

struct ProgressSnapshot {
  std::string label = "forklift";  // what runs: "map", "load", "run"
  std::string unit = "done";       // the noun after the counts: "jobs", "rows loaded"
  std::string rate_unit = "";      // per second: "jobs", "rows"; "" means no item rate
  uint64_t done = 0;               // units finished (succeeded or not)
  uint64_t total = 0;              // units in all; 0 while unknown
  std::optional<uint64_t> failed;  // shown as "N <failed_word>" when set
  std::string failed_word = "failed";
  // Byte progress: when total_bytes > 0 the fraction and the ETA come from bytes (and
  // the rate of bytes is shown whenever bytes > 0).
  uint64_t bytes = 0;
  uint64_t total_bytes = 0;
  std::vector<std::string> notes;  // more ", ..." parts, e.g. "3 already loaded"
  Duration elapsed{};              // since the work started
};

// The text for `s`: with `bar`, "map [=====>      ]  42% 420/1,000 jobs, ..."; else
// "map: 42% 420/1,000 jobs, 3 failed, 85.2 jobs/s, ETA 7s". Percent and ETA only when the
// total is known; the ETA is "?" until there is a rate, and absent once all is done.
std::string RenderProgress(const ProgressSnapshot& s, bool bar);

// "0 B", "512 B", "12.3 kB", "4.5 MB", "1.20 GB" (powers of 1000).
std::string FormatBytes(double bytes);
// Whole seconds for humans: "0s", "7s", "1m05s", "2h03m".
std::string FormatEta(Duration d);

class ProgressPrinter {
 public:
  // kAuto becomes kBar when `out` is a terminal, else kLines; a null `out` is kNone.
  ProgressPrinter(ProgressDisplay display, Duration interval, FILE* out);
  ProgressDisplay mode() const { return mode_; }
  // Draws `s` if it is time to (a bar: 100 ms since the last draw; lines: `interval`),
  // `now` on the caller's clock; the first call only starts the pacing.
  void Update(const ProgressSnapshot& s, TimePoint now);
  // Draws the final state: the bar once more, ended by a newline; or, with `last_line`, a
  // last plain line. Idempotent; Update does nothing afterwards.
  void Finish(const ProgressSnapshot& s, bool last_line = true);

 private:
  void Draw(const ProgressSnapshot& s);

  ProgressDisplay mode_;
  Duration interval_;
  FILE* out_;
  std::optional<TimePoint> last_draw_;
  bool finished_ = false;
};

class ProgressTicker {
 public:
  struct Options {
    ProgressDisplay display = ProgressDisplay::kAuto;  // default kAuto
    Duration interval = std::chrono::seconds(5);       // between plain lines; default 5s
    FILE* out = stderr;                                // default stderr
  };
  ProgressTicker(Options options, std::function<ProgressSnapshot()> snapshot);
  ~ProgressTicker();  // Stop()
  ProgressTicker(const ProgressTicker&) = delete;
  ProgressTicker& operator=(const ProgressTicker&) = delete;

  // Starts the clock (snapshot.elapsed counts from here) and, unless the display is
  // kNone, the thread. Call once.
  void Start();
  // Ends the thread and draws the final state. Idempotent.
  void Stop();

 private:
  ProgressSnapshot Take() const;
  void Loop();

  ProgressPrinter printer_;
  std::function<ProgressSnapshot()> snapshot_;
  std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace forklift::core

#endif  // FORKLIFT_CORE_PROGRESS_RENDERER_H_
