// `forklift run flow.toml`: runs a flow's DAG of shell tasks on a worker pool, with
// per-attempt logs, retries, timeouts, pools, critical and non-critical failures, the
// journal, a live status line per event and a breakdown at the end.
#ifndef FORKLIFT_FLOW_FLOW_RUNNER_H_
#define FORKLIFT_FLOW_FLOW_RUNNER_H_

#include <cstdio>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "flow/flow_file.h"
#include "flow/flow_report.h"
#include "forklift/clock.h"
#include "forklift/result.h"
#include "process/subprocess.h"

namespace forklift::flow {

// Runs one attempt of a task: process::Run by default; tests pass a fake (ninja's
// CommandRunner seam). Called on executor threads, several at once.
using TaskRunner = std::function<Result<process::Completion>(const process::SpawnOptions&,
                                                             const std::stop_token&)>;

struct FlowRunOptions {
  int jobs = 1;              // --jobs N, >= 1
  std::string journal_path;  // resolved journal file (ResolveFlowJournalPath)
  // --resume RUN_ID; "last" means the flow's latest run that did not succeed.
  std::optional<std::string> resume_run_id;
  std::optional<std::string> only;  // --only TASK: that task and what it needs
  bool force = false;               // --force: ignore up-to-date outputs
  bool dry_run = false;             // --dry-run: print the plan by levels
  // --wait DUR: how long to wait for another invocation of the flow to end. Default
  // none: refuse at once (Aborted).
  std::optional<Duration> wait_for_lock;
  std::stop_token graceful;    // first signal: start nothing new
  std::stop_token force_stop;  // second signal: kill running tasks
  FILE* out = stdout;          // status lines, breakdown
  int today_wday = -1;         // weekday for `days` (0 = Sunday); -1: today's
  Clock* clock = nullptr;      // retry backoff and timings; nullptr: SystemClock()
  TaskRunner run_task;         // default (empty): process::Run
  // Fork the orphan watchdog (ends the tasks if forklift is SIGKILLed). Default true.
  bool watchdog = true;
  // --progress: a progress line (done/total tasks, failed, rate, ETA) on stderr every
  // progress_interval, drawn by core::ProgressTicker like map's and load's. Default off:
  // the event lines already say what happens.
  bool progress = false;
  // The forklift program that fan-out tasks run as `forklift map`. Default "": this
  // program (/proc/self/exe).
  std::string forklift_exe;
  Duration progress_interval = std::chrono::seconds(10);
};

// Where a flow's journal is: `flag` (--journal) when not empty, else $FORKLIFT_JOURNAL,
// else ".forklift/journal.db" beside the flow file — where its logs are too, whatever
// directory forklift was started from. Thread-safe.
std::string ResolveFlowJournalPath(std::string_view flag, const std::string& flow_path);

struct FlowRunResult {
  std::string run_id;
  bool succeeded = false;  // no critical task failed or was skipped for an upstream failure
  bool interrupted = false;
  ReportData report;
};

// Runs the flow: takes the flow's lock (FlowLock), ends what a killed earlier invocation
// left running and marks such runs killed, then runs the tasks, committing each task's
// outcome to the journal (group commit) before its dependents start, so a SIGKILL at any
// moment loses no finished task: `--resume RUN_ID` never reruns what was recorded done.
// Errors (another invocation holds the lock: Aborted; a journal or log directory
// that cannot be written, an unknown --only task or --resume run) are returned before any
// task starts; task failures are in the result. A journal write that fails mid-run stops
// starting tasks, waits for the running ones and returns the error.
Result<FlowRunResult> RunFlow(const FlowSpec& spec, const FlowRunOptions& options);

// The report of a finished (or interrupted) run, from the journal.
Result<ReportData> LoadRunReport(const std::string& journal_path, const std::string& run_id);

}  // namespace forklift::flow

#endif  // FORKLIFT_FLOW_FLOW_RUNNER_H_
