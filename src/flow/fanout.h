// A fan-out task (`foreach` / `foreach_cmd`) runs as `forklift map`, a child process of the
// task (flow/ does not link map/, which sits beside it): the command line it runs, and what
// its joblog says afterwards. Pure functions; thread-safe.
#ifndef FORKLIFT_FLOW_FANOUT_H_
#define FORKLIFT_FLOW_FANOUT_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flow/flow_file.h"

namespace forklift::flow {

// `text` as one word for a POSIX shell: as is when it holds only safe characters, else in
// single quotes (each ' written as '\'').
std::string ShellWord(std::string_view text);

// Where and how one fan-out runs.
struct FanoutCall {
  std::string forklift_exe;  // the forklift program
  std::string journal;       // absolute: map runs in the task's directory
  std::string run_id;        // the map's run id: FLOW_RUN.TASK
  std::string joblog;        // beside the task's log
  int flow_jobs = 1;         // the flow's -j: a task's `jobs` may only lower it
  bool resume = false;       // a later invocation: only failed and never-run items run
};

// The argv of task `t`'s map: `forklift map ... CMD :::: FILE` for `foreach`, else
// `/bin/sh -c 'FOREACH_CMD | exec forklift map ...'` (the items on the map's stdin). The
// task's timeout and retries become the map's per-item --timeout and --retries (GNU
// parallel's count: attempts in all).
std::vector<std::string> FanoutArgv(const TaskSpec& t, const FanoutCall& call);

// A fan-out task's items, as its map left them.
struct FanoutCounts {
  uint64_t succeeded = 0, failed = 0;
  std::vector<std::pair<std::string, double>> slowest;  // command, seconds
};

// The `n` slowest jobs of a GNU parallel joblog (its last row per job), slowest first. A
// missing file or a malformed row reads as no jobs (the report only shows them).
std::vector<std::pair<std::string, double>> SlowestJobs(const std::filesystem::path& joblog,
                                                        size_t n);

}  // namespace forklift::flow

#endif  // FORKLIFT_FLOW_FANOUT_H_
