// The zygote and worker processes of WorkerPool.
//
// The zygote is forked from a multi-threaded process, so until it _exits it keeps to
// system calls and memory the parent prepared for it: no allocation, no locks, no stdio.
// Its workers are forked from it, a single-threaded process, and may then run anything.
#include "process/worker_zygote.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "core/fd.h"
#include "process/worker_protocol.h"

namespace forklift::process::worker_internal {
namespace {

using core::CloseFd;
using core::PidfdOpen;

// How long a shutting-down zygote waits for its killed children to be reapable. SIGKILLed
// processes die in microseconds; the bound is for a child stuck in the kernel.
constexpr int64_t kShutdownReapNanos = 1'000'000'000;

int64_t MonotonicNanos() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Parses a /proc/self/fd entry name; -1 for "." and "..".
int ParseFd(const char* name) {
  if (*name == '\0') return -1;
  int fd = 0;
  for (; *name != '\0'; ++name) {
    if (*name < '0' || *name > '9') return -1;
    fd = fd * 10 + (*name - '0');
  }
  return fd;
}

// Closes every descriptor above stderr that is marked close-on-exec, except `keep`.
// Their owners asked for them not to outlive this program image; a fork without exec
// would otherwise keep them open for the pool's whole life (a pipe's write end held here
// means its reader in the parent never sees EOF). Inheritable descriptors stay: a
// handler may have been written to use them. Best effort: without /proc nothing closes.
void CloseCloexecFds(int keep) {
  int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return;
  alignas(8) char buf[4096];
  for (;;) {
    long n = syscall(SYS_getdents64, dir, buf, sizeof buf);
    if (n <= 0) break;
    // struct linux_dirent64: u64 d_ino, s64 d_off, u16 d_reclen, u8 d_type, char d_name[].
    for (long off = 0; off < n;) {
      unsigned short reclen;
      std::memcpy(&reclen, buf + off + 16, sizeof reclen);
      int fd = ParseFd(buf + off + 19);
      off += reclen;
      if (fd <= STDERR_FILENO || fd == dir || fd == keep) continue;
      int flags = fcntl(fd, F_GETFD);
      if (flags >= 0 && (flags & FD_CLOEXEC) != 0) close(fd);
    }
  }
  close(dir);
}

// Gives the zygote (and so its workers) the signal state exec would: the parent's
// handlers mean nothing in a process that is not running the parent's threads, so they
// go back to SIG_DFL; ignored signals stay ignored. SIGCHLD is always SIG_DFL: ignoring
// it would make the kernel reap workers before their status can be read.
void ResetSignalHandlers() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    struct sigaction old {};
    if (sigaction(sig, nullptr, &old) != 0) continue;  // glibc's internal signals
    bool caught = (old.sa_flags & SA_SIGINFO) != 0 ||
                  (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN);
    if (caught || sig == SIGCHLD) sigaction(sig, &dfl, nullptr);
  }
}

