// Internal to Run() (subprocess.h): the state of one job, shared by the spawning half
// (subprocess_spawn.cc) and the waiting half (subprocess.cc).
//
// Thread safety: a Job belongs to the thread inside Run().
#ifndef FORKLIFT_PROCESS_SUBPROCESS_JOB_H_
#define FORKLIFT_PROCESS_SUBPROCESS_JOB_H_

#include <spawn.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "core/fd.h"
#include "forklift/clock.h"
#include "forklift/result.h"
#include "process/subprocess.h"

namespace forklift::process::subprocess_internal {

using SteadyClock = std::chrono::steady_clock;

// Slices for what no descriptor announces: a group emptying after its leader was reaped,
// and (without pidfd_open) the leader's exit. Doubling from 1 ms keeps quick endings
// quick and a long wait at 20 wakeups a second.
inline constexpr Duration kMinSlice = std::chrono::milliseconds(1);
inline constexpr Duration kMaxSlice = std::chrono::milliseconds(50);

using core::CloseFd;
using core::ErrnoText;

// core::ErrnoError("subprocess: what", err): Unavailable for a lack of processes, memory
// or descriptors (worth a retry), else Internal.
inline tl::unexpected<Error> SysError(const char* what, int err) {
  return tl::unexpected(core::ErrnoError(std::string("subprocess: ") + what, err));
}

enum class EndReason { kNone, kTimeout, kStop };

// The state of one job from spawn to end. The destructor guarantees that nothing of the
// job keeps running when Run leaves early on an error.
class Job {
 public:
  Job(const SpawnOptions& options, Completion& done) : options_(options), done_(done) {}
  // Leaving early (an error): SIGKILLs the group and reaps the leader. Always: closes
  // the descriptors and unregisters the group.
  ~Job();
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  // Starts the child (subprocess_spawn.cc).
  // Success: true when the child runs, false when it could not be started (done_ then
  // says 127/126 and stderr has the message). Failure: as Run's, nothing left running.
  Result<bool> Spawn();
  // Waits for the end of the job, applying the timeout and `stop` (subprocess.cc).
  // `stop_fd`: an eventfd when `stop` can be requested, else -1; must outlive the call.
  // Failure: as Run's; the destructor then cleans up.
  Status Wait(const std::stop_token& stop, int stop_fd);
  TimePoint spawned_at() const { return spawned_at_; }

 private:
  struct Output {
    int fd = -1;
    Stream stream;
    OutputMode mode;
    OutputBuffer* buffer;
    uint64_t* bytes;
  };

  // Spawn's steps (subprocess_spawn.cc).
  // Which program to start: argv[0] as given (searched in our PATH when it has no '/'),
  // or found in the PATH that `env` sets; nullopt when that PATH has no such program.
  struct Program {
    std::string path;
    bool search_path = false;  // posix_spawnp rather than posix_spawn
  };
  // The Completion's outputs and start, the output streams, spawned_at_.
  void ResetCompletion();
  std::optional<Program> ResolveProgram() const;
  // The child's stdin (/dev/null, a pipe we feed, or ours), its stdout/stderr pipes
  // (unless inherited) and its working directory, as file actions; the child's pipe ends
  // go to `child_fds` (0-2), ours to stdin_fd_ and out_. Failure: SysError.
  Status SetUpStdio(posix_spawn_file_actions_t* actions, int child_fds[3]);
  // posix_spawn failed with `err`: a lack of resources (Unavailable), a working directory
  // gone since Run checked it (NotFound), else the 127/126 Completion (false).
  Result<bool> JudgeSpawnError(int err);
  // The child runs: registers its group, opens its pidfd, arms the timeout.
  void Started(pid_t pid);
  // The 127/126 Completion and its "cannot run" message for a failed exec.
  Status ReportSpawnFailure(int err);
  // Hands bytes read from a stream to its buffer or callback.
  Status Deliver(Output& out, std::string_view bytes);
  // One read from a readable pipe; closes it at EOF.
  Status ReadOnce(Output& out, char* chunk);
  // Reads what is readable now, without waiting: the group is gone, and whoever still
  // holds the pipes is not part of the job.
  Status Drain(char* chunk);
  // Feeds stdin_data as far as the pipe takes it; closes our end when done or on EPIPE.
  void WriteStdin();
  // waitpid for the leader (`block` false: the polling fallback) and its exit status.
  Status Reap(bool block);
  // Starts the termseq for a timeout or a stop request.
  void BeginTermination(EndReason reason, TimePoint now);
  // Sends the next termseq signal, the final SIGKILL, or gives up on stragglers.
  void AdvanceTermination(TimePoint now);

  const SpawnOptions& options_;
  Completion& done_;
  Output out_[2];
  int stdin_fd_ = -1;  // our end of the stdin pipe, O_NONBLOCK
  size_t stdin_written_ = 0;
  int pidfd_ = -1;
  pid_t pid_ = -1;
  bool reaped_ = false;
  bool registered_ = false;
  bool clean_end_ = false;
  TimePoint spawned_at_;
  bool stdin_epipe_ = false;  // a stdin write met EPIPE (and so raised SIGPIPE)

  EndReason ending_ = EndReason::kNone;
  size_t next_step_ = 0;  // the termseq step to send at term_next_
  bool final_kill_sent_ = false;
  bool given_up_ = false;  // final wait over; stragglers left to the kernel
  // The next timed event: the timeout while ending_ is kNone, then the next termseq step.
  TimePoint term_next_ = TimePoint::max();
  // Once the leader is reaped: when to look whether the group is empty.
  TimePoint next_group_check_ = TimePoint::max();
  Duration group_slice_ = kMinSlice;
  // Without a pidfd: when to try waitpid(WNOHANG) next.
  TimePoint next_reap_poll_ = TimePoint::max();
  Duration reap_slice_ = kMinSlice;
};

}  // namespace forklift::process::subprocess_internal

#endif  // FORKLIFT_PROCESS_SUBPROCESS_JOB_H_
