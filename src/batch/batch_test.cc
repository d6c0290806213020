// run_batch() in thread isolation: ordering, isolation of failures, timeouts, retries,
// cancellation, the window, and option validation.
#include "forklift/batch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <latch>
#include <mutex>
#include <numeric>
#include <ranges>
#include <semaphore>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace forklift {
namespace {

using namespace std::chrono_literals;

BatchOptions Quiet(size_t workers = 2) {
  BatchOptions o;
  o.workers = workers;
  o.display = ProgressDisplay::kNone;
  return o;
}

TEST(RunBatchTest, ReturnsEveryValueAndASummary) {
  std::vector<int> items(1000);
  std::iota(items.begin(), items.end(), 0);
  auto r = run_batch(
      items, [](const int& x) { return x * 2; }, Quiet(4));
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->outcomes.size(), 1000u);
  std::set<uint64_t> seen;
  for (const auto& o : r->outcomes) {
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(*o.value, static_cast<int>(o.index) * 2);
    EXPECT_EQ(o.attempts, 1);
    seen.insert(o.index);
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(r->summary.processed, 1000u);
  EXPECT_EQ(r->summary.succeeded, 1000u);
  EXPECT_EQ(r->summary.failed, 0u);
  EXPECT_FALSE(r->summary.cancelled);
  EXPECT_GE(r->summary.latency_max, r->summary.latency_p95);
  EXPECT_GE(r->summary.latency_p95, r->summary.latency_p50);
}

TEST(RunBatchTest, OutcomesArriveInCompletionOrder) {
  // Item 0 cannot finish before item 2's outcome has been delivered: a collector that
  // waited on input order would never see item 2, and item 0 would time out.
  std::binary_semaphore item2_delivered(0);
  std::vector<int> items = {0, 1, 2};
  std::vector<uint64_t> order;
  auto r = run_batch(
      items,
      [&](const int& x) -> Result<int> {
        if (x == 0 && !item2_delivered.try_acquire_for(10s)) {
          return DeadlineExceededError("item 2 was never delivered");
        }
        return x;
      },
      Quiet(3),
      [&](Outcome<int>&& o) {
        order.push_back(o.index);
        EXPECT_TRUE(o.ok()) << o.value.error().ToString();
        if (o.index == 2) item2_delivered.release();
      });
  ASSERT_TRUE(r);
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order.back(), 0u);
}

TEST(RunBatchTest, OrderedDeliveryFollowsInputOrder) {
  BatchOptions o = Quiet(4);
  o.ordered = true;
  o.window = 8;
  std::vector<int> items(200);
  std::iota(items.begin(), items.end(), 0);
  std::vector<uint64_t> order;
  auto r = run_batch(
      items,
      [](const int& x) {
        // Early items are slower, so completion order differs from input order.
        if (x % 10 == 0) std::this_thread::sleep_for(2ms);
        return x;
      },
      o, [&](Outcome<int>&& out) { order.push_back(out.index); });
  ASSERT_TRUE(r);
  ASSERT_EQ(order.size(), 200u);
  for (uint64_t i = 0; i < order.size(); ++i) ASSERT_EQ(order[i], i);
}

TEST(RunBatchTest, OneItemsFailureDoesNotStopTheOthers) {
  std::vector<int> items(20);
  std::iota(items.begin(), items.end(), 0);
  auto r = run_batch(
      items,
      [](const int& x) -> Result<int> {
        if (x == 3) throw std::runtime_error("bad item");
        if (x == 5) return NotFoundError("no such symbol");
        return x;
      },
      Quiet());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->summary.succeeded, 18u);
  EXPECT_EQ(r->summary.failed, 2u);
  for (const auto& o : r->outcomes) {
    if (o.index == 3) {
      EXPECT_EQ(o.value.error().code, ErrorCode::kInternal);
      EXPECT_NE(o.value.error().message.find("bad item"), std::string::npos);
    } else if (o.index == 5) {
      EXPECT_EQ(o.value.error().code, ErrorCode::kNotFound);
    } else {
      EXPECT_TRUE(o.ok());
    }
  }
}

