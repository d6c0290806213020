#include "flow/flow_plan.h"

#include "flow/brace_expansion.h"

#include "core/fnv1a.h"

#include <fmt/format.h>
#include <glob.h>

#include <algorithm>
#include <cassert>
#include <system_error>

namespace forklift::flow {

Result<Plan> Plan::Build(FlowSpec spec) {
  FORKLIFT_RETURN_IF_ERROR(CheckGraph(spec));
  Plan plan;
  plan.spec_ = std::move(spec);
  const auto& tasks = plan.spec_.tasks;
  const size_t n = tasks.size();
  plan.index_.reserve(n);
  for (size_t i = 0; i < n; ++i) plan.index_.emplace(tasks[i].name, static_cast<TaskId>(i));

  // CSR by counting sort. Filling in ascending task order leaves every list in file order.
  plan.pred_begin_.assign(n + 1, 0);
  plan.succ_begin_.assign(n + 1, 0);
  std::vector<TaskId> dep_ids;
  for (size_t i = 0; i < n; ++i) {
    plan.pred_begin_[i + 1] = plan.pred_begin_[i] + static_cast<uint32_t>(tasks[i].after.size());
    for (const std::string& dep : tasks[i].after) {
      TaskId p = plan.index_.at(dep);  // CheckGraph guarantees the name exists
      dep_ids.push_back(p);
      ++plan.succ_begin_[p + 1];
    }
  }
  for (size_t i = 0; i < n; ++i) plan.succ_begin_[i + 1] += plan.succ_begin_[i];
  plan.preds_.resize(dep_ids.size());
  plan.succs_.resize(dep_ids.size());
  std::vector<uint32_t> succ_fill(plan.succ_begin_.begin(), plan.succ_begin_.end() - 1);
  for (size_t i = 0, k = 0; i < n; ++i) {
    auto first = plan.preds_.begin() + plan.pred_begin_[i];
    for (size_t j = 0; j < tasks[i].after.size(); ++j, ++k) {
      first[static_cast<std::ptrdiff_t>(j)] = dep_ids[k];
      plan.succs_[succ_fill[dep_ids[k]]++] = static_cast<TaskId>(i);
    }
    std::sort(first, first + static_cast<std::ptrdiff_t>(tasks[i].after.size()));
  }

  // Levels in topological order (Kahn's); the graph is acyclic, so every task gets one.
  std::vector<uint32_t> waiting(n), level(n, 0);
  std::vector<TaskId> order;
  order.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    waiting[i] = plan.pred_begin_[i + 1] - plan.pred_begin_[i];
    if (waiting[i] == 0) order.push_back(static_cast<TaskId>(i));
  }
  uint32_t depth = 0;
  for (size_t head = 0; head < order.size(); ++head) {
    TaskId t = order[head];
    depth = std::max(depth, level[t] + 1);
    for (TaskId s : plan.Successors(t)) {
      level[s] = std::max(level[s], level[t] + 1);
      if (--waiting[s] == 0) order.push_back(s);
    }
  }
  plan.levels_.resize(depth);
  for (size_t i = 0; i < n; ++i) plan.levels_[level[i]].push_back(static_cast<TaskId>(i));
  return plan;
}

std::optional<TaskId> Plan::Find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

std::span<const TaskId> Plan::Predecessors(TaskId id) const {
  return {preds_.data() + pred_begin_[id], pred_begin_[id + 1] - pred_begin_[id]};
}

std::span<const TaskId> Plan::Successors(TaskId id) const {
  return {succs_.data() + succ_begin_[id], succ_begin_[id + 1] - succ_begin_[id]};
}

std::string Plan::LevelsText() const {
  std::string out =
      fmt::format("flow {}: {} task{} in {} level{}\n", spec_.name, size(), size() == 1 ? "" : "s",
                  levels_.size(), levels_.size() == 1 ? "" : "s");
  for (size_t k = 0; k < levels_.size(); ++k) {
    out += fmt::format("level {}:", k + 1);
    const char* separator = " ";
    for (TaskId id : levels_[k]) {
      out += separator;
      out += task(id).name;
      separator = ", ";
    }
    out += '\n';
  }
  return out;
}

