// The parent side of WorkerPool. See worker_pool.h for the design and worker_zygote.cc
// for the child side.
#include "process/worker_pool.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "core/fd.h"
#include "process/worker_protocol.h"
#include "process/worker_zygote.h"

namespace forklift::process {

using core::CloseFd;
using core::ErrnoMessage;
using worker_internal::ControlReply;
using worker_internal::ControlRequest;
using worker_internal::RequestHeader;
using worker_internal::ResponseHeader;
using worker_internal::ResponseKind;

enum class WorkerPool::Outcome {
  kOk,              // done (from Wait: the socket is ready)
  kDeadline,        // the deadline passed
  kCancelled,       // stop was requested
  kDied,            // the worker exited, or its socket failed, mid-exchange
  kGoneBeforeSend,  // the worker was dead before any byte of the request reached it
  kProtocol,        // the worker sent a malformed response
};

namespace {

using SteadyClock = std::chrono::steady_clock;

// After SIGKILL a process is gone in microseconds; the bound only guards against one
// stuck in the kernel (a hung NFS read), which the zygote then reaps whenever it goes.
constexpr std::chrono::milliseconds kExitWait{2000};
// Idle workers exit on EOF at once; the grace lets them flush the handler's stdio.
constexpr std::chrono::milliseconds kShutdownGrace{500};
// The zygote reaps its children (bounded by 1 s on its side) before exiting.
constexpr std::chrono::milliseconds kZygoteExitWait{2000};
// Far above any useful pool; keeps the table sizes below from overflowing.
constexpr size_t kMaxWorkers = 65536;

// "killed by signal 11 (SIGSEGV)" or "exited with status 3".
std::string DescribeWaitStatus(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    std::string text = "killed by signal " + std::to_string(sig);
    if (const char* abbrev = sigabbrev_np(sig)) {
      text += std::string(" (SIG") + abbrev + ")";
    }
    return text;
  }
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "wait status " + std::to_string(status);
}

timespec ToTimespec(SteadyClock::duration d) {
  if (d < SteadyClock::duration::zero()) d = SteadyClock::duration::zero();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(d);
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(d - secs);
  return timespec{static_cast<time_t>(secs.count()), static_cast<long>(nanos.count())};
}

// Waits until every pidfd in `fds` is readable (its process exited) or `timeout` passes.
// Exited entries are set to -1. Returns whether all exited.
bool WaitForExits(std::vector<pollfd>& fds, std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    size_t waiting = 0;
    for (pollfd& p : fds) {
      if (p.fd >= 0 && p.revents != 0) p.fd = -1;  // poll ignores negative descriptors
      p.revents = 0;
      if (p.fd >= 0) ++waiting;
    }
    if (waiting == 0) return true;
    const auto left = deadline - SteadyClock::now();
    if (left <= SteadyClock::duration::zero()) return false;
    const timespec ts = ToTimespec(left);
    if (ppoll(fds.data(), fds.size(), &ts, nullptr) < 0 && errno != EINTR) return false;
  }
}

bool WaitForExit(int pidfd, std::chrono::milliseconds timeout) {
  std::vector<pollfd> fds{{pidfd, POLLIN, 0}};
  return WaitForExits(fds, timeout);
}

// The std::stop_callback of a call: wakes its ppoll. Runs on the thread that requests
// stop; write(2) on an eventfd is all it does.
struct StopNotifier {
  int fd;
  void operator()() const noexcept { core::SignalEventFd(fd); }
};

}  // namespace

WorkerPool::WorkerPool(const WorkerPoolOptions& options, WorkerHandler handler)
    : options_(options),
      handler_(std::move(handler)),
      // Each slot has at most one live worker, plus the few the zygote may still be
      // waiting to see die; beyond that spawning fails with EAGAIN.
      zygote_children_(options.workers * 2 + 8),
      slots_(options.workers) {}

