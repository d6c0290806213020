// Planning a flow, without running anything: the task graph in compact form, its
// topological levels (`--dry-run`), the sub-flow `--only TASK` needs, the scheduling
// state a runner drives (who may start now), the critical path of a finished run, and
// the up-to-date check of incremental runs.
#ifndef FORKLIFT_FLOW_FLOW_PLAN_H_
#define FORKLIFT_FLOW_FLOW_PLAN_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "flow/flow_file.h"
#include "forklift/result.h"

namespace forklift::flow {

// A task's index in Plan::spec().tasks, i.e. its position in file order.
using TaskId = uint32_t;

// When a task ran, in seconds from the start of the run (first attempt's start to last
// attempt's end).
struct TaskTiming {
  double start_s = 0;
  double finish_s = 0;
  bool ran = false;  // false: never started (skipped, not scheduled, upstream failed)
};

// An immutable, validated task graph. Copyable and movable; thread-safe for concurrent
// const use.
class Plan {
 public:
  // Success: the plan of `spec` (its tasks keep their order and become TaskIds 0..n-1).
  // Failure: CheckGraph's InvalidArgument (unknown `after` name, duplicate, cycle, ...).
  // O(tasks + edges).
  static Result<Plan> Build(FlowSpec spec);

  const FlowSpec& spec() const { return spec_; }
  size_t size() const { return spec_.tasks.size(); }
  const TaskSpec& task(TaskId id) const { return spec_.tasks[id]; }
  // The id of the task called `name`; nullopt if none is.
  std::optional<TaskId> Find(std::string_view name) const;
  // The tasks `id` runs after, and those that run after `id`, each in file order.
  std::span<const TaskId> Predecessors(TaskId id) const;
  std::span<const TaskId> Successors(TaskId id) const;

  // Topological levels: level 0 holds the tasks with no `after`, level k the tasks whose
  // latest predecessor is in level k-1; each level in file order. Every task is in
  // exactly one level.
  const std::vector<std::vector<TaskId>>& Levels() const { return levels_; }
  // The `--dry-run` text: one "level K: a, b, c" line per level (K from 1), after a
  // header naming the flow.
  std::string LevelsText() const;

  // `--only TASK`: the plan of `only_task` and everything it transitively runs after, in
  // file order (ids are renumbered). Failure: NotFound "unknown task 'x' (did you mean
  // 'y'?)". O(tasks + edges).
  Result<Plan> Select(std::string_view only_task) const;

  // The chain of dependencies that set the end of the run: starting from the task that
  // finished last, repeatedly step to the predecessor that finished last (ties: the one
  // first in file order), among tasks that ran. Returned in run order (first task
  // first); empty when no task ran. `timings` is indexed by TaskId and has size() entries.
  std::vector<TaskId> CriticalPath(std::span<const TaskTiming> timings) const;

 private:
  Plan() = default;

  FlowSpec spec_;
  std::unordered_map<std::string, TaskId> index_;
  // Compressed adjacency (CSR): the predecessors of i are preds_[pred_begin_[i] ..
  // pred_begin_[i+1]); likewise successors. Two flat arrays instead of 2n small vectors.
  std::vector<uint32_t> pred_begin_, succ_begin_;
  std::vector<TaskId> preds_, succs_;
  std::vector<std::vector<TaskId>> levels_;
};

// The scheduling state of one run of a Plan: which tasks may start now. The runner calls
// StartNext() until it returns nullopt, then waits for a task to end and calls Finish().
// A task may start when every task it runs after has finished, fewer than `jobs` tasks are
// running, and its pool (if any) has a free slot; among those, the first in file order
// starts first. Costs: Finish is O(successors + log ready) amortized, plus each task
// marked upstream_failed once; StartNext is O(pools + log ready). Not thread-safe: drive
// it under one lock (the flow runner's workers and its own thread share it under the run's
// mutex). `plan` must outlive the scheduler.
class Scheduler {
 public:
  // kEnded: it no longer holds a slot (Vacate), but its successors wait for Finish.
  // kNotRun: never started because the run stopped (Stop).
  enum class State : uint8_t {
    kWaiting,
    kReady,
    kRunning,
    kEnded,
    kFinished,
    kUpstreamFailed,
    kNotRun
  };

