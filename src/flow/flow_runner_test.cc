// The flow runner on fakes: a TaskRunner that runs no process and a FakeClock, so retries,
// backoff, timeouts and the order of commits are tested without sleeping.
#include "flow/flow_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "journal/journal.h"

namespace forklift::flow {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

class FlowRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::path(::testing::TempDir()) / "forklift-flow-runner-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    out_ = std::tmpfile();
  }
  void TearDown() override {
    std::fclose(out_);
    fs::remove_all(dir_);
  }

  FlowSpec Spec(std::string_view text) {
    std::string path = (fs::path(dir_) / "flow.toml").string();
    auto spec = ParseFlow(text, path);
    EXPECT_TRUE(spec) << spec.error().ToString();
    return *spec;
  }

  FlowRunOptions Options() {
    FlowRunOptions o;
    o.jobs = 2;
    o.journal_path = (fs::path(dir_) / "journal.db").string();
    o.out = out_;
    o.clock = &clock_;
    o.watchdog = false;
    return o;
  }

  std::string Output() {
    std::fflush(out_);
    std::rewind(out_);
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, out_)) > 0) text.append(buf, n);
    return text;
  }

  static process::Completion Exited(int code) {
    process::Completion c;
    c.pid = c.pgid = 4242;
    c.exit_code = code;
    return c;
  }

  std::string dir_;
  FILE* out_ = nullptr;
  FakeClock clock_;
};

TEST_F(FlowRunnerTest, RetriesWaitTheirBackoffOnTheRunsClock) {
  FlowSpec spec = Spec("[tasks.flaky]\ncmd = 'x'\nretries = 2\nretry_delay = '10s'\n");
  std::atomic<int> calls{0};
  FlowRunOptions o = Options();
  o.run_task = [&](const process::SpawnOptions&, const std::stop_token&) {
    return Result<process::Completion>(Exited(++calls < 3 ? 1 : 0));
  };
  Result<FlowRunResult> result = InternalError("not run");
  std::thread run([&] { result = RunFlow(spec, o); });
  // Each failed attempt parks a retry in the DelayQueue, asleep on the fake clock: no real
  // time passes until the test moves the clock past the backoff (at most 64 × 10 s).
  for (int retry = 0; retry < 2; ++retry) {
    while (calls.load() < retry + 1) std::this_thread::yield();
    clock_.WaitForSleepers(1);
    EXPECT_EQ(calls.load(), retry + 1) << "no attempt before its backoff has passed";
    clock_.Advance(std::chrono::seconds(640));
  }
  run.join();
  ASSERT_TRUE(result) << result.error().ToString();
  EXPECT_TRUE(result->succeeded);
  ASSERT_EQ(result->report.tasks.size(), 1u);
  const TaskReport& t = result->report.tasks[0];
  EXPECT_EQ(t.state, "succeeded");
  ASSERT_EQ(t.attempts.size(), 3u);
  EXPECT_EQ(t.attempts[0].state, "retried");
  EXPECT_EQ(t.attempts[2].state, "succeeded");
  EXPECT_THAT(Output(), HasSubstr("retry    flaky  exit 1 after"));
}

TEST_F(FlowRunnerTest, ATaskIsCommittedBeforeItsDependentsStart) {
  FlowSpec spec = Spec("[tasks.a]\ncmd = 'a'\n[tasks.b]\ncmd = 'b'\nafter = ['a']\n");
  FlowRunOptions o = Options();
  std::map<std::string, journal::ItemState> seen_by_b;
  std::string run_id;
  std::mutex mu;
  o.run_task = [&](const process::SpawnOptions& s, const std::stop_token&) {
    std::string task, run;
    for (const auto& [k, v] : s.env) {
      if (k == "FORKLIFT_TASK") task = v;
      if (k == "FORKLIFT_RUN_ID") run = v;
    }
    if (task == "b") {
      // What a SIGKILL right now would leave: a's outcome must already be durable.
      auto j = journal::Journal::Open(o.journal_path);
      EXPECT_TRUE(j);
      auto state = (*j)->GetItemState(run, "a");
      EXPECT_TRUE(state);
      std::lock_guard lock(mu);
      seen_by_b["a"] = *state;
      run_id = run;
    }
    return Result<process::Completion>(Exited(0));
  };
  auto result = RunFlow(spec, o);
  ASSERT_TRUE(result) << result.error().ToString();
  EXPECT_TRUE(result->succeeded);
  EXPECT_EQ(seen_by_b["a"], journal::ItemState::kSucceeded);
  // And each task's record carries its state and attempts.
  auto j = journal::Journal::Open(o.journal_path);
  ASSERT_TRUE(j);
  auto items = (*j)->ListItems(run_id);
  ASSERT_TRUE(items);
  ASSERT_EQ(items->size(), 2u);
  for (const journal::ItemRow& row : *items) {
    EXPECT_EQ(row.state, journal::ItemState::kSucceeded);
    EXPECT_THAT(row.detail, HasSubstr("\"state\":\"succeeded\""));
    EXPECT_THAT(row.detail, HasSubstr("\"attempts\":[{"));
  }
}