Result<std::unique_ptr<WorkerPool>> WorkerPool::Start(const WorkerPoolOptions& options,
                                                      WorkerHandler handler) {
  if (options.workers == 0 || options.workers > kMaxWorkers) {
    return InvalidArgumentError("WorkerPoolOptions.workers must be in [1, " +
                                std::to_string(kMaxWorkers) + "], got " +
                                std::to_string(options.workers));
  }
  if (!handler) return InvalidArgumentError("WorkerPool::Start needs a non-empty handler");
  // From here on an early return destroys the pool, which cleans up whatever started.
  std::unique_ptr<WorkerPool> pool(new WorkerPool(options, std::move(handler)));
  FORKLIFT_RETURN_IF_ERROR(pool->StartZygote());
  for (Slot& slot : pool->slots_) {
    FORKLIFT_ASSIGN_OR_RETURN(core::UniqueFd stop_fd, core::MakeEventFd("worker pool"));
    slot.stop_fd = stop_fd.release();  // closed with the slot
    FORKLIFT_RETURN_IF_ERROR(pool->ReplaceWorker(slot, nullptr));
  }
  return pool;
}

Status WorkerPool::StartZygote() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return InternalError(ErrnoMessage("socketpair", errno));
  }
  // Built before the fork: the zygote reads its copy and allocates nothing.
  worker_internal::ZygoteConfig config;
  config.control_fd = sv[1];
  config.parent_control_fd = sv[0];
  config.parent_pid = getpid();
  config.die_with_parent_thread = gettid() == getpid();
  config.max_message_bytes = options_.max_message_bytes;
  config.allow_core_dumps = options_.allow_core_dumps;
  config.handler = &handler_;
  config.children = zygote_children_.data();
  config.capacity = zygote_children_.size();

  // Empty stdio buffers now, or every worker would carry a copy of the pending output
  // and could write it again.
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(sv[0]);
    close(sv[1]);
    return InternalError(ErrnoMessage("fork (worker zygote)", err));
  }
  if (pid == 0) worker_internal::RunZygote(config);
  close(sv[1]);
  control_fd_ = sv[0];
  zygote_pid_ = pid;
  zygote_pidfd_ = core::PidfdOpen(pid);  // race-free: our unreaped child
  if (zygote_pidfd_ < 0) {
    return InternalError(ErrnoMessage("pidfd_open (needs Linux >= 5.3)", errno));
  }
  return OkStatus();
}

WorkerPool::~WorkerPool() {
  // EOF on every worker's socket: an idle worker flushes its stdio and exits 0.
  std::vector<pollfd> exits;
  for (Slot& slot : slots_) {
    CloseFd(slot.sock);
    if (slot.pidfd >= 0) exits.push_back({slot.pidfd, POLLIN, 0});
  }
  WaitForExits(exits, kShutdownGrace);
  for (Slot& slot : slots_) {
    // Harmless on one that exited; the zygote kills the process groups.
    if (slot.pidfd >= 0) core::PidfdSendSignal(slot.pidfd, SIGKILL);
    CloseFd(slot.pidfd);
    CloseFd(slot.stop_fd);
    slot.pid = 0;
  }
  // EOF on the control channel: the zygote kills every worker's process group, reaps
  // its children and exits.
  CloseFd(control_fd_);
  if (zygote_pid_ > 0) {
    if (zygote_pidfd_ < 0) {
      kill(zygote_pid_, SIGKILL);  // still our unreaped child, so the pid is still it
    } else if (!WaitForExit(zygote_pidfd_, kZygoteExitWait)) {
      core::PidfdSendSignal(zygote_pidfd_, SIGKILL);
    }
    int status = 0;
    while (waitpid(zygote_pid_, &status, 0) < 0 && errno == EINTR) {
    }
    CloseFd(zygote_pidfd_);
  }
}

pid_t WorkerPool::worker_pid(size_t slot) const {
  return slot < slots_.size() ? slots_[slot].pid : 0;
}