Result<Plan> Plan::Select(std::string_view only_task) const {
  auto target = Find(only_task);
  if (!target) {
    std::vector<std::string> names;
    names.reserve(size());
    for (const TaskSpec& t : spec_.tasks) names.push_back(t.name);
    auto close = ClosestName(only_task, names);
    return NotFoundError(fmt::format("unknown task '{}'{}", only_task,
                                     close ? fmt::format(" (did you mean '{}'?)", *close) : ""));
  }
  std::vector<bool> keep(size(), false);
  std::vector<TaskId> stack = {*target};
  keep[*target] = true;
  while (!stack.empty()) {
    TaskId t = stack.back();
    stack.pop_back();
    for (TaskId p : Predecessors(t)) {
      if (!keep[p]) {
        keep[p] = true;
        stack.push_back(p);
      }
    }
  }
  FlowSpec sub = spec_;
  sub.tasks.clear();
  for (size_t i = 0; i < size(); ++i) {
    if (keep[i]) sub.tasks.push_back(spec_.tasks[i]);
  }
  return Build(std::move(sub));
}

std::vector<TaskId> Plan::CriticalPath(std::span<const TaskTiming> timings) const {
  std::vector<TaskId> path;
  if (timings.size() != size()) return path;
  auto later = [&](std::optional<TaskId> best, TaskId candidate) {
    return timings[candidate].ran &&
           (!best || timings[candidate].finish_s > timings[*best].finish_s);
  };
  std::optional<TaskId> current;
  for (TaskId i = 0; i < size(); ++i) {
    if (later(current, i)) current = i;
  }
  while (current) {
    path.push_back(*current);
    std::optional<TaskId> next;
    for (TaskId p : Predecessors(*current)) {
      if (later(next, p)) next = p;
    }
    current = next;
  }
  std::reverse(path.begin(), path.end());
  return path;
}

Scheduler::Scheduler(const Plan& plan, int jobs)
    : plan_(plan),
      jobs_(std::max(jobs, 1)),
      states_(plan.size(), State::kWaiting),
      waiting_on_(plan.size()),
      pool_of_(plan.size(), 0) {
  std::unordered_map<std::string_view, uint32_t> pool_index;
  pool_limit_.push_back(0);
  for (const auto& [name, limit] : plan.spec().pools) {
    pool_index.emplace(name, static_cast<uint32_t>(pool_limit_.size()));
    pool_limit_.push_back(limit);
  }
  pool_running_.assign(pool_limit_.size(), 0);
  ready_.resize(pool_limit_.size());
  for (TaskId i = 0; i < plan.size(); ++i) {
    if (const auto& pool = plan.task(i).pool) pool_of_[i] = pool_index.at(*pool);
    waiting_on_[i] = static_cast<uint32_t>(plan.Predecessors(i).size());
    if (waiting_on_[i] == 0) MakeReady(i);
  }
}

void Scheduler::MakeReady(TaskId id) {
  states_[id] = State::kReady;
  ready_[pool_of_[id]].push(id);
}

std::optional<TaskId> Scheduler::StartNext() {
  if (running_ >= jobs_) return std::nullopt;
  for (;;) {
    // The heads of the pools with a free slot compete; the earliest in file order wins.
    std::optional<size_t> best;
    for (size_t q = 0; q < ready_.size(); ++q) {
      if (ready_[q].empty()) continue;
      if (q != 0 && pool_running_[q] >= pool_limit_[q]) continue;
      if (!best || ready_[q].top() < ready_[*best].top()) best = q;
    }
    if (!best) return std::nullopt;
    TaskId id = ready_[*best].top();
    ready_[*best].pop();
    if (states_[id] != State::kReady) continue;  // marked not_run by Stop: drop it
    states_[id] = State::kRunning;
    ++running_;
    ++pool_running_[*best];
    return id;
  }
}

void Scheduler::Vacate(TaskId id) {
  if (states_[id] != State::kRunning) return;
  states_[id] = State::kEnded;
  --running_;
  --pool_running_[pool_of_[id]];
}

std::vector<TaskId> Scheduler::Finish(TaskId id, bool failed_critical) {
  std::vector<TaskId> blocked;
  assert(states_[id] == State::kRunning || states_[id] == State::kEnded);
  if (states_[id] != State::kRunning && states_[id] != State::kEnded) return blocked;
  if (states_[id] == State::kRunning) {
    --running_;
    --pool_running_[pool_of_[id]];
  }
  states_[id] = State::kFinished;
  ++settled_;
  // A successor either counts `id` as done (it may become ready), or, after a critical
  // failure, is blocked, and so is what needs it in turn. Each task is marked once, so the
  // marking costs O(tasks + edges) over the whole run.
  std::vector<TaskId> stack;
  auto ended = [&](TaskId s, bool failed) {
    if (failed && plan_.task(s).run_if == RunIf::kDefault) {
      stack.push_back(s);
    } else if (--waiting_on_[s] == 0 && states_[s] == State::kWaiting) {
      MakeReady(s);
    }
  };
  for (TaskId s : plan_.Successors(id)) ended(s, failed_critical);
  while (!stack.empty()) {
    TaskId t = stack.back();
    stack.pop_back();
    if (states_[t] == State::kUpstreamFailed || states_[t] == State::kNotRun) continue;
    states_[t] = State::kUpstreamFailed;
    ++settled_;
    blocked.push_back(t);
    for (TaskId s : plan_.Successors(t)) ended(s, /*failed=*/true);
  }
  return blocked;
}