TEST(RunBatchTest, StatusAndVoidFunctionsGiveMonostateOutcomes) {
  std::vector<int> items = {1, 2};
  std::atomic<int> calls{0};
  auto r = run_batch(
      items, [&](const int&) { calls++; }, Quiet());
  ASSERT_TRUE(r);
  EXPECT_EQ(calls.load(), 2);
  auto s = run_batch(
      items, [](const int& x) -> Status { return x == 1 ? OkStatus() : AbortedError("no"); },
      Quiet());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->summary.succeeded, 1u);
  EXPECT_EQ(s->summary.failed, 1u);
}

TEST(RunBatchTest, CooperativeTimeoutOnAFakeClock) {
  FakeClock clock;
  // One worker: item 0 is finished (late check included) before item 1 starts waiting, so
  // advancing the clock cannot make item 0 late too.
  BatchOptions o = Quiet(1);
  o.clock = &clock;
  o.timeout = 60s;
  std::vector<int> items = {0, 1};
  std::thread advancer([&] {
    clock.WaitForSleepers(1);  // item 1 waits for its deadline
    clock.Advance(61s);
  });
  auto r = run_batch(
      items,
      [](const int& x, ItemContext& ctx) -> Result<int> {
        if (x == 1) {
          // Wait for something that never comes; the deadline ends the wait.
          FORKLIFT_RETURN_IF_ERROR(ctx.SleepUntil(TimePoint::max()));
        }
        return x;
      },
      o);
  advancer.join();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->summary.timed_out, 1u);
  for (const auto& out : r->outcomes) {
    if (out.index == 1) {
      EXPECT_EQ(out.value.error().code, ErrorCode::kDeadlineExceeded);
      EXPECT_GE(out.elapsed, 60s);
    } else {
      EXPECT_TRUE(out.ok());
    }
  }
}

TEST(RunBatchTest, AnItemThatReturnsLateIsRecordedAsTimedOut) {
  FakeClock clock;
  BatchOptions o = Quiet(1);
  o.clock = &clock;
  o.timeout = 10s;
  std::vector<int> items = {7};
  auto r = run_batch(
      items,
      [&](const int& x) {
        clock.Advance(11s);  // ignores its context and overruns
        return x;
      },
      o);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->outcomes.size(), 1u);
  EXPECT_EQ(r->outcomes[0].value.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_NE(r->outcomes[0].value.error().message.find("10.00s timeout"), std::string::npos);
}

TEST(RunBatchTest, RetriesUnavailableWithBackoffWithinBounds) {
  FakeClock clock;
  BatchOptions o = Quiet(1);
  o.clock = &clock;
  o.retry = {.max_attempts = 4, .base_delay = 1s, .max_delay = 3s};
  o.seed = 7;
  std::mutex mu;
  std::vector<TimePoint> attempts;
  std::atomic<bool> finished{false};
  // Time moves only while something sleeps on the clock (the backoff), in 10 ms ticks, so
  // a descheduled thread under load cannot make a gap look longer than its backoff.
  std::thread ticker([&] {
    while (!finished) {
      if (clock.sleepers() > 0) clock.Advance(10ms);
      std::this_thread::sleep_for(100us);
    }
  });
  std::vector<int> items = {1};
  auto r = run_batch(
      items,
      [&](const int&, ItemContext& ctx) -> Result<int> {
        std::lock_guard lock(mu);
        attempts.push_back(ctx.clock().Now());
        if (ctx.attempt() < 4) return UnavailableError("try later");
        return ctx.attempt();
      },
      o);
  finished = true;
  ticker.join();
  ASSERT_TRUE(r);
  ASSERT_EQ(r->outcomes.size(), 1u);
  EXPECT_EQ(*r->outcomes[0].value, 4);
  EXPECT_EQ(r->outcomes[0].attempts, 4);
  EXPECT_EQ(r->summary.retried, 3u);
  ASSERT_EQ(attempts.size(), 4u);
  // Full jitter: gap n is in [0, min(3s, 1s * 2^(n-1))], plus slack: a sleeper the ticker
  // woke still counts in sleepers() until its thread runs, and the ticker goes on
  // advancing meanwhile (TSan on a loaded host: 80 ms seen), so 250 ms, well under a cap.
  const Duration caps[] = {1s, 2s, 3s};
  for (int n = 0; n < 3; ++n) {
    Duration gap = attempts[n + 1] - attempts[n];
    EXPECT_GE(gap, Duration::zero());
    EXPECT_LE(gap, caps[n] + 250ms) << "retry " << n + 1;
  }
}

