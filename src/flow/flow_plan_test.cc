#include "flow/flow_plan.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <queue>
#include <random>
#include <set>
#include <string>

namespace forklift::flow {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// A spec from (name, after) pairs in file order; line = position + 1.
FlowSpec MakeSpec(const std::vector<std::pair<std::string, std::vector<std::string>>>& tasks) {
  FlowSpec spec;
  spec.path = "flow.toml";
  spec.name = "test";
  int line = 1;
  for (const auto& [name, after] : tasks) {
    spec.tasks.push_back({.name = name, .cmd = "true", .after = after, .line = line++});
  }
  return spec;
}

Plan MustBuild(FlowSpec spec) {
  auto r = Plan::Build(std::move(spec));
  if (!r) ADD_FAILURE() << r.error().ToString();
  return std::move(*r);
}

std::vector<std::string> NamesOf(const Plan& plan, std::span<const TaskId> ids) {
  std::vector<std::string> names;
  for (TaskId id : ids) names.push_back(plan.task(id).name);
  return names;
}

std::vector<std::vector<std::string>> LevelNames(const Plan& plan) {
  std::vector<std::vector<std::string>> out;
  for (const auto& level : plan.Levels()) out.push_back(NamesOf(plan, level));
  return out;
}

// A diamond a -> {b, c} -> d, plus an independent e.
FlowSpec Diamond() {
  return MakeSpec({{"a", {}}, {"b", {"a"}}, {"c", {"a"}}, {"d", {"c", "b"}}, {"e", {}}});
}

TEST(PlanTest, GraphAndLevels) {
  Plan plan = MustBuild(Diamond());
  ASSERT_EQ(plan.size(), 5u);
  EXPECT_EQ(plan.Find("d"), std::optional<TaskId>(3));
  EXPECT_EQ(plan.Find("zz"), std::nullopt);
  EXPECT_THAT(NamesOf(plan, plan.Predecessors(3)), ElementsAre("b", "c"));  // file order
  EXPECT_THAT(NamesOf(plan, plan.Successors(0)), ElementsAre("b", "c"));
  EXPECT_THAT(plan.Successors(4), IsEmpty());
  EXPECT_THAT(LevelNames(plan),
              ElementsAre(ElementsAre("a", "e"), ElementsAre("b", "c"), ElementsAre("d")));
  EXPECT_EQ(plan.LevelsText(),
            "flow test: 5 tasks in 3 levels\n"
            "level 1: a, e\n"
            "level 2: b, c\n"
            "level 3: d\n");
}

TEST(PlanTest, LevelsFollowDependenciesNotFileOrder) {
  // `after` may name a task written further down.
  Plan plan = MustBuild(MakeSpec({{"c", {"b"}}, {"a", {}}, {"b", {"a"}}, {"x", {"a", "c"}}}));
  EXPECT_THAT(LevelNames(plan),
              ElementsAre(ElementsAre("a"), ElementsAre("b"), ElementsAre("c"), ElementsAre("x")));
}

TEST(PlanTest, BuildRejectsCyclesAndUnknownNames) {
  auto cyclic = Plan::Build(MakeSpec({{"a", {"b"}}, {"b", {"a"}}}));
  ASSERT_FALSE(cyclic);
  EXPECT_EQ(cyclic.error().message, "flow.toml:1: cycle: a -> b -> a");
  auto unknown = Plan::Build(MakeSpec({{"a", {"nope"}}}));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().message, "flow.toml:1: tasks.a.after: unknown task 'nope'");
}

TEST(PlanTest, SelectKeepsTheTaskAndEverythingItNeeds) {
  Plan plan = MustBuild(Diamond());
  auto d = plan.Select("d");
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_THAT(NamesOf(*d, std::vector<TaskId>{0, 1, 2, 3}), ElementsAre("a", "b", "c", "d"));
  EXPECT_EQ(d->size(), 4u);
  EXPECT_EQ(d->spec().name, "test");

  auto b = plan.Select("b");
  ASSERT_TRUE(b);
  ASSERT_EQ(b->size(), 2u);
  EXPECT_EQ(b->task(0).name, "a");
  EXPECT_EQ(b->task(1).name, "b");

  auto e = plan.Select("e");
  ASSERT_TRUE(e);
  ASSERT_EQ(e->size(), 1u);
  EXPECT_EQ(e->task(0).name, "e");

  auto missing = plan.Select("dd");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message, "unknown task 'dd' (did you mean 'd'?)");
}

