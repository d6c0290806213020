// The flow run loop: the executor's workers run attempts as subprocesses and start what
// an ended task's slot lets start; the run's own thread commits each concluded task to
// the journal (one transaction per wake-up, as run_batch does) and only then lets its
// dependents start; retries wait in a DelayQueue on the run's Clock; every attempt writes
// a timestamped log. At the end the run's summary holds the whole report, so `forklift
// report` needs nothing else; `--resume` reads the per-task records, which a SIGKILL
// cannot lose once committed.
#include "flow/flow_runner.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "core/delay_queue.h"
#include "core/format_duration.h"
#include "core/progress_renderer.h"
#include "flow/fanout.h"
#include "flow/flow_lock.h"
#include "flow/flow_plan.h"
#include "flow/report_json.h"
#include "flow/sql_task.h"
#include "flow/task_log.h"
#include "flow/task_state.h"
#include "forklift/executor.h"
#include "forklift/retry.h"
#include "journal/journal.h"
#include "process/orphan_watchdog.h"
#include "process/process_registry.h"
#include "process/subprocess.h"
#include "process/survivors.h"
#include "sinks/pg_dsn.h"

namespace forklift::flow {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

// What one task did in this invocation.
struct TaskRun {
  TaskState state = TaskState::kPending;
  int attempts = 0;
  std::vector<AttemptReport> reports;
  double first_start_s = -1;  // offsets from the run's start
  double last_end_s = 0;
  bool started = false;
  std::string held_log;      // log lines of silent successful attempts (no file; main.log only)
  uintmax_t log_offset = 0;  // its log file's size when this invocation first started it
  std::vector<std::string> sql_tags;   // a SQL task's command tags, per statement
  std::optional<FanoutCounts> fanout;  // a fan-out task's items
};

struct AttemptEnd {
  TaskId id;
  Result<process::Completion> completion;
  double start_s;
  double end_s;
  std::string stderr_tail;
};

// How many lines of a failed attempt's stderr its FAILED line carries.
constexpr size_t kFailedLineTail = 3;

class FlowRun {
 public:
  FlowRun(const FlowSpec& spec, const FlowRunOptions& options)
      : spec_(spec),
        options_(options),
        clock_(options.clock ? *options.clock : SystemClock()),
        forklift_exe_(ForkliftExe(options)),
        journal_abs_(AbsoluteJournal(options)) {}
  Result<FlowRunResult> Run();

 private:
  Status Prepare();
  Status EndKilledRuns();
  Status ReadResumedRun();
  std::optional<TaskState> SkipReason(TaskId id);
  void Launch(TaskId id);
  void Attempt(TaskId id);
  void AttemptSql(TaskId id, int attempt, TaskLog& log);
  std::vector<std::string> FanoutArgv(const TaskSpec& t);
  // The forklift program that fan-outs run, and that tasks and hooks see as $FORKLIFT.
  static std::string ForkliftExe(const FlowRunOptions& options);
  // The journal's absolute path: fan-outs and tasks run in other directories.
  static std::string AbsoluteJournal(const FlowRunOptions& options);
  // What every task and hook sees besides its own variables: $FORKLIFT (this program, as
  // make's $(MAKE): a task runs `"$FORKLIFT" load ...` without a PATH lookup) and
  // $FORKLIFT_JOURNAL (the flow's, absolute: what such a command records lands beside
  // the run's own records).
  std::vector<std::pair<std::string, std::string>> SharedEnv() const;
  void JudgeFanout(TaskId id, process::Completion& c, TaskLog& log);
  void HandleEnd(AttemptEnd end);
  void Conclude(TaskId id, TaskState state);
  void Commit(std::unique_lock<std::mutex>& lock);
  void StartReady();
  void RunHook(std::string hook, const std::string& cmd, std::string task, std::string_view status,
               std::string stdin_json);
  void HookLater(std::string hook, const std::string& cmd, std::string task,
                 std::string_view status, std::string stdin_json);
  void AlertLater(std::optional<TaskId> id, Duration after);
  bool Stopping() const { return options_.graceful.stop_requested() || !journal_status_; }
  bool Idle() const { return scheduler_->running() == 0 && to_commit_.empty(); }
  void Say(std::string_view verb, const std::string& task, std::string_view detail = "");
  const Plan& plan() const { return *plan_storage_; }
  double Offset() const { return std::chrono::duration<double>(clock_.Now() - t0_).count(); }
  journal::ItemRecord RecordOf(TaskId id) const;
  ReportData BuildReport(const std::string& status);
  void MergeLogs();

  const FlowSpec& spec_;
  const FlowRunOptions& options_;
  Clock& clock_;
  const std::string forklift_exe_;  // once: each task's environment names it
  const std::string journal_abs_;
  std::optional<Plan> plan_storage_;
  std::optional<Scheduler> scheduler_;
  std::string run_id_;
  int64_t invocation_ = 1;
  fs::path base_dir_;  // tasks run here (the flow file's directory), unless cwd says more
  fs::path log_dir_;
  std::unique_ptr<FlowLock> lock_;
  std::unique_ptr<journal::Journal> journal_;
  process::ProcessRegistry registry_;
  std::unique_ptr<process::OrphanWatchdog> watchdog_;
  std::set<std::string> resume_done_;          // tasks recorded done in the resumed run
  std::map<std::string, std::string> hashes_;  // last recorded command hash per task
  std::vector<TaskRun> tasks_;
  std::vector<TaskId> start_order_;
  TimePoint t0_;
  double started_unix_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};

