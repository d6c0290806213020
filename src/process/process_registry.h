// ProcessRegistry: the process groups of the subprocesses running right now, so that one
// place can signal them all. Run() (subprocess.h) adds a job's group right after spawning
// it and removes it once the job is over. The CLI's second SIGINT/SIGTERM ("kill running
// work and exit", DESIGN.md) calls Shutdown(SIGKILL) or KillAll() from its signal thread.
//
// Process group ids stay valid as long as a group has a member, including its unreaped
// leader, so signalling a registered group reaches that job only. (A group whose last
// member has just exited, before Run removes it, could in theory have its id reused by a
// new group leader in that window of microseconds; pid allocation is cyclic, which makes
// that practically impossible.)
//
// Thread safety: every method is thread-safe. KillAll and Shutdown allocate nothing and
// only take a mutex and call kill(2), so a dedicated signal thread (sigwait) may call
// them at any time; they are not for use inside a signal handler.
#ifndef FORKLIFT_PROCESS_PROCESS_REGISTRY_H_
#define FORKLIFT_PROCESS_PROCESS_REGISTRY_H_

#include <sys/types.h>

#include <cstddef>
#include <mutex>
#include <vector>

namespace forklift::process {

class OrphanWatchdog;

class ProcessRegistry {
 public:
  ProcessRegistry() = default;
  ProcessRegistry(const ProcessRegistry&) = delete;
  ProcessRegistry& operator=(const ProcessRegistry&) = delete;

  // Registers a running group (pgid > 0). After Shutdown(sig) the group is also sent sig
  // at once, so that work started while shutting down does not escape it.
  // Registering a group twice registers it twice (Remove drops one registration).
  void Add(pid_t pgid);

  // Drops one registration of pgid; no-op when it is not registered.
  void Remove(pid_t pgid);

  // Sends `signal` to every registered group (kill(-pgid, signal)); groups stay
  // registered, their runners remove them when they have reaped them.
  // Returns how many groups the signal reached (kill succeeded).
  int KillAll(int signal);

  // KillAll(signal), and from now on Add() sends `signal` to every new group too.
  // Returns what KillAll returned. A second call replaces the signal.
  int Shutdown(int signal);

  // From now on every Add and Remove is also told to `watchdog` (nullptr: none), which
  // then ends the registered groups if this program dies (orphan_watchdog.h). Call it
  // before the first Add; `watchdog` must outlive the registrations.
  void Watch(OrphanWatchdog* watchdog);

  // Registered groups now.
  size_t size() const;
  // The signal Shutdown() set, 0 before any Shutdown().
  int shutdown_signal() const;

 private:
  mutable std::mutex mu_;
  std::vector<pid_t> groups_;
  int shutdown_signal_ = 0;
  OrphanWatchdog* watchdog_ = nullptr;
};

}  // namespace forklift::process

#endif  // FORKLIFT_PROCESS_PROCESS_REGISTRY_H_