TEST(RunBatchTest, NonRetryableErrorsAndExhaustedRetriesStop) {
  BatchOptions o = Quiet(2);
  o.retry = {.max_attempts = 3, .base_delay = 1ms, .max_delay = 2ms};
  std::vector<int> items = {0, 1};
  auto r = run_batch(
      items,
      [](const int& x) -> Result<int> {
        if (x == 0) return InvalidArgumentError("never retried");
        return UnavailableError("always down");
      },
      o);
  ASSERT_TRUE(r);
  for (const auto& out : r->outcomes) {
    EXPECT_EQ(out.attempts, out.index == 0 ? 1 : 3);
  }
  EXPECT_EQ(r->summary.retried, 2u);
  EXPECT_EQ(r->summary.failed, 2u);
}

TEST(RunBatchTest, CancellationStopsNewItemsAndReachesRunningOnes) {
  std::stop_source stop;
  BatchOptions o = Quiet(2);
  o.stop = stop.get_token();
  std::latch two_running(2);
  auto items = std::views::iota(0, 1000);
  std::atomic<int> started{0};
  std::thread canceller([&] {
    two_running.wait();
    stop.request_stop();
  });
  auto r = run_batch(
      items,
      [&](const int&, ItemContext& ctx) -> Status {
        if (started++ < 2) two_running.count_down();
        while (!ctx.Cancelled()) std::this_thread::sleep_for(1ms);
        return ctx.Check();
      },
      o);
  canceller.join();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->summary.cancelled);
  EXPECT_LT(r->summary.processed, 1000u);
  for (const auto& out : r->outcomes) EXPECT_EQ(out.value.error().code, ErrorCode::kCancelled);
}

TEST(RunBatchTest, TheWindowBoundsItemsInFlightForALazyRange) {
  BatchOptions o = Quiet(2);
  o.window = 8;
  std::atomic<int64_t> pulled{0};
  int64_t delivered = 0;
  int64_t max_ahead = 0;
  auto items = std::views::iota(0, 20000) | std::views::transform([&](int x) {
                 pulled++;
                 return x;
               });
  uint64_t sum = 0;
  auto r = run_batch(
      items, [](const int& x) { return static_cast<uint64_t>(x); }, o,
      [&](Outcome<uint64_t>&& out) {
        ++delivered;
        sum += *out.value;
        max_ahead = std::max(max_ahead, pulled.load() - delivered);
      });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->processed, 20000u);
  EXPECT_EQ(sum, 20000ull * 19999 / 2);
  EXPECT_LE(max_ahead, 8) << "never more than the window in flight";
  EXPECT_GT(max_ahead, 1) << "the window is used, not one at a time";
}

TEST(RunBatchTest, ProgressCallbackRunsPerCompletionWithTheTotal) {
  BatchOptions o = Quiet(2);
  std::vector<Progress> seen;
  o.on_progress = [&](const Progress& p) { seen.push_back(p); };
  std::vector<int> items(50, 1);
  auto r = run_batch(
      items, [](const int& x) { return x; }, o);
  ASSERT_TRUE(r);
  ASSERT_EQ(seen.size(), 50u);
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].completed, i + 1);
    EXPECT_EQ(seen[i].total, 50u);
  }
}

TEST(RunBatchTest, AnExceptionFromTheSinkPropagatesAfterTheWorkersStop) {
  std::vector<int> items(1000, 1);
  int seen = 0;
  EXPECT_THROW(run_batch(
                   items, [](const int& x) { return x; }, Quiet(2),
                   [&](Outcome<int>&&) {
                     if (++seen == 5) throw std::runtime_error("sink failed");
                   }),
               std::runtime_error);
  EXPECT_EQ(seen, 5);
}

TEST(RunBatchTest, NoTimeoutMeansNoDeadline) {
  FakeClock clock;
  BatchOptions o = Quiet(1);
  o.clock = &clock;
  o.timeout = std::nullopt;
  std::vector<int> items = {1};
  auto r = run_batch(
      items,
      [&](const int& x, ItemContext& ctx) -> Result<int> {
        if (ctx.deadline() != TimePoint::max()) return InternalError("a deadline was set");
        clock.Advance(std::chrono::hours(24 * 365 * 100));  // a century later
        FORKLIFT_RETURN_IF_ERROR(ctx.Check());
        return x;
      },
      o);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->outcomes.size(), 1u);
  EXPECT_TRUE(r->outcomes[0].ok()) << r->outcomes[0].value.error().ToString();
  EXPECT_EQ(r->summary.timed_out, 0u);
}