  std::unique_ptr<Executor> executor_;
  std::unique_ptr<core::DelayQueue> delays_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<TaskId> to_commit_;       // concluded tasks whose records are not yet durable
  Status journal_status_ = OkStatus();  // the first failed commit, if any
  bool stopped_ = false;                // Scheduler::Stop has run
  bool finished_ = false;               // the loop is over: alerts still pending fire no more
  bool run_alerted_ = false;
  std::vector<bool> alerted_;              // per task: its alert_after fired
  std::vector<HookReport> hooks_;          // hooks that ended, in order
  std::vector<std::thread> hook_threads_;  // task hooks and alerts, joined at the end
  std::atomic<uint64_t> settled_count_{0}, failed_count_{0};  // for --progress
  int wday_ = 0;  // weekday the run started (0 = Sunday), for `days`
};

// Runs that a killed invocation of this flow left marked running: we hold the flow's
// lock, so no process runs them. End what they left alive, then mark them killed.
Status FlowRun::EndKilledRuns() {
  FORKLIFT_ASSIGN_OR_RETURN(auto runs, journal_->ListRunStates("flow", spec_.name));
  for (const journal::RunState& r : runs) {
    if (r.status != ToString(RunStatus::kRunning)) continue;
    std::vector<pid_t> left = process::FindProcessesWithEnv("FORKLIFT_RUN_ID", r.run_id);
    int ended = process::EndProcesses(left, process::TermSeq::Default());
    FORKLIFT_RETURN_IF_ERROR(journal_->FinishRun(r.run_id, RunStatus::kKilled, ""));
    fmt::print(options_.out,
               "forklift run: run {} was killed while running; marked killed{} "
               "(resume it with --resume {})\n",
               r.run_id,
               ended ? fmt::format(", ended {} of its processes still running", ended) : "",
               r.run_id);
  }
  return OkStatus();
}

// The resumed run's tasks recorded done (by any earlier invocation, killed or not).
Status FlowRun::ReadResumedRun() {
  std::string wanted = *options_.resume_run_id;
  if (wanted == "last") {
    FORKLIFT_ASSIGN_OR_RETURN(auto runs, journal_->ListRunStates("flow", spec_.name));
    auto it = std::find_if(runs.begin(), runs.end(), [&](const journal::RunState& r) {
      return r.status != ToString(RunStatus::kSucceeded);
    });
    if (it == runs.end()) {
      return NotFoundError(fmt::format("--resume last: flow '{}' has no unfinished run in {}",
                                       spec_.name, options_.journal_path));
    }
    wanted = it->run_id;
  }
  FORKLIFT_ASSIGN_OR_RETURN(auto old, journal_->GetRun(wanted));
  if (!old || old->kind != "flow" || old->name != spec_.name) {
    return NotFoundError(fmt::format("--resume: no run '{}' of flow '{}' in {}", wanted, spec_.name,
                                     options_.journal_path));
  }
  run_id_ = wanted;
  invocation_ = old->invocations + 1;
  FORKLIFT_ASSIGN_OR_RETURN(auto items, journal_->ListItems(run_id_));
  for (const journal::ItemRow& item : items) {
    if (item.state == journal::ItemState::kSucceeded) resume_done_.insert(item.key);
  }
  return OkStatus();
}

Status FlowRun::Prepare() {
  FORKLIFT_ASSIGN_OR_RETURN(Plan full, Plan::Build(spec_));
  if (options_.only) {
    FORKLIFT_ASSIGN_OR_RETURN(Plan selected, full.Select(*options_.only));
    plan_storage_.emplace(std::move(selected));
  } else {
    plan_storage_.emplace(std::move(full));
  }
  if (options_.dry_run) return OkStatus();
  if (options_.jobs < 1) return InvalidArgumentError("--jobs must be >= 1");
  std::error_code ec;
  base_dir_ = fs::absolute(fs::path(spec_.path), ec).parent_path();
  if (ec)
    return InvalidArgumentError(spec_.path + ": cannot resolve its directory: " + ec.message());
  auto j = journal::Journal::Open(options_.journal_path);
  if (!j) return InvalidArgumentError("--journal: " + j.error().message);
  journal_ = std::move(*j);
  // The lock first: what follows reads and repairs state no other invocation may touch.
  auto lock = FlowLock::Acquire(FlowLock::PathFor(options_.journal_path, spec_.name), spec_.name,
                                options_.wait_for_lock);
  if (!lock) return tl::unexpected(lock.error());
  lock_ = std::move(*lock);
  FORKLIFT_RETURN_IF_ERROR(EndKilledRuns());

  // Command hashes recorded by this flow's latest finished run, for up-to-date checks.
  auto latest = journal_->LatestFinishedRun("flow", spec_.name);
  if (!latest) return tl::unexpected(latest.error());
  if (*latest) {
    json s = json::parse((*latest)->summary_json, nullptr, false);
    for (const json& t : s.is_discarded() ? json::array() : s.value("tasks", json::array())) {
      auto state = ParseTaskState(t.value("state", ""));
      if (state == TaskState::kSucceeded || state == TaskState::kUpToDate) {
        hashes_.emplace(t.value("name", ""), t.value("cmd_hash", ""));
      }
    }
  }
  if (options_.resume_run_id) {
    FORKLIFT_RETURN_IF_ERROR(ReadResumedRun());
  } else {
    run_id_ = fmt::format("{}-{}-{}", spec_.name, LocalStamp("%Y%m%d-%H%M%S"), getpid());
  }
  log_dir_ =
      fs::path(spec_.log_dir).is_absolute() ? fs::path(spec_.log_dir) : base_dir_ / spec_.log_dir;
  log_dir_ /= run_id_;
  fs::create_directories(log_dir_, ec);
  if (ec) {
    return InvalidArgumentError(fmt::format("{}: log_dir: cannot create '{}': {}", spec_.path,
                                            log_dir_.string(), ec.message()));
  }
  FORKLIFT_RETURN_IF_ERROR(journal_->BeginRun(run_id_, "flow", spec_.name));
  lock_->Describe(run_id_);
  if (options_.watchdog) {
    // Forked while the lock is held, and keeping it: if forklift dies, the next invocation
    // waits until the watchdog has ended this one's tasks.
    auto dog = process::OrphanWatchdog::Start({.keep_fds = {lock_->fd()}});
    if (!dog) return tl::unexpected(dog.error());
    watchdog_ = std::move(*dog);
    registry_.Watch(watchdog_.get());
  }
  wday_ = options_.today_wday;
  if (wday_ < 0) {  // the run's day is the day it started, for every task
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    wday_ = tm.tm_wday;
  }
  return OkStatus();
}

