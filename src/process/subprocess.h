// Run(): one subprocess, start to finish, for `forklift map` (one command per input) and
// `forklift run` (a DAG of shell tasks).
//
//   SpawnOptions opts{.argv = {"/bin/sh", "-c", "grep -c x data.txt"},
//                     .timeout = std::chrono::seconds(30)};
//   Result<Completion> done = Run(opts, stop_token);
//   if (done && done->exit_code == 0) done->stdout_output.WriteTo(1);
//
// How it works (after ninja's subprocess-posix.cc). posix_spawnp starts the child in a
// process group of its own (so a timeout can signal the child and everything it started),
// with an empty signal mask and every signal at its default action, whatever the calling
// thread blocks or this program ignores (the CLI blocks SIGINT/SIGTERM in all threads and
// takes them with sigwait). stdout/stderr come through pipes whose parent ends are
// close-on-exec, so no other job's child inherits them and delays our EOF. The calling
// thread then ppoll()s the pipes, a pidfd for the child (exit without a SIGCHLD handler),
// an eventfd a std::stop_callback writes, and the stdin pipe, with the nearest deadline
// as the timeout: no thread per job, no busy loop, no sleep.
//
// When the job is over. The job ends when its leader (the spawned process) has exited
// and every output pipe has hit EOF. A background grandchild that keeps a pipe open holds
// the job open too, as it would with GNU parallel, but the timeout still applies; if
// instead the pipe's holder left the process group (setsid) and the group is empty, the
// job ends once what is readable has been read. Members that hold no pipe
// (`cmd >/dev/null &`) are not waited for and live on, as under GNU parallel.
//
// Timeouts and stop requests apply `termseq` to the whole process group (TermSeq in
// termseq.h): each signal to -pgid, then up to its wait for the leader to exit and the
// group to be empty, and a final SIGKILL when the sequence ran out. Nothing alive of the
// group outlives Run() then, save processes that left the group on purpose and, after a
// last second of grace, processes stuck in the kernel. Dead members may stay zombies when
// their parent does not reap them (an init that does not reap orphans); Run reaps those
// that are its own children, which orphans are when this program is a child subreaper.
//
// Needs Linux >= 5.3 for pidfd_open; older kernels fall back to polling waitpid(WNOHANG)
// in slices of 1 to 50 ms. What no descriptor announces (a group emptying after its
// leader was reaped) is checked in slices too, but only on those slow paths: a job whose
// leader exits and closes its output costs no timer at all.
#ifndef FORKLIFT_PROCESS_SUBPROCESS_H_
#define FORKLIFT_PROCESS_SUBPROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "forklift/clock.h"
#include "forklift/result.h"
#include "process/output_buffer.h"
#include "process/process_registry.h"
#include "process/termseq.h"

