#include "flow/flow_file.h"

#include "flow/flow_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace forklift::flow {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Test data sits beside this file; __FILE__ is absolute under CMake.
std::string TestData(const char* name) {
  return (std::filesystem::path(__FILE__).parent_path() / "testdata" / name).string();
}

// The error message of a flow text that must fail to parse.
std::string ErrorOf(std::string_view text) {
  auto r = ParseFlow(text, "flow.toml");
  EXPECT_FALSE(r) << "parsed although it should not have:\n" << text;
  if (r) return "";
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  return r.error().message;
}

std::vector<std::string> Names(const FlowSpec& spec) {
  std::vector<std::string> names;
  for (const auto& t : spec.tasks) names.push_back(t.name);
  return names;
}

TEST(LoadFlowFileTest, ParsesTheNightlyExampleFully) {
  auto r = LoadFlowFile(TestData("nightly.toml"));
  ASSERT_TRUE(r) << r.error().ToString();
  const FlowSpec& spec = *r;
  EXPECT_EQ(spec.path, TestData("nightly.toml"));
  EXPECT_EQ(spec.name, "nightly");
  EXPECT_EQ(spec.log_dir, "logs");
  EXPECT_EQ(spec.pools, (std::map<std::string, int>{{"db", 4}}));
  ASSERT_THAT(Names(spec),
              ElementsAre("discovery", "scrape_cboe", "scrape_fred", "main_update", "report"));

  const TaskSpec& discovery = spec.tasks[0];
  EXPECT_EQ(discovery.line, 8);
  EXPECT_EQ(discovery.cmd, "python3 scripts/discovery.py");
  EXPECT_TRUE(discovery.after.empty());
  EXPECT_EQ(discovery.days_mask, 1u);  // Sunday is tm_wday 0
  EXPECT_TRUE(discovery.RunsOn(0));
  EXPECT_FALSE(discovery.RunsOn(1));
  EXPECT_TRUE(discovery.critical);

  const TaskSpec& cboe = spec.tasks[1];
  EXPECT_EQ(cboe.line, 12);
  EXPECT_EQ(cboe.cmd, "python3 scripts/scrape_cboe.py --years 2026");
  EXPECT_THAT(cboe.after, ElementsAre("discovery"));
  EXPECT_FALSE(cboe.critical);
  EXPECT_EQ(cboe.timeout, std::optional<Duration>(15min));
  EXPECT_EQ(cboe.retries, 2);
  EXPECT_EQ(cboe.retry_delay, 30s);
  EXPECT_EQ(cboe.alert_after, std::optional<Duration>(20min));
  EXPECT_EQ(cboe.pool, std::optional<std::string>("db"));
  EXPECT_EQ(cboe.env, (std::map<std::string, std::string>{{"TZ", "UTC"}}));
  EXPECT_EQ(cboe.cwd, "jobs");
  EXPECT_EQ(cboe.days_mask, 0u);
  for (int day = 0; day < 7; ++day) EXPECT_TRUE(cboe.RunsOn(day));

  const TaskSpec& fred = spec.tasks[2];
  EXPECT_EQ(fred.days_mask, 0b0111110);
  EXPECT_FALSE(fred.RunsOn(0));
  EXPECT_TRUE(fred.RunsOn(5));
  EXPECT_FALSE(fred.RunsOn(6));

  const TaskSpec& update = spec.tasks[3];
  EXPECT_THAT(update.after, ElementsAre("scrape_cboe", "scrape_fred"));
  EXPECT_EQ(update.timeout, std::optional<Duration>(5400s));
  EXPECT_THAT(update.outputs, ElementsAre("out/prices_*.parquet"));
  EXPECT_THAT(update.inputs, ElementsAre("raw/*.csv", "scripts/main_update.py"));

  const TaskSpec& report = spec.tasks[4];
  EXPECT_EQ(report.line, 37);
  EXPECT_THAT(report.after, ElementsAre("main_update"));
}

