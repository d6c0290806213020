// FlowLock: at most one invocation of a flow per journal at a time. The lock is the
// kernel's (flock(2) on a file beside the journal), so a holder that dies — even by
// SIGKILL — never leaves a stale lock; the holder writes its run id, pid and start time
// into the file so that a refused invocation can say who holds it.
//
// The lock belongs to the open file, so a process forked while it is held (the orphan
// watchdog, given fd() to keep) holds it too until it exits: whoever takes the lock next
// never overlaps what the holder's tasks were still doing.
//
// Thread safety: a FlowLock is used from one thread.
#ifndef FORKLIFT_FLOW_FLOW_LOCK_H_
#define FORKLIFT_FLOW_FLOW_LOCK_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>

#include "forklift/clock.h"
#include "forklift/result.h"

namespace forklift::flow {

class FlowLock {
 public:
  // The lock file of flow `flow_name` in the journal at `journal_path`:
  // "<journal's directory>/flow-<flow_name>.lock".
  static std::string PathFor(const std::string& journal_path, const std::string& flow_name);

  // Takes the lock at `path`, creating the file. With `wait` (> 0), waits up to that long
  // for a holder to let go; a holder whose process is gone (its watchdog is still ending
  // its tasks) is waited for up to 10 s even without `wait`.
  // Success: the held lock, describing this pid. Failure: Aborted "flow 'NAME' is already
  // running: run R,
  // pid P, started T (lock PATH)" when another invocation holds it; InvalidArgument
  // naming the path when the file cannot be created or locked.
  static Result<std::unique_ptr<FlowLock>> Acquire(const std::string& path,
                                                   const std::string& flow_name,
                                                   std::optional<Duration> wait);

  // Writes who holds the lock (run id, this pid, now) for refused invocations to show.
  void Describe(const std::string& run_id);

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

  // Releases the lock (also for processes that inherited it) and closes the file.
  ~FlowLock();
  FlowLock(const FlowLock&) = delete;
  FlowLock& operator=(const FlowLock&) = delete;

 private:
  FlowLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
};

}  // namespace forklift::flow

#endif  // FORKLIFT_FLOW_FLOW_LOCK_H_