// One line per event, written at once whatever stdout is (a pipe to cron's mail, a file
// someone tails): the cost is one write per line.
void FlowRun::Say(std::string_view verb, const std::string& task, std::string_view detail) {
  fmt::print(options_.out, "{} {:<8} {}{}{}\n", LocalStamp("%H:%M:%S"), verb, task,
             detail.empty() ? "" : "  ", detail);
  std::fflush(options_.out);
}

// Why a ready task need not run: not scheduled today, done in the run being resumed, or
// its outputs are up to date.
std::optional<TaskState> FlowRun::SkipReason(TaskId id) {
  const TaskSpec& t = plan().task(id);
  if (!t.RunsOn(wday_)) return TaskState::kNotScheduled;
  if (resume_done_.count(t.name)) return TaskState::kSkipped;
  if (!options_.force && !t.outputs.empty()) {
    auto it = hashes_.find(t.name);
    fs::path dir = t.cwd.empty() ? base_dir_ : base_dir_ / t.cwd;
    if (it != hashes_.end() && IsUpToDate(t, it->second, dir)) return TaskState::kUpToDate;
  }
  return std::nullopt;
}

// Hands the task to a worker; a refusal (only possible once the executor shuts down) is
// recorded as the attempt's failure. Called with mu_ held.
void FlowRun::Launch(TaskId id) {
  Status s = executor_->Submit([this, id] { Attempt(id); });
  if (!s) HandleEnd({id, tl::unexpected(s.error()), Offset(), Offset(), ""});
}

void FlowRun::Attempt(TaskId id) {
  const TaskSpec& t = plan().task(id);
  int attempt;
  {
    std::lock_guard lock(mu_);
    attempt = ++tasks_[id].attempts;
  }
  TaskLog log(log_dir_ / (t.name + ".log"));
  if (t.cmd.empty()) {  // a SQL task
    AttemptSql(id, attempt, log);
    return;
  }
  process::SpawnOptions spawn;
  if (t.is_fanout()) {
    spawn.argv = FanoutArgv(t);
    log.Note(fmt::format("items of {}: {}",
                         t.foreach.empty() ? "`" + t.foreach_cmd + "`" : t.foreach, t.cmd));
  } else {
    log.Note(fmt::format("attempt {} of {}: {}", attempt, t.retries + 1, t.cmd));
    spawn.argv = {"/bin/sh", "-c", t.cmd};
  }
  spawn.cwd = (t.cwd.empty() ? base_dir_ : base_dir_ / t.cwd).string();
  // Tasks can tell which run and attempt they are (for markers, idempotency keys, logs);
  // FORKLIFT_RUN_ID is also how a later invocation finds what a killed one left running.
  spawn.env = {{"FORKLIFT_RUN_ID", run_id_},
               {"FORKLIFT_TASK", t.name},
               {"FORKLIFT_ATTEMPT", std::to_string(attempt)}};
  for (auto& kv : SharedEnv()) spawn.env.push_back(std::move(kv));
  for (const auto& [k, v] : t.env) spawn.env.emplace_back(k, v);
  spawn.stdout_mode = spawn.stderr_mode = process::OutputMode::kCallback;
  spawn.on_output = [&log](process::Stream s, std::string_view b) { log.Chunk(s, b); };
  spawn.registry = &registry_;
  if (t.timeout && !t.is_fanout()) spawn.timeout = *t.timeout;  // a fan-out's is per item
  double start = Offset();
  auto done = options_.run_task ? options_.run_task(spawn, options_.force_stop)
                                : process::Run(spawn, options_.force_stop);
  double end = Offset();
  if (t.is_fanout() && done) JudgeFanout(id, *done, log);
  log.EndOutput();
  std::string stderr_tail = log.StderrTail(kFailedLineTail);
  if (!done) {
    log.Note("could not run: " + done.error().ToString());
  } else {
    AttemptReport a{start, end - start, done->exit_code, done->signal,
                    done->timed_out   ? "timed_out"
                    : done->cancelled ? "cancelled"
                                      : ""};
    log.Note(DescribeAttempt(a));
  }
  std::string held = log.Close(/*keep=*/!done || !done->ok());
  std::lock_guard lock(mu_);
  tasks_[id].held_log += held;
  HandleEnd({id, std::move(done), start, end, std::move(stderr_tail)});
}

