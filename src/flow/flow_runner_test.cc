// The flow runner on fakes: a TaskRunner that runs no process and a FakeClock, so retries,
// backoff, timeouts and the order of commits are tested without sleeping.
#include "flow/flow_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "journal/journal.h"
#include "support/temp_dir.h"

namespace forklift::flow {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

class FlowRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    dir_ = tmp_.path();
    out_ = std::tmpfile();
  }
  void TearDown() override { std::fclose(out_); }

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

  test_support::TempDir tmp_{"forklift-flow-runner"};
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

TEST_F(FlowRunnerTest, TasksSeeTheForkliftProgramAndTheFlowsJournal) {
  FlowSpec spec = Spec("[tasks.a]\ncmd = 'a'\n");
  FlowRunOptions o = Options();
  o.forklift_exe = "/opt/forklift/bin/forklift";
  std::map<std::string, std::string> env;
  o.run_task = [&](const process::SpawnOptions& s, const std::stop_token&) {
    for (const auto& [k, v] : s.env) env[k] = v;
    return Result<process::Completion>(Exited(0));
  };
  auto result = RunFlow(spec, o);
  ASSERT_TRUE(result) << result.error().ToString();
  EXPECT_EQ(env["FORKLIFT"], "/opt/forklift/bin/forklift");
  EXPECT_EQ(env["FORKLIFT_JOURNAL"], o.journal_path);  // already absolute here
  EXPECT_EQ(env["FORKLIFT_TASK"], "a");
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
  FlowSpec spec = Spec(
      "[tasks.flaky]\ncmd = 'x'\ncritical = false\nretries = 5\n"
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

// The environment variable `name` of a spawn, or "".
std::string EnvOf(const process::SpawnOptions& s, std::string_view name) {
  for (const auto& [k, v] : s.env) {
    if (k == name) return v;
  }
  return "";
}

struct HookCall {
  std::string hook, task, status, cmd;
  bool stdin_has_run_id = false;
};

TEST_F(FlowRunnerTest, HooksSeeTheRunAndNeverChangeItsStatus) {
  FlowSpec spec = Spec(
      "on_success = 'yay'\non_failure = 'notify'\non_finish = 'finish'\n"
      "[tasks.a]\ncmd = 'a'\non_failure = 'page'\n[tasks.b]\ncmd = 'b'\nafter = ['a']\n");
  std::mutex mu;
  std::vector<HookCall> calls;
  FlowRunOptions o = Options();
  o.run_task = [&](const process::SpawnOptions& s, const std::stop_token&) {
    std::string hook = EnvOf(s, "FORKLIFT_HOOK");
    if (hook.empty()) return Result<process::Completion>(Exited(1));  // task a fails
    std::lock_guard lock(mu);
    calls.push_back({hook, EnvOf(s, "FORKLIFT_TASK"), EnvOf(s, "FORKLIFT_STATUS"), s.argv.back(),
                     s.stdin_data.find("\"run_id\"") != std::string::npos ||
                         s.stdin_data.find("\"attempts\"") != std::string::npos});
    EXPECT_EQ(s.timeout, std::chrono::minutes(5)) << "hooks have a default timeout";
    return Result<process::Completion>(Exited(hook == "on_finish" ? 7 : 0));
  };
  auto result = RunFlow(spec, o);
  ASSERT_TRUE(result) << result.error().ToString();
  EXPECT_FALSE(result->succeeded);
  EXPECT_EQ(result->report.status, "failed") << "a failing hook changes nothing";
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].hook, "on_failure");  // the task's, with its name
  EXPECT_EQ(calls[0].task, "a");
  EXPECT_EQ(calls[0].cmd, "page");
  EXPECT_EQ(calls[1].hook, "on_failure");  // the run's
  EXPECT_EQ(calls[1].task, "");
  EXPECT_EQ(calls[1].status, "failed");
  EXPECT_EQ(calls[2].hook, "on_finish");
  for (const HookCall& c : calls) EXPECT_TRUE(c.stdin_has_run_id) << c.hook;
  ASSERT_EQ(result->report.hooks.size(), 3u);
  EXPECT_FALSE(result->report.hooks[2].ok);
  EXPECT_EQ(result->report.hooks[2].outcome, "exit 7");
  std::string out = Output();
  EXPECT_THAT(out, HasSubstr("HOOK FAILED on_finish  exit 7"));
  EXPECT_THAT(out, HasSubstr("hook on_finish: exit 7 (FAILED; the run's status stands)"));
}