TEST(ParseFlowTest, DefaultsAndFileOrder) {
  auto r = ParseFlow(R"(
[tasks.zeta]
cmd = "z"
[tasks]
alpha = { cmd = "a", after = ["zeta"] }
[tasks.mid]
cmd = "m"
)",
                     "dir/my-flow.toml");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->name, "my-flow");
  EXPECT_EQ(r->log_dir, ".forklift/logs");
  EXPECT_TRUE(r->pools.empty());
  // Written order, not the alphabetical order of toml++'s maps.
  EXPECT_THAT(Names(*r), ElementsAre("zeta", "alpha", "mid"));
  const TaskSpec& t = r->tasks[0];
  EXPECT_EQ(t.line, 2);
  EXPECT_TRUE(t.critical);
  EXPECT_EQ(t.retries, 0);
  EXPECT_EQ(t.retry_delay, 1s);
  EXPECT_FALSE(t.timeout);
  EXPECT_FALSE(t.alert_after);
  EXPECT_FALSE(t.pool);
  EXPECT_TRUE(t.env.empty());
  EXPECT_EQ(t.cwd, "");
  EXPECT_EQ(t.days_mask, 0);
  EXPECT_EQ(r->tasks[1].line, 5);
}

TEST(ParseFlowTest, DurationsNeedAUnit) {
  auto r = ParseFlow(
      "[tasks.a]\ncmd = 'x'\ntimeout = '90s'\nretry_delay = '500ms'\n"
      "alert_after = '1h30m'\n",
      "flow.toml");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->tasks[0].timeout, std::optional<Duration>(90s));
  EXPECT_EQ(r->tasks[0].retry_delay, 500ms);
  EXPECT_EQ(r->tasks[0].alert_after, std::optional<Duration>(90min));
  // A bare number could mean seconds or minutes: refused, with the fix spelled out.
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = 'x'\ntimeout = 1\n"),
            "flow.toml:3: tasks.a.timeout: a duration needs a unit: write \"1s\" for seconds "
            "(or \"1m\", \"1h\", \"1ms\")");
  EXPECT_THAT(ErrorOf("[tasks.a]\ncmd = 'x'\nretry_delay = 0.5\n"),
              HasSubstr("tasks.a.retry_delay: a duration needs a unit: write \"0.5s\""));
  // So is one in a string (the same grammar as map's, but without its bare seconds).
  EXPECT_THAT(ErrorOf("[tasks.a]\ncmd = 'x'\ntimeout = '30'\n"),
              HasSubstr("tasks.a.timeout: bad duration '30': a duration needs a unit: write "
                        "\"30s\" for seconds"));
  // Units are case-insensitive, as map's (GNU parallel's) are.
  auto upper = ParseFlow("[tasks.a]\ncmd = 'x'\ntimeout = '1H30M'\n", "flow.toml");
  ASSERT_TRUE(upper) << upper.error().ToString();
  EXPECT_EQ(upper->tasks[0].timeout, std::optional<Duration>(90min));
}

TEST(ParseFlowTest, FlowNamesAreSafeForPathsAndCommands) {
  EXPECT_THAT(ErrorOf("name = '../../x y'\n[tasks.a]\ncmd = 'x'\n"),
              HasSubstr("flow.toml:1: name: a flow name may contain only letters, digits"));
  EXPECT_THAT(ErrorOf("name = '.hidden'\n[tasks.a]\ncmd = 'x'\n"),
              HasSubstr("must not start with '.'"));
  auto ok = ParseFlow("name = 'nightly-2.prod_eu'\n[tasks.a]\ncmd = 'x'\n", "flow.toml");
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(ok->name, "nightly-2.prod_eu");
  // The default, the file's stem, is made safe rather than refused.
  auto stem = ParseFlow("[tasks.a]\ncmd = 'x'\n", "/tmp/my nightly.toml");
  ASSERT_TRUE(stem);
  EXPECT_EQ(stem->name, "my_nightly");
}

TEST(ParseFlowTest, OutputsWithoutInputsIsWarnedAbout) {
  auto r = ParseFlow(
      "[tasks.a]\ncmd = 'x'\noutputs = ['out.csv']\n[tasks.b]\ncmd = 'y'\n"
      "outputs = ['b.csv']\ninputs = ['in.csv']\n",
      "flow.toml");
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_THAT(r->warnings[0], HasSubstr("flow.toml:1: tasks.a: 'outputs' without 'inputs'"));
}

