#include "core/delay_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <mutex>
#include <vector>

namespace forklift::core {
namespace {

using namespace std::chrono_literals;

TEST(DelayQueueTest, RunsCallbacksInDueOrderWhenTheClockReachesThem) {
  FakeClock clock;
  std::mutex mu;
  std::vector<int> order;
  std::latch done(3);
  DelayQueue q(clock);
  auto push = [&](int v) {
    std::lock_guard lock(mu);
    order.push_back(v);
    done.count_down();
  };
  TimePoint t0 = clock.Now();
  q.Add(t0 + 30s, [&] { push(3); });
  q.Add(t0 + 10s, [&] { push(1); });
  q.Add(t0 + 20s, [&] { push(2); });
  clock.WaitForSleepers(1);
  {
    std::lock_guard lock(mu);
    EXPECT_TRUE(order.empty()) << "nothing is due before the clock moves";
  }
  clock.Advance(15s);
  // Only the first is due; wait until the queue sleeps again, then check.
  while (q.pending() != 2) std::this_thread::yield();
  clock.WaitForSleepers(1);
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(order, std::vector<int>({1}));
  }
  clock.Advance(20s);
  done.wait();
  EXPECT_EQ(order, std::vector<int>({1, 2, 3}));
}

TEST(DelayQueueTest, AnEarlierEntryInterruptsTheSleep) {
  FakeClock clock;
  std::atomic<int> ran{0};
  DelayQueue q(clock);
  TimePoint t0 = clock.Now();
  q.Add(t0 + 1h, [&] { ran += 10; });
  clock.WaitForSleepers(1);
  std::latch done(1);
  q.Add(t0 + 1s, [&] {
    ran += 1;
    done.count_down();
  });
  clock.Advance(2s);
  done.wait();
  EXPECT_EQ(ran.load(), 1);
}

TEST(DelayQueueTest, RunAllNowSkipsTheWait) {
  FakeClock clock;
  std::latch done(2);
  DelayQueue q(clock);
  q.Add(clock.Now() + 1h, [&] { done.count_down(); });
  q.RunAllNow();
  q.Add(clock.Now() + 1h, [&] { done.count_down(); });
  done.wait();  // would hang if either waited for the fake clock
  SUCCEED();
}

TEST(DelayQueueTest, DestructorRunsWhatIsPending) {
  FakeClock clock;
  std::atomic<int> ran{0};
  {
    DelayQueue q(clock);
    q.Add(clock.Now() + 1h, [&] { ran++; });
  }
  EXPECT_EQ(ran.load(), 1);
}

}  // namespace
}  // namespace forklift::core