// Starts everything startable, in order, and returns their names.
std::vector<std::string> StartAll(const Plan& plan, Scheduler& s) {
  std::vector<std::string> started;
  while (auto id = s.StartNext()) started.push_back(plan.task(*id).name);
  return started;
}

TEST(SchedulerTest, ReadyTasksStartInFileOrder) {
  // `late` is written first but becomes ready only after a: it then goes before x and y.
  Plan plan = MustBuild(MakeSpec({{"late", {"a"}}, {"a", {}}, {"x", {}}, {"y", {}}}));
  Scheduler s(plan, 1);
  EXPECT_THAT(StartAll(plan, s), ElementsAre("a"));
  EXPECT_THAT(s.Finish(*plan.Find("a"), false), IsEmpty());
  EXPECT_THAT(StartAll(plan, s), ElementsAre("late"));
  s.Finish(*plan.Find("late"), false);
  EXPECT_THAT(StartAll(plan, s), ElementsAre("x"));
  s.Finish(*plan.Find("x"), false);
  EXPECT_THAT(StartAll(plan, s), ElementsAre("y"));
  EXPECT_FALSE(s.done());
  s.Finish(*plan.Find("y"), false);
  EXPECT_TRUE(s.done());
  EXPECT_EQ(s.StartNext(), std::nullopt);
}

TEST(SchedulerTest, JobsAndPoolsBoundWhatRuns) {
  FlowSpec spec = MakeSpec({{"p1", {}}, {"p2", {}}, {"x", {}}, {"y", {}}});
  spec.pools = {{"db", 1}};
  spec.tasks[0].pool = "db";
  spec.tasks[1].pool = "db";
  Plan plan = MustBuild(std::move(spec));
  Scheduler s(plan, 2);
  // p2 waits for the pool, so x (later in file order) takes the second job slot.
  EXPECT_THAT(StartAll(plan, s), ElementsAre("p1", "x"));
  EXPECT_EQ(s.running(), 2);
  s.Finish(*plan.Find("x"), false);
  EXPECT_THAT(StartAll(plan, s), ElementsAre("y"));  // the pool is still full
  s.Finish(*plan.Find("p1"), false);
  EXPECT_THAT(StartAll(plan, s), ElementsAre("p2"));
  EXPECT_EQ(s.state(*plan.Find("p2")), Scheduler::State::kRunning);
}

TEST(SchedulerTest, VacateFreesTheSlotButSuccessorsWaitForFinish) {
  Plan plan = MustBuild(MakeSpec({{"a", {}}, {"b", {"a"}}, {"x", {}}}));
  Scheduler s(plan, 1);
  EXPECT_THAT(StartAll(plan, s), ElementsAre("a"));
  s.Vacate(*plan.Find("a"));
  EXPECT_EQ(s.running(), 0);
  EXPECT_THAT(StartAll(plan, s), ElementsAre("x")) << "b waits for a's Finish";
  s.Finish(*plan.Find("a"), false);
  s.Finish(*plan.Find("x"), false);
  EXPECT_THAT(StartAll(plan, s), ElementsAre("b"));
}

TEST(SchedulerTest, AllDoneTasksRunAfterACriticalFailureAndWhatTheyFollowIsBlocked) {
  // a fails; b needs a (blocked); cleanup follows b and a with run_if = all_done; after
  // cleanup, z (default) runs too, since cleanup itself ran.
  FlowSpec spec = MakeSpec({{"a", {}}, {"b", {"a"}}, {"cleanup", {"a", "b"}}, {"z", {"cleanup"}}});
  spec.tasks[2].run_if = RunIf::kAllDone;
  Plan plan = MustBuild(std::move(spec));
  Scheduler s(plan, 2);
  EXPECT_THAT(StartAll(plan, s), ElementsAre("a"));
  std::vector<std::string> blocked;
  for (TaskId t : s.Finish(*plan.Find("a"), /*failed_critical=*/true)) {
    blocked.push_back(plan.task(t).name);
  }
  EXPECT_THAT(blocked, ElementsAre("b"));
  EXPECT_THAT(StartAll(plan, s), ElementsAre("cleanup"));
  s.Finish(*plan.Find("cleanup"), false);
  EXPECT_THAT(StartAll(plan, s), ElementsAre("z"));
  s.Finish(*plan.Find("z"), false);
  EXPECT_TRUE(s.done());
}