Status WorkerPool::ReplaceWorker(Slot& slot, int* old_status) {
  if (old_status != nullptr) *old_status = -1;
  ControlRequest request;
  request.spawn = 1;
  if (slot.pid > 0) {
    // Through the pidfd, so the signal can never reach a recycled pid. The process group
    // is left to the zygote, which kills it while the dead leader still pins its id.
    core::PidfdSendSignal(slot.pidfd, SIGKILL);
    WaitForExit(slot.pidfd, kExitWait);
    request.release_serial = slot.serial;
  }
  CloseFd(slot.sock);
  CloseFd(slot.pidfd);
  slot.pid = 0;
  slot.serial = 0;

  ControlReply reply;
  int fds[2] = {-1, -1};
  size_t nfds = 0;
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    if (zygote_gone_) {
      return InternalError("the worker pool's zygote process is gone; no worker can be forked");
    }
    ssize_t n;
    do {
      n = send(control_fd_, &request, sizeof request, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof request)) {
      n = worker_internal::RecvWithFds(control_fd_, &reply, sizeof reply, fds, 2, &nfds);
    }
    if (n != static_cast<ssize_t>(sizeof reply)) {
      zygote_gone_ = true;
      for (size_t i = 0; i < nfds; ++i) CloseFd(fds[i]);
      return InternalError("the worker pool's zygote process died; no worker can be forked");
    }
  }
  if (reply.release_state == worker_internal::kReleaseReaped && old_status != nullptr) {
    *old_status = reply.release_status;
  }
  if (reply.spawn_errno != 0 || nfds != 2) {
    for (size_t i = 0; i < nfds; ++i) CloseFd(fds[i]);
    return InternalError(ErrnoMessage("the worker zygote could not fork a worker",
                                      reply.spawn_errno != 0 ? reply.spawn_errno : EPROTO));
  }
  slot.sock = fds[0];
  slot.pidfd = fds[1];
  slot.pid = reply.pid;
  slot.serial = reply.serial;
  return OkStatus();
}

Result<std::string> WorkerPool::Call(size_t slot_index, std::string_view request,
                                     TimePoint deadline, const std::stop_token& stop) {
  if (slot_index >= slots_.size()) {
    return InvalidArgumentError("worker slot " + std::to_string(slot_index) +
                                " out of range; the pool has " + std::to_string(slots_.size()));
  }
  if (request.size() > options_.max_message_bytes) {
    return InvalidArgumentError("request of " + std::to_string(request.size()) +
                                " bytes exceeds max_message_bytes (" +
                                std::to_string(options_.max_message_bytes) + ")");
  }
  if (stop.stop_requested()) return CancelledError("cancelled before it was sent to a worker");
  if (deadline <= SteadyClock::now()) {
    return DeadlineExceededError("deadline passed before the request was sent to a worker");
  }
  Slot& slot = slots_[slot_index];
  if (slot.pid == 0) FORKLIFT_RETURN_IF_ERROR(ReplaceWorker(slot, nullptr));

  std::string response;
  uint32_t kind = 0;
  Outcome outcome;
  Status idle_death_replaced = OkStatus();
  {
    std::optional<std::stop_callback<StopNotifier>> on_stop;
    if (stop.stop_possible()) on_stop.emplace(stop, StopNotifier{slot.stop_fd});
    outcome = Exchange(slot, request, deadline, &response, &kind);
    if (outcome == Outcome::kGoneBeforeSend) {
      // It died while idle (killed from outside, or just after its last response): not
      // this item's doing, so the item gets a fresh worker instead of the blame.
      idle_death_replaced = ReplaceWorker(slot, nullptr);
      if (idle_death_replaced) {
        outcome = Exchange(slot, request, deadline, &response, &kind);
        if (outcome == Outcome::kGoneBeforeSend) outcome = Outcome::kDied;
      }
    }
  }
  // The callback is gone, so it ran (and wrote) or never will: reset the eventfd for the
  // slot's next call.
  if (stop.stop_requested()) core::ClearEventFd(slot.stop_fd);
  if (!idle_death_replaced) return tl::unexpected(std::move(idle_death_replaced).error());

  if (outcome == Outcome::kOk) {
    switch (static_cast<ResponseKind>(kind)) {
      case ResponseKind::kOk: return response;
      case ResponseKind::kHandlerThrew: return InternalError("worker handler threw: " + response);
      case ResponseKind::kResponseTooLarge:
        return InternalError("worker response of " + response +
                             " bytes exceeds max_message_bytes (" +
                             std::to_string(options_.max_message_bytes) + ")");
    }
    outcome = Outcome::kProtocol;
  }

  int status = -1;
  Status replaced = ReplaceWorker(slot, &status);
  std::string suffix;
  if (!replaced) suffix = "; no replacement worker: " + replaced.error().message;
  switch (outcome) {
    case Outcome::kDeadline:
      return DeadlineExceededError("worker exceeded its deadline; killed" + suffix);
    case Outcome::kCancelled: return CancelledError("cancelled; worker killed" + suffix);
    case Outcome::kProtocol:
      return InternalError("worker sent a malformed response; killed" + suffix);
    default:
      return InternalError(
          "worker process died: " +
          (status >= 0 ? DescribeWaitStatus(status) : std::string("exit status unavailable")) +
          suffix);
  }
}

