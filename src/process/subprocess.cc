#include "process/subprocess.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <optional>

#include "process/subprocess_group.h"
#include "process/subprocess_job.h"

namespace forklift::process {
namespace subprocess_internal {
namespace {

using std::chrono::milliseconds;

constexpr size_t kReadChunk = 64 * 1024;
// A group whose leader is gone while a background member keeps the output open may stay
// so for hours; each check may scan /proc, so it slows down further.
constexpr Duration kMaxIdleGroupSlice = milliseconds(250);
// After the final SIGKILL, how long members other than the leader may take to go.
// SIGKILL cannot be caught; only a process stuck in the kernel (D state) outlasts this.
constexpr Duration kFinalKillWait = milliseconds(1000);
// Reads at most this many chunks from pipes held by processes outside an emptied group.
constexpr int kMaxDrainReads = 64;

// Blocks SIGPIPE in this thread while a job's stdin is fed, so that writing to a pipe
// whose reader exited yields EPIPE instead of killing the program; consumes the SIGPIPE
// such a write left pending before restoring the mask.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_set_);
    sigaddset(&pipe_set_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set_, &old_mask_);
  }
  ~SigpipeBlock() { pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr); }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;
  // After a write met EPIPE: takes the SIGPIPE it raised, so that restoring the mask does
  // not deliver it.
  void ConsumePending() {
    sigset_t pending;
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
      timespec zero{0, 0};
      sigtimedwait(&pipe_set_, nullptr, &zero);
    }
  }

 private:
  sigset_t pipe_set_;
  sigset_t old_mask_;
};

timespec ToTimespec(Duration d) {
  auto ns = std::max<int64_t>(0, d.count());
  return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

}  // namespace

Job::~Job() {
  if (pid_ > 0 && !clean_end_) {
    // Leaving on an error: take the whole group down and reap the leader.
    kill(-pid_, SIGKILL);
    if (!reaped_) {
      while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }
  if (registered_) options_.registry->Remove(pid_);
  CloseFd(out_[0].fd);
  CloseFd(out_[1].fd);
  CloseFd(stdin_fd_);
  CloseFd(pidfd_);
}

Status Job::Deliver(Output& out, std::string_view bytes) {
  *out.bytes += bytes.size();
  if (out.mode == OutputMode::kCapture) return out.buffer->Append(bytes);
  try {
    options_.on_output(out.stream, bytes);
  } catch (const std::exception& e) {
    return InternalError(std::string("subprocess: on_output threw: ") + e.what());
  } catch (...) {
    return InternalError("subprocess: on_output threw");
  }
  return OkStatus();
}

Status Job::ReadOnce(Output& out, char* chunk) {
  ssize_t n = read(out.fd, chunk, kReadChunk);
  if (n > 0) return Deliver(out, std::string_view(chunk, static_cast<size_t>(n)));
  if (n == 0) {
    CloseFd(out.fd);
    return OkStatus();
  }
  if (errno == EINTR || errno == EAGAIN) return OkStatus();
  return SysError("read", errno);
}

Status Job::Drain(char* chunk) {
  for (int reads = 0; reads < kMaxDrainReads;) {
    pollfd fds[2];
    nfds_t n = 0;
    for (Output& out : out_) {
      if (out.fd >= 0) fds[n++] = {out.fd, POLLIN, 0};
    }
    if (n == 0 || poll(fds, n, 0) <= 0) return OkStatus();
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      Output& out = out_[0].fd == fds[i].fd ? out_[0] : out_[1];
      FORKLIFT_RETURN_IF_ERROR(ReadOnce(out, chunk));
      ++reads;
    }
  }
  return OkStatus();
}

void Job::WriteStdin() {
  std::string_view rest = std::string_view(options_.stdin_data).substr(stdin_written_);
  ssize_t n = write(stdin_fd_, rest.data(), rest.size());
  if (n > 0) {
    stdin_written_ += static_cast<size_t>(n);
    if (stdin_written_ == options_.stdin_data.size()) CloseFd(stdin_fd_);  // EOF for the child
    return;
  }
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  // EPIPE: the child closed stdin or exited; the rest is not wanted. Other errors mean
  // the same for the child, which sees EOF.
  if (n < 0 && errno == EPIPE) stdin_epipe_ = true;
  CloseFd(stdin_fd_);
}

