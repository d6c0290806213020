// The flow run loop: one thread drives the Scheduler (which task may start), the
// executor's workers run attempts as subprocesses, retries wait in a DelayQueue, and
// every attempt writes a timestamped log. The journal gets one item per task and, as the
// run's summary, the whole report, so `forklift report` and `--resume` need nothing else.
#include "flow/flow_runner.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "core/delay_queue.h"
#include "core/format_duration.h"
#include "flow/flow_plan.h"
#include "forklift/executor.h"
#include "forklift/retry.h"
#include "journal/journal.h"
#include "process/subprocess.h"

namespace forklift::flow {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string LocalStamp(const char* format) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

// "2026-11-23T09:10:01.123"
std::string LogStamp() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  return fmt::format("{}.{:03d}", LocalStamp("%Y-%m-%dT%H:%M:%S"), static_cast<int>(ms.count()));
}

json ToJson(const ReportData& r, const std::vector<std::string>& hashes) {
  json tasks = json::array();
  for (size_t i = 0; i < r.tasks.size(); ++i) {
    const TaskReport& t = r.tasks[i];
    json attempts = json::array();
    for (const AttemptReport& a : t.attempts) {
      attempts.push_back({{"start_offset_s", a.start_offset_s}, {"duration_s", a.duration_s},
                          {"exit_code", a.exit_code}, {"signal", a.signal}, {"state", a.state}});
    }
    tasks.push_back({{"name", t.name}, {"state", t.state}, {"critical", t.critical},
                     {"slow", t.slow}, {"on_critical_path", t.on_critical_path},
                     {"attempts", attempts}, {"log_tail", t.log_tail},
                     {"cmd_hash", i < hashes.size() ? hashes[i] : ""}});
  }
  return {{"flow_name", r.flow_name}, {"run_id", r.run_id}, {"status", r.status},
          {"started_unix_s", r.started_unix_s}, {"wall_s", r.wall_s}, {"tasks", tasks}};
}

ReportData FromJson(const json& j) {
  ReportData r;
  r.flow_name = j.value("flow_name", "");
  r.run_id = j.value("run_id", "");
  r.status = j.value("status", "");
  r.started_unix_s = j.value("started_unix_s", int64_t{0});
  r.wall_s = j.value("wall_s", 0.0);
  for (const json& t : j.value("tasks", json::array())) {
    TaskReport tr;
    tr.name = t.value("name", "");
    tr.state = t.value("state", "");
    tr.critical = t.value("critical", true);
    tr.slow = t.value("slow", false);
    tr.on_critical_path = t.value("on_critical_path", false);
    tr.log_tail = t.value("log_tail", "");
    for (const json& a : t.value("attempts", json::array())) {
      tr.attempts.push_back({a.value("start_offset_s", 0.0), a.value("duration_s", 0.0),
                             a.value("exit_code", 0), a.value("signal", 0),
                             a.value("state", "")});
    }
    r.tasks.push_back(std::move(tr));
  }
  return r;
}

// Lines of a task's output, each stamped and tagged with its stream, appended to its log.
// The file is created at the first byte of output (or for a failure): a silent task that
// succeeds leaves its two notes in main.log only, and costs no file (creating thousands of
// files was the largest cost of a run of tiny tasks). One per attempt; used only on the
// thread running that attempt.
class TaskLog {
 public:
  explicit TaskLog(fs::path path) : path_(std::move(path)) {}
  void Note(std::string_view text) {
    std::string line = LogStamp() + " [forklift] ";
    line.append(text);
    line += '\n';
    Write(line);
  }
  void Chunk(process::Stream s, std::string_view bytes) {
    Open();
    std::string& partial = partial_[s == process::Stream::kStdout ? 0 : 1];
    const char* tag = s == process::Stream::kStdout ? "out" : "err";
    partial.append(bytes);
    size_t start = 0, nl;
    while ((nl = partial.find('\n', start)) != std::string::npos) {
      out_ << LogStamp() << " [" << tag << "] ";
      out_.write(partial.data() + start, static_cast<std::streamsize>(nl - start + 1));
      start = nl + 1;
    }
    partial.erase(0, start);
  }
  // Ends the attempt's output (an unterminated last line gets its newline).
  void EndOutput() {
    for (int i = 0; i < 2; ++i) {
      if (!partial_[i].empty()) {
        out_ << LogStamp() << (i == 0 ? " [out] " : " [err] ") << partial_[i] << '\n';
        partial_[i].clear();
      }
    }
  }
  // Closes the attempt. With `keep` (a failure) the file is created even if the task was
  // silent. Returns what was never written to a file (for main.log).
  std::string Close(bool keep) {
    if (keep) Open();
    out_.flush();
    return std::move(held_);
  }