TEST(ParseFlowErrorTest, NonAsciiOutsideStringsIsRefusedBeforeTomlSeesIt) {
  // toml++ 3.3.0 has undefined behaviour on these (bare keys); TOML allows only ASCII there.
  EXPECT_THAT(ErrorOf("[tasks.\xd0\xbf\xd1\x80\xd0\xb8]\ncmd = 'x'\n"),
              HasSubstr("flow.toml:1:8: a non-ASCII character outside a quoted string"));
  EXPECT_THAT(ErrorOf("[tasks.a]\ncmd = 'x'\na\xc2\xa7 = 1\n"),
              HasSubstr("flow.toml:3:2: a non-ASCII character"));
  // Inside strings and comments it is fine.
  auto ok = ParseFlow(
      "# caf\xc3\xa9\n[tasks.a]\ncmd = \"echo 'caf\xc3\xa9' \\\" \xe2\x82\xac\"\n"
      "env = { X = '''\n\xc3\xa9\n''' }\n",
      "flow.toml");
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(ok->tasks[0].cmd, "echo 'caf\xc3\xa9' \" \xe2\x82\xac");
}

TEST(ParseFlowErrorTest, BraceExpansionIsBounded) {
  std::string glob;
  for (int i = 0; i < 30; ++i) glob += "{a,b}";
  std::string err = ErrorOf("[tasks.a]\ncmd = 'x'\ninputs = ['i']\noutputs = ['" + glob + "']\n");
  EXPECT_THAT(err, HasSubstr("flow.toml:4: tasks.a.outputs: '"));
  EXPECT_THAT(err, HasSubstr("expands to more than 4096 patterns"));
}

TEST(ParseFlowTest, SqlTasksAndDatabases) {
  setenv("FORKLIFT_TEST_PGPASS", "s3cr3t", 1);
  auto r = ParseFlow(
      "[databases]\nmain = 'postgres://etl:${FORKLIFT_TEST_PGPASS}@db/market'\n"
      "[tasks.vacuum]\nsql = 'VACUUM ANALYZE prices'\ndb = 'main'\n"
      "[tasks.cleanup]\nsql_file = 'cleanup.sql'\ndb = 'sqlite:local.db'\n",
      "flow.toml");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->databases.at("main"), "postgres://etl:s3cr3t@db/market");
  EXPECT_EQ(r->DatabaseDsn(r->tasks[0].db), "postgres://etl:s3cr3t@db/market");
  EXPECT_EQ(r->tasks[1].sql_file, "cleanup.sql");
  EXPECT_EQ(r->DatabaseDsn(r->tasks[1].db), "sqlite:local.db");
  EXPECT_NE(CommandHash(r->tasks[0]), CommandHash(r->tasks[1]));
}

TEST(ParseFlowTest, DatabaseDefaultsWhenTheVariableIsUnsetOrEmpty) {
  const std::string flow =
      "[databases]\nmarket = '${FORKLIFT_TEST_DB:-sqlite:market.db}'\n"
      "[tasks.a]\nsql = 'SELECT 1'\ndb = 'market'\n";
  unsetenv("FORKLIFT_TEST_DB");
  auto unset = ParseFlow(flow, "flow.toml");
  ASSERT_TRUE(unset) << unset.error().ToString();
  EXPECT_EQ(unset->databases.at("market"), "sqlite:market.db");
  setenv("FORKLIFT_TEST_DB", "", 1);
  auto empty = ParseFlow(flow, "flow.toml");
  ASSERT_TRUE(empty) << empty.error().ToString();
  EXPECT_EQ(empty->databases.at("market"), "sqlite:market.db");
  setenv("FORKLIFT_TEST_DB", "postgres://etl@db/market", 1);
  auto set = ParseFlow(flow, "flow.toml");
  ASSERT_TRUE(set) << set.error().ToString();
  EXPECT_EQ(set->databases.at("market"), "postgres://etl@db/market");
  unsetenv("FORKLIFT_TEST_DB");
  // The default is checked like any URL.
  EXPECT_THAT(ErrorOf("[databases]\nm = '${FORKLIFT_TEST_DB:-market.db}'\n[tasks.a]\ncmd = 'x'\n"),
              HasSubstr("databases.m: expected a postgres://, postgresql:// or sqlite: URL"));
}

