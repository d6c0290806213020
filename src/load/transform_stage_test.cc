#include "load/transform_stage.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace forklift::load {
namespace {

using sinks::Chunk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

Chunk Numbered(int64_t n) {
  Chunk c;
  c.number = n;
  c.source = "in.csv";
  c.first_line = static_cast<uint64_t>(2 * n + 2);
  c.last_line = c.first_line + 1;
  return c;
}

// Events a test waits for, with a bound so that a stage that never gets there fails
// instead of hanging.
class Events {
 public:
  void Add(int64_t n) {
    std::lock_guard lock(mu_);
    seen_.push_back(n);
    cv_.notify_all();
  }
  bool WaitFor(size_t count) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return seen_.size() >= count; });
  }
  std::vector<int64_t> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int64_t> seen_;
};

TEST(TransformStageTest, EmitsInInputOrderWhenLaterChunksFinishFirst) {
  Events finished;
  std::vector<int64_t> emitted;
  std::atomic<bool> waited_ok{true};
  {
    TransformStage stage(
        3,
        [&](Chunk&& c) -> std::optional<Chunk> {
          // Chunk 0 ends only after chunks 1 and 2 have: three run at once, out of order.
          if (c.number == 0 && !finished.WaitFor(2)) waited_ok = false;
          finished.Add(c.number);
          c.data = "t" + std::to_string(c.number);
          return std::move(c);
        },
        [&](Chunk&& c) { emitted.push_back(c.number); });
    for (int64_t n = 0; n < 9; ++n) ASSERT_TRUE(stage.Push(Numbered(n)));
    ASSERT_TRUE(stage.Finish());
  }
  EXPECT_TRUE(waited_ok);
  std::vector<int64_t> order = finished.seen();
  ASSERT_EQ(order.size(), 9u);
  EXPECT_NE(order[0], 0);  // the stage really saw them finish out of order
  EXPECT_THAT(emitted, ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8));
}

TEST(TransformStageTest, RunsAtMostWorkersAtOnceAndHoldsAtMostTwiceThat) {
  std::atomic<int> running{0}, most{0};
  std::atomic<int64_t> pushed{0}, emitted{0};
  std::atomic<int64_t> most_in_stage{0};
  TransformStage stage(
      2,
      [&](Chunk&& c) -> std::optional<Chunk> {
        const int now = running.fetch_add(1) + 1;
        int m = most.load();
        while (now > m && !most.compare_exchange_weak(m, now)) {
        }
        const int64_t in_stage = pushed.load() - emitted.load();
        int64_t mi = most_in_stage.load();
        while (in_stage > mi && !most_in_stage.compare_exchange_weak(mi, in_stage)) {
        }
        running.fetch_sub(1);
        return std::move(c);
      },
      [&](Chunk&&) { emitted.fetch_add(1); });
  for (int64_t n = 0; n < 200; ++n) {
    pushed.fetch_add(1);
    ASSERT_TRUE(stage.Push(Numbered(n)));
  }
  ASSERT_TRUE(stage.Finish());
  EXPECT_EQ(emitted.load(), 200);
  EXPECT_LE(most.load(), 2);
  EXPECT_LE(most_in_stage.load(), 4 + 1);  // the window, plus the one being pushed
}

TEST(TransformStageTest, TwoWorkersRunAtOnce) {
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  bool both = true;
  TransformStage stage(
      2,
      [&](Chunk&& c) -> std::optional<Chunk> {
        std::unique_lock lock(mu);
        if (c.number < 2) {  // the first two meet: only two threads at once can
          ++arrived;
          cv.notify_all();
          if (!cv.wait_for(lock, std::chrono::seconds(20), [&] { return arrived == 2; })) {
            both = false;
          }
        }
        return std::move(c);
      },
      [](Chunk&&) {});
  for (int64_t n = 0; n < 4; ++n) ASSERT_TRUE(stage.Push(Numbered(n)));
  ASSERT_TRUE(stage.Finish());
  EXPECT_TRUE(both);
}

TEST(TransformStageTest, ADroppedChunkIsSkippedAndOrderGoesOn) {
  std::vector<int64_t> emitted;
  TransformStage stage(
      2,
      [](Chunk&& c) -> std::optional<Chunk> {
        if (c.number == 1) return std::nullopt;
        return std::move(c);
      },
      [&](Chunk&& c) { emitted.push_back(c.number); });
  for (int64_t n = 0; n < 4; ++n) ASSERT_TRUE(stage.Push(Numbered(n)));
  ASSERT_TRUE(stage.Finish());
  EXPECT_THAT(emitted, ElementsAre(0, 2, 3));
}

TEST(TransformStageTest, AnExceptionFailsTheStageNamingTheChunk) {
  std::vector<int64_t> emitted;
  TransformStage stage(
      1,
      [](Chunk&& c) -> std::optional<Chunk> {
        if (c.number == 2) throw std::runtime_error("bad row");
        return std::move(c);
      },
      [&](Chunk&& c) { emitted.push_back(c.number); });
  Status st;
  for (int64_t n = 0; n < 10 && st; ++n) st = stage.Push(Numbered(n));
  Status fin = stage.Finish();
  Status first = st ? fin : st;
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().code, ErrorCode::kInternal);
  EXPECT_THAT(first.error().message, HasSubstr("chunk 2 (in.csv lines 6-7)"));
  EXPECT_THAT(first.error().message, HasSubstr("bad row"));
  EXPECT_FALSE(fin);  // Finish reports it too
  // Nothing from the failed chunk on; what was finished before may or may not have gone
  // out (the load fails either way), in order.
  ASSERT_LE(emitted.size(), 2u);
  for (size_t i = 0; i < emitted.size(); ++i) EXPECT_EQ(emitted[i], static_cast<int64_t>(i));
}

TEST(TransformStageTest, FinishWithNothingPushedAndTwice) {
  TransformStage stage(
      4, [](Chunk&& c) -> std::optional<Chunk> { return std::move(c); }, [](Chunk&&) {});
  EXPECT_TRUE(stage.Finish());
  EXPECT_TRUE(stage.Finish());
}

}  // namespace
}  // namespace forklift::load
