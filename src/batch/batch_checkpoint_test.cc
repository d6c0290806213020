// run_batch() checkpoints: recorded completions are skipped on rerun, and a SIGKILL at any
// moment loses no recorded completion.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <latch>
#include <ranges>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "forklift/batch.h"
#include "journal/journal.h"
#include "support/temp_dir.h"

namespace forklift {
namespace {

using namespace std::chrono_literals;

using test_support::TempDir;

BatchOptions Checkpointed(const std::string& dir) {
  BatchOptions o;
  o.workers = 2;
  o.display = ProgressDisplay::kNone;
  o.batch_id = "nightly-2026-11-23";
  o.journal_path = dir + "/journal.db";
  return o;
}

TEST(RunBatchCheckpointTest, ARerunSkipsSucceededItemsAndRetriesFailedOnes) {
  TempDir tmp("forklift-ckpt");
  const std::string& dir = tmp.path();
  std::vector<std::string> items;
  for (int i = 0; i < 100; ++i) items.push_back("SYM" + std::to_string(i));
  std::atomic<int> calls{0};
  bool fail_some = true;
  auto fn = [&](const std::string& s) -> Result<size_t> {
    calls++;
    if (fail_some && s.back() == '7') return AbortedError("flaky source");
    return s.size();
  };
  auto first = run_batch(items, fn, Checkpointed(dir));
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(calls.load(), 100);
  EXPECT_EQ(first->summary.failed, 10u);

  calls = 0;
  fail_some = false;
  auto second = run_batch(items, fn, Checkpointed(dir));
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_EQ(calls.load(), 10) << "only the failed items run again";
  EXPECT_EQ(second->summary.skipped, 90u);
  EXPECT_EQ(second->summary.succeeded, 10u);

  calls = 0;
  auto third = run_batch(items, fn, Checkpointed(dir));
  ASSERT_TRUE(third);
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(third->summary.skipped, 100u);
  std::filesystem::remove_all(dir);
}

// The child runs a checkpointed batch in which every item appends its number to a log
// before returning; the parent SIGKILLs it mid-run, then reruns the batch itself.
TEST(RunBatchCheckpointTest, ResumeAfterSigkillLosesNoRecordedCompletion) {
  TempDir tmp("forklift-ckpt");
  const std::string& dir = tmp.path();
  std::string log = dir + "/ran.log";
  const int n = 3000;
  auto run = [&](const std::string& tag) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    auto r = run_batch(
        std::views::iota(0, n),
        [&](const int& x) {
          std::string line = tag + " " + std::to_string(x) + "\n";
          (void)!write(fd, line.data(), line.size());
          std::this_thread::sleep_for(200us);
          return x;
        },
        Checkpointed(dir));
    close(fd);
    return r;
  };

  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    run("first");
    _exit(0);
  }
  // Kill it once it is well into the run (some items recorded, many not yet).
  for (int i = 0; i < 500; ++i) {
    std::this_thread::sleep_for(2ms);
    std::ifstream in(log);
    int lines = static_cast<int>(
        std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n'));
    if (lines > n / 3) break;
  }
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));

  // What the killed run had recorded as succeeded.
  auto j = journal::Journal::Open(dir + "/journal.db");
  ASSERT_TRUE(j) << j.error().ToString();
  std::set<int> recorded;
  for (int x = 0; x < n; ++x) {
    auto done = (*j)->GetItemState("nightly-2026-11-23", std::to_string(x));
    ASSERT_TRUE(done);
    if (*done == journal::ItemState::kSucceeded) recorded.insert(x);
  }
  j->reset();
  ASSERT_GT(recorded.size(), 0u);
  ASSERT_LT(recorded.size(), static_cast<size_t>(n)) << "the kill came too late to test resume";

  auto second = run("second");
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_EQ(second->summary.skipped, recorded.size());
  EXPECT_EQ(second->summary.skipped + second->summary.succeeded, static_cast<uint64_t>(n));

  std::ifstream in(log);
  std::string tag;
  int x;
  std::set<int> ran_first, ran_second;
  while (in >> tag >> x) (tag == "first" ? ran_first : ran_second).insert(x);
  for (int r : recorded) {
    EXPECT_TRUE(ran_first.count(r)) << r << " recorded but never ran";
    EXPECT_FALSE(ran_second.count(r)) << r << " recorded complete, yet ran again";
  }
  for (int i = 0; i < n; ++i) {
    EXPECT_TRUE(ran_first.count(i) || ran_second.count(i)) << i << " never ran";
  }
  std::filesystem::remove_all(dir);
}