// A SQL task's attempt (sql_task.h): no process; its outcome reads as a command's would
// (exit 0 or 1, timed out, cancelled), its command tags are its output, its error its
// stderr.
// A fan-out task runs as `forklift map` (its templates, -j, per-item timeout and retries,
// one journal row per item under run id RUN.TASK, the joblog beside the task's log). A
// resume passes --resume-failed, so only the items that failed or never ran run again.
std::string FlowRun::ForkliftExe(const FlowRunOptions& options) {
  std::string exe = options.forklift_exe;
  std::error_code ec;
  if (exe.empty()) exe = fs::read_symlink("/proc/self/exe", ec).string();
  if (exe.empty()) exe = "forklift";  // no /proc: from PATH
  return exe;
}

std::string FlowRun::AbsoluteJournal(const FlowRunOptions& options) {
  std::error_code ec;
  fs::path abs = fs::absolute(options.journal_path, ec);
  return ec ? options.journal_path : abs.string();
}

std::vector<std::pair<std::string, std::string>> FlowRun::SharedEnv() const {
  return {{"FORKLIFT", forklift_exe_}, {"FORKLIFT_JOURNAL", journal_abs_}};
}

std::vector<std::string> FlowRun::FanoutArgv(const TaskSpec& t) {
  return flow::FanoutArgv(t, {.forklift_exe = forklift_exe_,
                              .journal = journal_abs_,
                              .run_id = run_id_ + "." + t.name,
                              .joblog = (log_dir_ / (t.name + ".joblog")).string(),
                              .flow_jobs = options_.jobs,
                              .resume = invocation_ > 1});
}

// After the map: the items' outcomes from the journal and the joblog; the task succeeds
// when map ran and no more items failed than max_failed allows.
void FlowRun::JudgeFanout(TaskId id, process::Completion& c, TaskLog& log) {
  const TaskSpec& t = plan().task(id);
  auto j = journal::Journal::Open(options_.journal_path);  // this thread's own connection
  uint64_t ok = 0, failed = 0;
  if (j) {
    std::string run = run_id_ + "." + t.name;
    ok = (*j)->CountItems(run, true).value_or(0);
    failed = (*j)->CountItems(run, false).value_or(0);
  }
  FanoutCounts counts{ok, failed, SlowestJobs(log_dir_ / (t.name + ".joblog"), 3)};
  uint64_t allowed = t.max_failed_percent
                         ? static_cast<uint64_t>((ok + failed) * *t.max_failed_percent / 100)
                         : static_cast<uint64_t>(t.max_failed);
  bool map_ran =
      c.signal == 0 && !c.timed_out && !c.cancelled && c.exit_code >= 0 && c.exit_code <= 101;
  log.Note(fmt::format("items: {} succeeded, {} failed (max_failed {}){}", ok, failed, allowed,
                       map_ran ? "" : "; forklift map did not finish"));
  if (map_ran) {
    c.exit_code = failed <= allowed ? 0 : 1;
    if (c.exit_code != 0) {
      log.Chunk(process::Stream::kStderr,
                fmt::format("{} of {} items failed for good (max_failed allows {})\n", failed,
                            ok + failed, allowed));
    }
  }
  std::lock_guard lock(mu_);
  tasks_[id].fanout = std::move(counts);
}

void FlowRun::AttemptSql(TaskId id, int attempt, TaskLog& log) {
  const TaskSpec& t = plan().task(id);
  std::string shown_db = t.db;
  if (!spec_.databases.contains(t.db) && !t.db.starts_with("sqlite:")) {
    auto dsn = sinks::ParsePgDsn(t.db);
    shown_db = dsn ? dsn->Masked() : "(an unreadable DSN)";
  }
  log.Note(fmt::format("attempt {} of {}: {} on {}", attempt, t.retries + 1,
                       t.sql_file.empty() ? "sql" : "sql_file " + t.sql_file, shown_db));
  SqlTaskOptions o;
  o.dsn = spec_.DatabaseDsn(t.db);
  if (o.dsn.starts_with("sqlite:") && !fs::path(o.dsn.substr(7)).is_absolute()) {
    o.dsn = "sqlite:" + (base_dir_ / o.dsn.substr(7)).string();  // beside the flow file
  }
  o.timeout = t.timeout;
  o.stop = options_.force_stop;
  o.log = [&log](std::string_view line) {
    log.Chunk(process::Stream::kStdout, std::string(line) + "\n");
  };
  double start = Offset();
  SqlTaskResult r;
  if (t.sql_file.empty()) {
    o.text = t.sql;
    o.source = "tasks." + t.name + ".sql";
    r = RunSqlTask(o);
  } else {
    fs::path file =
        fs::path(t.sql_file).is_absolute() ? fs::path(t.sql_file) : base_dir_ / t.sql_file;
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) {
      r.error = fmt::format("tasks.{}.sql_file: cannot read '{}'", t.name, file.string());
    } else {
      o.text = text.str();
      o.source = t.sql_file;
      r = RunSqlTask(o);
    }
  }
  double end = Offset();
  if (!r.ok) log.Chunk(process::Stream::kStderr, r.error + "\n");
  log.EndOutput();
  process::Completion c;
  c.pid = c.pgid = 0;
  c.exit_code = r.ok ? 0 : 1;
  c.timed_out = r.timed_out;
  c.cancelled = r.cancelled;
  AttemptReport a{start, end - start, c.exit_code, 0,
                  c.timed_out   ? "timed_out"
                  : c.cancelled ? "cancelled"
                                : ""};
  log.Note(DescribeAttempt(a) + (r.tags.empty() ? "" : " (" + Join(r.tags, ", ") + ")"));
  std::string stderr_tail = log.StderrTail(kFailedLineTail);
  std::string held = log.Close(/*keep=*/!r.ok);
  std::lock_guard lock(mu_);
  tasks_[id].held_log += held;
  tasks_[id].sql_tags = r.tags;
  HandleEnd({id, Result<process::Completion>(std::move(c)), start, end, std::move(stderr_tail)});
}

