// File descriptors, in one place: a unique (owning) descriptor, close, pipes, the eventfd
// that wakes a poll from another thread (a std::stop_callback), pidfds, and errno's words.
// process/ (subprocesses, the worker pool and its zygote, the watchdog), sources/ (input
// files) and sinks/ (the SQLite file lock) all use it; it lives in core/ because sources/
// stands on core/ alone. It wraps system calls and nothing more: spawning, waiting and
// signal policy stay in process/.
//
// Everything marked async-signal-safe allocates nothing and takes no lock, so the worker
// pool's zygote (forked from a multi-threaded process) may use it between fork and _exit.
//
// Thread safety: the free functions are thread-safe; a UniqueFd is one object, used from
// one thread at a time, like any other.
#ifndef FORKLIFT_CORE_FD_H_
#define FORKLIFT_CORE_FD_H_

#include <sys/types.h>

#include <string>
#include <string_view>
#include <utility>

#include "forklift/result.h"

namespace forklift::core {

// strerror's words for the errno value `err` ("No such file or directory").
std::string ErrnoText(int err);
// "<what>: <ErrnoText(err)>".
std::string ErrnoMessage(std::string_view what, int err);
// ErrnoMessage as an Error: Unavailable for a lack of processes, memory or descriptors
// (EAGAIN, ENOMEM, EMFILE, ENFILE: worth a retry), else Internal.
Error ErrnoError(std::string_view what, int err);

// Closes `fd` when it is >= 0 and sets it to -1. EINTR is not retried: on Linux the
// descriptor is released either way. Async-signal-safe.
void CloseFd(int& fd) noexcept;

// Owns one descriptor (or none: -1) and closes it on destruction. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  ~UniqueFd() { CloseFd(fd_); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  // Gives up ownership: the caller closes what it returns.
  int release() noexcept { return std::exchange(fd_, -1); }
  // Closes the descriptor held, if any, and holds `fd`.
  void reset(int fd = -1) noexcept {
    CloseFd(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// A pipe (fds[0] to read, fds[1] to write), both ends close-on-exec and above the standard
// descriptors: with fd 0-2 closed in this program a pipe end could land there and be
// clobbered by a child's dup2 of another one. On failure nothing stays open and the error
// is ErrnoError("<who>: pipe2" or "<who>: fcntl(F_DUPFD_CLOEXEC)").
Status MakePipe(int fds[2], std::string_view who);

// An eventfd (close-on-exec, non-blocking, counter 0) that one thread signals to wake
// another's poll (POLLIN while the counter is non-zero). Failure: ErrnoError("<who>:
// eventfd").
Result<UniqueFd> MakeEventFd(std::string_view who);
// Adds 1 to an eventfd's counter. Async-signal-safe; what a std::stop_callback does. A
// full counter (EAGAIN) is already non-zero, which is all that matters.
void SignalEventFd(int fd) noexcept;
// Resets an eventfd's counter to 0 (nothing to do when it is 0 already).
void ClearEventFd(int fd) noexcept;

// pidfd_open(2) and pidfd_send_signal(2) (Linux >= 5.3), through syscall(2) so that no
// particular glibc is needed. Return what the system calls return (-1 and errno on
// failure; ENOSYS on an older kernel). Async-signal-safe.
int PidfdOpen(pid_t pid) noexcept;
int PidfdSendSignal(int pidfd, int sig) noexcept;

}  // namespace forklift::core

#endif  // FORKLIFT_CORE_FD_H_
