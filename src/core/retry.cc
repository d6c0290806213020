#include "forklift/retry.h"

#include <string>

namespace forklift {

Status ValidateRetryOptions(const RetryOptions& options, const char* what) {
  std::string prefix(what);
  if (options.max_attempts < 1) {
    return InvalidArgumentError(prefix + ".max_attempts must be >= 1, got " +
                                std::to_string(options.max_attempts));
  }
  if (options.base_delay < Duration::zero()) {
    return InvalidArgumentError(prefix + ".base_delay must be >= 0");
  }
  if (options.max_delay < options.base_delay) {
    return InvalidArgumentError(prefix + ".max_delay must be >= base_delay");
  }
  return OkStatus();
}

bool IsRetryable(ErrorCode code, const RetryOptions& options) {
  return code == ErrorCode::kUnavailable ||
         (code == ErrorCode::kDeadlineExceeded && options.retry_deadline_exceeded);
}

bool ShouldRetry(const Error& error, int attempt, const RetryOptions& options) {
  if (attempt >= options.max_attempts) return false;
  if (options.retry_if) return options.retry_if(error, attempt);
  return IsRetryable(error.code, options);
}

Duration BackoffCap(const RetryOptions& options, int retry) {
  Duration cap = options.base_delay;
  if (cap == Duration::zero()) return cap;
  for (int i = 1; i < retry && cap < options.max_delay; ++i) {
    // Doubling past max_delay stops the loop before the count could overflow.
    cap = cap > options.max_delay / 2 ? options.max_delay : cap * 2;
  }
  return cap < options.max_delay ? cap : options.max_delay;
}

Duration BackoffDelay(const RetryOptions& options, int retry, std::mt19937_64& rng) {
  std::uniform_int_distribution<Duration::rep> dist(0, BackoffCap(options, retry).count());
  return Duration(dist(rng));
}

}  // namespace forklift
