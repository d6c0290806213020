// Survivors: processes an earlier, killed invocation left running, found by a mark in their
// environment (a flow task's FORKLIFT_RUN_ID), which every descendant inherits, also one
// that left its process group. The next invocation ends them before it starts anything,
// so a resume never runs a task beside a copy of it from the killed run — even when the
// killed run's watchdog (orphan_watchdog.h) was killed too.
//
// A pid can be reused, but a reused pid carries another environment, so the mark never
// names a stranger. Only processes whose /proc/PID/environ this user may read are seen
// (the user's own): that is every task forklift started.
//
// Thread safety: both functions are thread-safe.
#ifndef FORKLIFT_PROCESS_SURVIVORS_H_
#define FORKLIFT_PROCESS_SURVIVORS_H_

#include <sys/types.h>

#include <span>
#include <string_view>
#include <vector>

#include "process/termseq.h"

namespace forklift::process {

// Live (not zombie) processes, other than this one, whose environment holds exactly
// NAME=VALUE. Never fails: an unreadable /proc finds nothing.
std::vector<pid_t> FindProcessesWithEnv(std::string_view name, std::string_view value);

// Applies `seq` to each process and its process group (each signal to -pgid and to pid),
// waiting after each step until they are gone (exited or zombies), then SIGKILLs what is
// left. Returns when none is alive, or after one more second for processes stuck in the
// kernel. Returns how many were alive when it started.
int EndProcesses(std::span<const pid_t> pids, const TermSeq& seq);

// Whether `pid` is alive and not a zombie.
bool IsLive(pid_t pid);

}  // namespace forklift::process

#endif  // FORKLIFT_PROCESS_SURVIVORS_H_
