#include "forklift/executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <semaphore>
#include <set>
#include <thread>
#include <vector>

namespace forklift {
namespace {

std::unique_ptr<Executor> MakeExecutor(size_t workers, size_t capacity = 1024) {
  auto ex = Executor::Create({.workers = workers, .queue_capacity = capacity});
  EXPECT_TRUE(ex) << ex.error().ToString();
  return std::move(*ex);
}

TEST(ExecutorTest, RejectsZeroWorkersAndBadCapacity) {
  auto zero = Executor::Create({.workers = 0});
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(zero.error().message.find("workers"), std::string::npos);
  auto cap = Executor::Create({.workers = 1, .queue_capacity = 1000});
  ASSERT_FALSE(cap);
  EXPECT_NE(cap.error().message.find("queue_capacity"), std::string::npos);
}

TEST(ExecutorTest, RunsEveryTaskOnWorkerThreads) {
  auto ex = MakeExecutor(4);
  std::atomic<int> sum{0};
  std::mutex mu;
  std::set<int> indices;
  TaskGroup group(*ex);
  for (int i = 1; i <= 10000; ++i) {
    ASSERT_TRUE(group.Run([&, i] {
      sum.fetch_add(i);
      std::lock_guard lock(mu);
      indices.insert(Executor::CurrentWorkerIndex());
    }));
  }
  group.Wait();
  EXPECT_EQ(sum.load(), 10000 * 10001 / 2);
  for (int idx : indices) {
    EXPECT_GE(idx, 0);
    EXPECT_LT(idx, 4);
  }
  EXPECT_EQ(Executor::CurrentWorkerIndex(), -1);
}

TEST(ExecutorTest, SubmitBlocksWhenQueueIsFull) {
  auto ex = MakeExecutor(1, 2);
  std::binary_semaphore release(0);
  std::latch started(1);
  ASSERT_TRUE(ex->Submit([&] {
    started.count_down();
    release.acquire();
  }));
  started.wait();
  // The worker is busy: two tasks fill the queue, a third must wait for room.
  Task filler = [] {};
  ASSERT_TRUE(ex->Submit(filler));
  ASSERT_TRUE(ex->Submit(filler));

  std::atomic<bool> submitted{false};
  std::thread producer([&] {
    ASSERT_TRUE(ex->Submit([] {}));
    submitted = true;
  });
  // Nothing can drain the queue, so the producer is still inside Submit.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(submitted.load());
  release.release();
  producer.join();
  EXPECT_TRUE(submitted.load());
}

TEST(ExecutorTest, ShutdownRunsQueuedTasksThenRefusesNewOnes) {
  auto ex = MakeExecutor(1, 64);
  std::atomic<int> ran{0};
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(ex->Submit([&] { ran++; }));
  ex->Shutdown();
  EXPECT_EQ(ran.load(), 50);
  auto s = ex->Submit([] {});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kCancelled);
}

TEST(ExecutorTest, ShutdownReleasesAProducerBlockedOnAFullQueue) {
  auto ex = MakeExecutor(1, 2);
  std::binary_semaphore release(0);
  ASSERT_TRUE(ex->Submit([&] { release.acquire(); }));
  ASSERT_TRUE(ex->Submit([] {}));
  ASSERT_TRUE(ex->Submit([] {}));
  // Fill until a submission would block; do it in a thread that must come back Cancelled
  // or Ok once shutdown starts.
  std::thread producer([&] {
    for (int i = 0; i < 4; ++i) {
      if (!ex->Submit([] {})) return;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::thread stopper([&] { ex->Shutdown(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  release.release();
  producer.join();
  stopper.join();
}

TEST(ExecutorTest, ExceptionsAreCountedNotPropagated) {
  auto ex = MakeExecutor(2);
  TaskGroup group(*ex);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(group.Run([] { throw std::runtime_error("x"); }));
  group.Wait();
  ex->Shutdown();
  EXPECT_EQ(ex->unhandled_exceptions(), 3u);
}

TEST(ExecutorTest, RequestStopIsSeenByRunningTasks) {
  auto ex = MakeExecutor(1);
  std::latch started(1);
  std::latch saw_stop(1);
  ASSERT_TRUE(ex->Submit([&] {
    started.count_down();
    auto token = ex->stop_token();
    while (!token.stop_requested()) std::this_thread::yield();
    saw_stop.count_down();
  }));
  started.wait();
  ex->RequestStop();
  saw_stop.wait();  // a task that never saw the stop would hang the test here
}

}  // namespace
}  // namespace forklift