// "Never ran", "cancelled while running", "failed" and "succeeded" are distinct: a stop
// that comes before an item starts leaves it unrecorded (attempts 0), an item that saw
// the stop while running is recorded as cancelled, and a resume that skips every
// finished item (Resume::kFinished, map's --resume) runs both again.
TEST(RunBatchCheckpointTest, ItemsStoppedBeforeOrWhileRunningRunOnResume) {
  TempDir tmp("forklift-ckpt");
  const std::string& dir = tmp.path();
  std::vector<std::string> items;
  for (int i = 0; i < 10; ++i) items.push_back("item" + std::to_string(i));
  std::stop_source stop;
  std::atomic<int> pulled{0};  // items the engine took from the range
  auto counted = items | std::views::transform([&](const std::string& s) {
                   pulled++;
                   return s;
                 });
  auto first_fn = [&](const std::string& s, ItemContext& ctx) -> Result<int> {
    if (s == "item0") return AbortedError("failed on its own");
    if (s == "item1") {
      // Once all ten are pulled, all ten are submitted: items 2..9 are in the window, and
      // with one worker none of them has started.
      while (pulled.load() < 10) std::this_thread::yield();
      stop.request_stop();
      if (ctx.Cancelled()) return CancelledError("saw the stop");
    }
    return 1;
  };
  BatchOptions o = Checkpointed(dir);
  o.workers = 1;
  o.window = 10;
  o.resume = BatchOptions::Resume::kFinished;
  o.stop = stop.get_token();
  auto first = run_batch(counted, first_fn, o);
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_TRUE(first->summary.cancelled);
  EXPECT_EQ(first->summary.failed, 1u) << first->summary.ToString();
  EXPECT_EQ(first->summary.interrupted, 1u) << first->summary.ToString();
  EXPECT_EQ(first->summary.not_run, 8u) << first->summary.ToString();
  for (const auto& out : first->outcomes) {
    if (out.index >= 2) {
      EXPECT_EQ(out.attempts, 0) << out.index << " never ran";
      ASSERT_FALSE(out.ok());
      EXPECT_EQ(out.value.error().code, ErrorCode::kCancelled);
    }
  }

  auto j = journal::Journal::Open(dir + "/journal.db");
  ASSERT_TRUE(j) << j.error().ToString();
  auto state = [&](const std::string& key) {
    auto s = (*j)->GetItemState("nightly-2026-11-23", key);
    EXPECT_TRUE(s) << s.error().ToString();
    return s ? *s : journal::ItemState::kUnknown;
  };
  EXPECT_EQ(state("item0"), journal::ItemState::kFailed);
  EXPECT_EQ(state("item1"), journal::ItemState::kCancelled);
  for (int i = 2; i < 10; ++i) {
    EXPECT_EQ(state("item" + std::to_string(i)), journal::ItemState::kUnknown)
        << "item" << i << " never ran and must not be recorded";
  }
  j->reset();

  std::set<std::string> ran;
  o.stop = std::stop_token();
  auto second = run_batch(
      items,
      [&](const std::string& s) -> Result<int> {
        ran.insert(s);
        return 1;
      },
      o);
  ASSERT_TRUE(second) << second.error().ToString();
  std::set<std::string> expected;
  for (int i = 1; i < 10; ++i) expected.insert("item" + std::to_string(i));
  EXPECT_EQ(ran, expected) << "the failed item is skipped, the rest run";
  EXPECT_EQ(second->summary.skipped, 1u);
  std::filesystem::remove_all(dir);
}

TEST(RunBatchCheckpointTest, AFailureWithAValueIsRecordedAsAFailure) {
  TempDir tmp("forklift-ckpt");
  const std::string& dir = tmp.path();
  std::vector<std::string> items = {"ok", "bad"};
  std::atomic<int> calls{0};
  auto fn = [&](const std::string& s) -> ItemResult<std::string> {
    calls++;
    if (s == "bad") return ItemResult<std::string>::Failed(AbortedError("exit 2"), "its output");
    return s;
  };
  auto first = run_batch(items, fn, Checkpointed(dir));
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(first->summary.failed, 1u);
  auto j = journal::Journal::Open(dir + "/journal.db");
  ASSERT_TRUE(j) << j.error().ToString();
  EXPECT_EQ((*j)->GetItemState("nightly-2026-11-23", "bad"), journal::ItemState::kFailed);
  EXPECT_EQ((*j)->GetItemState("nightly-2026-11-23", "ok"), journal::ItemState::kSucceeded);
  j->reset();

  calls = 0;
  auto rerun = run_batch(items, fn, Checkpointed(dir));  // Resume::kSucceeded
  ASSERT_TRUE(rerun);
  EXPECT_EQ(calls.load(), 1) << "a failure runs again, value or not";
  ASSERT_EQ(rerun->outcomes.size(), 1u);
  EXPECT_EQ(rerun->outcomes[0].failed_value, std::optional<std::string>("its output"));

  calls = 0;
  BatchOptions finished = Checkpointed(dir);
  finished.resume = BatchOptions::Resume::kFinished;
  auto third = run_batch(items, fn, finished);
  ASSERT_TRUE(third);
  EXPECT_EQ(calls.load(), 0);
  std::filesystem::remove_all(dir);
}

// After the outcome callback fails, what finishes is not recorded: nothing reached the
// callback, so a rerun must run it.
TEST(RunBatchCheckpointTest, WhatFinishesAfterTheCallbackFailedIsNotRecorded) {
  TempDir tmp("forklift-ckpt");
  const std::string& dir = tmp.path();
  std::vector<std::string> items = {"a", "b"};
  std::latch b_started(1);
  std::latch sink_failed(1);
  auto r = run_batch(
      items,
      [&](const std::string& s) -> Result<int> {
        if (s == "a") {
          b_started.wait();
        } else {
          b_started.count_down();
          sink_failed.wait();
        }
        return 1;
      },
      Checkpointed(dir),
      [&](Outcome<int>&&) -> Status {
        sink_failed.count_down();
        return InternalError("cannot write the report");
      });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "cannot write the report");
  auto j = journal::Journal::Open(dir + "/journal.db");
  ASSERT_TRUE(j) << j.error().ToString();
  EXPECT_EQ((*j)->GetItemState("nightly-2026-11-23", "a"), journal::ItemState::kSucceeded)
      << "recorded before the callback saw it";
  EXPECT_EQ((*j)->GetItemState("nightly-2026-11-23", "b"), journal::ItemState::kUnknown);
  j->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace forklift