TEST(SchedulerTest, StopMarksWhatHasNotStartedButAlwaysTasksStillRun) {
  FlowSpec spec = MakeSpec(
      {{"a", {}}, {"b", {"a"}}, {"c", {}}, {"notify", {"b"}}, {"after_notify", {"notify"}}});
  spec.tasks[3].run_if = RunIf::kAlways;
  Plan plan = MustBuild(std::move(spec));
  Scheduler s(plan, 1);
  EXPECT_THAT(StartAll(plan, s), ElementsAre("a"));
  std::vector<std::string> marked;
  for (TaskId t : s.Stop()) marked.push_back(plan.task(t).name);
  // b and c never start; notify waits for a (running), then runs; after_notify does not.
  EXPECT_THAT(marked, ElementsAre("c", "b", "after_notify"));
  EXPECT_THAT(StartAll(plan, s), IsEmpty());
  s.Finish(*plan.Find("a"), false);
  EXPECT_THAT(StartAll(plan, s), ElementsAre("notify"));
  s.Finish(*plan.Find("notify"), false);
  EXPECT_THAT(StartAll(plan, s), IsEmpty());
  EXPECT_TRUE(s.done());
}

TEST(SchedulerTest, FailedCriticalTaskBlocksEverythingDownstream) {
  // a -> b -> c, a -> d, e independent, f after e and c.
  Plan plan = MustBuild(MakeSpec(
      {{"a", {}}, {"b", {"a"}}, {"c", {"b"}}, {"d", {"a"}}, {"e", {}}, {"f", {"e", "c"}}}));
  Scheduler s(plan, 4);
  EXPECT_THAT(StartAll(plan, s), ElementsAre("a", "e"));
  EXPECT_THAT(NamesOf(plan, s.Finish(*plan.Find("a"), /*failed_critical=*/true)),
              UnorderedElementsAre("b", "c", "d", "f"));
  EXPECT_EQ(s.state(*plan.Find("f")), Scheduler::State::kUpstreamFailed);
  EXPECT_EQ(s.state(*plan.Find("a")), Scheduler::State::kFinished);
  EXPECT_FALSE(s.done());  // e still runs
  EXPECT_THAT(s.Finish(*plan.Find("e"), false), IsEmpty());
  EXPECT_THAT(StartAll(plan, s), IsEmpty());  // f never starts
  EXPECT_TRUE(s.done());
}

TEST(SchedulerTest, FailedNonCriticalTaskLetsDependentsRun) {
  Plan plan = MustBuild(MakeSpec({{"a", {}}, {"b", {"a"}}}));
  Scheduler s(plan, 1);
  EXPECT_THAT(StartAll(plan, s), ElementsAre("a"));
  EXPECT_THAT(s.Finish(0, /*failed_critical=*/false), IsEmpty());
  EXPECT_THAT(StartAll(plan, s), ElementsAre("b"));
}

TEST(CriticalPathTest, WalksBackThroughTheLastFinishingPredecessor) {
  // a [0,2]; b after a [2,10]; c after a [2,5]; d after b, c [10,12]; e [0,11];
  // f after a, never ran.
  Plan plan = MustBuild(MakeSpec(
      {{"a", {}}, {"b", {"a"}}, {"c", {"a"}}, {"d", {"b", "c"}}, {"e", {}}, {"f", {"a"}}}));
  std::vector<TaskTiming> t = {{0, 2, true},   {2, 10, true}, {2, 5, true},
                               {10, 12, true}, {0, 11, true}, {0, 0, false}};
  EXPECT_THAT(NamesOf(plan, plan.CriticalPath(t)), ElementsAre("a", "b", "d"));
  // Had e ended last, e alone would have set the end of the run.
  t[4].finish_s = 13;
  EXPECT_THAT(NamesOf(plan, plan.CriticalPath(t)), ElementsAre("e"));
  // A predecessor that never ran is not on the path.
  t[4].finish_s = 11;
  t[0].ran = false;
  EXPECT_THAT(NamesOf(plan, plan.CriticalPath(t)), ElementsAre("b", "d"));
  EXPECT_THAT(plan.CriticalPath(std::vector<TaskTiming>(6)), IsEmpty());
  EXPECT_THAT(plan.CriticalPath(std::vector<TaskTiming>(2)), IsEmpty());  // wrong size
}

