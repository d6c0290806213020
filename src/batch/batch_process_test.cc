// run_batch() with isolation = kProcess: a crash or an overrun loses only its own item.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <numeric>
#include <thread>
#include <vector>

#include "forklift/batch.h"

namespace forklift {
namespace {

using namespace std::chrono_literals;

BatchOptions ProcessOptions(size_t workers) {
  BatchOptions o;
  o.workers = workers;
  o.isolation = Isolation::kProcess;
  o.display = ProgressDisplay::kNone;
  return o;
}

TEST(RunBatchProcessTest, ValuesCrossTheProcessBoundary) {
  std::vector<std::string> items = {"a", "bb", "ccc"};
  auto r = run_batch(
      items, [](const std::string& s) { return std::make_pair(s + s, static_cast<int>(getpid())); },
      ProcessOptions(2));
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->outcomes.size(), 3u);
  for (const auto& o : r->outcomes) {
    ASSERT_TRUE(o.ok()) << o.value.error().ToString();
    EXPECT_EQ(o.value->first, items[o.index] + items[o.index]);
    EXPECT_NE(o.value->second, static_cast<int>(getpid())) << "ran in a worker process";
  }
}

TEST(RunBatchProcessTest, ASegfaultLosesOnlyItsItemAndTheWorkerIsReplaced) {
  std::vector<int> items(40);
  std::iota(items.begin(), items.end(), 0);
  auto r = run_batch(
      items,
      [](const int& x) -> int {
        if (x == 7) raise(SIGSEGV);
        if (x == 21) std::abort();
        return x + 1;
      },
      ProcessOptions(2));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->summary.succeeded, 38u);
  EXPECT_EQ(r->summary.failed, 2u);
  for (const auto& o : r->outcomes) {
    if (o.index == 7) {
      ASSERT_FALSE(o.ok());
      EXPECT_EQ(o.value.error().code, ErrorCode::kInternal);
      EXPECT_NE(o.value.error().message.find("SIGSEGV"), std::string::npos)
          << o.value.error().message;
    } else if (o.index == 21) {
      ASSERT_FALSE(o.ok());
      EXPECT_NE(o.value.error().message.find("SIGABRT"), std::string::npos)
          << o.value.error().message;
    } else {
      ASSERT_TRUE(o.ok()) << o.index << ": " << o.value.error().ToString();
      EXPECT_EQ(*o.value, static_cast<int>(o.index) + 1);
    }
  }
}

TEST(RunBatchProcessTest, AnOverrunningItemIsKilledAtItsTimeout) {
  BatchOptions o = ProcessOptions(2);
  o.timeout = 200ms;
  std::vector<int> items = {0, 1, 2, 3};
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_batch(
      items,
      [](const int& x) {
        if (x == 2) {
          for (;;) pause();  // ignores every deadline: only a kill ends it
        }
        return x;
      },
      o);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_LT(took, 5s);
  EXPECT_EQ(r->summary.timed_out, 1u);
  EXPECT_EQ(r->summary.succeeded, 3u);
  for (const auto& out : r->outcomes) {
    if (out.index == 2) {
      EXPECT_EQ(out.value.error().code, ErrorCode::kDeadlineExceeded);
    }
  }
}

TEST(RunBatchProcessTest, ErrorsReturnedInTheWorkerKeepTheirCode) {
  std::vector<int> items = {1, 2};
  auto r = run_batch(
      items,
      [](const int& x) -> Result<int> {
        if (x == 2) return NotFoundError("missing " + std::to_string(x));
        return x;
      },
      ProcessOptions(1));
  ASSERT_TRUE(r);
  for (const auto& o : r->outcomes) {
    if (o.index == 1) {
      EXPECT_EQ(o.value.error(), (Error{ErrorCode::kNotFound, "missing 2"}));
    }
  }
}

TEST(RunBatchProcessTest, AFailedItemsValueCrossesTheProcessBoundary) {
  std::vector<int> items = {1, 2, 3};
  auto r = run_batch(
      items,
      [](const int& x) -> ItemResult<std::string> {
        if (x == 1) return ItemResult<std::string>::Failed(AbortedError("exit 1"), "partial");
        if (x == 2) return NotFoundError("nothing");
        return std::string("whole");
      },
      ProcessOptions(1));
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->outcomes.size(), 3u);
  for (const auto& o : r->outcomes) {
    if (o.index == 0) {
      EXPECT_EQ(o.value.error(), (Error{ErrorCode::kAborted, "exit 1"}));
      EXPECT_EQ(o.failed_value, std::optional<std::string>("partial"));
    } else if (o.index == 1) {
      EXPECT_EQ(o.value.error(), (Error{ErrorCode::kNotFound, "nothing"}));
      EXPECT_FALSE(o.failed_value);
    } else {
      ASSERT_TRUE(o.ok());
      EXPECT_EQ(*o.value, "whole");
    }
  }
}

TEST(RunBatchProcessTest, NoTimeoutLetsAWorkerItemRunAsLongAsItNeeds) {
  BatchOptions o = ProcessOptions(1);
  o.timeout = std::nullopt;
  std::vector<int> items = {1};
  auto r = run_batch(
      items,
      [](const int& x, ItemContext& ctx) -> Result<int> {
        if (ctx.deadline() != TimePoint::max()) return InternalError("a deadline was set");
        return x;
      },
      o);
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->outcomes.size(), 1u);
  EXPECT_TRUE(r->outcomes[0].ok()) << r->outcomes[0].value.error().ToString();
}

}  // namespace
}  // namespace forklift
