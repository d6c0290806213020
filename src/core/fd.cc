#include "core/fd.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <system_error>

namespace forklift::core {

std::string ErrnoText(int err) {
  // strerror_r underneath: thread-safe, unlike strerror for an unknown value.
  return std::generic_category().message(err);
}

std::string ErrnoMessage(std::string_view what, int err) {
  return std::string(what) + ": " + ErrnoText(err);
}

Error ErrnoError(std::string_view what, int err) {
  const bool scarce = err == EAGAIN || err == ENOMEM || err == EMFILE || err == ENFILE;
  return Error{scarce ? ErrorCode::kUnavailable : ErrorCode::kInternal, ErrnoMessage(what, err)};
}

void CloseFd(int& fd) noexcept {
  if (fd >= 0) close(fd);
  fd = -1;
}

Status MakePipe(int fds[2], std::string_view who) {
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return tl::unexpected(ErrnoError(std::string(who) + ": pipe2", errno));
  }
  for (int i = 0; i < 2; ++i) {
    if (fds[i] > 2) continue;
    const int moved = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
    const int err = errno;
    close(fds[i]);
    fds[i] = moved;
    if (moved < 0) {
      CloseFd(fds[0]);
      CloseFd(fds[1]);
      return tl::unexpected(ErrnoError(std::string(who) + ": fcntl(F_DUPFD_CLOEXEC)", err));
    }
  }
  return OkStatus();
}

Result<UniqueFd> MakeEventFd(std::string_view who) {
  const int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return tl::unexpected(ErrnoError(std::string(who) + ": eventfd", errno));
  return UniqueFd(fd);
}

void SignalEventFd(int fd) noexcept {
  const uint64_t one = 1;
  ssize_t ignored = write(fd, &one, sizeof one);
  (void)ignored;  // EAGAIN only: the counter is already non-zero
}

void ClearEventFd(int fd) noexcept {
  uint64_t count;
  ssize_t ignored = read(fd, &count, sizeof count);
  (void)ignored;  // EAGAIN: it was 0 already
}

int PidfdOpen(pid_t pid) noexcept { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

int PidfdSendSignal(int pidfd, int sig) noexcept {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

}  // namespace forklift::core
