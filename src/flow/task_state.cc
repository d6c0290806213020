#include "flow/task_state.h"

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <utility>

#include "core/format_duration.h"
#include "process/termseq.h"

namespace forklift::flow {
namespace {

constexpr std::array<std::pair<TaskState, std::string_view>, 10> kTaskStates{{
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

constexpr std::array<std::pair<RunStatus, std::string_view>, 5> kRunStatuses{{
    {RunStatus::kRunning, "running"},
    {RunStatus::kSucceeded, "succeeded"},
    {RunStatus::kFailed, "failed"},
    {RunStatus::kCancelled, "cancelled"},
    {RunStatus::kKilled, "killed"},
}};

template <class E, size_t N>
std::string_view Name(const std::array<std::pair<E, std::string_view>, N>& table, E value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return "unknown";
}

template <class E, size_t N>
std::optional<E> Parse(const std::array<std::pair<E, std::string_view>, N>& table,
                       std::string_view text) {
  for (const auto& [v, name] : table) {
    if (name == text) return v;
  }
  return std::nullopt;
}

}  // namespace

std::string_view ToString(TaskState state) { return Name(kTaskStates, state); }
std::optional<TaskState> ParseTaskState(std::string_view text) {
  return Parse(kTaskStates, text);
}

bool IsDone(TaskState state) {
  return state == TaskState::kSucceeded || state == TaskState::kUpToDate ||
         state == TaskState::kNotScheduled || state == TaskState::kSkipped;
}

std::string_view ToString(RunStatus status) { return Name(kRunStatuses, status); }
std::optional<RunStatus> ParseRunStatus(std::string_view text) {
  return Parse(kRunStatuses, text);
}

std::string DescribeAttempt(const AttemptReport& a) {
  if (a.state == "timed_out") {
    return "timed out after " +
           core::FormatDuration(std::chrono::duration_cast<Duration>(
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