// 30,000 tasks in shuffled file order (so `after` points both ways), up to 3 random
// predecessors each plus a few wide fan-ins, three pools. Plans, parses the same flow as
// TOML, and runs a simulated schedule, checking every scheduling rule as it goes. The
// point is that nothing here is quadratic; there is no timing assertion.
TEST(SchedulerTest, ThirtyThousandTaskDag) {
  constexpr int kTasks = 30000;
  constexpr int kJobs = 16;
  std::mt19937 rng(20240601);
  std::vector<int> file_of(kTasks);  // topological index -> file position
  std::iota(file_of.begin(), file_of.end(), 0);
  std::shuffle(file_of.begin(), file_of.end(), rng);

  FlowSpec spec;
  spec.path = "gen.toml";
  spec.name = "gen";
  spec.pools = {{"api", 3}, {"db", 2}, {"gpu", 5}};
  spec.tasks.resize(kTasks);
  for (int k = 0; k < kTasks; ++k) {
    TaskSpec& task = spec.tasks[static_cast<size_t>(file_of[k])];
    task.name = fmt::format("t{}", k);
    task.cmd = "true";
    task.line = file_of[k] + 1;
    std::set<int> deps;
    if (k > 0) {
      int wanted = k % 1000 == 999 ? 300 : static_cast<int>(rng() % 4);
      std::uniform_int_distribution<int> pick(std::max(0, k - 2000), k - 1);
      for (int i = 0; i < wanted; ++i) deps.insert(pick(rng));
    }
    for (int d : deps) task.after.push_back(fmt::format("t{}", d));
    if (k % 10 == 0) task.pool = "db";
    if (k % 10 == 1) task.pool = "api";
    if (k % 10 == 2) task.pool = "gpu";
  }

  // The same flow as TOML text goes through the parser at this size too.
  std::string text = "name = 'gen'\n[pools]\napi = 3\ndb = 2\ngpu = 5\n";
  for (const TaskSpec& task : spec.tasks) {
    text += fmt::format("[tasks.{}]\ncmd = 'true'\nafter = [", task.name);
    for (const auto& d : task.after) text += fmt::format("'{}',", d);
    text += "]\n";
    if (task.pool) text += fmt::format("pool = '{}'\n", *task.pool);
  }
  auto parsed = ParseFlow(text, "gen.toml");
  ASSERT_TRUE(parsed) << parsed.error().ToString();
  ASSERT_EQ(parsed->tasks.size(), spec.tasks.size());
  for (size_t i = 0; i < spec.tasks.size(); ++i) {
    ASSERT_EQ(parsed->tasks[i].name, spec.tasks[i].name);
    ASSERT_EQ(parsed->tasks[i].after, spec.tasks[i].after);
  }

  Plan plan = MustBuild(std::move(spec));
  size_t in_levels = 0;
  for (const auto& level : plan.Levels()) in_levels += level.size();
  EXPECT_EQ(in_levels, static_cast<size_t>(kTasks));
  auto selected = plan.Select(fmt::format("t{}", kTasks - 1));
  ASSERT_TRUE(selected) << selected.error().ToString();
  EXPECT_GT(selected->size(), 1u);
  EXPECT_LT(selected->size(), plan.size());

  std::map<std::string, int> pool_limit = plan.spec().pools;
  std::map<std::string, int> pool_running;
  std::vector<TaskTiming> timings(plan.size());
  std::vector<bool> finished(plan.size(), false);
  // (finish time, task) of running tasks, earliest first.
  std::priority_queue<std::pair<double, TaskId>, std::vector<std::pair<double, TaskId>>,
                      std::greater<>>
      running;
  std::uniform_real_distribution<double> duration(0.1, 10.0);
  Scheduler s(plan, kJobs);
  double now = 0;
  size_t started = 0;
  while (true) {
    while (auto id = s.StartNext()) {
      for (TaskId p : plan.Predecessors(*id)) ASSERT_TRUE(finished[p]);
      ASSERT_FALSE(timings[*id].ran) << "started twice";
      ++started;
      timings[*id] = {now, now + duration(rng), true};
      running.push({timings[*id].finish_s, *id});
      ASSERT_LE(static_cast<int>(running.size()), kJobs);
      if (const auto& pool = plan.task(*id).pool) {
        ASSERT_LE(++pool_running[*pool], pool_limit[*pool]);
      }
    }
    if (running.empty()) break;
    auto [at, id] = running.top();
    running.pop();
    now = at;
    finished[id] = true;
    if (const auto& pool = plan.task(id).pool) --pool_running[*pool];
    ASSERT_THAT(s.Finish(id, false), IsEmpty());
  }
  EXPECT_EQ(started, static_cast<size_t>(kTasks));
  EXPECT_TRUE(s.done());

  std::vector<TaskId> path = plan.CriticalPath(timings);
  ASSERT_FALSE(path.empty());
  EXPECT_DOUBLE_EQ(timings[path.back()].finish_s, now);
  for (size_t i = 1; i < path.size(); ++i) {
    auto preds = plan.Predecessors(path[i]);
    EXPECT_NE(std::find(preds.begin(), preds.end(), path[i - 1]), preds.end());
  }
}

class UpToDateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("forklift_flow_{}_{}", getpid(),
                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "raw");
    std::filesystem::create_directories(dir_ / "out");
    task_.name = "update";
    task_.cmd = "python3 update.py";
    task_.inputs = {"raw/*.csv", "update.py"};
    task_.outputs = {"out/{a,b}.parquet"};
    Touch("raw/x.csv", 100);
    Touch("raw/y.csv", 200);
    Touch("update.py", 50);
    Touch("out/a.parquet", 300);
    Touch("out/b.parquet", 400);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Creates `rel` with a modification time `age_s` seconds after an arbitrary epoch.
  void Touch(const std::string& rel, int age_s) {
    std::filesystem::path p = dir_ / rel;
    { std::ofstream(p) << rel; }
    std::filesystem::last_write_time(
        p, std::filesystem::file_time_type(std::chrono::seconds(1'700'000'000 + age_s)));
  }

  std::filesystem::path dir_;
  TaskSpec task_;
};

TEST_F(UpToDateTest, OutputsNewerThanInputsWithTheSameCommand) {
  std::string hash = CommandHash(task_);
  EXPECT_TRUE(IsUpToDate(task_, hash, dir_));
  EXPECT_FALSE(IsUpToDate(task_, "0000000000000000", dir_));  // command changed
}

TEST_F(UpToDateTest, AnInputNewerThanAnOutputMakesItStale) {
  std::string hash = CommandHash(task_);
  Touch("raw/y.csv", 350);  // newer than a.parquet, older than b.parquet
  EXPECT_FALSE(IsUpToDate(task_, hash, dir_));
  Touch("raw/y.csv", 300);  // same time as the oldest output: up to date, as in make
  EXPECT_TRUE(IsUpToDate(task_, hash, dir_));
  Touch("raw/z.csv", 500);  // a new input file
  EXPECT_FALSE(IsUpToDate(task_, hash, dir_));
}

TEST_F(UpToDateTest, MissingOutputsOrNoneDeclared) {
  std::string hash = CommandHash(task_);
  std::filesystem::remove(dir_ / "out/b.parquet");
  // Each alternative of "{a,b}" is an output of its own: b missing means stale.
  EXPECT_FALSE(IsUpToDate(task_, hash, dir_));
  TaskSpec listed = task_;
  listed.outputs = {"out/a.parquet", "out/b.parquet"};
  EXPECT_FALSE(IsUpToDate(listed, CommandHash(listed), dir_));
  TaskSpec none = task_;
  none.outputs.clear();
  EXPECT_FALSE(IsUpToDate(none, CommandHash(none), dir_));
}

TEST_F(UpToDateTest, InputGlobsMatchingNothingAreNoConstraint) {
  TaskSpec t = task_;
  t.inputs = {"raw/*.json"};
  EXPECT_TRUE(IsUpToDate(t, CommandHash(t), dir_));
}

TEST(CommandHashTest, CoversCommandDirectoryAndEnvironment) {
  TaskSpec t{.name = "a", .cmd = "echo hi"};
  std::string base = CommandHash(t);
  EXPECT_EQ(base.size(), 16u);
  EXPECT_EQ(CommandHash(t), base);
  TaskSpec renamed = t;
  renamed.name = "b";
  renamed.retries = 3;
  EXPECT_EQ(CommandHash(renamed), base);  // only what runs counts
  TaskSpec cmd = t;
  cmd.cmd = "echo ho";
  EXPECT_NE(CommandHash(cmd), base);
  TaskSpec cwd = t;
  cwd.cwd = "jobs";
  EXPECT_NE(CommandHash(cwd), base);
  TaskSpec env = t;
  env.env["TZ"] = "UTC";
  EXPECT_NE(CommandHash(env), base);
  // The separator keeps shifted boundaries apart.
  TaskSpec a{.cmd = "ab", .cwd = "c"}, b{.cmd = "a", .cwd = "bc"};
  EXPECT_NE(CommandHash(a), CommandHash(b));
}

}  // namespace
}  // namespace forklift::flow
