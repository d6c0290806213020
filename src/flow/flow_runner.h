// `forklift run flow.toml`: runs a flow's DAG of shell tasks on a worker pool, with
// per-attempt logs, retries, timeouts, pools, critical and non-critical failures, the
// journal, a live status line per event and a breakdown at the end.
#ifndef FORKLIFT_FLOW_FLOW_RUNNER_H_
#define FORKLIFT_FLOW_FLOW_RUNNER_H_

#include <cstdio>
#include <optional>
#include <stop_token>
#include <string>

#include "flow/flow_file.h"
#include "flow/flow_report.h"
#include "forklift/result.h"

namespace forklift::flow {

struct FlowRunOptions {
  int jobs = 1;                      // --jobs N, >= 1
  std::string journal_path;          // resolved journal file
  std::optional<std::string> resume_run_id;  // --resume RUN_ID
  std::optional<std::string> only;   // --only TASK: that task and what it needs
  bool force = false;                // --force: ignore up-to-date outputs
  bool dry_run = false;              // --dry-run: print the plan by levels
  std::stop_token graceful;          // first signal: start nothing new
  std::stop_token force_stop;        // second signal: kill running tasks
  FILE* out = stdout;                // status lines, breakdown
  int today_wday = -1;               // weekday for `days` (0 = Sunday); -1: today's
};

struct FlowRunResult {
  std::string run_id;
  bool succeeded = false;  // no critical task failed or was skipped for an upstream failure
  bool interrupted = false;
  ReportData report;
};

// Runs the flow. Errors (a journal or log directory that cannot be written, an unknown
// --only task or --resume run) are returned before any task starts; task failures are in
// the result. Not thread-safe with itself on the same log directory and run id.
Result<FlowRunResult> RunFlow(const FlowSpec& spec, const FlowRunOptions& options);

// The report of a finished (or interrupted) run, from the journal.
Result<ReportData> LoadRunReport(const std::string& journal_path, const std::string& run_id);

}  // namespace forklift::flow

#endif  // FORKLIFT_FLOW_FLOW_RUNNER_H_
