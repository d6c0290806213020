// The flow file (`forklift run flow.toml`): a TOML description of a DAG of shell tasks.
// This file turns its text into a validated FlowSpec, or into one error that names the
// file, the line and the key, before anything runs.
//
//   name = "nightly"              # default: the file's stem
//   log_dir = "logs"              # default .forklift/logs
//   [pools]
//   db = 4                        # at most 4 running tasks with pool = "db"
//   on_failure = "notify.sh"      # hooks: on_success, on_failure, on_finish, on_alert
//   alert_after = "90m"           # on_alert fires once when the run passes it
//   [tasks.scrape]
//   cmd = "python3 scrape.py"     # the only required key
//   after = ["discovery"]         # plus critical, timeout, retries, retry_delay,
//                                 # alert_after, pool, env, cwd, days, outputs, inputs,
//                                 # run_if, group, on_failure
//
// Durations are strings with a unit ("15m", "1h30m", "200ms"); a bare number is refused
// (is `timeout = 1` a second or a minute?). The flow's `name` (default: the file's stem,
// with characters other than letters, digits, '_', '-' and '.' made '_') names its runs,
// lock and log directory, so an explicit one may hold only those characters.
#ifndef FORKLIFT_FLOW_FLOW_FILE_H_
#define FORKLIFT_FLOW_FLOW_FILE_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/clock.h"
#include "forklift/result.h"

namespace forklift::flow {

// When a task may start, given how the tasks it runs `after` ended.
enum class RunIf {
  kDefault,  // they succeeded or failed non-critically; blocked by a critical failure
  kAllDone,  // they ended, whatever their state (cleanup, notify): never blocked
  kAlways,   // as kAllDone, and also when the run is interrupted (a first signal)
};

// One [tasks.NAME] table. Defaults are those a task gets when the key is absent.
struct TaskSpec {
  std::string name;  // the NAME of [tasks.NAME]
  std::string cmd;   // run by /bin/sh -c; or sql / sql_file
  // A SQL task: statements run natively on `db` instead of a command (one of cmd, sql and
  // sql_file is required). sql_file is relative to the flow file's directory.
  std::string sql;
  std::string sql_file;
  // The database of a SQL task: a [databases] name, postgres://..., postgresql://... or
  // sqlite:PATH; resolved to the DSN by FlowSpec::DatabaseDsn.
  std::string db;
  // A fan-out task: `cmd` is a `forklift map` command template run once per item — the
  // lines of the file `foreach` (relative to the task's directory) or of `foreach_cmd`'s
  // stdout — `jobs` at a time (0: --jobs), with `timeout` and `retries` per item and one
  // journal row per item, so a resume reruns only the items that failed or never ran.
  // The task fails when more items failed for good than `max_failed` allows.
  std::string foreach;
  std::string foreach_cmd;
  int jobs = 0;
  int64_t max_failed = 0;                    // items allowed to fail; default 0
  std::optional<double> max_failed_percent;  // "5%": instead of max_failed
  bool is_fanout() const { return !foreach.empty() || !foreach_cmd.empty(); }
  std::vector<std::string> after;                  // default: none; no duplicates
  bool critical = true;                            // a failure fails the run, blocks dependents
  std::optional<Duration> timeout;                 // default: none
  int retries = 0;                                 // extra attempts after the first
  Duration retry_delay = std::chrono::seconds(1);  // backoff base (full jitter)
  std::optional<Duration> alert_after;             // default: never flagged slow
  std::optional<std::string> pool;                 // default: none; must be declared in [pools]
  std::map<std::string, std::string> env;          // added to the inherited environment
  std::string cwd;                                 // default "": the flow's working directory
  // Bit w set (w as in struct tm's tm_wday: 0 = Sunday) = the task runs that weekday.
  // 0 (the default, `days` absent or empty) = every day.
  uint8_t days_mask = 0;
  std::vector<std::string> outputs;  // globs; with inputs, for incremental runs
  std::vector<std::string> inputs;   // globs
  RunIf run_if = RunIf::kDefault;    // run_if = "all_done" | "always"
  std::string group;                 // its phase in the breakdown; "" = none
  std::string on_failure;            // a hook run when the task fails; "" = none
  int line = 0;                      // 1-based line of the task's table