TEST_F(FlowRunnerTest, ATimedOutAttemptReadsTheSameEverywhere) {
  FlowSpec spec = Spec("[tasks.slow]\ncmd = 'x'\ntimeout = '2s'\n");
  FlowRunOptions o = Options();
  o.run_task = [&](const process::SpawnOptions& s, const std::stop_token&) {
    EXPECT_EQ(s.timeout, std::chrono::seconds(2));
    clock_.Advance(std::chrono::milliseconds(2010));  // the attempt took that long
    process::Completion c = Exited(-1);
    c.signal = 15;
    c.timed_out = true;
    return Result<process::Completion>(std::move(c));
  };
  auto result = RunFlow(spec, o);
  ASSERT_TRUE(result) << result.error().ToString();
  EXPECT_FALSE(result->succeeded);
  const TaskReport& t = result->report.tasks[0];
  EXPECT_EQ(t.state, "failed");
  ASSERT_EQ(t.attempts.size(), 1u);
  EXPECT_EQ(t.attempts[0].state, "timed_out");
  EXPECT_THAT(Output(), HasSubstr("FAILED   slow  timed out after 2.01s"));
  EXPECT_THAT(RenderReportHtml(result->report), HasSubstr("timed out after 2.01s after 1 attempt"));
}

TEST_F(FlowRunnerTest, AStopDuringABackoffStartsNoNewAttempt) {
  FlowSpec spec = Spec("[tasks.flaky]\ncmd = 'x'\ncritical = false\nretries = 5\n"
                       "retry_delay = '1h'\n[tasks.later]\ncmd = 'y'\nafter = ['flaky']\n");
  std::stop_source graceful;
  std::atomic<int> calls{0};
  FlowRunOptions o = Options();
  o.graceful = graceful.get_token();
  o.run_task = [&](const process::SpawnOptions&, const std::stop_token&) {
    ++calls;
    return Result<process::Completion>(Exited(1));
  };
  Result<FlowRunResult> result = InternalError("not run");
  std::thread run([&] { result = RunFlow(spec, o); });
  while (calls.load() < 1) std::this_thread::yield();
  clock_.WaitForSleepers(1);  // the retry waits out its hour
  graceful.request_stop();    // a first SIGINT: no new attempt, and no waiting for it
  run.join();
  ASSERT_TRUE(result) << result.error().ToString();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_TRUE(result->interrupted);
  EXPECT_EQ(result->report.status, "cancelled");
  EXPECT_EQ(result->report.tasks[0].state, "failed");
  EXPECT_EQ(result->report.tasks[1].state, "not_run");
}

TEST_F(FlowRunnerTest, ASecondInvocationOfARunningFlowIsRefused) {
  FlowSpec spec = Spec("[tasks.a]\ncmd = 'x'\n");
  FlowRunOptions o = Options();
  std::atomic<bool> in_a{false}, release{false};
  o.run_task = [&](const process::SpawnOptions&, const std::stop_token&) {
    in_a = true;
    while (!release) std::this_thread::yield();
    return Result<process::Completion>(Exited(0));
  };
  Result<FlowRunResult> first = InternalError("not run");
  std::thread run([&] { first = RunFlow(spec, o); });
  while (!in_a) std::this_thread::yield();
  FlowRunOptions second = Options();
  auto refused = RunFlow(spec, second);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kAborted);
  EXPECT_THAT(refused.error().message, HasSubstr("flow 'flow' is already running: run flow-"));
  release = true;
  run.join();
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_TRUE(first->succeeded);
}

}  // namespace
}  // namespace forklift::flow
