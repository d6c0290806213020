// OrphanWatchdog: ends this program's running subprocess groups when this program dies
// without ending them itself — a SIGKILL, the OOM killer, a crash — so that no job of
// `forklift map` or task of `forklift run` outlives forklift for long (DESIGN.md).
//
//   auto dog = OrphanWatchdog::Start({});
//   registry.Watch(dog->get());      // Run() then reports each group it starts and ends
//
// How it works. Start() forks a small watchdog process that does nothing but read a
// socket: each running group is announced on it when it starts and withdrawn when it ends
// (one message each, so any thread may send without a lock). When the socket reaches
// end-of-file without the destructor's goodbye — this program is gone —
// the watchdog applies the TermSeq to every group still announced (each signal to -pgid,
// its wait while any of them lives, a last SIGKILL) and exits. It also notices a parent
// that died while a leaked copy of the socket's other end keeps it open (getppid()
// changes; checked twice a second).
//
// The watchdog sits in a process group of its own and ignores SIGINT, SIGTERM and SIGHUP,
// so a terminal's Ctrl-C or a `kill -9 -PGID` of forklift's group does not take it along.
// It keeps the descriptors named in keep_fds (e.g. a flock(2)ed lock file: it then holds
// the lock until its groups are gone, so whoever takes the lock next never overlaps them)
// and closes every other one, so it holds no pipe or terminal a reader waits on.
//
// It is forked from a process that may have threads, so it only makes async-signal-safe
// system calls into memory set up before the fork; `capacity` bounds the groups it
// tracks at once (announcements beyond it are dropped: those groups are not watched).
//
// What it cannot do: a SIGKILL of the watchdog itself (e.g. `pkill -9 forklift`) leaves the
// groups running; front doors that need more (flows) also find survivors on their next run.
// A group started in the microseconds between its spawn and its announcement is not
// watched; then_exec covers it (map marks its jobs' environment and sweeps by the mark).
//
// Thread safety: Add and Remove may be called from any thread at once; the destructor
// must not run concurrently with them.
#ifndef FORKLIFT_PROCESS_ORPHAN_WATCHDOG_H_
#define FORKLIFT_PROCESS_ORPHAN_WATCHDOG_H_

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "forklift/result.h"
#include "process/termseq.h"

namespace forklift::process {

struct WatchdogOptions {
  // Applied to the groups left when this program dies. Default TermSeq::Default().
  TermSeq termseq = TermSeq::Default();
  // Most groups watched at once. Default 65536.
  size_t capacity = 65536;
  // Descriptors the watchdog keeps open (besides its socket). Default: none.
  std::vector<int> keep_fds;
  // Run (execv) once the groups are ended, when this program died: a sweep that needs
  // more than async-signal-safe calls, such as `forklift __end-survivors NAME VALUE`,
  // which ends every process whose environment has NAME=VALUE (a job that started in the
  // moment before its announcement carries the marker from its first instruction).
  // argv[0] is a path. Default: none.
  std::vector<std::string> then_exec;
};

class OrphanWatchdog {
 public:
  // Forks the watchdog. Success: a running watchdog watching no group. Failure: Internal
  // naming socketpair(2) or fork(2) and errno (nothing is left running).
  static Result<std::unique_ptr<OrphanWatchdog>> Start(const WatchdogOptions& options);

  // Tells the watchdog to exit without signalling anything and reaps it.
  ~OrphanWatchdog();
  OrphanWatchdog(const OrphanWatchdog&) = delete;
  OrphanWatchdog& operator=(const OrphanWatchdog&) = delete;

  // Announces a running group (pgid > 0) / withdraws it. A failed write (the watchdog is
  // gone) is ignored: watching is best effort, the jobs run either way.
  void Add(pid_t pgid);
  void Remove(pid_t pgid);

  // The watchdog's pid (for tests and diagnostics).
  pid_t pid() const { return pid_; }

 private:
  OrphanWatchdog(pid_t pid, int write_fd) : pid_(pid), write_fd_(write_fd) {}
  void Send(int op, pid_t pgid);

  pid_t pid_;
  int write_fd_;
};

}  // namespace forklift::process

#endif  // FORKLIFT_PROCESS_ORPHAN_WATCHDOG_H_
