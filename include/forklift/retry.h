// Retry policy shared by every front door: exponential backoff with full jitter.
// Thread safety: plain values and pure functions (the caller owns the random engine).
#ifndef FORKLIFT_RETRY_H_
#define FORKLIFT_RETRY_H_

#include <chrono>
#include <random>

#include "forklift/clock.h"
#include "forklift/result.h"

namespace forklift {

struct RetryOptions {
  // Attempts per item in all, >= 1 (1: no retries). Default 1.
  int max_attempts = 1;
  // Backoff before retry n (n >= 1) is uniform in [0, min(max_delay, base_delay * 2^(n-1))]
  // ("full jitter"). base_delay >= 0 (0: retry at once), default 100ms; max_delay >= base_delay, default 30s.
  Duration base_delay = std::chrono::milliseconds(100);
  Duration max_delay = std::chrono::seconds(30);
  // Unavailable is always retried; DeadlineExceeded only when this is true. Default false.
  bool retry_deadline_exceeded = false;
};

// InvalidArgument naming the field (prefixed by `what`, e.g. "BatchOptions.retry") when
// the options are out of range.
Status ValidateRetryOptions(const RetryOptions& options, const char* what);

// Whether an attempt that failed with `code` may be retried under `options`.
bool IsRetryable(ErrorCode code, const RetryOptions& options);

// The upper bound of the backoff before retry number `retry` (1 for the first retry):
// min(max_delay, base_delay * 2^(retry-1)), without overflow.
Duration BackoffCap(const RetryOptions& options, int retry);

// A delay drawn uniformly from [0, BackoffCap(options, retry)].
Duration BackoffDelay(const RetryOptions& options, int retry, std::mt19937_64& rng);

}  // namespace forklift

#endif  // FORKLIFT_RETRY_H_