// The task's outcome is decided: free its slot for other ready tasks, and queue its record
// for the next commit; its dependents wait for that commit. Called with mu_ held.
void FlowRun::Conclude(TaskId id, TaskState state) {
  tasks_[id].state = state;
  scheduler_->Vacate(id);
  to_commit_.push_back(id);
  cv_.notify_all();
}

// One attempt ended: retry it after a backoff, or conclude the task. Called with mu_ held.
void FlowRun::HandleEnd(AttemptEnd end) {
  TaskId id = end.id;
  const TaskSpec& t = plan().task(id);
  TaskRun& st = tasks_[id];
  st.last_end_s = end.end_s;
  AttemptReport rep{end.start_s, end.end_s - end.start_s, -1, 0, "failed"};
  bool ok = false, cancelled = false;
  std::string detail;
  if (!end.completion) {
    detail = "could not start: " + end.completion.error().message;
  } else {
    const process::Completion& c = *end.completion;
    rep.exit_code = c.exit_code;
    rep.signal = c.signal;
    ok = c.ok();
    cancelled = c.cancelled && !ok;
    rep.state = ok ? "succeeded" : c.timed_out ? "timed_out" : cancelled ? "cancelled" : "failed";
    detail = DescribeAttempt(rep);
  }
  // A fan-out task's retries are its items' (map --retries), not the whole map's.
  bool retry = !ok && !cancelled && !t.is_fanout() && st.attempts <= t.retries && !Stopping();
  if (retry) rep.state = "retried";
  st.reports.push_back(rep);
  std::string took = core::FormatDuration(
      std::chrono::duration_cast<Duration>(std::chrono::duration<double>(rep.duration_s)));
  if (retry) {
    RetryOptions ro{.max_attempts = t.retries + 1,
                    .base_delay = t.retry_delay,
                    .max_delay = t.retry_delay * 64};
    Duration wait = BackoffDelay(ro, st.attempts, rng_);
    Say("retry", t.name,
        fmt::format("{} after {}; attempt {} of {} in {}", detail, took, st.attempts + 1,
                    t.retries + 1, core::FormatDuration(wait)));
    delays_->Add(clock_.Now() + wait, [this, id] {
      std::lock_guard lock(mu_);
      if (Stopping()) {  // the run was interrupted during the backoff: no new attempt
        Say("FAILED", plan().task(id).name, "not retried: the run is stopping");
        Conclude(id, TaskState::kFailed);
        return;
      }
      Launch(id);
    });
    return;
  }
  if (ok) {
    Say("done", t.name, took);
    Conclude(id, TaskState::kSucceeded);
  } else if (cancelled) {
    Say("cancelled", t.name, fmt::format("killed by the second signal after {}", took));
    Conclude(id, TaskState::kCancelled);
  } else {
    std::string line = fmt::format("{} after {}{}", detail, took,
                                   t.critical ? "" : " (non-critical: the run goes on)");
    if (!end.stderr_tail.empty()) line += "\n    | " + end.stderr_tail;
    Say("FAILED", t.name, line);
    Conclude(id, TaskState::kFailed);
    if (!t.on_failure.empty()) {
      HookLater("on_failure", t.on_failure, t.name, "failed", RecordOf(id).detail);
    }
  }
  StartReady();
}

journal::ItemRecord FlowRun::RecordOf(TaskId id) const {
  const TaskSpec& t = plan().task(id);
  const TaskRun& st = tasks_[id];
  journal::ItemRecord rec;
  rec.key = t.name;
  rec.ok = IsDone(st.state);
  rec.attempts = st.attempts;
  if (!rec.ok) {
    rec.code = st.state == TaskState::kCancelled ? ErrorCode::kCancelled : ErrorCode::kAborted;
    rec.message =
        st.reports.empty() ? std::string(ToString(st.state)) : DescribeAttempt(st.reports.back());
  }
  rec.elapsed_us = static_cast<int64_t>((st.last_end_s - std::max(0.0, st.first_start_s)) * 1e6);
  json attempts = json::array();
  for (const AttemptReport& a : st.reports) {
    attempts.push_back({{"start_unix_s", started_unix_ + a.start_offset_s},
                        {"duration_s", a.duration_s},
                        {"exit_code", a.exit_code},
                        {"signal", a.signal},
                        {"state", a.state}});
  }
  json detail = {{"state", ToString(st.state)},
                 {"invocation", invocation_},
                 {"cmd_hash", CommandHash(t)},
                 {"attempts", attempts}};
  if (!st.sql_tags.empty()) detail["sql"] = st.sql_tags;
  if (st.fanout) {
    detail["items"] = {{"succeeded", st.fanout->succeeded}, {"failed", st.fanout->failed}};
  }
  rec.detail = detail.dump();
  return rec;
}

