// The child side of WorkerPool: the zygote's loop and the worker's loop. Private to the
// process module; see worker_pool.h for the design.
#ifndef FORKLIFT_PROCESS_WORKER_ZYGOTE_H_
#define FORKLIFT_PROCESS_WORKER_ZYGOTE_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "process/worker_pool.h"

namespace forklift::process::worker_internal {

// One entry of the zygote's table of its workers.
struct ZygoteChild {
  enum State : int {
    kFree = 0,
    kRunning,    // forked, not yet seen to exit
    kExited,     // reaped; `status` waits for the parent's release request
    kAbandoned,  // the parent gave up on it before it exited: reap it and free the entry
  };
  pid_t pid = 0;
  int status = 0;
  State state = kFree;
  uint64_t serial = 0;  // unique per pool; names the worker to the parent
};

// Everything the zygote needs, built by the parent before fork() and read by the zygote
// from its copy of the parent's memory.
struct ZygoteConfig {
  int control_fd = -1;         // the zygote's end of the control socketpair
  int parent_control_fd = -1;  // the parent's end, which the zygote must close
  pid_t parent_pid = 0;
  // PR_SET_PDEATHSIG fires when the parent *thread* that forked the zygote exits, so it
  // is only used (with SIGTERM, which the zygote handles as "shut down") when that thread
  // is the main thread. Either way the zygote shuts down when the control channel reaches
  // EOF, which is when the parent process dies or closes it.
  bool die_with_parent_thread = false;
  size_t max_message_bytes = 0;
  bool allow_core_dumps = false;
  const WorkerHandler* handler = nullptr;
  ZygoteChild* children = nullptr;
  size_t capacity = 0;
};

// The zygote's body, called in the child right after fork(). Never returns.
[[noreturn]] void RunZygote(const ZygoteConfig& config);

}  // namespace forklift::process::worker_internal

#endif  // FORKLIFT_PROCESS_WORKER_ZYGOTE_H_