Status Job::Reap(bool block) {
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return OkStatus();  // not yet (polling fallback)
  if (r < 0) {
    int err = errno;
    // Treat the child as gone so the destructor does not wait for it again.
    reaped_ = true;
    return InternalError("subprocess: waitpid(" + std::to_string(pid_) + "): " + ErrnoText(err) +
                         (err == ECHILD ? " (is SIGCHLD ignored?)" : ""));
  }
  reaped_ = true;
  CloseFd(pidfd_);
  if (WIFEXITED(status)) {
    done_.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    done_.signal = WTERMSIG(status);
  }
  // From now on the group is watched in slices: no descriptor tells when it empties.
  next_group_check_ = SteadyClock::now();
  group_slice_ = kMinSlice;
  return OkStatus();
}

void Job::BeginTermination(EndReason reason, TimePoint now) {
  ending_ = reason;
  if (reason == EndReason::kTimeout) done_.timed_out = true;
  if (reason == EndReason::kStop) done_.cancelled = true;
  CloseFd(stdin_fd_);  // a job being killed needs no more input
  next_step_ = 0;
  AdvanceTermination(now);
}

void Job::AdvanceTermination(TimePoint now) {
  const std::vector<TermSeq::Step>& steps = options_.termseq.steps;
  if (next_step_ < steps.size()) {
    const TermSeq::Step& step = steps[next_step_++];
    kill(-pid_, step.signal);
    term_next_ = now + step.wait;
  } else if (!final_kill_sent_) {
    kill(-pid_, SIGKILL);
    final_kill_sent_ = true;
    term_next_ = now + kFinalKillWait;
  } else if (reaped_) {
    given_up_ = true;
    term_next_ = TimePoint::max();
  } else {
    // The leader got SIGKILL and must die; its pidfd says when.
    term_next_ = TimePoint::max();
  }
  if (reaped_) {
    // A signal was just sent: the group may be gone within microseconds, so look soon
    // again, whatever the slice had grown to while the job was idle.
    next_group_check_ = now;
    group_slice_ = kMinSlice;
  }
}