// Makes the concluded tasks' records durable in one transaction (group commit), then lets
// their dependents start. Called on the run's own thread with `lock` held; the journal
// write itself runs unlocked, while workers go on.
void FlowRun::Commit(std::unique_lock<std::mutex>& lock) {
  std::vector<TaskId> batch;
  batch.swap(to_commit_);
  std::vector<journal::ItemRecord> records;
  records.reserve(batch.size());
  for (TaskId id : batch) {
    // A task skipped as done in the resumed run is recorded already.
    if (tasks_[id].state != TaskState::kSkipped) records.push_back(RecordOf(id));
  }
  lock.unlock();
  Status s = journal_->RecordItems(run_id_, records);
  lock.lock();
  if (!s && journal_status_) {
    journal_status_ = s;
    fmt::print(stderr, "forklift run: {}; starting no new tasks\n", s.error().message);
  }
  for (TaskId id : batch) {
    const TaskRun& st = tasks_[id];
    settled_count_.fetch_add(1, std::memory_order_relaxed);
    if (!IsDone(st.state)) failed_count_.fetch_add(1, std::memory_order_relaxed);
    bool failed_critical = (st.state == TaskState::kFailed || st.state == TaskState::kCancelled) &&
                           plan().task(id).critical;
    for (TaskId down : scheduler_->Finish(id, failed_critical)) {
      tasks_[down].state = TaskState::kUpstreamFailed;
      settled_count_.fetch_add(1, std::memory_order_relaxed);  // blocked: settled, not done
      failed_count_.fetch_add(1, std::memory_order_relaxed);
      Say("blocked", plan().task(down).name, "upstream of it failed: " + plan().task(id).name);
    }
  }
  StartReady();
}

ReportData FlowRun::BuildReport(const std::string& status) {
  ReportData r;
  r.flow_name = spec_.name;
  r.run_id = run_id_;
  r.status = status;
  r.started_unix_s = static_cast<int64_t>(started_unix_);
  r.wall_s = Offset();
  std::vector<TaskTiming> timings(plan().size());
  for (TaskId id = 0; id < plan().size(); ++id) {
    const TaskRun& st = tasks_[id];
    if (st.started) timings[id] = {st.first_start_s, st.last_end_s, true};
  }
  std::set<TaskId> critical;
  for (TaskId id : plan().CriticalPath(timings)) critical.insert(id);
  for (TaskId id = 0; id < plan().size(); ++id) {
    const TaskSpec& t = plan().task(id);
    const TaskRun& st = tasks_[id];
    TaskReport tr;
    tr.name = t.name;
    tr.state = ToString(st.state);
    tr.critical = t.critical;
    tr.attempts = st.reports;
    tr.on_critical_path = critical.count(id) > 0;
    tr.group = t.group;
    tr.sql_tags = st.sql_tags;
    if (st.fanout) {
      tr.items_succeeded = st.fanout->succeeded;
      tr.items_failed = st.fanout->failed;
      tr.slowest_items = st.fanout->slowest;
    }
    if (t.alert_after && st.started) {
      tr.slow = (st.last_end_s - st.first_start_s) >
                std::chrono::duration<double>(*t.alert_after).count();
    }
    if (st.state == TaskState::kFailed || st.state == TaskState::kCancelled) {
      if (auto tail = ReadLogTail((log_dir_ / (t.name + ".log")).string())) tr.log_tail = *tail;
    }
    r.tasks.push_back(std::move(tr));
  }
  r.hooks = hooks_;
  return r;
}

// The main log: what each task logged in this invocation (its file from where this
// invocation began, then what was held back), in start order, appended after earlier
// invocations' sections.
void FlowRun::MergeLogs() {
  std::ofstream main(log_dir_ / "main.log", std::ios::app | std::ios::binary);
  if (invocation_ > 1) {
    main << "===== invocation " << invocation_ << " (resume) at " << LogStamp() << " =====\n";
  }
  for (TaskId id : start_order_) {
    const std::string& name = plan().task(id).name;
    main << "===== " << name << " =====\n";
    std::ifstream in(log_dir_ / (name + ".log"), std::ios::binary);
    if (in) {
      in.seekg(static_cast<std::streamoff>(tasks_[id].log_offset));
      main << in.rdbuf();
    }
    main << tasks_[id].held_log;
  }
}

// Starts every task that may start now. Called with mu_ held.
void FlowRun::StartReady() {
  if (Stopping() && !stopped_) {
    // Nothing new starts, save run_if = "always" tasks once what they follow has ended.
    stopped_ = true;
    for (TaskId id : scheduler_->Stop()) tasks_[id].state = TaskState::kNotRun;
  }
  for (;;) {
    auto next = scheduler_->StartNext();
    if (!next) break;
    TaskId id = *next;
    if (auto why = SkipReason(id)) {
      Say("skip", plan().task(id).name, ToString(*why));
      Conclude(id, *why);
      continue;
    }
    TaskRun& st = tasks_[id];
    st.state = TaskState::kRunning;
    st.started = true;
    st.first_start_s = Offset();
    std::error_code ec;
    uintmax_t size = fs::file_size(log_dir_ / (plan().task(id).name + ".log"), ec);
    st.log_offset = ec ? 0 : size;
    start_order_.push_back(id);
    Say("start", plan().task(id).name);
    if (const auto& after = plan().task(id).alert_after) AlertLater(id, *after);
    Launch(id);
  }
  if (Idle()) cv_.notify_all();
}

