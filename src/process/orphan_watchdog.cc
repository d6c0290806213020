#include "process/orphan_watchdog.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/fd.h"

namespace forklift::process {
namespace {

enum Op : int32_t { kAdd = 1, kRemove = 2, kGoodbye = 3 };

struct Message {
  int32_t op;
  int32_t pgid;
};

// What the child needs, laid out before the fork: it must not allocate afterwards.
struct ChildPlan {
  int read_fd;
  pid_t parent;
  const TermSeq::Step* steps;
  size_t step_count;
  pid_t* groups;
  size_t capacity;
  const int* keep;  // sorted, read_fd included
  size_t keep_count;
  char* const* exec_argv;  // then_exec, NULL-terminated; nullptr: none
};

int64_t NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void SleepMs(int64_t ms) {
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>((ms % 1000) * 1000000)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void CloseAllBut(const int* keep, size_t count) {
  unsigned from = 0;
  for (size_t i = 0; i <= count; ++i) {
    unsigned to = i < count ? static_cast<unsigned>(keep[i]) : ~0U;
    if (to > from) {
      if (syscall(SYS_close_range, from, to - 1, 0) != 0) {
        // Kernels before 5.9: close what a default descriptor limit can hold.
        for (unsigned fd = from; fd < to && fd < 65536; ++fd) close(static_cast<int>(fd));
      }
    }
    from = to + 1;
  }
}

bool AnyAlive(const pid_t* groups, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (kill(-groups[i], 0) == 0 || errno == EPERM) return true;
  }
  return false;
}

// The watchdog process. Async-signal-safe system calls only, into memory set up before the
// fork (the parent may have had other threads, whose locks are frozen here).
[[noreturn]] void WatchdogMain(const ChildPlan& p) {
  setpgid(0, 0);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT}) sigaction(sig, &ignore, nullptr);
  CloseAllBut(p.keep, p.keep_count);

  size_t n = 0;
  char buf[4096];
  size_t have = 0;
  for (;;) {
    pollfd pfd{p.read_fd, POLLIN, 0};
    int r = poll(&pfd, 1, 500);
    if (r == 0) {
      if (getppid() != p.parent) break;  // died with a leaked write end keeping us open
      continue;
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    ssize_t got = read(p.read_fd, buf + have, sizeof buf - have);
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      break;
    }
    if (got == 0) break;  // every write end closed without a goodbye: the parent is gone
    have += static_cast<size_t>(got);
    size_t off = 0;
    for (; have - off >= sizeof(Message); off += sizeof(Message)) {
      Message m;
      std::memcpy(&m, buf + off, sizeof m);
      if (m.op == kGoodbye) _exit(0);
      if (m.op == kAdd) {
        if (n < p.capacity) p.groups[n++] = m.pgid;
      } else if (m.op == kRemove) {
        for (size_t i = 0; i < n; ++i) {
          if (p.groups[i] == m.pgid) {
            p.groups[i] = p.groups[--n];
            break;
          }
        }
      }
    }
    std::memmove(buf, buf + off, have - off);
    have -= off;
  }

  for (size_t s = 0; s < p.step_count && AnyAlive(p.groups, n); ++s) {
    for (size_t i = 0; i < n; ++i) kill(-p.groups[i], p.steps[s].signal);
    int64_t wait_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(p.steps[s].wait).count();
    int64_t until = NowMs() + wait_ms;
    while (NowMs() < until && AnyAlive(p.groups, n)) SleepMs(std::min<int64_t>(5, wait_ms));
  }
  for (size_t i = 0; i < n; ++i) kill(-p.groups[i], SIGKILL);
  if (p.exec_argv) execv(p.exec_argv[0], p.exec_argv);
  _exit(0);
}

}  // namespace

Result<std::unique_ptr<OrphanWatchdog>> OrphanWatchdog::Start(const WatchdogOptions& options) {
  // A socket rather than a pipe: send(MSG_NOSIGNAL) to a watchdog that is gone fails with
  // EPIPE instead of raising SIGPIPE in this program; SEQPACKET keeps messages whole.
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    return InternalError(core::ErrnoMessage("watchdog: socketpair", errno));
  }
  std::vector<TermSeq::Step> steps = options.termseq.steps;
  std::unique_ptr<pid_t[]> groups(new pid_t[std::max<size_t>(options.capacity, 1)]);
  std::vector<int> keep = options.keep_fds;
  keep.push_back(fds[0]);
  std::sort(keep.begin(), keep.end());
  keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  std::vector<std::string> exec_strings = options.then_exec;
  std::vector<char*> exec_argv;
  for (std::string& s : exec_strings) exec_argv.push_back(s.data());
  exec_argv.push_back(nullptr);
  ChildPlan plan{fds[0],       getpid(),     steps.data(),
                 steps.size(), groups.get(), options.capacity,
                 keep.data(),  keep.size(),  exec_strings.empty() ? nullptr : exec_argv.data()};
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    return InternalError(core::ErrnoMessage("watchdog: fork", err));
  }
  if (pid == 0) WatchdogMain(plan);
  close(fds[0]);
  return std::unique_ptr<OrphanWatchdog>(new OrphanWatchdog(pid, fds[1]));
}

OrphanWatchdog::~OrphanWatchdog() {
  Send(kGoodbye, 0);
  close(write_fd_);
  while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

void OrphanWatchdog::Add(pid_t pgid) { Send(kAdd, pgid); }
void OrphanWatchdog::Remove(pid_t pgid) { Send(kRemove, pgid); }

void OrphanWatchdog::Send(int op, pid_t pgid) {
  Message m{op, pgid};
  // A full socket buffer blocks the writer for the microseconds the watchdog takes to
  // drain it.
  while (send(write_fd_, &m, sizeof m, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

}  // namespace forklift::process