TEST(RunBatchTest, TheDefaultTimeoutIsStillSixtySeconds) {
  EXPECT_EQ(BatchOptions().timeout, std::optional<Duration>(std::chrono::seconds(60)));
}

TEST(RunBatchTest, RetryIfDecidesWhatIsRetriedWithTheAttemptNumber) {
  FakeClock clock;
  BatchOptions o = Quiet(1);
  o.clock = &clock;
  o.retry.max_attempts = 5;
  o.retry.base_delay = o.retry.max_delay = Duration::zero();
  std::mutex mu;
  std::vector<std::pair<ErrorCode, int>> asked;
  // Retries "exit" failures (Aborted), which the default rule never retries, up to
  // attempt 2, and never Unavailable, which it always does.
  o.retry.retry_if = [&](const Error& e, int attempt) {
    std::lock_guard lock(mu);
    asked.emplace_back(e.code, attempt);
    return e.code == ErrorCode::kAborted && attempt < 3;
  };
  std::vector<int> items = {0, 1};
  auto r = run_batch(
      items,
      [](const int& x) -> Result<int> {
        if (x == 0) return AbortedError("exit 1");
        return UnavailableError("down");
      },
      o);
  ASSERT_TRUE(r) << r.error().ToString();
  for (const auto& out : r->outcomes) {
    EXPECT_EQ(out.attempts, out.index == 0 ? 3 : 1) << out.index;
  }
  EXPECT_EQ(r->summary.retried, 2u);
  std::lock_guard lock(mu);
  std::multiset<std::pair<ErrorCode, int>> got(asked.begin(), asked.end());
  std::multiset<std::pair<ErrorCode, int>> want = {{ErrorCode::kAborted, 1},
                                                   {ErrorCode::kAborted, 2},
                                                   {ErrorCode::kAborted, 3},
                                                   {ErrorCode::kUnavailable, 1}};
  EXPECT_EQ(got, want);
}

TEST(RunBatchTest, AFailedOutcomeCarriesTheValueItsLastAttemptReturned) {
  FakeClock clock;
  BatchOptions o = Quiet(1);
  o.clock = &clock;
  o.retry = {.max_attempts = 2, .base_delay = Duration::zero(), .max_delay = Duration::zero()};
  o.retry.retry_if = [](const Error& e, int) { return e.code == ErrorCode::kAborted; };
  std::vector<int> items = {0, 1, 2};
  auto r = run_batch(
      items,
      [](const int& x, ItemContext& ctx) -> ItemResult<std::string> {
        if (x == 0) return std::string("fine");
        if (x == 1) {
          std::string out = "output of attempt " + std::to_string(ctx.attempt());
          return ItemResult<std::string>::Failed(AbortedError("exit 3"), std::move(out));
        }
        return NotFoundError("no value to show");
      },
      o);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->outcomes.size(), 3u);
  for (const auto& out : r->outcomes) {
    if (out.index == 0) {
      ASSERT_TRUE(out.ok());
      EXPECT_EQ(*out.value, "fine");
      EXPECT_FALSE(out.failed_value);
    } else if (out.index == 1) {
      ASSERT_FALSE(out.ok());
      EXPECT_EQ(out.value.error(), (Error{ErrorCode::kAborted, "exit 3"}));
      EXPECT_EQ(out.attempts, 2);
      EXPECT_EQ(out.failed_value, std::optional<std::string>("output of attempt 2"));
    } else {
      EXPECT_EQ(out.value.error().code, ErrorCode::kNotFound);
      EXPECT_FALSE(out.failed_value);
    }
  }
  EXPECT_EQ(r->summary.failed, 2u);
  EXPECT_EQ(r->summary.succeeded, 1u);
}