// Runs a hook to its end (within the flow's hook_timeout) on the calling thread, with
// mu_ NOT held: its output goes to LOG_DIR/RUN/hooks.log, its outcome to hooks_ and a line.
// A hook is not stopped by the second signal (it is what runs after one); its timeout
// bounds it.
void FlowRun::RunHook(std::string hook, const std::string& cmd, std::string task,
                      std::string_view status, std::string stdin_json) {
  TaskLog log(log_dir_ / "hooks.log");
  log.Note(fmt::format("{}{}: {}", hook, task.empty() ? "" : " of " + task, cmd));
  process::SpawnOptions spawn;
  spawn.argv = {"/bin/sh", "-c", cmd};
  spawn.cwd = base_dir_.string();
  spawn.env = {{"FORKLIFT_RUN_ID", run_id_},
               {"FORKLIFT_FLOW", spec_.name},
               {"FORKLIFT_HOOK", hook},
               {"FORKLIFT_STATUS", std::string(status)}};
  if (!task.empty()) spawn.env.emplace_back("FORKLIFT_TASK", task);
  for (auto& kv : SharedEnv()) spawn.env.push_back(std::move(kv));
  spawn.stdin_mode = process::InputMode::kData;
  spawn.stdin_data = std::move(stdin_json);
  spawn.stdout_mode = spawn.stderr_mode = process::OutputMode::kCallback;
  spawn.on_output = [&log](process::Stream s, std::string_view b) { log.Chunk(s, b); };
  spawn.registry = &registry_;
  spawn.timeout = spec_.hook_timeout;
  double start = Offset();
  auto done = options_.run_task ? options_.run_task(spawn, {}) : process::Run(spawn, {});
  double end = Offset();
  log.EndOutput();
  HookReport report{hook, task, "", false, end - start};
  if (!done) {
    report.outcome = "could not start: " + done.error().message;
  } else {
    AttemptReport a{start, end - start, done->exit_code, done->signal,
                    done->timed_out ? "timed_out" : ""};
    report.outcome = DescribeAttempt(a);
    report.ok = done->ok();
  }
  log.Note(report.outcome);
  log.Close(/*keep=*/true);
  std::lock_guard lock(mu_);
  Say(report.ok ? "hook" : "HOOK FAILED", hook + (task.empty() ? "" : " of " + task),
      report.ok ? report.outcome
                : report.outcome + " (logged in hooks.log; the run's status stands)");
  hooks_.push_back(std::move(report));
}

// RunHook on a thread of its own, so a task hook or an alert never holds a task's worker
// or the run's loop. Called with mu_ held.
void FlowRun::HookLater(std::string hook, const std::string& cmd, std::string task,
                        std::string_view status, std::string stdin_json) {
  hook_threads_.emplace_back([this, hook = std::move(hook), cmd, task = std::move(task),
                              status = std::string(status),
                              stdin_json = std::move(stdin_json)]() mutable {
    RunHook(std::move(hook), cmd, std::move(task), status, std::move(stdin_json));
  });
}

// alert_after, while the run goes on: once `after` has passed since the task (or, for
// nullopt, the run) started, and it is still running, say so and fire on_alert, once.
// Called with mu_ held.
void FlowRun::AlertLater(std::optional<TaskId> id, Duration after) {
  // From the task's start (now) or the run's, whenever this is called.
  TimePoint due = (id ? clock_.Now() : t0_) + after;
  delays_->Add(due, [this, id, due, after] {
    std::lock_guard lock(mu_);
    // A stop or the end of the run makes pending callbacks run early: not an alert.
    if (finished_ || clock_.Now() < due) return;
    if (id ? (alerted_[*id] || tasks_[*id].state != TaskState::kRunning) : run_alerted_) return;
    if (id) {
      alerted_[*id] = true;
    } else {
      run_alerted_ = true;
    }
    std::string who = id ? plan().task(*id).name : "the run";
    Say("ALERT", who, "still running after " + core::FormatDuration(after) + " (alert_after)");
    if (spec_.on_alert.empty()) return;
    json about = {{"run_id", run_id_},
                  {"flow", spec_.name},
                  {"task", id ? json(who) : json(nullptr)},
                  {"alert_after_s", std::chrono::duration<double>(after).count()}};
    HookLater("on_alert", spec_.on_alert, id ? who : "", ToString(RunStatus::kRunning),
              about.dump());
  });
}

