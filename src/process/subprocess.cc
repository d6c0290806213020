#include "process/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <optional>

#include "process/subprocess_group.h"

extern char** environ;

namespace forklift::process {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr size_t kReadChunk = 64 * 1024;
// Slices for what no descriptor announces: a group emptying after its leader was reaped,
// and (without pidfd_open) the leader's exit. Doubling from 1 ms keeps quick endings
// quick and a long wait at 20 wakeups a second.
constexpr Duration kMinSlice = milliseconds(1);
constexpr Duration kMaxSlice = milliseconds(50);
// After the final SIGKILL, how long members other than the leader may take to go.
// SIGKILL cannot be caught; only a process stuck in the kernel (D state) outlasts this.
constexpr Duration kFinalKillWait = milliseconds(1000);
// Reads at most this many chunks from pipes held by processes outside an emptied group.
constexpr int kMaxDrainReads = 64;

std::atomic<bool> g_force_pidfd_fallback{false};
std::atomic<bool> g_pidfd_unsupported{false};  // learned from ENOSYS, once per process

std::string ErrnoText(int err) { return strerror(err); }

tl::unexpected<Error> SysError(const char* what, int err) {
  std::string message = std::string("subprocess: ") + what + ": " + ErrnoText(err);
  if (err == EAGAIN || err == ENOMEM || err == EMFILE || err == ENFILE) {
    return UnavailableError(std::move(message));
  }
  return InternalError(std::move(message));
}

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// A pipe with both ends close-on-exec and above the standard descriptors: with fd 0-2
// closed in this program a pipe end could land there and be clobbered by the child's
// dup2 of another one.
Status MakePipe(int fds[2]) {
  if (pipe2(fds, O_CLOEXEC) != 0) return SysError("pipe2", errno);
  for (int i = 0; i < 2; ++i) {
    if (fds[i] > 2) continue;
    int moved = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
    int err = errno;
    close(fds[i]);
    fds[i] = moved;
    if (moved < 0) {
      CloseFd(fds[0]);
      CloseFd(fds[1]);
      return SysError("fcntl(F_DUPFD_CLOEXEC)", err);
    }
  }
  return OkStatus();
}

int OpenPidfd(pid_t pid) {
  if (g_force_pidfd_fallback.load(std::memory_order_relaxed) ||
      g_pidfd_unsupported.load(std::memory_order_relaxed)) {
    return -1;
  }
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0 && errno == ENOSYS) g_pidfd_unsupported.store(true, std::memory_order_relaxed);
  return fd;  // any other failure (EMFILE): this job polls waitpid instead
}

// One eventfd per thread that calls Run, created on its first cancellable Run: a
// std::stop_callback writes it to wake that thread's ppoll.
class ThreadStopEvent {
 public:
  ~ThreadStopEvent() { CloseFd(fd_); }
  int Get() {
    if (fd_ < 0) fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd_;
  }

