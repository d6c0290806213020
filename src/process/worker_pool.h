// WorkerPool: a fixed set of pre-forked worker processes that run a handler over opaque
// byte strings, for run_batch(..., {.isolation = Isolation::kProcess}). An item that
// crashes its worker (SIGSEGV, abort, _exit) or overruns its deadline loses only itself:
// the call reports the signal, exit status or timeout, the worker's whole process group
// is killed, and a fresh worker takes the slot.
//
//   auto pool = WorkerPool::Start({.workers = 4},
//       [](std::string_view request, TimePoint deadline) { return Work(request); });
//   Result<std::string> r = (*pool)->Call(slot, bytes, deadline, stop_token);
//
// How it works. fork() in a multi-threaded process leaves the child with a copy of every
// lock as it was at that instant, so Start() forks exactly once: a single-threaded
// "zygote" that does nothing but fork workers on request (over a control socketpair) and
// reap them. Each worker is a child of the zygote with its own process group and a
// SOCK_STREAM socketpair to the parent; the zygote passes the parent's end and a pidfd for
// the worker back over SCM_RIGHTS. A call writes one length-prefixed request (which
// carries the deadline) and ppoll()s the socket, the worker's pidfd (death, even when a
// grandchild keeps the socket open) and an eventfd that a std::stop_callback signals.
// The zygote is a child subreaper, kills a dead worker's process group while the dead
// leader still pins the group id, and reports its exact wait status on the next request.
//
// What a worker inherits: a copy of the parent's memory as of Start() (the handler may
// capture pointers into it), standard streams and other descriptors not marked
// close-on-exec. Descriptors marked close-on-exec are closed in the zygote: their owners
// asked for them not to outlive this program image, and a pipe write end held by a
// worker would keep another subprocess's reader from ever seeing EOF. Signal handlers are
// reset to SIG_DFL as exec would (ignored signals stay ignored), and the signal mask is
// emptied, whatever the forking thread had blocked. stdio buffers are flushed before the fork so
// that workers never repeat the parent's pending output; a worker flushes its own stdio when the
// pool shuts it down in an orderly way, never after a crash.
//
// Needs Linux >= 5.3 (pidfd_open).
#ifndef FORKLIFT_PROCESS_WORKER_POOL_H_
#define FORKLIFT_PROCESS_WORKER_POOL_H_

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/clock.h"
#include "forklift/result.h"

namespace forklift::process {

// Runs in a worker process: request bytes -> response bytes. `deadline` is the item's,
// on the real steady clock. An exception escaping the handler becomes an Internal error
// for that call; the worker lives on.
using WorkerHandler = std::function<std::string(std::string_view request, TimePoint deadline)>;

struct WorkerPoolOptions {
  // Worker processes, 1 to 65536. Default 1.
  size_t workers = 1;
  // Largest request or response in bytes. A larger request is refused (InvalidArgument)
  // without reaching a worker; a worker that announces a larger response is killed and
  // the call fails (Internal). Default 1 GiB.
  size_t max_message_bytes = size_t{1} << 30;
  // When false, workers run with RLIMIT_CORE 0: a worker is a copy of the whole parent,
  // and dumping that for every crashing item would make a crash cost seconds instead of
  // milliseconds. Default false.
  bool allow_core_dumps = false;
};

namespace worker_internal {
struct ZygoteChild;
}  // namespace worker_internal

class WorkerPool {
 public:
  // Forks the zygote, then has it fork `options.workers` workers. The handler is copied
  // into them by fork, so it may capture pointers to the caller's stack and heap; the
  // workers see those as they were at this call.
  //
  // Every lock another thread holds at this moment stays locked forever in the workers,
  // so call it where the handler needs no lock that other threads may be holding (a
  // handler that takes no locks of the parent's is always fine). Any thread may call it;
  // the pool does not depend on that thread living on.
  // Success: a pool whose every slot holds a live worker. Failure: InvalidArgument naming
  // "workers" when options.workers is 0 or over 65536 (or for an empty handler); Internal when a
  // system call fails (nothing is left running then). Thread-safe: any thread may start pools; each
  // has its own zygote.
  static Result<std::unique_ptr<WorkerPool>> Start(const WorkerPoolOptions& options,
                                                   WorkerHandler handler);