WorkerPool::Outcome WorkerPool::Exchange(Slot& slot, std::string_view request, TimePoint deadline,
                                         std::string* response, uint32_t* kind) {
  Outcome sent = Send(slot, request, deadline);
  if (sent != Outcome::kOk) return sent;
  return Receive(slot, deadline, response, kind);
}

WorkerPool::Outcome WorkerPool::Send(Slot& slot, std::string_view request, TimePoint deadline) {
  RequestHeader header;
  header.size = request.size();
  header.deadline_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
  const size_t total = sizeof header + request.size();
  size_t done = 0;
  while (done < total) {
    const ssize_t n = worker_internal::SendFrameRest(slot.sock, &header, sizeof header, request,
                                                     done, MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const Outcome ready = Wait(slot, POLLOUT, deadline);
      if (ready != Outcome::kOk) return ready;
      continue;
    }
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET) && done == 0) {
      return Outcome::kGoneBeforeSend;
    }
    return Outcome::kDied;
  }
  return Outcome::kOk;
}

WorkerPool::Outcome WorkerPool::Receive(Slot& slot, TimePoint deadline, std::string* response,
                                        uint32_t* kind) {
  // The header and a small response arrive in one read into this buffer; a large one
  // is read straight into *response once the header gives its size.
  char first[4096];
  size_t first_got = 0;
  bool have_header = false;
  size_t got = 0;
  for (;;) {
    const Outcome ready = Wait(slot, POLLIN, deadline);
    if (ready != Outcome::kOk) return ready;
    // Drain what is there before waiting again.
    for (;;) {
      const ssize_t n = have_header
                            ? read(slot.sock, response->data() + got, response->size() - got)
                            : read(slot.sock, first + first_got, sizeof first - first_got);
      if (n == 0) return Outcome::kDied;  // EOF: the worker is exiting
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return Outcome::kDied;  // ECONNRESET: it died with our request unread
      }
      if (have_header) {
        got += static_cast<size_t>(n);
      } else {
        first_got += static_cast<size_t>(n);
        if (first_got < sizeof(ResponseHeader)) continue;
        ResponseHeader header;
        std::memcpy(&header, first, sizeof header);
        const size_t extra = first_got - sizeof header;
        // A worker answers each request once; more bytes than announced is garbage.
        if (header.size > options_.max_message_bytes || extra > header.size) {
          return Outcome::kProtocol;
        }
        response->resize(header.size);
        std::memcpy(response->data(), first + sizeof header, extra);
        got = extra;
        *kind = header.kind;
        have_header = true;
      }
      if (have_header && got == response->size()) return Outcome::kOk;
    }
  }
}

WorkerPool::Outcome WorkerPool::Wait(const Slot& slot, short events, TimePoint deadline) const {
  for (;;) {
    // The pidfd catches a death even when a grandchild still holds the worker's socket
    // open (so no EOF would come); the eventfd is the stop callback's.
    pollfd fds[3] = {{slot.sock, events, 0}, {slot.pidfd, POLLIN, 0}, {slot.stop_fd, POLLIN, 0}};
    timespec ts{};
    const timespec* timeout = nullptr;
    if (deadline != TimePoint::max()) {
      // Past the deadline this still polls once, so a response that is already there
      // wins over the timeout.
      ts = ToTimespec(deadline - SteadyClock::now());
      timeout = &ts;
    }
    const int n = ppoll(fds, 3, timeout, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Outcome::kDied;  // cannot wait (ENOMEM): give the slot a fresh start
    }
    if (fds[0].revents != 0) return Outcome::kOk;  // includes HUP/ERR: I/O reports them
    if (fds[2].revents != 0) return Outcome::kCancelled;
    if (fds[1].revents != 0) return Outcome::kDied;
    if (n == 0 && SteadyClock::now() >= deadline) return Outcome::kDeadline;
  }
}

}  // namespace forklift::process
