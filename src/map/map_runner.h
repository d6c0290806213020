// The `forklift map` run: inputs to jobs, jobs through run_batch (one subprocess each),
// outcomes to output, the joblog, the journal and the halt policy.
#ifndef FORKLIFT_MAP_MAP_RUNNER_H_
#define FORKLIFT_MAP_MAP_RUNNER_H_

#include <functional>
#include <stop_token>

#include "forklift/clock.h"
#include "forklift/result.h"
#include "map/map_options.h"
#include "process/process_registry.h"
#include "process/subprocess.h"

namespace forklift::map {

// Runs one attempt of a job: process::Run by default; tests pass a fake (ninja's
// CommandRunner: "allows tests to abstract out running commands"). Its contract is
// process::Run's: a Completion for every process that ran (failed, killed, timed out per
// SpawnOptions::timeout, or stopped by the token), an error when none could run. Called
// on executor threads, several at once.
using CommandRunner = std::function<Result<process::Completion>(const process::SpawnOptions&,
                                                                const std::stop_token&)>;

// What the run talks to: its descriptors, its time and its processes.
struct MapIo {
  int stdin_fd = 0;
  int stdout_fd = 1;
  int stderr_fd = 2;
  // Retry backoff, --delay and the engine's timings; nullptr: SystemClock(). --timeout
  // is the command runner's (process::Run applies it with real time).
  Clock* clock = nullptr;
  // Default (empty): process::Run.
  CommandRunner run_command;
  // Variables every job gets on top of forklift's environment (the CLI marks its jobs for
  // the orphan watchdog's sweep). Default: none.
  std::vector<std::pair<std::string, std::string>> job_env;
};

// What a caller (the CLI's signal thread) uses to stop a run: `graceful` starts no new
// job and lets running ones finish; `force` also applies the termseq to running jobs.
struct MapStops {
  std::stop_token graceful;
  std::stop_token force;
};

// Runs `options` to the end and returns the exit status by GNU parallel's rules: 0 when
// every job succeeded, 1-100 the number of failed jobs, 101 more than 100, 255 for other
// errors (bad input, which is reported before any job runs), or the --halt rules. Errors
// go to io.stderr_fd as one line. Not thread-safe with itself on the same io.
int RunMap(const MapOptions& options, const MapStops& stops, process::ProcessRegistry& registry,
           const MapIo& io);

}  // namespace forklift::map

#endif  // FORKLIFT_MAP_MAP_RUNNER_H_
