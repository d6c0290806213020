// The end-of-batch summary every front door prints.
// Thread safety: a plain value.
#ifndef FORKLIFT_SUMMARY_H_
#define FORKLIFT_SUMMARY_H_

#include <cstdint>
#include <string>

#include "forklift/clock.h"

namespace forklift {

struct Summary {
  uint64_t processed = 0;  // outcomes of items that ran (succeeded + failed + interrupted)
  uint64_t succeeded = 0;
  uint64_t failed = 0;  // failed on their own, including timed_out
  // Items a stop reached after they started (final error Cancelled: killed, cancelled
  // cooperatively, or stopped during a retry backoff); recorded as cancelled, rerun by
  // every resume.
  uint64_t interrupted = 0;
  // Items in the window that the stop reached before they started: delivered as Cancelled
  // with attempts 0, never recorded, so every resume runs them. Not in processed.
  uint64_t not_run = 0;
  uint64_t timed_out = 0;  // final error DeadlineExceeded
  uint64_t retried = 0;    // retry attempts made (attempts beyond each item's first)
  uint64_t skipped = 0;    // already recorded as succeeded by a checkpoint
  bool cancelled = false;  // the stop token was requested before every item ran
  Duration wall{};
  double items_per_second = 0;  // processed / wall
  // Per-item latency (first attempt's start to last attempt's end, backoff included).
  // Percentiles come from a log-bucketed histogram: within 1/64 of the true value.
  Duration latency_p50{};
  Duration latency_p95{};
  Duration latency_max{};

  // "processed=10 succeeded=9 failed=1 timed_out=0 retried=2 skipped=0 wall=1.20s
  //  rate=8.3/s p50=100ms p95=210ms max=230ms"
  std::string ToString() const;
  // The same fields as one JSON object.
  std::string ToJson() const;
};

}  // namespace forklift

#endif  // FORKLIFT_SUMMARY_H_
