#include "flow/task_state.h"

#include <fmt/format.h>

#include <chrono>

#include "core/enum_names.h"
#include "core/format_duration.h"
#include "process/termseq.h"

namespace forklift::flow {
namespace {

constexpr core::EnumNames<TaskState, 10> kTaskStates{{
    {TaskState::kPending, "pending"},
    {TaskState::kRunning, "running"},
    {TaskState::kSucceeded, "succeeded"},
    {TaskState::kFailed, "failed"},
    {TaskState::kCancelled, "cancelled"},
    {TaskState::kUpstreamFailed, "upstream_failed"},
    {TaskState::kNotRun, "not_run"},
    {TaskState::kUpToDate, "up_to_date"},
    {TaskState::kNotScheduled, "not_scheduled"},
    {TaskState::kSkipped, "skipped"},
}};

}  // namespace

std::string_view ToString(TaskState state) { return core::NameOf(kTaskStates, state); }
std::optional<TaskState> ParseTaskState(std::string_view text) {
  return core::ValueOf(kTaskStates, text);
}

bool IsDone(TaskState state) {
  return state == TaskState::kSucceeded || state == TaskState::kUpToDate ||
         state == TaskState::kNotScheduled || state == TaskState::kSkipped;
}

std::string DescribeAttempt(const AttemptReport& a) {
  if (a.state == "timed_out") {
    return "timed out after " + core::FormatDuration(std::chrono::duration_cast<Duration>(
                                    std::chrono::duration<double>(a.duration_s)));
  }
  if (a.state == "cancelled") return "cancelled";
  if (a.signal != 0) {
    return fmt::format("killed by signal {} ({})", a.signal, process::SignalName(a.signal));
  }
  if (a.exit_code < 0) return "could not start";
  return fmt::format("exit {}", a.exit_code);
}

}  // namespace forklift::flow