TEST_F(FlowRunnerTest, AlertsFireOnceWhileTheRunIsStillGoing) {
  FlowSpec spec = Spec(
      "alert_after = '90m'\non_alert = 'alert'\n"
      "[tasks.slow]\ncmd = 'x'\nalert_after = '90m'\n");
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> alerts;  // FORKLIFT_TASK of each on_alert call
  FlowRunOptions o = Options();
  o.run_task = [&](const process::SpawnOptions& s, const std::stop_token&) {
    std::unique_lock lock(mu);
    if (EnvOf(s, "FORKLIFT_HOOK") == "on_alert") {
      alerts.push_back(EnvOf(s, "FORKLIFT_TASK"));
      cv.notify_all();
    } else {
      // The task runs until both alerts have fired: they come while it is running.
      cv.wait(lock, [&] { return alerts.size() >= 2; });
    }
    return Result<process::Completion>(Exited(0));
  };
  Result<FlowRunResult> result = InternalError("not run");
  std::thread run([&] { result = RunFlow(spec, o); });
  clock_.WaitForSleepers(1);  // the DelayQueue holds the two alerts
  clock_.Advance(std::chrono::minutes(89));
  {
    std::lock_guard lock(mu);
    EXPECT_TRUE(alerts.empty()) << "not before alert_after";
  }
  clock_.Advance(std::chrono::minutes(2));
  run.join();
  ASSERT_TRUE(result) << result.error().ToString();
  EXPECT_TRUE(result->succeeded);
  std::sort(alerts.begin(), alerts.end());
  EXPECT_THAT(alerts, ::testing::ElementsAre("", "slow")) << "the run's and the task's, once each";
  EXPECT_THAT(Output(), HasSubstr("ALERT    slow  still running after 1h30m"));
}

TEST_F(FlowRunnerTest, AllDoneTasksRunAfterACriticalFailureAndPhasesAreShown) {
  FlowSpec spec = Spec(
      "[tasks.scrape_a]\ncmd = 'ok'\ngroup = 'scrapers'\n"
      "[tasks.scrape_b]\ncmd = 'ok'\ngroup = 'scrapers'\n"
      "[tasks.main]\ncmd = 'fail'\nafter = ['scrape_a', 'scrape_b']\n"
      "[tasks.report]\ncmd = 'ok'\nafter = ['main']\n"
      "[tasks.cleanup]\ncmd = 'ok'\nafter = ['report']\nrun_if = 'all_done'\n");
  FlowRunOptions o = Options();
  o.run_task = [&](const process::SpawnOptions& s, const std::stop_token&) {
    clock_.Advance(std::chrono::seconds(1));
    return Result<process::Completion>(Exited(s.argv.back() == "fail" ? 1 : 0));
  };
  auto result = RunFlow(spec, o);
  ASSERT_TRUE(result) << result.error().ToString();
  EXPECT_FALSE(result->succeeded);
  std::map<std::string, std::string> state;
  for (const TaskReport& t : result->report.tasks) state[t.name] = t.state;
  EXPECT_EQ(state["main"], "failed");
  EXPECT_EQ(state["report"], "upstream_failed");
  EXPECT_EQ(state["cleanup"], "succeeded");
  std::vector<PhaseRow> phases = PhaseRows(result->report);
  ASSERT_GE(phases.size(), 1u);
  EXPECT_EQ(phases[0].name, "scrapers");
  EXPECT_TRUE(phases[0].is_group);
  EXPECT_EQ(phases[0].tasks, 2u);
  EXPECT_THAT(Output(), HasSubstr("phases:\n  scrapers"));
}

}  // namespace
}  // namespace forklift::flow