 private:
  int fd_ = -1;
};
thread_local ThreadStopEvent t_stop_event;

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
  ~SigpipeBlock() {
    if (raised_) {
      sigset_t pending;
      if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
        timespec zero{0, 0};
        sigtimedwait(&pipe_set_, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;
  void NoteEpipe() { raised_ = true; }

 private:
  sigset_t pipe_set_;
  sigset_t old_mask_;
  bool raised_ = false;
};

timespec ToTimespec(Duration d) {
  auto ns = std::max<int64_t>(0, d.count());
  return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

// argv[0] looked up in `path` (the PATH a caller's env sets), relative entries taken
// from the child's working directory. nullopt when no entry has an executable file.
std::optional<std::string> SearchPath(const std::string& file, std::string_view path,
                                      const std::string& cwd) {
  for (size_t begin = 0; begin <= path.size();) {
    size_t colon = std::min(path.find(':', begin), path.size());
    std::string dir(path.substr(begin, colon - begin));
    begin = colon + 1;
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + file;
    if (dir[0] != '/' && !cwd.empty()) candidate = cwd + "/" + candidate;
    struct stat st;
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return std::nullopt;
}

enum class EndReason { kNone, kTimeout, kStop };

// The state of one job from spawn to end. The destructor guarantees that nothing of the
// job keeps running when Run leaves early on an error.
class Job {
 public:
  Job(const SpawnOptions& options, Completion& done) : options_(options), done_(done) {}
  ~Job();
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  // Success: true when the child runs, false when it could not be started (done_ then
  // says 127/126 and stderr has the message).
  Result<bool> Spawn();
  Status Wait(const std::stop_token& stop);
  TimePoint spawned_at() const { return spawned_at_; }

 private:
  struct Output {
    int fd = -1;
    Stream stream;
    OutputMode mode;
    OutputBuffer* buffer;
    uint64_t* bytes;
  };

  Status ReportSpawnFailure(int err);
  Status Deliver(Output& out, std::string_view bytes);
  // One read from a readable pipe; closes it at EOF.
  Status ReadOnce(Output& out, char* chunk);
  Status Drain(char* chunk);
  void WriteStdin();
  Status Reap(bool block);
  void BeginTermination(EndReason reason, TimePoint now);
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
  SigpipeBlock* sigpipe_ = nullptr;

  EndReason ending_ = EndReason::kNone;
  size_t next_step_ = 0;             // the termseq step to send at term_next_
  bool final_kill_sent_ = false;
  bool given_up_ = false;            // final wait over; stragglers left to the kernel
  TimePoint term_next_ = TimePoint::max();
  TimePoint next_group_check_ = TimePoint::max();
  Duration group_slice_ = kMinSlice;
  TimePoint next_reap_poll_ = TimePoint::max();
  Duration reap_slice_ = kMinSlice;
};

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

Status Job::ReportSpawnFailure(int err) {
  done_.exit_code = err == ENOENT ? 127 : 126;
  done_.spawn_errno = err;
  std::string message =
      "forklift: cannot run '" + options_.argv[0] + "': " + ErrnoText(err) + "\n";
  if (options_.stderr_mode == OutputMode::kInherit) {
    ssize_t ignored = write(STDERR_FILENO, message.data(), message.size());
    (void)ignored;  // nowhere better to report a failing stderr
    return OkStatus();
  }
  return Deliver(out_[1], message);
}

Result<bool> Job::Spawn() {
  const SpawnOptions& o = options_;
  out_[0] = {-1, Stream::kStdout, o.stdout_mode, &done_.stdout_output, &done_.stdout_bytes};
  out_[1] = {-1, Stream::kStderr, o.stderr_mode, &done_.stderr_output, &done_.stderr_bytes};
  done_.stdout_output = OutputBuffer(o.output_memory_limit, o.spill_dir);
  done_.stderr_output = OutputBuffer(o.output_memory_limit, o.spill_dir);
  done_.start = std::chrono::system_clock::now();
  spawned_at_ = Clock::now();

  // Which program: posix_spawnp searches this program's PATH, so a PATH set in `env`
  // needs our own search.
  const std::string* program = &o.argv[0];
  std::string resolved;
  bool search_path = o.argv[0].find('/') == std::string::npos;
  auto path_env = std::find_if(o.env.rbegin(), o.env.rend(),
                               [](const auto& kv) { return kv.first == "PATH"; });
  if (search_path && path_env != o.env.rend()) {
    std::optional<std::string> found = SearchPath(o.argv[0], path_env->second, o.cwd);
    if (!found) return ReportSpawnFailure(ENOENT).map([] { return false; });
    resolved = std::move(*found);
    program = &resolved;
    search_path = false;
  }

  // Descriptors for the child. The child ends are closed on every path by `child_fds`.
  int child_fds[3] = {-1, -1, -1};
  struct Closer {
    int* fds;
    ~Closer() {
      for (int i = 0; i < 3; ++i) CloseFd(fds[i]);
    }
  } closer{child_fds};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  struct ActionsGuard {
    posix_spawn_file_actions_t* a;
    ~ActionsGuard() { posix_spawn_file_actions_destroy(a); }
  } actions_guard{&actions};

  if (o.stdin_mode == InputMode::kNull) {
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  } else if (o.stdin_mode == InputMode::kData) {
    int fds[2];
    FORKLIFT_RETURN_IF_ERROR(MakePipe(fds));
    child_fds[0] = fds[0];
    stdin_fd_ = fds[1];
    // Non-blocking on our end only (a separate open file description from the child's):
    // a child that does not read must not block us from reading its output.
    if (fcntl(stdin_fd_, F_SETFL, O_NONBLOCK) != 0) return SysError("fcntl(O_NONBLOCK)", errno);
    posix_spawn_file_actions_adddup2(&actions, child_fds[0], STDIN_FILENO);
  }
  for (int i = 0; i < 2; ++i) {
    if (out_[i].mode == OutputMode::kInherit) continue;
    int fds[2];
    FORKLIFT_RETURN_IF_ERROR(MakePipe(fds));
    out_[i].fd = fds[0];
    child_fds[1 + i] = fds[1];
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO + i);
  }
  if (!o.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, o.cwd.c_str());

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  struct AttrGuard {
    posix_spawnattr_t* a;
    ~AttrGuard() { posix_spawnattr_destroy(a); }
  } attr_guard{&attr};
  sigset_t empty_mask;
  sigemptyset(&empty_mask);
  posix_spawnattr_setsigmask(&attr, &empty_mask);
  // Ignored signals survive exec: a child of a program that ignores SIGPIPE would not die
  // writing to a closed pipe (`yes | head` would run forever). Reset them all.
  sigset_t default_set;
  sigfillset(&default_set);
  sigdelset(&default_set, SIGKILL);
  sigdelset(&default_set, SIGSTOP);
  posix_spawnattr_setsigdefault(&attr, &default_set);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv;
  argv.reserve(o.argv.size() + 1);
  for (const std::string& arg : o.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);

  char** envp = environ;
  std::vector<std::string> env_storage;
  std::vector<char*> env_array;
  if (!o.env.empty()) {
    auto overridden = [&](std::string_view entry) {
      std::string_view name = entry.substr(0, entry.find('='));
      return std::any_of(o.env.begin(), o.env.end(),
                         [&](const auto& kv) { return kv.first == name; });
    };
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      if (!overridden(*e)) env_array.push_back(*e);
    }
    env_storage.reserve(o.env.size());
    for (size_t i = 0; i < o.env.size(); ++i) {
      const std::string& name = o.env[i].first;
      // A name given twice: the last one wins, as with `env A=1 A=2`.
      bool later = std::any_of(o.env.begin() + static_cast<ptrdiff_t>(i) + 1, o.env.end(),
                               [&](const auto& kv) { return kv.first == name; });
      if (later) continue;
      env_storage.push_back(name + "=" + o.env[i].second);
    }
    for (std::string& entry : env_storage) env_array.push_back(entry.data());
    env_array.push_back(nullptr);
    envp = env_array.data();
  }

  pid_t pid = -1;
  int err = search_path
                ? posix_spawnp(&pid, program->c_str(), &actions, &attr, argv.data(), envp)
                : posix_spawn(&pid, program->c_str(), &actions, &attr, argv.data(), envp);
  if (err != 0) {
    if (err == EAGAIN || err == ENOMEM || err == EMFILE || err == ENFILE) {
      return SysError("posix_spawn", err);
    }
    // chdir failures come back from posix_spawn like exec failures; the cwd was there a
    // moment ago, so say so if it has gone since.
    struct stat st;
    if (!o.cwd.empty() && (stat(o.cwd.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))) {
      return NotFoundError("subprocess: working directory '" + o.cwd + "' vanished");
    }
    return ReportSpawnFailure(err).map([] { return false; });
  }
  pid_ = pid;
  done_.pid = pid;
  done_.pgid = pid;  // POSIX_SPAWN_SETPGROUP with 0: the child leads a new group
  if (o.registry != nullptr) {
    o.registry->Add(pid);
    registered_ = true;
  }
  if (stdin_fd_ >= 0 && o.stdin_data.empty()) CloseFd(stdin_fd_);  // EOF at once
  pidfd_ = OpenPidfd(pid);
  if (pidfd_ < 0) next_reap_poll_ = spawned_at_ + reap_slice_;
  if (o.timeout.count() > 0) term_next_ = spawned_at_ + o.timeout;
  return true;
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
  if (n < 0 && errno == EPIPE) sigpipe_->NoteEpipe();
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
  next_group_check_ = Clock::now();
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
  if (reaped_) next_group_check_ = now;
}

Status Job::Wait(const std::stop_token& stop) {
  int stop_fd = -1;
  if (stop.stop_possible()) {
    stop_fd = t_stop_event.Get();
    if (stop_fd < 0) return SysError("eventfd", errno);
  }
  auto notify_stop = [stop_fd] {
    uint64_t one = 1;
    ssize_t ignored = write(stop_fd, &one, sizeof one);
    (void)ignored;  // the counter cannot overflow from one write per stop
  };
  std::optional<std::stop_callback<decltype(notify_stop)>> on_stop;
  if (stop_fd >= 0) on_stop.emplace(stop, notify_stop);
  std::optional<SigpipeBlock> sigpipe_block;
  if (stdin_fd_ >= 0) {
    sigpipe_block.emplace();
    sigpipe_ = &*sigpipe_block;
  }
  char chunk[kReadChunk];
  Status status = [&]() -> Status {
    for (;;) {
      TimePoint now = Clock::now();
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
        bool outputs_open = out_[0].fd >= 0 || out_[1].fd >= 0;
        if (ending_ == EndReason::kNone && !outputs_open) return OkStatus();
        if (given_up_) return OkStatus();
        if (now >= next_group_check_) {
          if (subprocess_internal::GroupGone(pid_)) return Drain(chunk);
          next_group_check_ = now + group_slice_;
          group_slice_ = std::min<Duration>(2 * group_slice_, kMaxSlice);
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
          if (stop.stop_requested()) {
            BeginTermination(EndReason::kStop, Clock::now());
          } else {
            // Cannot happen (see the drain below), but never mistake a stray wakeup for
            // a stop: reset the eventfd and go on.
            uint64_t stray;
            ssize_t ignored = read(stop_fd, &stray, sizeof stray);
            (void)ignored;
          }
        }
      }
    }
  }();
  // Unregister first: ~stop_callback waits for a callback running on another thread, so
  // after it nothing writes the eventfd any more, and the drain leaves it reset for this
  // thread's next Run.
  on_stop.reset();
  if (stop_fd >= 0 && stop.stop_requested()) {
    uint64_t drained;
    ssize_t ignored = read(stop_fd, &drained, sizeof drained);
    (void)ignored;
  }
  if (!status) return status;
  clean_end_ = true;
  return OkStatus();
}

}  // namespace

Result<Completion> Run(const SpawnOptions& options, const std::stop_token& stop) {
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

  Completion done;
  {
    Job job(options, done);
    FORKLIFT_ASSIGN_OR_RETURN(bool running, job.Spawn());
    if (running) FORKLIFT_RETURN_IF_ERROR(job.Wait(stop));
    done.runtime = Clock::now() - job.spawned_at();
  }
  return done;
}

namespace subprocess_internal {
void ForcePidfdFallbackForTesting(bool force) {
  g_force_pidfd_fallback.store(force, std::memory_order_relaxed);
}
}  // namespace subprocess_internal

}  // namespace forklift::process