TEST(ParseFlowErrorTest, SqlTaskMistakes) {
  EXPECT_THAT(ErrorOf("[tasks.a]\ncmd = 'x'\nsql = 'SELECT 1'\ndb = 'sqlite:x'\n"),
              HasSubstr("tasks.a: give one of 'cmd', 'sql' and 'sql_file'"));
  EXPECT_THAT(ErrorOf("[tasks.a]\nsql = 'SELECT 1'\n"),
              HasSubstr("tasks.a: a SQL task needs 'db'"));
  EXPECT_THAT(ErrorOf("[tasks.a]\ncmd = 'x'\ndb = 'sqlite:x'\n"),
              HasSubstr("'db' is for SQL tasks"));
  EXPECT_THAT(ErrorOf("[databases]\nmain = 'sqlite:x'\n[tasks.a]\nsql = 'SELECT 1'\ndb = 'mian'\n"),
              HasSubstr("tasks.a.db: 'mian' is neither a [databases] name (did you mean 'main'?)"));
  // A password in a URL the flow refuses is never echoed.
  std::string err = ErrorOf("[tasks.a]\nsql = 'SELECT 1'\ndb = 'mysql://u:hunter2@h/d'\n");
  EXPECT_THAT(err, HasSubstr("mysql://***@h/d"));
  EXPECT_THAT(err, Not(HasSubstr("hunter2")));
  unsetenv("FORKLIFT_TEST_UNSET");
  EXPECT_THAT(ErrorOf("[databases]\nmain = 'postgres://u:${FORKLIFT_TEST_UNSET}@h/d'\n"
                      "[tasks.a]\ncmd = 'x'\n"),
              HasSubstr("flow.toml:2: databases.main: ${FORKLIFT_TEST_UNSET} is not set"));
}

TEST(ParseFlowTest, FanOutTasks) {
  auto r = ParseFlow(
      "[tasks.scrape]\ncmd = 'python3 scrape.py {}'\nforeach = 'symbols.txt'\n"
      "jobs = 8\nmax_failed = '5%'\n[tasks.gen]\ncmd = 'echo {}'\n"
      "foreach_cmd = 'seq 3'\nmax_failed = 2\n",
      "flow.toml");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r->tasks[0].is_fanout());
  EXPECT_EQ(r->tasks[0].jobs, 8);
  EXPECT_EQ(r->tasks[0].max_failed_percent, std::optional<double>(5.0));
  EXPECT_EQ(r->tasks[1].foreach_cmd, "seq 3");
  EXPECT_EQ(r->tasks[1].max_failed, 2);
  EXPECT_THAT(ErrorOf("[tasks.a]\ncmd = 'x'\nforeach = 'a'\nforeach_cmd = 'b'\n"),
              HasSubstr("give one of 'foreach' and 'foreach_cmd'"));
  EXPECT_THAT(ErrorOf("[tasks.a]\ncmd = 'x'\njobs = 2\n"),
              HasSubstr("'jobs' and 'max_failed' are for fan-out tasks"));
  EXPECT_THAT(ErrorOf("[tasks.a]\ncmd = 'x'\nforeach = 'a'\nmax_failed = '5'\n"),
              HasSubstr("'5' is not a count or a percentage like \"5%\""));
  EXPECT_THAT(ErrorOf("[tasks.a]\ncmd = 'x'\nforeach = 'a'\nmax_failed = -1\n"),
              HasSubstr("must be >= 0"));
}

TEST(ParseFlowErrorTest, UnknownTaskKeySuggestsTheClosest) {
  EXPECT_EQ(ErrorOf("[tasks.scrape_cboe]\ncmd = 'x'\ncritcal = false\n"),
            "flow.toml:3: tasks.scrape_cboe: unknown key 'critcal' (did you mean 'critical'?)");
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = 'x'\nfrobnicate = 1\n"),
            "flow.toml:3: tasks.a: unknown key 'frobnicate'");
}

TEST(ParseFlowErrorTest, UnknownTopLevelKey) {
  EXPECT_EQ(ErrorOf("nmae = 'n'\n[tasks.a]\ncmd = 'x'\n"),
            "flow.toml:1: unknown top-level key 'nmae' (did you mean 'name'?)");
  EXPECT_EQ(ErrorOf("[task.a]\ncmd = 'x'\n"),
            "flow.toml:1: unknown top-level key 'task' (did you mean 'tasks'?)");
}

TEST(ParseFlowErrorTest, TomlSyntaxErrorsKeepPosition) {
  std::string message = ErrorOf("name = 'n'\n[tasks.a\ncmd = 'x'\n");
  EXPECT_THAT(message, StartsWith("flow.toml:2:9: TOML syntax error: "));
  EXPECT_THAT(message, HasSubstr("expected ']'"));
  EXPECT_THAT(ErrorOf("[tasks.a]\ncmd = 'x'\ncmd = 'y'\n"), StartsWith("flow.toml:3:"));
}

