// --halt: when `forklift map` stops early, and the exit status it stops with, exactly as
// GNU parallel 20221122 decides both.
//
//   --halt never            run everything (the default)
//   --halt soon,fail=N      after N failed jobs start nothing new; let running jobs end
//   --halt now,fail=N       after N failed jobs kill the running ones and exit
//   ...,fail=N%  ...,success=N  ...,success=N%  ...,done=N  ...,done=N%
//   legacy: 0 = never, 1 = soon,fail=1, 2 = now,fail=1, -1 = soon,success=1,
//           -2 = now,success=1, N% = soon,fail=N%
//
// A job is failed when its exit status or its signal is non-zero, counted once, after its
// last retry. N% is a share of all jobs, so it needs the total (GNU parallel reads all
// input first).
//
// Exit status (GNU parallel's rules):
//  - without --halt, or when the condition was never met: the number of failed jobs,
//    at most 101 (for %: the percentage of started jobs that failed, rounded up);
//  - halted on fail=N or done=N: min(failed, 101), or for N%: the failed percentage of
//    all jobs, rounded up; when the threshold is exactly 1 job, the exit status of the
//    job that met it instead (128 + its signal when a signal ended it);
//  - halted on success: 0.
#ifndef FORKLIFT_MAP_HALT_POLICY_H_
#define FORKLIFT_MAP_HALT_POLICY_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "forklift/result.h"

namespace forklift::map {

enum class HaltWhen { kNever, kSoon, kNow };
enum class HaltOn { kFail, kSuccess, kDone };
enum class HaltDecision { kContinue, kSoon, kNow };

struct HaltPolicy {
  HaltWhen when = HaltWhen::kNever;
  HaltOn on = HaltOn::kFail;
  bool percent = false;  // value is N% of all jobs, else a count of jobs
  uint64_t value = 0;    // N

  friend bool operator==(const HaltPolicy&, const HaltPolicy&) = default;
};

// Parses a --halt value (both forms above; ',' and '=' separate alike, as in GNU
// parallel). On failure returns InvalidArgument "forklift map: bad --halt 'TEXT': ...".
// Thread-safe.
Result<HaltPolicy> ParseHaltPolicy(std::string_view text);

// Counts finished jobs and applies a HaltPolicy. Not thread-safe: the runner's one
// completion path feeds it.
class HaltTracker {
 public:
  explicit HaltTracker(HaltPolicy policy) : policy_(policy) {}

  // Records a job that finished for good (no retry left): its exit status (WEXITSTATUS;
  // GNU parallel logs -1 for a timeout) and signal (0 if none). `total_jobs` is the
  // number of jobs in the run, or 0 while unknown (then a % policy cannot trigger yet).
  // Returns what to do now; once it said kSoon or kNow it keeps saying so for jobs that
  // still meet the condition.
  HaltDecision OnJobDone(int exit_value, int signal, uint64_t total_jobs);

  // The exit status for the run, 0..255. `total_started` counts the jobs started (used by
  // a % policy that never triggered).
  int ExitStatus(uint64_t total_started) const;

  // Whether the condition was met at least once.
  bool halted() const { return halt_exit_status_.has_value(); }
  uint64_t completed() const { return completed_; }
  uint64_t failed() const { return failed_; }

 private:
  HaltPolicy policy_;
  uint64_t completed_ = 0;
  uint64_t failed_ = 0;
  uint64_t total_jobs_ = 0;  // fixed the first time a % policy needs it
  double threshold_ = 0;     // jobs; for % computed once from total_jobs_
  std::optional<int> halt_exit_status_;
};

}  // namespace forklift::map

#endif  // FORKLIFT_MAP_HALT_POLICY_H_