Status Job::Wait(const std::stop_token& stop, int stop_fd) {
  auto notify_stop = [stop_fd] { core::SignalEventFd(stop_fd); };
  std::optional<std::stop_callback<decltype(notify_stop)>> on_stop;
  if (stop_fd >= 0) on_stop.emplace(stop, notify_stop);
  std::optional<SigpipeBlock> sigpipe_block;
  if (stdin_fd_ >= 0) sigpipe_block.emplace();
  char chunk[kReadChunk];
  Status status = [&]() -> Status {
    for (;;) {
      bool outputs_open = out_[0].fd >= 0 || out_[1].fd >= 0;
      // Checked before the timers: a job seen done is done, even when we notice it only
      // after its deadline.
      if (reaped_ && ending_ == EndReason::kNone && !outputs_open) return OkStatus();
      TimePoint now = SteadyClock::now();
      if (now >= term_next_) {
        if (ending_ == EndReason::kNone) {
          BeginTermination(EndReason::kTimeout, now);
        } else {
          AdvanceTermination(now);
        }
      }
      if (!reaped_ && now >= next_reap_poll_) {
        FORKLIFT_RETURN_IF_ERROR(Reap(/*block=*/false));
        reap_slice_ = std::min<Duration>(2 * reap_slice_, kMaxSlice);
        next_reap_poll_ = reaped_ ? TimePoint::max() : now + reap_slice_;
      }
      if (reaped_) {
        if (given_up_) return OkStatus();
        if (now >= next_group_check_) {
          if (GroupGone(pid_)) return Drain(chunk);
          next_group_check_ = now + group_slice_;
          group_slice_ = std::min<Duration>(
              2 * group_slice_, ending_ == EndReason::kNone ? kMaxIdleGroupSlice : kMaxSlice);
        }
      }

      pollfd fds[5];
      nfds_t n = 0;
      for (Output& out : out_) {
        if (out.fd >= 0) fds[n++] = {out.fd, POLLIN, 0};
      }
      if (stdin_fd_ >= 0) fds[n++] = {stdin_fd_, POLLOUT, 0};
      if (pidfd_ >= 0) fds[n++] = {pidfd_, POLLIN, 0};
      if (stop_fd >= 0 && ending_ == EndReason::kNone) fds[n++] = {stop_fd, POLLIN, 0};
      TimePoint wake = term_next_;
      if (reaped_) wake = std::min(wake, next_group_check_);
      if (!reaped_) wake = std::min(wake, next_reap_poll_);
      timespec timeout;
      timespec* timeout_ptr = nullptr;
      if (wake != TimePoint::max()) {
        timeout = ToTimespec(wake - now);
        timeout_ptr = &timeout;
      }
      int ready = ppoll(fds, n, timeout_ptr, nullptr);
      if (ready < 0) {
        if (errno == EINTR) continue;
        return SysError("ppoll", errno);
      }
      for (nfds_t i = 0; i < n; ++i) {
        if (fds[i].revents == 0) continue;
        int fd = fds[i].fd;
        if (fd == out_[0].fd) {
          FORKLIFT_RETURN_IF_ERROR(ReadOnce(out_[0], chunk));
        } else if (fd == out_[1].fd) {
          FORKLIFT_RETURN_IF_ERROR(ReadOnce(out_[1], chunk));
        } else if (fd == stdin_fd_) {
          WriteStdin();
        } else if (fd == pidfd_) {
          FORKLIFT_RETURN_IF_ERROR(Reap(/*block=*/true));
        } else if (fd == stop_fd && ending_ == EndReason::kNone) {
          BeginTermination(EndReason::kStop, SteadyClock::now());
        }
      }
    }
  }();
  // ~stop_callback waits for a callback running on another thread: after it nothing
  // writes the eventfd, which the caller may then close.
  on_stop.reset();
  if (sigpipe_block && stdin_epipe_) sigpipe_block->ConsumePending();
  if (!status) return status;
  clean_end_ = true;
  return OkStatus();
}

}  // namespace subprocess_internal

Result<Completion> Run(const SpawnOptions& options, const std::stop_token& stop) {
  using subprocess_internal::ErrnoText;
  using subprocess_internal::SteadyClock;
  if (options.argv.empty()) return InvalidArgumentError("subprocess: argv is empty");
  if ((options.stdout_mode == OutputMode::kCallback ||
       options.stderr_mode == OutputMode::kCallback) &&
      !options.on_output) {
    return InvalidArgumentError("subprocess: OutputMode::kCallback needs on_output");
  }
  if (!options.cwd.empty()) {
    struct stat st;
    if (stat(options.cwd.c_str(), &st) != 0) {
      int err = errno;
      std::string message =
          "subprocess: working directory '" + options.cwd + "': " + ErrnoText(err);
      if (err == ENOENT) return NotFoundError(std::move(message));
      return InvalidArgumentError(std::move(message));
    }
    if (!S_ISDIR(st.st_mode)) {
      return InvalidArgumentError("subprocess: working directory '" + options.cwd +
                                  "' is not a directory");
    }
  }
  if (stop.stop_requested()) {
    return CancelledError("subprocess: stop requested before '" + options.argv[0] + "' started");
  }

  // An eventfd that a std::stop_callback writes to wake the ppoll, one per cancellable
  // Run (two syscalls). A per-thread one would save them but hold a descriptor in every
  // thread that ever ran a job, which fork-without-exec users (the worker pool's zygote)
  // would carry along. Made before the spawn, so that failing to get it leaves nothing to
  // clean up.
  core::UniqueFd stop_event;
  if (stop.stop_possible()) {
    FORKLIFT_ASSIGN_OR_RETURN(stop_event, core::MakeEventFd("subprocess"));
  }

  Completion done;
  {
    subprocess_internal::Job job(options, done);
    FORKLIFT_ASSIGN_OR_RETURN(bool running, job.Spawn());
    if (running) FORKLIFT_RETURN_IF_ERROR(job.Wait(stop, stop_event.get()));
    done.runtime = SteadyClock::now() - job.spawned_at();
  }
  return done;
}

}  // namespace forklift::process