  // True when the task is scheduled on weekday `tm_wday` (0 = Sunday .. 6 = Saturday).
  bool RunsOn(int tm_wday) const {
    return days_mask == 0 || (tm_wday >= 0 && tm_wday < 7 && (days_mask >> tm_wday) & 1);
  }
};

struct FlowSpec {
  std::string path;  // as given to LoadFlowFile / ParseFlow
  std::string name;  // default: the file's stem ("nightly")
  std::string log_dir = ".forklift/logs";
  std::map<std::string, int> pools;  // pool name -> limit >= 1
  // [databases] NAME = "postgres://..." or "sqlite:PATH", with ${VAR} taken from the
  // environment when the file is read. Holds passwords: never print a value unmasked.
  std::map<std::string, std::string> databases;
  // Hooks: shell commands run in the flow's directory with FORKLIFT_RUN_ID,
  // FORKLIFT_STATUS (and FORKLIFT_TASK for task hooks) set and the run's summary as JSON
  // on stdin, each within hook_timeout. "" = none.
  std::string on_success, on_failure, on_finish, on_alert;
  Duration hook_timeout = std::chrono::minutes(5);
  std::optional<Duration> alert_after;  // the run's own alert; default: none
  std::vector<TaskSpec> tasks;          // in file order
  // The DSN of a task's `db`: its [databases] entry, else the value itself.
  const std::string& DatabaseDsn(const std::string& db) const {
    auto it = databases.find(db);
    return it == databases.end() ? db : it->second;
  }
  // Things that are allowed but probably not meant ("PATH:LINE: KEY: why"), for the CLI
  // to print before running. Default: none.
  std::vector<std::string> warnings;
};

// Reads and parses the flow file at `path`.
// Success: the validated spec (see ParseFlow). Failure: NotFound "PATH: cannot read: WHY"
// when the file cannot be read, else ParseFlow's errors. Thread-safe.
Result<FlowSpec> LoadFlowFile(const std::string& path);

// Parses and validates flow-file text. `path_for_errors` starts every message and becomes
// FlowSpec::path.
// Success: a spec whose tasks are in file order, whose `after` names and pools all exist,
// and whose graph is acyclic.
// Failure: one InvalidArgument error "PATH:LINE: KEY: what is wrong", e.g.
//   flow.toml:12: tasks.scrape_cboe: unknown key 'critcal' (did you mean 'critical'?)
//   flow.toml:4: tasks.b.after: unknown task 'aa' (did you mean 'a'?)
//   flow.toml:7: cycle: a -> b -> a            (a -> b: b runs after a)
// for TOML syntax errors (toml++'s message and column), duplicate tasks, unknown keys,
// wrong value types, bad durations, negative retries, unknown `after` names, undeclared
// pools, unknown day names and cycles.
// Thread-safe.
Result<FlowSpec> ParseFlow(std::string_view text, std::string_view path_for_errors);

// Checks the graph of a spec built in code (ParseFlow has already done so): task names
// unique and non-empty, every `after` name a task, no task listed twice in one `after`,
// every pool declared, no cycle. Errors name spec.path and the task's line as ParseFlow's
// do. Success: OK. Runs in O(tasks + edges). Thread-safe.
Status CheckGraph(const FlowSpec& spec);

// The candidate closest to `word` by edit distance, if within 2 edits (ties: the first
// in `candidates`); for "did you mean" hints. Thread-safe.
std::optional<std::string> ClosestName(std::string_view word,
                                       std::span<const std::string> candidates);

}  // namespace forklift::flow

#endif  // FORKLIFT_FLOW_FLOW_FILE_H_