TEST(ParseFlowErrorTest, DuplicateTaskNamesFileAndLines) {
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = 'x'\n\n[tasks.a]   # again\ncmd = 'y'\n"),
            "flow.toml:4: tasks.a: duplicate task 'a' (first defined on line 1)");
  EXPECT_EQ(ErrorOf("[tasks]\na = { cmd = 'x' }\n[tasks.a]\ncmd = 'y'\n"),
            "flow.toml:3: tasks.a: duplicate task 'a'");
}

TEST(ParseFlowErrorTest, WrongValueTypes) {
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = 'x'\nretries = 'two'\n"),
            "flow.toml:3: tasks.a.retries: expected an integer >= 0, got a string");
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = 'x'\ncritical = 'yes'\n"),
            "flow.toml:3: tasks.a.critical: expected true or false, got a string");
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = ['x']\n"),
            "flow.toml:2: tasks.a.cmd: expected a string, got an array");
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = 'x'\nafter = 'b'\n[tasks.b]\ncmd = 'y'\n"),
            "flow.toml:3: tasks.a.after: expected an array of strings, got a string");
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = 'x'\nafter = [1]\n"),
            "flow.toml:3: tasks.a.after: expected an array of strings, got an integer in it");
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = 'x'\nenv = { TZ = 'UTC', N = 1 }\n"),
            "flow.toml:3: tasks.a.env.N: expected a string, got an integer");
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = 'x'\ntimeout = true\n"),
            "flow.toml:3: tasks.a.timeout: expected a duration such as \"30s\" or \"15m\", "
            "got a boolean");
  EXPECT_EQ(ErrorOf("name = 3\n[tasks.a]\ncmd = 'x'\n"),
            "flow.toml:1: name: expected a string, got an integer");
  EXPECT_EQ(ErrorOf("tasks = 3\n"),
            "flow.toml:1: tasks: expected a table of tasks, got an integer");
  EXPECT_EQ(ErrorOf("[tasks]\na = 'echo'\n"),
            "flow.toml:2: tasks.a: expected a table, got a string");
}

TEST(ParseFlowErrorTest, BadDurations) {
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = 'x'\ntimeout = '15 minutes'\n"),
            "flow.toml:3: tasks.a.timeout: bad duration '15 minutes': unknown unit "
            "(use ns, us, ms, s, m, h or d)");
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = 'x'\nretry_delay = '-1s'\n"),
            "flow.toml:3: tasks.a.retry_delay: bad duration '-1s': must be a finite number >= 0");
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = 'x'\ntimeout = '0s'\n"),
            "flow.toml:3: tasks.a.timeout: must be greater than 0");
}

TEST(ParseFlowErrorTest, NegativeRetries) {
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = 'x'\nretries = -1\n"),
            "flow.toml:3: tasks.a.retries: must be an integer >= 0, got -1");
}

TEST(ParseFlowErrorTest, UnknownAfterName) {
  EXPECT_EQ(ErrorOf("[tasks.scrape_cboe]\ncmd = 'x'\n[tasks.b]\ncmd = 'y'\n"
                    "after = [\n  'scrape_cboe',\n  'scrape_cbo',\n]\n"),
            "flow.toml:7: tasks.b.after: unknown task 'scrape_cbo' (did you mean 'scrape_cboe'?)");
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = 'x'\n[tasks.b]\ncmd = 'y'\nafter = ['a', 'a']\n"),
            "flow.toml:5: tasks.b.after: 'a' is listed twice");
}

TEST(ParseFlowErrorTest, UndeclaredPool) {
  EXPECT_EQ(
      ErrorOf("[pools]\ndb = 4\n[tasks.a]\ncmd = 'x'\npool = 'dbb'\n"),
      "flow.toml:5: tasks.a.pool: pool 'dbb' is not declared in [pools] (did you mean 'db'?)");
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = 'x'\npool = 'db'\n"),
            "flow.toml:3: tasks.a.pool: pool 'db' is not declared in [pools]");
  EXPECT_EQ(ErrorOf("[pools]\ndb = 0\n[tasks.a]\ncmd = 'x'\n"),
            "flow.toml:2: pools.db: limit must be >= 1, got 0");
  EXPECT_EQ(ErrorOf("[pools]\ndb = '4'\n[tasks.a]\ncmd = 'x'\n"),
            "flow.toml:2: pools.db: expected an integer >= 1, got a string");
}

TEST(ParseFlowErrorTest, UnknownDays) {
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = 'x'\ndays = ['mon', 'tues']\n"),
            "flow.toml:3: tasks.a.days: unknown day 'tues' (use mon, tue, wed, thu, fri, sat, "
            "sun) (did you mean 'tue'?)");
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = 'x'\ndays = ['Someday']\n"),
            "flow.toml:3: tasks.a.days: unknown day 'Someday' (use mon, tue, wed, thu, fri, sat, "
            "sun)");
}

