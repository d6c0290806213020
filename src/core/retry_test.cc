#include "forklift/retry.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace forklift {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(RetryTest, CapDoublesFromBaseUntilMaxDelay) {
  RetryOptions o{.max_attempts = 10, .base_delay = milliseconds(100), .max_delay = seconds(1)};
  EXPECT_EQ(BackoffCap(o, 1), milliseconds(100));
  EXPECT_EQ(BackoffCap(o, 2), milliseconds(200));
  EXPECT_EQ(BackoffCap(o, 4), milliseconds(800));
  EXPECT_EQ(BackoffCap(o, 5), seconds(1));
  EXPECT_EQ(BackoffCap(o, 1000), seconds(1)) << "no overflow for huge retry numbers";
}

TEST(RetryTest, FullJitterStaysWithinBoundsAndSpreads) {
  RetryOptions o{.max_attempts = 10, .base_delay = milliseconds(100), .max_delay = seconds(1)};
  std::mt19937_64 rng(42);
  for (int retry = 1; retry <= 8; ++retry) {
    Duration lo = Duration::max(), hi = Duration::zero();
    for (int i = 0; i < 2000; ++i) {
      Duration d = BackoffDelay(o, retry, rng);
      ASSERT_GE(d, Duration::zero());
      ASSERT_LE(d, BackoffCap(o, retry));
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    // Full jitter covers the whole interval, not just its top.
    EXPECT_LT(lo, BackoffCap(o, retry) / 10);
    EXPECT_GT(hi, BackoffCap(o, retry) * 9 / 10);
  }
}

TEST(RetryTest, OnlyUnavailableIsRetriedByDefault) {
  RetryOptions o;
  EXPECT_TRUE(IsRetryable(ErrorCode::kUnavailable, o));
  EXPECT_FALSE(IsRetryable(ErrorCode::kDeadlineExceeded, o));
  EXPECT_FALSE(IsRetryable(ErrorCode::kInternal, o));
  o.retry_deadline_exceeded = true;
  EXPECT_TRUE(IsRetryable(ErrorCode::kDeadlineExceeded, o));
}

TEST(RetryTest, ValidationNamesTheField) {
  RetryOptions o;
  o.max_attempts = 0;
  auto s = ValidateRetryOptions(o, "BatchOptions.retry");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message, "BatchOptions.retry.max_attempts must be >= 1, got 0");
  o = RetryOptions{};
  o.base_delay = -milliseconds(1);
  EXPECT_NE(ValidateRetryOptions(o, "r").error().message.find("base_delay"), std::string::npos);
  o = RetryOptions{};
  o.base_delay = Duration::zero();
  o.max_delay = Duration::zero();
  EXPECT_TRUE(ValidateRetryOptions(o, "r")) << "zero delay means retry at once";
  std::mt19937_64 rng(1);
  EXPECT_EQ(BackoffDelay(o, 5, rng), Duration::zero());
  o = RetryOptions{};
  o.max_delay = milliseconds(1);
  EXPECT_NE(ValidateRetryOptions(o, "r").error().message.find("max_delay"), std::string::npos);
}

TEST(RetryTest, ShouldRetryFollowsTheDefaultRuleWithinMaxAttempts) {
  RetryOptions o{.max_attempts = 3};
  EXPECT_TRUE(ShouldRetry(Error{ErrorCode::kUnavailable, "down"}, 1, o));
  EXPECT_TRUE(ShouldRetry(Error{ErrorCode::kUnavailable, "down"}, 2, o));
  EXPECT_FALSE(ShouldRetry(Error{ErrorCode::kUnavailable, "down"}, 3, o)) << "out of attempts";
  EXPECT_FALSE(ShouldRetry(Error{ErrorCode::kDeadlineExceeded, "late"}, 1, o));
  EXPECT_FALSE(ShouldRetry(Error{ErrorCode::kAborted, "exit 1"}, 1, o));
  o.retry_deadline_exceeded = true;
  EXPECT_TRUE(ShouldRetry(Error{ErrorCode::kDeadlineExceeded, "late"}, 1, o));
}

TEST(RetryTest, RetryIfReplacesTheDefaultRuleButNotTheAttemptCap) {
  std::vector<std::pair<ErrorCode, int>> asked;
  RetryOptions o{.max_attempts = 3};
  o.retry_if = [&](const Error& e, int attempt) {
    asked.emplace_back(e.code, attempt);
    return e.code == ErrorCode::kAborted;
  };
  EXPECT_TRUE(ShouldRetry(Error{ErrorCode::kAborted, "exit 1"}, 1, o));
  EXPECT_FALSE(ShouldRetry(Error{ErrorCode::kUnavailable, "down"}, 2, o));
  EXPECT_FALSE(ShouldRetry(Error{ErrorCode::kAborted, "exit 1"}, 3, o));  // not even asked
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[0], std::make_pair(ErrorCode::kAborted, 1));
  EXPECT_EQ(asked[1], std::make_pair(ErrorCode::kUnavailable, 2));
}

}  // namespace
}  // namespace forklift