 private:
  void Open() {
    if (opened_) return;
    opened_ = true;
    out_.open(path_, std::ios::app | std::ios::binary);
    out_ << held_;
    held_.clear();
  }
  void Write(std::string_view text) {
    if (opened_) {
      out_ << text;
    } else {
      held_.append(text);
    }
  }

  fs::path path_;
  bool opened_ = false;
  std::ofstream out_;
  std::string held_;  // notes written before the file exists
  std::string partial_[2];
};

struct TaskState {
  std::string state = "pending";
  int attempts = 0;
  std::vector<AttemptReport> reports;
  double first_start_s = -1;  // offsets from the run's start
  double last_end_s = 0;
  bool started = false;
  std::string held_log;  // log lines of silent successful attempts (no file; main.log only)
};

struct AttemptEnd {
  TaskId id;
  Result<process::Completion> completion;
  double start_s;
  double end_s;
};

class FlowRun {
 public:
  FlowRun(const FlowSpec& spec, const FlowRunOptions& options)
      : spec_(spec), options_(options) {}
  Result<FlowRunResult> Run();

 private:
  Status Prepare();
  std::optional<std::string> SkipReason(TaskId id);
  void Launch(TaskId id);
  void Attempt(TaskId id);
  void Settle(TaskId id, const std::string& state);
  void HandleEnd(AttemptEnd end);
  void StartReady();
  void Say(std::string_view verb, const std::string& task, std::string_view detail = "");
  const Plan& plan() const { return *plan_storage_; }
  double Offset() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }
  ReportData BuildReport(const std::string& status);
  void MergeLogs();

  const FlowSpec& spec_;
  const FlowRunOptions& options_;
  std::optional<Plan> plan_storage_;
  std::optional<Scheduler> scheduler_;
  std::string run_id_;
  fs::path base_dir_;  // tasks run here (the flow file's directory), unless cwd says more
  fs::path log_dir_;
  std::unique_ptr<journal::Journal> journal_;
  std::set<std::string> resume_done_;          // tasks that succeeded in the resumed run
  std::map<std::string, std::string> hashes_;  // last recorded command hash per task
  std::vector<TaskState> tasks_;
  std::vector<TaskId> start_order_;
  std::chrono::steady_clock::time_point t0_;
  double started_unix_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};

  std::unique_ptr<Executor> executor_;
  std::unique_ptr<core::DelayQueue> delays_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool finished_ = false;  // no task running or waiting to retry
  int wday_ = 0;           // weekday the run started (0 = Sunday), for `days`
  bool out_is_tty_ = false;
};

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
  if (ec) return InvalidArgumentError(spec_.path + ": cannot resolve its directory: " + ec.message());
  auto j = journal::Journal::Open(options_.journal_path);
  if (!j) return InvalidArgumentError("--journal: " + j.error().message);
  journal_ = std::move(*j);

  // Command hashes recorded by this flow's latest finished run, for up-to-date checks.
  auto latest = journal_->LatestFinishedRun("flow", spec_.name);
  if (!latest) return tl::unexpected(latest.error());
  if (*latest) {
    json s = json::parse((*latest)->summary_json, nullptr, false);
    for (const json& t : s.is_discarded() ? json::array() : s.value("tasks", json::array())) {
      if (t.value("state", "") == "succeeded" || t.value("state", "") == "up_to_date") {
        hashes_.emplace(t.value("name", ""), t.value("cmd_hash", ""));
      }
    }
  }
  if (options_.resume_run_id) {
    auto found = journal_->GetRun(*options_.resume_run_id);
    if (!found) return tl::unexpected(found.error());
    const auto& old = *found;
    if (!old || old->kind != "flow") {
      return NotFoundError("--resume: no flow run '" + *options_.resume_run_id + "' in " +
                           options_.journal_path);
    }
    run_id_ = *options_.resume_run_id;
    json s = json::parse(old->summary_json.empty() ? "{}" : old->summary_json, nullptr, false);
    for (const json& t : s.value("tasks", json::array())) {
      std::string st = t.value("state", "");
      if (st == "succeeded" || st == "up_to_date" || st == "not_scheduled" || st == "skipped") {
        resume_done_.insert(t.value("name", ""));
      }
    }
  } else {
    run_id_ = fmt::format("{}-{}-{}", spec_.name, LocalStamp("%Y%m%d-%H%M%S"), getpid());
  }
  log_dir_ = fs::path(spec_.log_dir).is_absolute() ? fs::path(spec_.log_dir)
                                                   : base_dir_ / spec_.log_dir;
  log_dir_ /= run_id_;
  fs::create_directories(log_dir_, ec);
  if (ec) {
    return InvalidArgumentError(fmt::format("{}: log_dir: cannot create '{}': {}", spec_.path,
                                            log_dir_.string(), ec.message()));
  }
  FORKLIFT_RETURN_IF_ERROR(journal_->BeginRun(run_id_, "flow", spec_.name));
  wday_ = options_.today_wday;
  if (wday_ < 0) {  // the run's day is the day it started, for every task
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    wday_ = tm.tm_wday;
  }
  out_is_tty_ = isatty(fileno(options_.out));
  return OkStatus();
}