TEST(RunBatchTest, AnEngineDecidedFailureCarriesNoValue) {
  FakeClock clock;
  BatchOptions o = Quiet(1);
  o.clock = &clock;
  o.timeout = 10s;
  std::vector<int> items = {7};
  auto r = run_batch(
      items,
      [&](const int&) -> ItemResult<std::string> {
        clock.Advance(11s);  // returns after its deadline, with a value
        return ItemResult<std::string>::Failed(AbortedError("exit 1"), "late");
      },
      o);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->outcomes.size(), 1u);
  EXPECT_EQ(r->outcomes[0].value.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_FALSE(r->outcomes[0].failed_value);
}

TEST(RunBatchTest, AnErrorFromTheOutcomeCallbackStopsTheBatchAndIsReturned) {
  BatchOptions o = Quiet(2);
  o.window = 4;
  std::vector<int> items(1000, 1);
  std::atomic<int> ran{0};
  int seen = 0;
  auto r = run_batch(
      items,
      [&](const int& x) {
        ran++;
        return x;
      },
      o,
      [&](Outcome<int>&&) -> Status {
        if (++seen == 5) return FailedPreconditionError("stdout is closed");
        return OkStatus();
      });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{ErrorCode::kFailedPrecondition, "stdout is closed"}));
  EXPECT_EQ(seen, 5) << "not called again after its error";
  EXPECT_LE(ran.load(), 5 + 4) << "at most the window runs after the error";
}

TEST(RunBatchTest, AnErrorFromOnProgressStopsTheBatchAndIsReturned) {
  BatchOptions o = Quiet(2);
  o.window = 4;
  int calls = 0;
  o.on_progress = [&](const Progress& p) -> Status {
    ++calls;
    if (p.completed == 3) return DataLossError("progress file is gone");
    return OkStatus();
  };
  std::vector<int> items(1000, 1);
  std::atomic<int> ran{0};
  auto r = run_batch(
      items,
      [&](const int& x) {
        ran++;
        return x;
      },
      o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), (Error{ErrorCode::kDataLoss, "progress file is gone"}));
  EXPECT_EQ(calls, 3);
  EXPECT_LE(ran.load(), 3 + 4);
}

TEST(RunBatchTest, OnProgressIsCopiedWithItsOptionsAndEmptyStaysNone) {
  BatchOptions with = Quiet(1);
  int calls = 0;
  with.on_progress = [&](const Progress&) { ++calls; };
  BatchOptions copy = with;  // a non-const lvalue: copied, not wrapped
  BatchOptions none = Quiet(1);
  BatchOptions none_copy = none;
  EXPECT_FALSE(none_copy.on_progress);
  none_copy.on_progress = std::function<void(const Progress&)>();
  EXPECT_FALSE(none_copy.on_progress) << "an empty std::function is no callback";
  none_copy.on_progress = nullptr;
  EXPECT_FALSE(none_copy.on_progress);
  std::vector<int> items = {1, 2};
  ASSERT_TRUE(run_batch(
      items, [](const int& x) { return x; }, none_copy));
  ASSERT_TRUE(run_batch(
      items, [](const int& x) { return x; }, copy));
  EXPECT_EQ(calls, 2);
}

TEST(RunBatchTest, BadOptionsAreRejectedByName) {
  std::vector<int> items = {1};
  auto fn = [](const int& x) { return x; };
  auto expect_bad = [&](BatchOptions o, const std::string& name) {
    std::atomic<int> ran{0};
    auto r = run_batch(
        items,
        [&](const int& x) {
          ran++;
          return x;
        },
        o);
    ASSERT_FALSE(r) << name;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find(name), std::string::npos) << r.error().message;
    EXPECT_EQ(ran.load(), 0) << "nothing runs after a bad option";
  };
  BatchOptions o = Quiet();
  o.workers = 0;
  expect_bad(o, "BatchOptions.workers");
  o = Quiet();
  o.timeout = -1s;
  expect_bad(o, "BatchOptions.timeout");
  o = Quiet();
  o.timeout = Duration::zero();
  expect_bad(o, "BatchOptions.timeout");
  o = Quiet(4);
  o.window = 2;
  expect_bad(o, "BatchOptions.window");
  o = Quiet();
  o.retry.max_attempts = 0;
  expect_bad(o, "BatchOptions.retry.max_attempts");
  o = Quiet();
  o.batch_id = "b";
  o.journal_path = "/dev/null/journal.db";
  expect_bad(o, "BatchOptions.journal_path");
  (void)fn;
}

}  // namespace
}  // namespace forklift