namespace forklift::process {

enum class Stream { kStdout, kStderr };

enum class OutputMode {
  // Into Completion's OutputBuffer (GNU parallel's default --group).
  kCapture,
  // The child writes to this program's fd 1 or 2 directly (GNU parallel's -u).
  kInherit,
  // SpawnOptions::on_output gets each chunk as it arrives (--line-buffer, per-task logs).
  kCallback,
};

enum class InputMode {
  kNull,     // /dev/null, as GNU parallel gives its jobs
  kData,     // SpawnOptions::stdin_data through a pipe, then EOF
  kInherit,  // this program's fd 0 (--tty)
};

// Called on the thread inside Run() with chunks in arrival order per stream; a chunk is
// whatever one read() returned (up to 64 KiB), not a line. An exception it throws ends
// the job (the group is SIGKILLed) and Run() returns Internal.
using OutputCallback = std::function<void(Stream stream, std::string_view bytes)>;

struct SpawnOptions {
  // The program and its arguments; argv[0] without a '/' is looked up in PATH (the
  // PATH of `env` when it sets one, else this program's). Required, non-empty. For a
  // shell command pass {"/bin/sh", "-c", command}.
  std::vector<std::string> argv;
  // Working directory of the child. Default "": this program's.
  std::string cwd;
  // Variables set on top of this program's environment. Default: none.
  std::vector<std::pair<std::string, std::string>> env;
  // Default kNull.
  InputMode stdin_mode = InputMode::kNull;
  // Fed to the child when stdin_mode is kData. A child that exits or closes stdin before
  // reading it all is not an error (the rest is dropped, and no SIGPIPE reaches us).
  std::string stdin_data;
  // Default kCapture for both.
  OutputMode stdout_mode = OutputMode::kCapture;
  OutputMode stderr_mode = OutputMode::kCapture;
  // Required when either mode is kCallback.
  OutputCallback on_output;
  // From the spawn; 0 means none. Default 0.
  Duration timeout{0};
  // Applied to the process group on timeout or stop. Default TermSeq::Default().
  TermSeq termseq = TermSeq::Default();
  // RAM per captured stream before it moves to a temporary file. Default 1 MiB.
  size_t output_memory_limit = OutputBuffer::kDefaultMemoryLimit;
  // Where captured output spills. Default "": $TMPDIR, else /tmp.
  std::string spill_dir;
  // When set, the job's group is registered there while it runs. Default nullptr.
  ProcessRegistry* registry = nullptr;
};

struct Completion {
  // The spawned process, which is also its process group's id; -1 when the program could
  // not be started (see spawn_errno).
  pid_t pid = -1;
  pid_t pgid = -1;
  // Exit status of the leader, or -1 when a signal killed it. 127 (not found) or 126
  // (found but not runnable) when it could not be started, as a shell would say.
  int exit_code = -1;
  // The signal that killed the leader; 0 when it exited.
  int signal = 0;
  // The timeout expired (the termseq was applied). The leader may still have exited on
  // its own before that, with a grandchild holding the output open.
  bool timed_out = false;
  // `stop` was requested while the job ran (the termseq was applied).
  bool cancelled = false;
  // errno of a failed exec (ENOENT, EACCES, ENOEXEC...), 0 when the program started. The
  // message "forklift: cannot run 'x': No such file or directory" then went to stderr,
  // by the stream's mode (the buffer, the callback, or fd 2).
  int spawn_errno = 0;
  // Wall-clock time of the spawn, for GNU parallel's joblog (epoch seconds with ms).
  std::chrono::system_clock::time_point start;
  // From the spawn to the end of the job (leader reaped and output at EOF).
  Duration runtime{0};
  // The captured streams (kCapture); empty for the other modes.
  OutputBuffer stdout_output;
  OutputBuffer stderr_output;
  // Bytes read from each stream (kCapture and kCallback), or of forklift's own message
  // when the program could not be started; 0 for kInherit.
  uint64_t stdout_bytes = 0;
  uint64_t stderr_bytes = 0;

  // Exited 0, not timed out, not cancelled.
  bool ok() const { return exit_code == 0 && signal == 0 && !timed_out && !cancelled; }
};

// Runs one subprocess to the end; blocks the calling thread (which does the waiting
// itself: call it from a worker thread).
// Success: the Completion, also for a program that fails, crashes, times out, cannot be
// found (exit_code 127) or is stopped by `stop` (cancelled).
// Failure: InvalidArgument for an empty argv or kCallback without on_output; NotFound
// or InvalidArgument naming `cwd` when it does not exist or is not a directory (nothing
// is spawned); Cancelled when `stop` was requested before the spawn (nothing is spawned);
// Unavailable when the system is out of processes, memory or descriptors (EAGAIN,
// ENOMEM, EMFILE: worth a retry); Internal for other failures of our own (pipes, ppoll,
// a spill file that cannot be written, an exception from on_output), after SIGKILLing
// and reaping the job's group: no failure leaves a process of ours running.
// Thread-safe: any number of threads may call Run at once. The calling thread's signal
// mask is left as it was; SIGPIPE is blocked around stdin writes only.
Result<Completion> Run(const SpawnOptions& options, const std::stop_token& stop = {});

namespace subprocess_internal {
// Makes Run behave as if pidfd_open did not exist (ENOSYS), to test the fallback.
// Affects Runs that start afterwards, in every thread.
void ForcePidfdFallbackForTesting(bool force);
}  // namespace subprocess_internal

}  // namespace forklift::process

#endif  // FORKLIFT_PROCESS_SUBPROCESS_H_
