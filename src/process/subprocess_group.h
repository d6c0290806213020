// Process-group liveness for Run() (subprocess.h): is anything of a job's group still
// alive once its leader has been reaped? kill(-pgid, 0) answers "is there any member",
// but members that died and wait for a parent that never reaps them (an orphan whose
// init does not reap, as in some containers) count as members until reaped, and would
// keep a job "alive" forever. So a group that kill() still finds is looked up in /proc.
//
// Internal to the process module. Thread-safe (no shared state).
#ifndef FORKLIFT_PROCESS_SUBPROCESS_GROUP_H_
#define FORKLIFT_PROCESS_SUBPROCESS_GROUP_H_

#include <sys/types.h>

namespace forklift::process::subprocess_internal {

// True when no process of group `pgid` is alive: kill(-pgid, 0) fails with ESRCH, or
// /proc lists only zombies in it. Reaps group members that are this program's own
// children first (orphans reparented to us when this program is a child subreaper), so
// call it only once the group's leader has been reaped, or it may reap the leader.
// Without a readable /proc, a group that kill() finds counts as alive.
bool GroupGone(pid_t pgid);

// True when /proc lists a process of group `pgid` that is not a zombie (or /proc cannot
// be read). Costs a read of /proc/<pid>/stat per process on the machine.
bool GroupHasLiveMember(pid_t pgid);

}  // namespace forklift::process::subprocess_internal

#endif  // FORKLIFT_PROCESS_SUBPROCESS_GROUP_H_
