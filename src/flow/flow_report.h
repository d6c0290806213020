// What a flow run looked like, for people: the breakdown table printed at the end of a
// run, and `forklift report RUN_ID -o report.html`, one self-contained HTML file (inline
// CSS, JS and SVG; nothing fetched from the network) with a Gantt timeline, the
// breakdown and the failures' log tails. Pure functions of a ReportData: the caller
// gathers it from the journal and the log files.
#ifndef FORKLIFT_FLOW_FLOW_REPORT_H_
#define FORKLIFT_FLOW_FLOW_REPORT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "forklift/result.h"

namespace forklift::flow {

struct AttemptReport {
  double start_offset_s = 0;  // from the start of the run
  double duration_s = 0;
  int exit_code = 0;  // meaningful when signal == 0
  int signal = 0;     // the signal that ended it, 0 if it exited
  std::string state;  // succeeded, failed, retried (failed, then retried), timed_out
};

struct TaskReport {
  std::string name;
  // A TaskState as ToString spells it (task_state.h): succeeded, failed, skipped,
  // upstream_failed, not_scheduled, cancelled, ...; kept as text, the report's stored form.
  std::string state;
  bool critical = true;  // the task's `critical` setting
  bool slow = false;     // ran past its alert_after
  bool on_critical_path = false;
  std::vector<AttemptReport> attempts;  // in order; empty if it never started
  std::string log_tail;                 // the end of its log; shown for failed tasks
  std::string group;                    // its phase; "" = none (a line of its own)
  // A fan-out task's items (foreach); nullopt for other tasks.
  std::optional<uint64_t> items_succeeded, items_failed;
  std::vector<std::pair<std::string, double>> slowest_items;  // command, seconds
  // A SQL task's command tags per statement ("UPDATE 42", "VACUUM"); empty otherwise.
  std::vector<std::string> sql_tags;
};

// One run of a hook (on_success, on_failure, on_finish, on_alert, or a task's on_failure).
struct HookReport {
  std::string hook;     // "on_failure", ...
  std::string task;     // the task a task hook or a task alert was about; "" for the run
  std::string outcome;  // DescribeAttempt's words: "exit 0", "timed out after 5m", ...
  bool ok = false;
  double duration_s = 0;
};

struct ReportData {
  std::string flow_name;
  std::string run_id;
  // The run's status as the journal spells it (journal::RunStatus): succeeded, failed,
  // cancelled (a signal stopped it), killed, running.
  std::string status;
  int64_t started_unix_s = 0;
  double wall_s = 0;              // 0: taken as the end of the last attempt
  std::vector<TaskReport> tasks;  // in file order
  std::vector<HookReport> hooks;  // in the order they ended
};

// How many log lines a report shows per failed task.
inline constexpr size_t kReportLogLines = 40;

// The whole report as one HTML document. Every string from ReportData is HTML-escaped
// (and ANSI color codes are removed from logs), so a task's output cannot inject markup.
// Never fails. Thread-safe.
std::string RenderReportHtml(const ReportData& data);

// The end-of-run breakdown for a terminal: one row per task (task, state, attempts,
// start, duration, slow) and, when some tasks are on the critical path, a line
// "critical path: a -> b -> c (12.3s)" with the sum of those tasks' durations; when some
// tasks have a `group`, a phase table (PhaseRows); then the hooks that ran. Never fails.
// Thread-safe.
std::string RenderBreakdownText(const ReportData& data);

// One row of the phase breakdown: a group of tasks (or an ungrouped task on its own).
struct PhaseRow {
  std::string name;  // the group, or the task's name
  bool is_group = false;
  size_t tasks = 0;
  size_t failed = 0;          // failed or cancelled
  double wall_s = 0;          // first start to last end of its tasks that ran
  double critical_share = 0;  // its tasks' share of the critical path's time, 0..1
};
// The phases in the order their first task appears in the file. Thread-safe.
std::vector<PhaseRow> PhaseRows(const ReportData& data);

// The last `max_lines` lines of `text` (all of it if it has fewer). Thread-safe.
std::string TailLines(std::string_view text, size_t max_lines);

// The last `max_lines` lines of the file at `path`, reading at most its last `max_bytes`
// (a huge log costs no more than a small one). Failure: NotFound naming the path.
// Thread-safe.
Result<std::string> ReadLogTail(const std::string& path, size_t max_lines = kReportLogLines,
                                size_t max_bytes = 64 * 1024);

// `text` with &, <, >, " and ' replaced by entities, so it is safe in element content and
// in quoted attributes. Thread-safe.
std::string HtmlEscape(std::string_view text);

}  // namespace forklift::flow

#endif  // FORKLIFT_FLOW_FLOW_REPORT_H_