// Reads exactly `size` bytes; false on EOF or error.
bool ReadFull(int fd, char* data, size_t size) {
  while (size > 0) {
    ssize_t n = read(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Writes a header and a payload, handling partial writes; false on error (the parent
// closed its end: it no longer wants this worker).
bool WriteFrame(int fd, const ResponseHeader& header, const std::string& payload) {
  const size_t total = sizeof header + payload.size();
  size_t done = 0;
  while (done < total) {
    ssize_t n = SendFrameRest(fd, &header, sizeof header, payload, done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// An orderly end: the parent closed our socket. Flush what the handler left in stdio
// buffers (the parent flushed its own before forking, so nothing of it is repeated), and
// never run the parent's atexit handlers.
[[noreturn]] void OrderlyExit() {
  std::fflush(nullptr);
  _exit(0);
}

// The worker's loop: one request in, one response out, until EOF.
[[noreturn]] void ServeRequests(int sock, const WorkerHandler& handler, size_t max_bytes) {
  std::string request;
  std::string response;
  for (;;) {
    // The parent writes header and payload in one sendmsg, so a small request usually
    // arrives whole in this first read.
    char first[4096];
    size_t got = 0;
    while (got < sizeof(RequestHeader)) {
      ssize_t n = read(sock, first + got, sizeof first - got);
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 && got == 0) OrderlyExit();
      if (n <= 0) _exit(n == 0 ? kWorkerExitProtocol : kWorkerExitIoError);
      got += static_cast<size_t>(n);
    }
    RequestHeader header;
    std::memcpy(&header, first, sizeof header);
    const size_t extra = got - sizeof header;
    // The parent never sends a second request before reading the first response.
    if (header.size > max_bytes || extra > header.size) _exit(kWorkerExitProtocol);
    request.resize(header.size);
    std::memcpy(request.data(), first + sizeof header, extra);
    if (!ReadFull(sock, request.data() + extra, header.size - extra)) {
      _exit(kWorkerExitProtocol);
    }
    const TimePoint deadline(std::chrono::duration_cast<TimePoint::duration>(
        std::chrono::nanoseconds(header.deadline_ns)));

    ResponseHeader reply;
    try {
      response = handler(request, deadline);
      reply.kind = static_cast<uint32_t>(ResponseKind::kOk);
    } catch (const std::exception& e) {
      response = e.what();
      reply.kind = static_cast<uint32_t>(ResponseKind::kHandlerThrew);
    } catch (...) {
      response = "an exception not derived from std::exception";
      reply.kind = static_cast<uint32_t>(ResponseKind::kHandlerThrew);
    }
    if (response.size() > max_bytes) {
      // Say so in-band rather than make the parent kill a healthy worker.
      response = std::to_string(response.size());
      reply.kind = static_cast<uint32_t>(ResponseKind::kResponseTooLarge);
    }
    reply.size = response.size();
    if (!WriteFrame(sock, reply, response)) _exit(kWorkerExitIoError);
  }
}

class Zygote {
 public:
  Zygote(const ZygoteConfig& config, int signal_fd)
      : config_(config), signal_fd_(signal_fd), self_(getpid()) {}

  [[noreturn]] void Serve() {
    pollfd fds[2] = {{config_.control_fd, POLLIN, 0}, {signal_fd_, POLLIN, 0}};
    for (;;) {
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        Shutdown();
      }
      if (fds[1].revents != 0) {
        const bool terminate = DrainSignalFd();
        ReapChildren();
        if (terminate) Shutdown();
      }
      if (fds[0].revents != 0) {
        ControlRequest request;
        ssize_t n = recv(config_.control_fd, &request, sizeof request, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        // EOF: the parent closed the channel or died. Either way the pool is over.
        if (n != static_cast<ssize_t>(sizeof request)) Shutdown();
        Handle(request);
      }
    }
  }

 private:
  void Handle(const ControlRequest& request) {
    ControlReply reply;
    ReapChildren();  // pick up a death whose SIGCHLD this loop has not seen yet
    if (request.release_serial != 0) Release(request.release_serial, &reply);
    int fds[2] = {-1, -1};
    size_t nfds = 0;
    if (request.spawn != 0 && Spawn(&reply, fds)) nfds = 2;
    ssize_t n = SendWithFds(config_.control_fd, &reply, sizeof reply, fds, nfds);
    CloseFd(fds[0]);
    CloseFd(fds[1]);
    if (n < 0) Shutdown();
  }

  void Release(uint64_t serial, ControlReply* reply) {
    ZygoteChild* child = FindSerial(serial);
    reply->release_state = kReleaseUnknown;
    if (child == nullptr) return;
    const pid_t pid = child->pid;
    if (child->state == ZygoteChild::kExited) {
      reply->release_state = kReleaseReaped;
      reply->release_status = child->status;
      *child = ZygoteChild{};
      return;
    }
    // Still alive although the parent SIGKILLed it and waited (stuck in the kernel):
    // kill its group while it still pins the group id, and reap it whenever it goes.
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    child->state = ZygoteChild::kAbandoned;
  }

  // Forks a worker. On success fills reply->pid and fds (our end of its socket, its
  // pidfd) and returns true; else sets reply->spawn_errno.
  bool Spawn(ControlReply* reply, int fds[2]) {
    ZygoteChild* child = FindFree();
    if (child == nullptr) {
      reply->spawn_errno = EAGAIN;  // too many workers stuck dying
      return false;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      reply->spawn_errno = errno;
      return false;
    }
    pid_t pid = fork();
    if (pid < 0) {
      reply->spawn_errno = errno;
      close(sv[0]);
      close(sv[1]);
      return false;
    }
    if (pid == 0) {
      close(sv[0]);
      RunWorker(sv[1]);
    }
    close(sv[1]);
    // The child does the same; doing it here too means the group exists before anyone
    // can learn the pid, whichever process runs first.
    setpgid(pid, pid);
    child->pid = pid;
    child->state = ZygoteChild::kRunning;
    child->serial = next_serial_++;
    int pidfd = PidfdOpen(pid);  // race-free: our child, not reaped yet
    int flags = fcntl(sv[0], F_GETFL);
    if (pidfd < 0 || flags < 0 || fcntl(sv[0], F_SETFL, flags | O_NONBLOCK) != 0) {
      reply->spawn_errno = errno;
      close(sv[0]);
      CloseFd(pidfd);
      kill(pid, SIGKILL);
      child->state = ZygoteChild::kAbandoned;
      return false;
    }
    reply->pid = pid;
    reply->serial = child->serial;
    fds[0] = sv[0];
    fds[1] = pidfd;
    return true;
  }

  [[noreturn]] void RunWorker(int sock) {
    close(config_.control_fd);
    close(signal_fd_);
    // The zygote is single-threaded, so unlike in the zygote itself PR_SET_PDEATHSIG
    // here means exactly "die with the zygote". Check the parent after setting it: the
    // zygote may have died before the prctl.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != self_) _exit(kWorkerExitOrphaned);
    // Its own group, so that a timeout kills whatever the item started, too.
    setpgid(0, 0);
    if (!config_.allow_core_dumps) {
      rlimit limit{};
      if (getrlimit(RLIMIT_CORE, &limit) == 0) {
        limit.rlim_cur = 0;
        setrlimit(RLIMIT_CORE, &limit);
      }
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ServeRequests(sock, *config_.handler, config_.max_message_bytes);
  }

  // Reaps every child that has exited. A worker's process group is killed first, while
  // its unreaped leader still pins the group id, so that the kill can never reach a
  // group that reused the id; the status waits in the table for the parent. Children
  // that are not workers are orphans the zygote adopted as subreaper: just reaped.
  // Returns whether any child remains.
  bool ReapChildren() {
    for (;;) {
      siginfo_t info;
      std::memset(&info, 0, sizeof info);
      if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT | __WALL) != 0) {
        if (errno == EINTR) continue;
        return false;  // ECHILD
      }
      if (info.si_pid == 0) return true;
      const pid_t pid = info.si_pid;
      ZygoteChild* child = FindLive(pid);
      if (child != nullptr) kill(-pid, SIGKILL);
      int status = 0;
      while (waitpid(pid, &status, __WALL) < 0 && errno == EINTR) {
      }
      if (child == nullptr) continue;
      if (child->state == ZygoteChild::kAbandoned) {
        *child = ZygoteChild{};
      } else {
        child->state = ZygoteChild::kExited;
        child->status = status;
      }
    }
  }

  [[noreturn]] void Shutdown() {
    for (size_t i = 0; i < config_.capacity; ++i) {
      const ZygoteChild& child = config_.children[i];
      if (child.state == ZygoteChild::kRunning || child.state == ZygoteChild::kAbandoned) {
        kill(-child.pid, SIGKILL);
        kill(child.pid, SIGKILL);
      }
    }
    const int64_t deadline = MonotonicNanos() + kShutdownReapNanos;
    while (ReapChildren()) {
      const int64_t left = deadline - MonotonicNanos();
      if (left <= 0) break;  // a child that outlives this is adopted by init
      pollfd pfd{signal_fd_, POLLIN, 0};
      poll(&pfd, 1, static_cast<int>(left / 1'000'000) + 1);
      DrainSignalFd();
    }
    _exit(0);
  }

  // Returns whether SIGTERM (the parent-death signal, or anyone's request to stop) was
  // among the signals read.
  bool DrainSignalFd() {
    bool terminate = false;
    signalfd_siginfo info[8];
    ssize_t n;
    while ((n = read(signal_fd_, info, sizeof info)) > 0) {
      for (size_t i = 0; i < static_cast<size_t>(n) / sizeof info[0]; ++i) {
        if (info[i].ssi_signo == SIGTERM) terminate = true;
      }
    }
    return terminate;
  }

  // Only an entry whose process is not yet reaped owns its pid; an exited entry's pid may
  // already be reused.
  ZygoteChild* FindLive(pid_t pid) {
    for (size_t i = 0; i < config_.capacity; ++i) {
      ZygoteChild& child = config_.children[i];
      if (child.pid == pid &&
          (child.state == ZygoteChild::kRunning || child.state == ZygoteChild::kAbandoned)) {
        return &child;
      }
    }
    return nullptr;
  }

  ZygoteChild* FindSerial(uint64_t serial) {
    for (size_t i = 0; i < config_.capacity; ++i) {
      ZygoteChild& child = config_.children[i];
      if (child.state != ZygoteChild::kFree && child.serial == serial) return &child;
    }
    return nullptr;
  }

  ZygoteChild* FindFree() {
    for (size_t i = 0; i < config_.capacity; ++i) {
      if (config_.children[i].state == ZygoteChild::kFree) return &config_.children[i];
    }
    return nullptr;
  }

  const ZygoteConfig& config_;
  const int signal_fd_;
  const pid_t self_;
  uint64_t next_serial_ = 1;
};

}  // namespace

void RunZygote(const ZygoteConfig& config) {
  close(config.parent_control_fd);
  // SIGCHLD (a child exited) and SIGTERM (shut down) arrive through a signalfd in the
  // zygote's one poll loop. Blocked before PR_SET_PDEATHSIG so that the parent's death
  // is never missed nor fatal: the zygote still kills and reaps its workers.
  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGCHLD);
  sigaddset(&handled, SIGTERM);
  sigprocmask(SIG_SETMASK, &handled, nullptr);
  if (config.die_with_parent_thread) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != config.parent_pid) _exit(0);
  }
  // Out of the parent's process group: a terminal's Ctrl-C is for the parent to handle
  // (DESIGN.md: first SIGINT lets running work finish), not for the zygote to die of.
  setpgid(0, 0);
  // Orphans of dead workers (an item's grandchildren) become our children, not init's,
  // so they are reaped even where pid 1 does not reap.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  ResetSignalHandlers();
  CloseCloexecFds(config.control_fd);
  int signal_fd = signalfd(-1, &handled, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd < 0) _exit(kZygoteExitSetupFailed);

  Zygote zygote(config, signal_fd);
  zygote.Serve();
}

}  // namespace forklift::process::worker_internal