  // Closes every worker's socket (an idle worker flushes its stdio and exits 0), waits up
  // to 0.5 s, SIGKILLs what is left, then closes the control channel: the zygote SIGKILLs
  // each worker's process group, reaps everything and exits, and is reaped here (SIGKILLed
  // if it takes over 2 s). No orphan and no zombie remains, save processes that left
  // their worker's process group (setsid) on purpose.
  // Not thread-safe: no Call may be in flight.
  ~WorkerPool();

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Sends `request` to the worker in `slot` and waits for its response until `deadline`
  // or until `stop` is requested.
  // Success: the handler's response.
  // Failure, the worker killed (SIGKILL) and replaced in each case:
  //   DeadlineExceeded "worker exceeded its deadline; killed";
  //   Internal "worker process died: killed by signal 11 (SIGSEGV)" or "...: exited with
  //     status 3" when the worker died during the call (its process group is killed too);
  //   Cancelled when `stop` was requested during the call;
  //   Internal when the worker broke the protocol (an oversized or malformed response).
  // Failure, the worker kept: Internal "worker handler threw: ..."; DeadlineExceeded or
  // Cancelled when the deadline had passed or stop was requested before the request was
  // sent; InvalidArgument for a bad slot or an oversized request. Internal when no
  // replacement worker can be forked (then the slot stays empty and later calls retry).
  // A worker found dead before the request reached it (killed while idle) is replaced
  // and the request goes to the new one: the item is not blamed for that death.
  // Thread-safe across distinct slots; one caller per slot at a time.
  Result<std::string> Call(size_t slot, std::string_view request, TimePoint deadline,
                           const std::stop_token& stop);

  // Number of slots (options.workers). Thread-safe.
  size_t size() const { return slots_.size(); }

  // The pid (== process group id) of the worker now in `slot`, 0 if the slot is empty or
  // out of range. For logs and tests. Same thread-safety as Call for that slot.
  pid_t worker_pid(size_t slot) const;

 private:
  struct Slot {
    int sock = -1;        // our end of the worker's socketpair, O_NONBLOCK
    int pidfd = -1;       // the worker's pidfd: readable once it has exited
    int stop_fd = -1;     // eventfd written by the std::stop_callback of the current call
    pid_t pid = 0;        // 0: no worker (a replacement failed)
    uint64_t serial = 0;  // the zygote's name for the worker
  };
  enum class Outcome;

  WorkerPool(const WorkerPoolOptions& options, WorkerHandler handler);

  Status StartZygote();
  // Kills the slot's worker, if any, waits for it to exit, and asks the zygote to reap
  // it and fork a replacement. *old_status gets the old worker's wait status when the
  // zygote reaped it, else stays -1. On failure the slot is left empty.
  Status ReplaceWorker(Slot& slot, int* old_status);
  // One request/response exchange with the slot's worker.
  Outcome Exchange(Slot& slot, std::string_view request, TimePoint deadline, std::string* response,
                   uint32_t* kind);
  Outcome Send(Slot& slot, std::string_view request, TimePoint deadline);
  Outcome Receive(Slot& slot, TimePoint deadline, std::string* response, uint32_t* kind);
  Outcome Wait(const Slot& slot, short events, TimePoint deadline) const;

  const WorkerPoolOptions options_;
  // Must sit at a fixed heap address before the zygote forks: the zygote and workers
  // call their copy of it.
  const WorkerHandler handler_;
  // The zygote's table of its children. Allocated here, before the fork, so that the
  // zygote never allocates (the parent's malloc state is copied mid-flight).
  std::vector<worker_internal::ZygoteChild> zygote_children_;
  std::vector<Slot> slots_;

  std::mutex control_mu_;     // one request/reply on the control channel at a time
  int control_fd_ = -1;       // guarded by control_mu_ after Start
  bool zygote_gone_ = false;  // guarded by control_mu_
  pid_t zygote_pid_ = 0;
  int zygote_pidfd_ = -1;
};

}  // namespace forklift::process

#endif  // FORKLIFT_PROCESS_WORKER_POOL_H_