std::vector<TaskId> Scheduler::Stop() {
  std::vector<TaskId> marked;
  // In topological order, so a task's predecessors are settled before it is looked at.
  for (const auto& level : plan_.Levels()) {
    for (TaskId t : level) {
      if (states_[t] != State::kWaiting && states_[t] != State::kReady) continue;
      if (plan_.task(t).run_if == RunIf::kAlways) continue;
      states_[t] = State::kNotRun;  // a ready one stays in its heap: StartNext skips it
      ++settled_;
      marked.push_back(t);
      for (TaskId s : plan_.Successors(t)) {
        if (--waiting_on_[s] == 0 && states_[s] == State::kWaiting) MakeReady(s);
      }
    }
  }
  return marked;
}

namespace {

// Escapes glob metacharacters so a base directory is matched literally.
std::string GlobEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// Expands one brace-free `pattern` (relative ones under base_dir) into `out`. False if
// the directory walk failed; true with nothing added when nothing matches.
bool Glob(const std::string& pattern, const std::filesystem::path& base_dir,
          std::vector<std::filesystem::path>& out) {
  std::string full = pattern;
  if (!pattern.empty() && pattern[0] != '/' && pattern[0] != '~' && !base_dir.empty()) {
    std::string base = GlobEscape(base_dir.string());
    if (base.back() != '/') base += '/';
    full = base + pattern;
  }
  int flags = GLOB_ERR;
#ifdef GLOB_TILDE
  flags |= GLOB_TILDE;
#endif
  glob_t matches{};
  int rc = glob(full.c_str(), flags, nullptr, &matches);
  bool ok = rc == 0 || rc == GLOB_NOMATCH;
  if (rc == 0) {
    for (size_t i = 0; i < matches.gl_pathc; ++i) out.emplace_back(matches.gl_pathv[i]);
  }
  globfree(&matches);
  return ok;
}

}  // namespace

std::string CommandHash(const TaskSpec& task) {
  core::Fnv1a h;
  h.Add(task.cmd);
  h.Add(task.cwd);
  for (const auto& [name, value] : task.env) {  // std::map: a stable order
    h.Add(name);
    h.Add(value);
  }
  if (task.cmd.empty()) {  // a SQL task (a command task's hash is as it always was)
    h.Add(task.sql);
    h.Add(task.sql_file);
    h.Add(task.db);
  }
  return h.Hex();
}

bool IsUpToDate(const TaskSpec& task, std::string_view recorded_cmd_hash,
                const std::filesystem::path& base_dir) {
  if (task.outputs.empty() || CommandHash(task) != recorded_cmd_hash) return false;
  std::error_code ec;
  std::optional<std::filesystem::file_time_type> oldest_output;
  std::vector<std::string> patterns;
  for (const std::string& output : task.outputs) {
    auto expanded = ExpandBraces(output);
    if (!expanded) return false;  // refused when the flow file was read
    patterns.insert(patterns.end(), expanded->begin(), expanded->end());
  }
  for (const std::string& pattern : patterns) {
    std::vector<std::filesystem::path> files;
    if (!Glob(pattern, base_dir, files) || files.empty()) return false;
    for (const auto& file : files) {
      auto t = std::filesystem::last_write_time(file, ec);
      if (ec) return false;
      if (!oldest_output || t < *oldest_output) oldest_output = t;
    }
  }
  patterns.clear();
  for (const std::string& input : task.inputs) {
    auto expanded = ExpandBraces(input);
    if (!expanded) return false;
    patterns.insert(patterns.end(), expanded->begin(), expanded->end());
  }
  for (const std::string& pattern : patterns) {
    std::vector<std::filesystem::path> files;
    if (!Glob(pattern, base_dir, files)) return false;
    for (const auto& file : files) {
      auto t = std::filesystem::last_write_time(file, ec);
      if (ec || t > *oldest_output) return false;
    }
  }
  return true;
}

}  // namespace forklift::flow
