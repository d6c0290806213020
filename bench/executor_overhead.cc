// Per-task overhead of an empty task: forklift::TaskGroup on a 2-worker forklift::Executor
// against oneTBB's tbb::task_group in a 2-thread task_arena (the anchor). Both sides run the
// same number of empty tasks per run, submitted from the main thread, then wait; runs
// alternate between the two so that machine noise hits both alike.
//
//   executor_overhead [--tasks N] [--runs R] [--workers W]
//
// prints one line per run and then
//   forklift_ns_per_task=X tbb_ns_per_task=Y ratio=X/Y
// (medians). Without oneTBB (FORKLIFT_BENCH_HAVE_TBB unset) only forklift is measured.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "forklift/executor.h"

#ifdef FORKLIFT_BENCH_HAVE_TBB
#include <tbb/global_control.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>
#endif

namespace {

using Clock = std::chrono::steady_clock;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The tasks are empty but not optimized away: each bumps its own thread's counter (one
// cache line per thread, so the count adds no contention to what is measured), and a run
// counts only if every task ran.
constexpr size_t kMaxThreads = 64;
struct alignas(64) Counter {
  std::atomic<uint64_t> n{0};
};
Counter counters[kMaxThreads];

void Bump(int thread_index) {
  size_t i = thread_index < 0 ? kMaxThreads - 1 : static_cast<size_t>(thread_index) % kMaxThreads;
  counters[i].n.fetch_add(1, std::memory_order_relaxed);
}

void ResetCounts() {
  for (auto& c : counters) c.n.store(0, std::memory_order_relaxed);
}

uint64_t Counted() {
  uint64_t total = 0;
  for (auto& c : counters) total += c.n.load(std::memory_order_relaxed);
  return total;
}

bool ParseSize(const char* s, size_t& out) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (end == s || *end != '\0' || v == 0) return false;
  out = static_cast<size_t>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  size_t tasks = 1'000'000, runs = 7, workers = 2;
  for (int i = 1; i < argc; ++i) {
    size_t* target = nullptr;
    if (std::strcmp(argv[i], "--tasks") == 0) target = &tasks;
    if (std::strcmp(argv[i], "--runs") == 0) target = &runs;
    if (std::strcmp(argv[i], "--workers") == 0) target = &workers;
    if (target == nullptr || i + 1 >= argc || !ParseSize(argv[i + 1], *target)) {
      std::fprintf(
          stderr,
          "executor_overhead: bad option '%s' (--tasks N, --runs R, --workers W; all >= 1)\n",
          argv[i]);
      return 2;
    }
    ++i;
  }

  auto executor = forklift::Executor::Create({.workers = workers});
  if (!executor) {
    std::fprintf(stderr, "executor_overhead: %s\n", executor.error().ToString().c_str());
    return 1;
  }
  auto run_forklift = [&]() -> double {
    ResetCounts();
    auto t0 = Clock::now();
    forklift::TaskGroup group(**executor);
    for (size_t i = 0; i < tasks; ++i) {
      if (!group.Run([] { Bump(forklift::Executor::CurrentWorkerIndex()); })) {
        std::fprintf(stderr, "executor_overhead: TaskGroup::Run failed\n");
        std::exit(1);
      }
    }
    group.Wait();
    double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
    if (Counted() != tasks) {
      std::fprintf(stderr, "executor_overhead: forklift ran %llu of %zu tasks\n",
                   static_cast<unsigned long long>(Counted()), tasks);
      std::exit(1);
    }
    return ns / static_cast<double>(tasks);
  };

#ifdef FORKLIFT_BENCH_HAVE_TBB
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, workers);
  tbb::task_arena arena(static_cast<int>(workers));
  auto run_tbb = [&]() -> double {
    ResetCounts();
    auto t0 = Clock::now();
    arena.execute([&] {
      tbb::task_group group;
      for (size_t i = 0; i < tasks; ++i) {
        group.run([] { Bump(tbb::this_task_arena::current_thread_index()); });
      }
      group.wait();
    });
    double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
    if (Counted() != tasks) {
      std::fprintf(stderr, "executor_overhead: tbb ran %llu of %zu tasks\n",
                   static_cast<unsigned long long>(Counted()), tasks);
      std::exit(1);
    }
    return ns / static_cast<double>(tasks);
  };
#endif

  std::vector<double> fk, tb;
  for (size_t r = 0; r < runs; ++r) {
    fk.push_back(run_forklift());
#ifdef FORKLIFT_BENCH_HAVE_TBB
    tb.push_back(run_tbb());
    std::printf("run %zu: forklift %.1f ns/task, tbb %.1f ns/task\n", r + 1, fk.back(), tb.back());
#else
    std::printf("run %zu: forklift %.1f ns/task\n", r + 1, fk.back());
#endif
    std::fflush(stdout);
  }
#ifdef FORKLIFT_BENCH_HAVE_TBB
  double f = Median(fk), t = Median(tb);
  std::printf(
      "tasks=%zu runs=%zu workers=%zu forklift_ns_per_task=%.1f tbb_ns_per_task=%.1f ratio=%.2f\n",
      tasks, runs, workers, f, t, f / t);
#else
  std::printf(
      "tasks=%zu runs=%zu workers=%zu forklift_ns_per_task=%.1f tbb_ns_per_task=NA ratio=NA "
      "(oneTBB not found at build time)\n",
      tasks, runs, workers, Median(fk));
#endif
  return 0;
}
