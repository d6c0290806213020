// Flow files, the planner and the scheduler. Properties:
//  - ParseFlow never crashes; a spec it accepts passes CheckGraph and builds a Plan;
//  - the plan's levels hold every task exactly once, each level in file order, and every
//    edge goes from a lower level to a higher one, a task of level k > 0 having a
//    predecessor in level k-1; Predecessors and Successors mirror each other;
//  - --only TASK selects exactly the task and its ancestors;
//  - a simulated run on flow::Scheduler (tasks ending, vacating their slot, failing, in
//    an order the input picks) never has more than `jobs` tasks running nor more than a
//    pool's limit in a pool, starts a task only after all its predecessors finished and
//    only once, marks upstream_failed exactly the tasks below a critical failure, and
//    always ends with done() (no deadlock);
//  - ExpandBraces stays within its limit and each pattern is no longer than its glob.
// Input: the flow file's text up to the first NUL; after it, the bytes that drive the
// simulation (jobs, which task ends next, how).
#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "flow/brace_expansion.h"
#include "flow/flow_file.h"
#include "flow/flow_plan.h"
#include "fuzz/fuzz_check.h"

namespace ff = forklift::flow;

namespace {

void CheckPlan(const ff::Plan& plan) {
  const size_t n = plan.size();
  std::vector<int> level_of(n, -1);
  const auto& levels = plan.Levels();
  for (size_t k = 0; k < levels.size(); ++k) {
    FUZZ_CHECK(!levels[k].empty());
    FUZZ_CHECK(std::is_sorted(levels[k].begin(), levels[k].end()));
    for (ff::TaskId id : levels[k]) {
      FUZZ_CHECK(id < n && level_of[id] == -1);
      level_of[id] = static_cast<int>(k);
    }
  }
  for (size_t id = 0; id < n; ++id) {
    FUZZ_CHECK(level_of[id] >= 0);
    bool has_prev_level = level_of[id] == 0;
    for (ff::TaskId p : plan.Predecessors(id)) {
      FUZZ_CHECK(level_of[p] < level_of[id]);
      has_prev_level |= level_of[p] == level_of[id] - 1;
      auto succ = plan.Successors(p);
      FUZZ_CHECK(std::count(succ.begin(), succ.end(), id) == 1);
    }
    FUZZ_CHECK(has_prev_level);
    for (ff::TaskId s : plan.Successors(id)) {
      auto pred = plan.Predecessors(s);
      FUZZ_CHECK(std::count(pred.begin(), pred.end(), id) == 1);
    }
    FUZZ_CHECK(plan.Predecessors(id).size() == plan.task(id).after.size());
    FUZZ_CHECK(plan.Find(plan.task(id).name) == static_cast<ff::TaskId>(id));
  }
}

void CheckSelect(const ff::Plan& plan, ff::TaskId target) {
  std::set<std::string> want;
  std::vector<ff::TaskId> stack{target};
  while (!stack.empty()) {
    ff::TaskId t = stack.back();
    stack.pop_back();
    if (!want.insert(plan.task(t).name).second) continue;
    for (ff::TaskId p : plan.Predecessors(t)) stack.push_back(p);
  }
  auto sub = plan.Select(plan.task(target).name);
  FUZZ_CHECK(sub.has_value());
  std::set<std::string> got;
  for (const auto& t : sub->spec().tasks) got.insert(t.name);
  FUZZ_CHECK(got == want && sub->size() == want.size());
  CheckPlan(*sub);
}

void Simulate(const ff::Plan& plan, forklift::fuzz::Input& in) {
  using State = ff::Scheduler::State;
  const int jobs = 1 + in.Byte() % 4;
  ff::Scheduler sched(plan, jobs);
  const size_t n = plan.size();
  std::map<std::string, int> pool_running;
  std::vector<int> starts(n, 0);
  std::vector<bool> finished(n, false), failed(n, false), vacated(n, false);
  std::vector<ff::TaskId> holding;  // running tasks holding a slot
  std::vector<ff::TaskId> ended;    // vacated, not finished
  std::set<ff::TaskId> upstream_failed;
  uint32_t lcg = 12345;
  auto next = [&]() -> uint8_t {
    if (!in.empty()) return in.Byte();
    lcg = lcg * 1103515245 + 12345;
    return static_cast<uint8_t>(lcg >> 16);
  };
  for (size_t steps = 0; steps < 4 * n + 8; ++steps) {
    while (auto id = sched.StartNext()) {
      FUZZ_CHECK(*id < n && starts[*id] == 0 && !upstream_failed.count(*id));
      ++starts[*id];
      for (ff::TaskId p : plan.Predecessors(*id))
        FUZZ_CHECK(finished[p] && !(failed[p] && plan.task(p).critical));
      holding.push_back(*id);
      if (const auto& pool = plan.task(*id).pool) {
        FUZZ_CHECK(++pool_running[*pool] <= plan.spec().pools.at(*pool));
      }
      FUZZ_CHECK(sched.running() == static_cast<int>(holding.size()));
      FUZZ_CHECK(sched.running() <= jobs);
      FUZZ_CHECK(sched.state(*id) == State::kRunning);
    }
    if (holding.empty() && ended.empty()) break;
    uint8_t b = next();
    ff::TaskId id;
    bool from_holding = !holding.empty() && (ended.empty() || b % 2 == 0);
    auto& list = from_holding ? holding : ended;
    size_t pick = (b >> 1) % list.size();
    id = list[pick];
    list.erase(list.begin() + static_cast<ptrdiff_t>(pick));
    if (from_holding) {
      if (const auto& pool = plan.task(id).pool) --pool_running[*pool];
    }
    if (from_holding && (b & 0x40)) {
      sched.Vacate(id);
      FUZZ_CHECK(sched.state(id) == State::kEnded);
      ended.push_back(id);
      FUZZ_CHECK(sched.running() == static_cast<int>(holding.size()));
      continue;
    }
    bool fail = b & 0x80;
    finished[id] = true;
    failed[id] = fail;
    auto marked = sched.Finish(id, fail && plan.task(id).critical);
    FUZZ_CHECK(sched.state(id) == State::kFinished);
    if (!(fail && plan.task(id).critical)) FUZZ_CHECK(marked.empty());
    for (ff::TaskId m : marked) {
      FUZZ_CHECK(starts[m] == 0 && upstream_failed.insert(m).second);
      FUZZ_CHECK(sched.state(m) == State::kUpstreamFailed);
    }
    FUZZ_CHECK(sched.running() == static_cast<int>(holding.size()));
  }
  FUZZ_CHECK(holding.empty() && ended.empty());
  FUZZ_CHECK(sched.done());
  for (size_t i = 0; i < n; ++i) {
    // Every task ran once, or was below a critical failure.
    FUZZ_CHECK((starts[i] == 1) != (upstream_failed.count(i) == 1));
    if (upstream_failed.count(i)) {
      bool blocked = false;
      for (ff::TaskId p : plan.Predecessors(i)) {
        blocked |= upstream_failed.count(p) || (failed[p] && plan.task(p).critical);
      }
      FUZZ_CHECK(blocked);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  forklift::fuzz::Input in(data, size);
  std::string_view text = in.Until('\0');

  std::string glob(text.substr(0, 256));
  auto expanded = ff::ExpandBraces(glob, 64);
  if (expanded) {
    FUZZ_CHECK(!expanded->empty() && expanded->size() <= 64);
    for (const auto& p : *expanded) FUZZ_CHECK(p.size() <= glob.size());
    if (glob.find('{') == std::string::npos)
      FUZZ_CHECK(*expanded == std::vector<std::string>{glob});
  }

  auto spec = ff::ParseFlow(text, "fuzz.toml");
  if (!spec) {
    FUZZ_CHECK(spec.error().message.rfind("fuzz.toml", 0) == 0);
    return 0;
  }
  FUZZ_CHECK(ff::CheckGraph(*spec).has_value());
  for (const auto& [pool, limit] : spec->pools) FUZZ_CHECK(limit >= 1);
  auto plan = ff::Plan::Build(*spec);
  FUZZ_CHECK(plan.has_value());
  CheckPlan(*plan);
  if (plan->size() > 0) CheckSelect(*plan, static_cast<ff::TaskId>(plan->size() - 1));
  Simulate(*plan, in);
  return 0;
}