void FlowRun::Say(std::string_view verb, const std::string& task, std::string_view detail) {
  fmt::print(options_.out, "{} {:<8} {}{}{}\n", LocalStamp("%H:%M:%S"), verb, task,
             detail.empty() ? "" : "  ", detail);
  // A terminal sees each line at once; a file or pipe gets them in blocks (one write per
  // line was a visible share of a run of thousands of tiny tasks).
  if (out_is_tty_) std::fflush(options_.out);
}

// Why a ready task need not run: not scheduled today, done in the run being resumed, or
// its outputs are up to date.
std::optional<std::string> FlowRun::SkipReason(TaskId id) {
  const TaskSpec& t = plan().task(id);
  if (!t.RunsOn(wday_)) return "not_scheduled";
  if (resume_done_.count(t.name)) return "skipped";
  if (!options_.force && !t.outputs.empty()) {
    auto it = hashes_.find(t.name);
    fs::path dir = t.cwd.empty() ? base_dir_ : base_dir_ / t.cwd;
    if (it != hashes_.end() && IsUpToDate(t, it->second, dir)) return "up_to_date";
  }
  return std::nullopt;
}

// Hands the task to a worker; a refusal (only possible once the executor shuts down) is
// recorded as the attempt's failure. Called with mu_ held.
void FlowRun::Launch(TaskId id) {
  Status s = executor_->Submit([this, id] { Attempt(id); });
  if (!s) HandleEnd({id, tl::unexpected(s.error()), Offset(), Offset()});
}

void FlowRun::Attempt(TaskId id) {
  const TaskSpec& t = plan().task(id);
  int attempt;
  {
    std::lock_guard lock(mu_);
    attempt = ++tasks_[id].attempts;
  }
  TaskLog log(log_dir_ / (t.name + ".log"));
  log.Note(fmt::format("attempt {} of {}: {}", attempt, t.retries + 1, t.cmd));
  process::SpawnOptions spawn;
  spawn.argv = {"/bin/sh", "-c", t.cmd};
  spawn.cwd = (t.cwd.empty() ? base_dir_ : base_dir_ / t.cwd).string();
  // Tasks can tell which run and attempt they are (for markers, idempotency keys, logs).
  spawn.env = {{"FORKLIFT_RUN_ID", run_id_},
               {"FORKLIFT_TASK", t.name},
               {"FORKLIFT_ATTEMPT", std::to_string(attempt)}};
  for (const auto& [k, v] : t.env) spawn.env.emplace_back(k, v);
  spawn.stdout_mode = spawn.stderr_mode = process::OutputMode::kCallback;
  spawn.on_output = [&log](process::Stream s, std::string_view b) { log.Chunk(s, b); };
  if (t.timeout) spawn.timeout = *t.timeout;
  double start = Offset();
  auto done = process::Run(spawn, options_.force_stop);
  log.EndOutput();
  if (!done) {
    log.Note("could not run: " + done.error().ToString());
  } else if (done->timed_out) {
    log.Note(fmt::format("timed out after {}", core::FormatDuration(*t.timeout)));
  } else if (done->signal) {
    log.Note(fmt::format("killed by signal {}", done->signal));
  } else {
    log.Note(fmt::format("exit {}", done->exit_code));
  }
  std::string held = log.Close(/*keep=*/!done || !done->ok());
  double end = Offset();
  std::lock_guard lock(mu_);
  tasks_[id].held_log += held;
  HandleEnd({id, std::move(done), start, end});
  StartReady();
}

