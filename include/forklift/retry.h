// Retry policy shared by every front door: exponential backoff with full jitter.
// Thread safety: plain values and pure functions (the caller owns the random engine;
// retry_if is the caller's and must be thread-safe where the options are shared).
#ifndef FORKLIFT_RETRY_H_
#define FORKLIFT_RETRY_H_

#include <chrono>
#include <functional>
#include <random>

#include "forklift/clock.h"
#include "forklift/result.h"

namespace forklift {

struct RetryOptions {
  // Attempts per item in all, >= 1 (1: no retries). Default 1.
  int max_attempts = 1;
  // Backoff before retry n (n >= 1) is uniform in [0, min(max_delay, base_delay * 2^(n-1))]
  // ("full jitter"). base_delay >= 0 (0: retry at once), default 100ms; max_delay >= base_delay,
  // default 30s.
  Duration base_delay = std::chrono::milliseconds(100);
  Duration max_delay = std::chrono::seconds(30);
  // Unavailable is always retried; DeadlineExceeded only when this is true. Default false.
  // Ignored when retry_if is set.
  bool retry_deadline_exceeded = false;
  // Whether an attempt that failed with `error` may be retried; `attempt` is the number of
  // the attempt that failed (1 for the first). Replaces the rule above when set; attempts
  // stay bounded by max_attempts, and a stopping batch retries nothing whatever it says.
  // Called on worker threads, several at once: it must be thread-safe. Default: empty
  // (the rule above).
  std::function<bool(const Error& error, int attempt)> retry_if = nullptr;
};

// InvalidArgument naming the field (prefixed by `what`, e.g. "BatchOptions.retry") when
// the options are out of range.
Status ValidateRetryOptions(const RetryOptions& options, const char* what);

// Whether an attempt that failed with `code` may be retried under `options`'s default
// rule (Unavailable; DeadlineExceeded when retry_deadline_exceeded); ignores retry_if.
bool IsRetryable(ErrorCode code, const RetryOptions& options);

// Whether attempt number `attempt` (1 for the first), which failed with `error`, is
// followed by another: attempt < max_attempts, and retry_if(error, attempt) when set,
// else IsRetryable(error.code). Thread-safe when retry_if is.
bool ShouldRetry(const Error& error, int attempt, const RetryOptions& options);

// The upper bound of the backoff before retry number `retry` (1 for the first retry):
// min(max_delay, base_delay * 2^(retry-1)), without overflow.
Duration BackoffCap(const RetryOptions& options, int retry);

// A delay drawn uniformly from [0, BackoffCap(options, retry)].
Duration BackoffDelay(const RetryOptions& options, int retry, std::mt19937_64& rng);

}  // namespace forklift

#endif  // FORKLIFT_RETRY_H_