TEST(ParseFlowErrorTest, MissingCommandBadNameNoTasks) {
  EXPECT_EQ(ErrorOf("[tasks.a]\nretries = 1\n"),
            "flow.toml:1: tasks.a: missing required key 'cmd' (or 'sql' / 'sql_file' with 'db')");
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = ''\n"), "flow.toml:2: tasks.a.cmd: must not be empty");
  EXPECT_EQ(ErrorOf("[tasks.\"a/../b\"]\ncmd = 'x'\n"),
            "flow.toml:1: tasks.a/../b: a task name may contain only letters, digits, '_' and '-'");
  EXPECT_EQ(ErrorOf("name = 'n'\n"), "flow.toml: no tasks (add a [tasks.NAME] table with a cmd)");
}

TEST(ParseFlowErrorTest, CyclesNameTheTasksInOrder) {
  // b runs after a, c after b, a after c: a -> b -> c -> a, at a's line.
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = 'x'\nafter = ['c']\n"
                    "[tasks.b]\ncmd = 'x'\nafter = ['a']\n"
                    "[tasks.c]\ncmd = 'x'\nafter = ['b']\n"),
            "flow.toml:1: cycle: a -> b -> c -> a");
  EXPECT_EQ(ErrorOf("[tasks.a]\ncmd = 'x'\nafter = ['a']\n"), "flow.toml:1: cycle: a -> a");
  // A task downstream of a cycle is not part of it; the cycle starts at its first task
  // in file order.
  EXPECT_EQ(ErrorOf("[tasks.d]\ncmd = 'x'\nafter = ['c']\n"
                    "[tasks.ok]\ncmd = 'x'\n"
                    "[tasks.c]\ncmd = 'x'\nafter = ['b', 'ok']\n"
                    "[tasks.b]\ncmd = 'x'\nafter = ['c']\n"),
            "flow.toml:6: cycle: c -> b -> c");
}

TEST(ParseFlowErrorTest, ReportsTheEarliestProblem) {
  // toml++ hands keys back alphabetically; the user still sees the first line's problem.
  EXPECT_EQ(ErrorOf("[tasks.b]\ncmd = 'x'\nzzz = 1\n[tasks.a]\ncmd = 'x'\nretries = -5\n"),
            "flow.toml:3: tasks.b: unknown key 'zzz'");
}

TEST(LoadFlowFileTest, MissingFileIsNotFound) {
  auto r = LoadFlowFile("/nonexistent/flow.toml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().message, "/nonexistent/flow.toml: cannot read: No such file or directory");
}

TEST(CheckGraphTest, CodeBuiltSpecs) {
  FlowSpec spec;
  spec.path = "gen";
  spec.tasks.push_back({.name = "a", .cmd = "x", .line = 1});
  spec.tasks.push_back({.name = "b", .cmd = "x", .after = {"a"}, .line = 2});
  EXPECT_TRUE(CheckGraph(spec));

  FlowSpec unknown = spec;
  unknown.tasks[1].after = {"nope"};
  EXPECT_EQ(CheckGraph(unknown).error().message, "gen:2: tasks.b.after: unknown task 'nope'");

  FlowSpec duplicate = spec;
  duplicate.tasks[1].name = "a";
  EXPECT_EQ(CheckGraph(duplicate).error().message,
            "gen:2: tasks.a: duplicate task 'a' (first defined on line 1)");

  FlowSpec pool = spec;
  pool.tasks[0].pool = "db";
  EXPECT_EQ(CheckGraph(pool).error().message,
            "gen:1: tasks.a.pool: pool 'db' is not declared in [pools]");
}

TEST(ClosestNameTest, WithinTwoEdits) {
  std::vector<std::string> keys = {"cmd", "critical", "cwd", "retries", "retry_delay"};
  EXPECT_EQ(ClosestName("critcal", keys), "critical");
  EXPECT_EQ(ClosestName("retires", keys), "retries");
  EXPECT_EQ(ClosestName("cme", keys), "cmd");  // 1 edit; cwd is 2
  EXPECT_EQ(ClosestName("cxd", keys), "cmd");  // cmd and cwd both 1 edit: the first listed
  EXPECT_EQ(ClosestName("timeout", keys), std::nullopt);
}

}  // namespace
}  // namespace forklift::flow