void FlowRun::Settle(TaskId id, const std::string& state) {
  tasks_[id].state = state;
  bool failed = state == "failed";
  for (TaskId down : scheduler_->Finish(id, failed && plan().task(id).critical)) {
    tasks_[down].state = "upstream_failed";
    Say("blocked", plan().task(down).name, "upstream of it failed: " + plan().task(id).name);
  }
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
    const TaskState& st = tasks_[id];
    if (st.started) timings[id] = {st.first_start_s, st.last_end_s, true};
  }
  std::set<TaskId> critical;
  for (TaskId id : plan().CriticalPath(timings)) critical.insert(id);
  for (TaskId id = 0; id < plan().size(); ++id) {
    const TaskSpec& t = plan().task(id);
    const TaskState& st = tasks_[id];
    TaskReport tr;
    tr.name = t.name;
    tr.state = st.state;
    tr.critical = t.critical;
    tr.attempts = st.reports;
    tr.on_critical_path = critical.count(id) > 0;
    if (t.alert_after && st.started) {
      tr.slow = (st.last_end_s - st.first_start_s) >
                std::chrono::duration<double>(*t.alert_after).count();
    }
    if (st.state == "failed") {
      if (auto tail = ReadLogTail((log_dir_ / (t.name + ".log")).string())) tr.log_tail = *tail;
    }
    r.tasks.push_back(std::move(tr));
  }
  return r;
}

// The main log: every task's log (its file, then what was held back), in start order.
void FlowRun::MergeLogs() {
  std::ofstream main(log_dir_ / "main.log", std::ios::trunc | std::ios::binary);
  for (TaskId id : start_order_) {
    const std::string& name = plan().task(id).name;
    main << "===== " << name << " =====\n";
    std::ifstream in(log_dir_ / (name + ".log"), std::ios::binary);
    if (in) main << in.rdbuf();
    main << tasks_[id].held_log;
  }
}

// One attempt ended: record it, retry it after a backoff, or settle the task. Called with
// mu_ held.
void FlowRun::HandleEnd(AttemptEnd end) {
    TaskId id = end.id;
    const TaskSpec& t = plan().task(id);
    TaskState& st = tasks_[id];
    st.last_end_s = end.end_s;
    AttemptReport rep{end.start_s, end.end_s - end.start_s, 0, 0, "succeeded"};
    bool ok = false;
    std::string detail;
    if (!end.completion) {
      rep.exit_code = -1;
      rep.state = "failed";
      detail = end.completion.error().ToString();
    } else {
      const process::Completion& c = *end.completion;
      rep.exit_code = c.exit_code;
      rep.signal = c.signal;
      ok = c.ok();
      rep.state = ok ? "succeeded" : c.timed_out ? "timed_out" : "failed";
      detail = c.timed_out ? "timed out"
               : c.signal  ? fmt::format("killed by signal {}", c.signal)
                           : fmt::format("exit {}", c.exit_code);
    }
    std::string took = core::FormatDuration(
        std::chrono::duration_cast<Duration>(std::chrono::duration<double>(rep.duration_s)));
    bool retry = !ok && st.attempts <= t.retries && !options_.graceful.stop_requested();
    if (retry) rep.state = "retried";
    st.reports.push_back(rep);
    if (retry) {
      RetryOptions ro{.max_attempts = t.retries + 1, .base_delay = t.retry_delay,
                      .max_delay = t.retry_delay * 64};
      Duration wait = BackoffDelay(ro, st.attempts, rng_);
      Say("retry", t.name, fmt::format("{} after {}; attempt {} of {} in {}", detail, took,
                                       st.attempts + 1, t.retries + 1, core::FormatDuration(wait)));
      delays_->Add(SystemClock().Now() + wait, [this, id] {
        std::lock_guard lock(mu_);
        Launch(id);
        StartReady();
      });
      return;
    }
    if (ok) {
      Say("done", t.name, took);
      Settle(id, "succeeded");
    } else {
      Say("FAILED", t.name, fmt::format("{} after {}{}", detail, took,
                                        t.critical ? "" : " (non-critical: the run goes on)"));
      Settle(id, "failed");
    }
}

