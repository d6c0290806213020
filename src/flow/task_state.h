// The states of a flow's tasks and runs, each with one spelling: what the journal stores,
// the terminal prints and the report shows. A run's status is the journal's RunStatus
// (journal/journal.h), which every front door's runs share. Resume decisions read IsDone() and
// nothing else, so "never ran", "cancelled while running", "failed" and "succeeded" cannot be
// confused in one place and not another.
#ifndef FORKLIFT_FLOW_TASK_STATE_H_
#define FORKLIFT_FLOW_TASK_STATE_H_

#include <optional>
#include <string>
#include <string_view>

#include "flow/flow_report.h"
#include "journal/journal.h"

namespace forklift::flow {

enum class TaskState {
  kPending,         // not started yet
  kRunning,         // an attempt is running or waiting to retry
  kSucceeded,       // its last attempt exited 0
  kFailed,          // out of attempts (failed, timed out, could not start)
  kCancelled,       // stopped while running (the run was interrupted): it did not finish
  kUpstreamFailed,  // a critical task it needs failed: never started
  kNotRun,          // never started: the run was interrupted first
  kUpToDate,        // its outputs were newer than its inputs: not run
  kNotScheduled,    // `days` leaves out today: not run
  kSkipped,         // done in an earlier invocation of the same run (a resume)
};

// "pending", "running", "succeeded", "failed", "cancelled", "upstream_failed", "not_run",
// "up_to_date", "not_scheduled", "skipped".
std::string_view ToString(TaskState state);
// The inverse of ToString; nullopt for any other text.
std::optional<TaskState> ParseTaskState(std::string_view text);
// Whether a resume of the run leaves the task alone: succeeded, up_to_date,
// not_scheduled or skipped. Everything else (failed, cancelled, never started) runs again.
bool IsDone(TaskState state);

// A flow run succeeded when no critical task failed or was blocked; it failed when one
// did, or never ran.
using journal::ParseRunStatus;
using journal::RunStatus;

// How an attempt ended, in the words the terminal, the log and the report all use:
// "exit 3", "timed out after 2.01s", "killed by signal 9 (KILL)", "cancelled",
// "could not start".
std::string DescribeAttempt(const AttemptReport& attempt);

}  // namespace forklift::flow

#endif  // FORKLIFT_FLOW_TASK_STATE_H_