Result<FlowRunResult> FlowRun::Run() {
  FORKLIFT_RETURN_IF_ERROR(Prepare());
  FlowRunResult result;
  if (options_.dry_run) {
    fmt::print(options_.out, "{}", plan().LevelsText());
    result.succeeded = true;
    return result;
  }
  t0_ = clock_.Now();
  started_unix_ = UnixNow();
  tasks_.assign(plan().size(), TaskRun{});
  alerted_.assign(plan().size(), false);
  scheduler_.emplace(plan(), options_.jobs);
  auto executor = Executor::Create({.workers = static_cast<size_t>(options_.jobs)});
  if (!executor) return tl::unexpected(executor.error());
  executor_ = std::move(*executor);
  delays_ = std::make_unique<core::DelayQueue>(clock_);
  fmt::print(options_.out,
             "forklift run: {} ({} tasks, --jobs {}), run {}, journal {}, logs in {}\n", spec_.name,
             plan().size(), options_.jobs, run_id_, options_.journal_path, log_dir_.string());
  std::fflush(options_.out);
  std::optional<core::ProgressTicker> ticker;
  if (options_.progress) {
    ticker.emplace(core::ProgressTicker::Options{.display = ProgressDisplay::kLines,
                                                 .interval = options_.progress_interval,
                                                 .out = stderr},
                   [this] {
                     return core::ProgressSnapshot{.label = "run",
                                                   .unit = "tasks",
                                                   .rate_unit = "tasks",
                                                   .done = settled_count_.load(),
                                                   .total = plan().size(),
                                                   .failed = failed_count_.load()};
                   });
    ticker->Start();
  }
  {
    // A first signal: retries waiting out a backoff give up now, and the loop wakes.
    std::stop_callback on_stop(options_.graceful, [this] {
      delays_->RunAllNow();
      std::lock_guard lock(mu_);
      cv_.notify_all();
    });
    // Workers start what a finished task frees (HandleEnd, StartReady, under mu_) without a
    // hand-off; this thread commits concluded tasks and releases their dependents.
    std::unique_lock lock(mu_);
    StartReady();
    if (spec_.alert_after) AlertLater(std::nullopt, *spec_.alert_after);
    for (;;) {
      cv_.wait(lock, [&] { return !to_commit_.empty() || Idle() || (Stopping() && !stopped_); });
      if (Stopping() && !stopped_) {
        StartReady();  // marks what will not start; `always` tasks may start
        continue;
      }
      if (!to_commit_.empty()) {
        Commit(lock);
        continue;
      }
      break;
    }
    finished_ = true;
  }
  if (ticker) ticker->Stop();
  executor_->Shutdown();
  delays_.reset();
  for (std::thread& t : hook_threads_) t.join();  // task hooks and alerts still running

  bool interrupted = options_.graceful.stop_requested();
  bool failed = false;
  for (TaskId id = 0; id < plan().size(); ++id) {
    TaskRun& st = tasks_[id];
    if (st.state == TaskState::kPending) {
      st.state = Stopping() ? TaskState::kNotRun : TaskState::kUpstreamFailed;
    }
    if (plan().task(id).critical && !IsDone(st.state)) failed = true;
  }
  RunStatus status = interrupted ? RunStatus::kCancelled
                     : failed    ? RunStatus::kFailed
                                 : RunStatus::kSucceeded;
  result.run_id = run_id_;
  result.succeeded = status == RunStatus::kSucceeded && journal_status_;
  result.interrupted = interrupted;
  result.report = BuildReport(std::string(ToString(status)));
  MergeLogs();

  std::vector<std::string> hashes;
  for (TaskId id = 0; id < plan().size(); ++id) hashes.push_back(CommandHash(plan().task(id)));
  std::string summary = ReportToJson(result.report, hashes).dump();
  Status finish = journal_->FinishRun(run_id_, status, summary);
  // The run's hooks, once it is recorded finished (a hook may run `forklift report`). They
  // never change its status; their outcomes join the recorded summary.
  std::string_view status_text = ToString(status);
  bool hooked = false;
  if (status == RunStatus::kSucceeded && !spec_.on_success.empty()) {
    RunHook("on_success", spec_.on_success, "", status_text, summary);
    hooked = true;
  }
  if (status != RunStatus::kSucceeded && !spec_.on_failure.empty()) {
    RunHook("on_failure", spec_.on_failure, "", status_text, summary);
    hooked = true;
  }
  if (!spec_.on_finish.empty()) {
    RunHook("on_finish", spec_.on_finish, "", status_text, summary);
    hooked = true;
  }
  if (hooked) {
    result.report.hooks = hooks_;
    Status again = journal_->FinishRun(run_id_, status, ReportToJson(result.report, hashes).dump());
    if (finish) finish = again;
  }
  fmt::print(options_.out, "\n{}", RenderBreakdownText(result.report));
  fmt::print(options_.out,
             "run {}: {} (logs: {}; report: forklift report {} --journal {} -o report.html)\n",
             run_id_, ToString(status), (log_dir_ / "main.log").string(), ShellWord(run_id_),
             ShellWord(options_.journal_path));
  std::fflush(options_.out);
  if (!journal_status_) return tl::unexpected(journal_status_.error());
  if (!finish) return tl::unexpected(finish.error());
  return result;
}

}  // namespace

std::string ResolveFlowJournalPath(std::string_view flag, const std::string& flow_path) {
  if (!flag.empty()) return std::string(flag);
  if (const char* env = std::getenv("FORKLIFT_JOURNAL"); env && *env) return env;
  std::error_code ec;
  fs::path dir = fs::absolute(fs::path(flow_path), ec).parent_path();
  return (dir / ".forklift" / "journal.db").string();
}

Result<FlowRunResult> RunFlow(const FlowSpec& spec, const FlowRunOptions& options) {
  FlowRun run(spec, options);
  return run.Run();
}

Result<ReportData> LoadRunReport(const std::string& journal_path, const std::string& run_id) {
  if (!fs::exists(journal_path)) return NotFoundError("no journal at '" + journal_path + "'");
  auto j = journal::Journal::Open(journal_path);
  if (!j) return tl::unexpected(j.error());
  auto found = (*j)->GetRun(run_id);
  if (!found) return tl::unexpected(found.error());
  const auto& run = *found;
  if (!run || run->kind != "flow") {
    return NotFoundError("no flow run '" + run_id + "' in " + journal_path);
  }
  if (run->summary_json.empty()) {
    if (run->status == ToString(RunStatus::kKilled)) {
      return FailedPreconditionError(
          fmt::format("run '{}' was killed before it finished, so it has no report; resume it "
                      "(forklift run FLOW --resume {}) and the resume writes one",
                      run_id, ShellWord(run_id)));
    }
    return FailedPreconditionError("run '" + run_id + "' has not finished; no report yet");
  }
  json s = json::parse(run->summary_json, nullptr, false);
  if (s.is_discarded()) return DataLossError("run '" + run_id + "': unreadable summary");
  auto report = ReportFromJson(s);
  if (!report) return DataLossError("run '" + run_id + "': " + report.error().message);
  return report;
}

}  // namespace forklift::flow