// Starts every task that may start now; notes the end of the run. Called with mu_ held.
void FlowRun::StartReady() {
  while (!options_.graceful.stop_requested()) {
    auto next = scheduler_->StartNext();
    if (!next) break;
    TaskId id = *next;
    if (auto why = SkipReason(id)) {
      Say("skip", plan().task(id).name, *why);
      Settle(id, *why);
      continue;
    }
    tasks_[id].state = "running";
    tasks_[id].started = true;
    tasks_[id].first_start_s = Offset();
    start_order_.push_back(id);
    Say("start", plan().task(id).name);
    Launch(id);
  }
  if (scheduler_->running() == 0) {
    finished_ = true;
    cv_.notify_all();
  }
}

Result<FlowRunResult> FlowRun::Run() {
  FORKLIFT_RETURN_IF_ERROR(Prepare());
  FlowRunResult result;
  if (options_.dry_run) {
    fmt::print(options_.out, "{}", plan().LevelsText());
    result.succeeded = true;
    return result;
  }
  t0_ = std::chrono::steady_clock::now();
  started_unix_ = UnixNow();
  tasks_.assign(plan().size(), TaskState{});
  scheduler_.emplace(plan(), options_.jobs);
  auto executor = Executor::Create({.workers = static_cast<size_t>(options_.jobs)});
  if (!executor) return tl::unexpected(executor.error());
  executor_ = std::move(*executor);
  delays_ = std::make_unique<core::DelayQueue>(SystemClock());
  fmt::print(options_.out, "forklift run: {} ({} tasks, --jobs {}), run {}, logs in {}\n",
             spec_.name, plan().size(), options_.jobs, run_id_, log_dir_.string());

  {
    // Workers drive the schedule themselves (HandleEnd, then StartReady, under mu_), so a
    // finished task's successor starts on the same thread without a hand-off; this thread
    // only starts the roots and waits for the end.
    std::unique_lock lock(mu_);
    StartReady();
    cv_.wait(lock, [&] { return finished_; });
  }
  executor_->Shutdown();
  delays_.reset();

  bool interrupted = options_.graceful.stop_requested();
  bool failed = false;
  for (TaskId id = 0; id < plan().size(); ++id) {
    TaskState& st = tasks_[id];
    if (st.state == "pending") st.state = interrupted ? "not_run" : "upstream_failed";
    const TaskSpec& t = plan().task(id);
    if (t.critical && (st.state == "failed" || st.state == "upstream_failed" ||
                       st.state == "not_run")) {
      failed = true;
    }
  }
  std::string status = interrupted ? "interrupted" : failed ? "failed" : "succeeded";
  result.run_id = run_id_;
  result.succeeded = !failed && !interrupted;
  result.interrupted = interrupted;
  result.report = BuildReport(status);
  MergeLogs();

  std::vector<journal::ItemRecord> records;
  std::vector<std::string> hashes;
  for (TaskId id = 0; id < plan().size(); ++id) {
    const TaskState& st = tasks_[id];
    const TaskSpec& t = plan().task(id);
    bool done = st.state == "succeeded" || st.state == "up_to_date" ||
                st.state == "not_scheduled" || st.state == "skipped";
    journal::ItemRecord rec;
    rec.key = t.name;
    rec.ok = done;
    rec.attempts = st.attempts;
    if (!done) {
      rec.code = ErrorCode::kAborted;
      rec.message = st.state;
    }
    rec.elapsed_us = static_cast<int64_t>((st.last_end_s - std::max(0.0, st.first_start_s)) * 1e6);
    records.push_back(std::move(rec));
    hashes.push_back(CommandHash(t));
  }
  FORKLIFT_RETURN_IF_ERROR(journal_->RecordItems(run_id_, records));
  FORKLIFT_RETURN_IF_ERROR(
      journal_->FinishRun(run_id_, interrupted ? "cancelled" : failed ? "failed" : "succeeded",
                          ToJson(result.report, hashes).dump()));
  fmt::print(options_.out, "\n{}", RenderBreakdownText(result.report));
  fmt::print(options_.out, "run {}: {} (logs: {}; report: forklift report {} -o report.html)\n",
             run_id_, status, (log_dir_ / "main.log").string(), run_id_);
  return result;
}

}  // namespace

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
    return FailedPreconditionError("run '" + run_id + "' has not finished; no report yet");
  }
  json s = json::parse(run->summary_json, nullptr, false);
  if (s.is_discarded()) return DataLossError("run '" + run_id + "': unreadable summary");
  return FromJson(s);
}

}  // namespace forklift::flow