  // `jobs` below 1 counts as 1.
  Scheduler(const Plan& plan, int jobs);

  // Marks and returns the next task to start, or nullopt when none may start now (all
  // slots busy, nothing ready, or everything finished).
  std::optional<TaskId> StartNext();

  // Records that running task `id` no longer needs its slot (its process ended) while its
  // outcome is not yet settled (a runner making it durable first): the slot and its pool
  // slot are free for other ready tasks, its successors still wait for Finish. No-op for
  // a task not running.
  void Vacate(TaskId id);

  // Records that running (or vacated) task `id` ended. With `failed_critical` (it failed and is
  // critical) every task downstream of it is marked upstream_failed and will never
  // start — except tasks with run_if all_done or always, which count a failed or blocked
  // task as ended like any other and start once all theirs have; the marked are returned
  // in the order they were marked. Otherwise (succeeded,
  // skipped, not scheduled today, or a non-critical failure) its successors count it as
  // done and an empty vector is returned. Calling it for a task not running is a bug
  // (asserted in debug builds, ignored otherwise). running() counts slot holders only.
  std::vector<TaskId> Finish(TaskId id, bool failed_critical);

  // The run is stopping (a first signal): every task that has not started is marked
  // not_run and counts as ended for its successors, save those with run_if always, which
  // still start once the tasks they run after have ended. Returns the tasks it marked.
  // Running and vacated tasks are left to Finish.
  std::vector<TaskId> Stop();

  // True when every task has finished or is upstream_failed.
  bool done() const { return settled_ == states_.size(); }
  int running() const { return running_; }
  State state(TaskId id) const { return states_[id]; }

 private:
  using MinHeap = std::priority_queue<TaskId, std::vector<TaskId>, std::greater<TaskId>>;

  void MakeReady(TaskId id);

  const Plan& plan_;
  int jobs_;
  int running_ = 0;
  size_t settled_ = 0;
  std::vector<State> states_;
  std::vector<uint32_t> waiting_on_;  // unfinished predecessors per task
  std::vector<uint32_t> pool_of_;     // 0 = no pool, else index into pool_limit_
  std::vector<int> pool_limit_;       // [0] unused
  std::vector<int> pool_running_;
  // One ready heap per pool (index 0: no pool), so a full pool's backlog never has to be
  // scanned past to find a task that may start.
  std::vector<MinHeap> ready_;
};

// A stable fingerprint (16 hex digits, FNV-1a 64) of what a task runs: cmd (or sql,
// sql_file and db), cwd and env.
// Recorded after a successful run; a change makes the task out of date. Thread-safe.
std::string CommandHash(const TaskSpec& task);

// The incremental-run check. True when the task declares `outputs`, every output glob
// (each alternative of a `{a,b}` counting as its own) matches at least one existing
// file, no input file (any match of an `inputs` glob) is newer than the oldest output
// file, and CommandHash(task) == recorded_cmd_hash. Equal times count as up to date, as
// in make, since file systems with coarse timestamps give an output written right after
// its input the same time. Relative globs are taken from `base_dir` (the directory the
// task runs in). Globs are glob(3)'s (`*`, `?`, `[..]`) plus `{a,b}`; no `**`. A glob
// that cannot be read counts as not up to date. Thread-safe.
bool IsUpToDate(const TaskSpec& task, std::string_view recorded_cmd_hash,
                const std::filesystem::path& base_dir);

}  // namespace forklift::flow

#endif  // FORKLIFT_FLOW_FLOW_PLAN_H_
