// Wire formats shared by the WorkerPool (parent side, worker_pool.cc) and its zygote and
// workers (child side, worker_zygote.cc), and the descriptor passing both need (the
// descriptors themselves: core/fd.h).
// Private to the process module.
//
// Everything here is usable between fork() and _exit(): no allocation, no locks, only
// system calls. The zygote is forked from a multi-threaded process and must stay within
// that set for its whole life.
#ifndef FORKLIFT_PROCESS_WORKER_PROTOCOL_H_
#define FORKLIFT_PROCESS_WORKER_PROTOCOL_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace forklift::process::worker_internal {

// A worker's socket carries one request, then one response, then the next request. Both
// are a fixed header followed by `size` opaque bytes. Native byte order: both ends are
// the same program on the same machine.
struct RequestHeader {
  uint64_t size = 0;
  // The item's deadline as std::chrono::steady_clock nanoseconds since its epoch
  // (CLOCK_MONOTONIC is shared by every process on the machine).
  int64_t deadline_ns = 0;
};
static_assert(sizeof(RequestHeader) == 16);

enum class ResponseKind : uint32_t {
  kOk = 0,            // the payload is the handler's response
  kHandlerThrew = 1,  // the payload is the exception's what()
  // The handler's response exceeded max_message_bytes; the payload is its size in
  // decimal. The worker stays healthy.
  kResponseTooLarge = 2,
};

struct ResponseHeader {
  uint64_t size = 0;
  uint32_t kind = 0;  // a ResponseKind
  uint32_t reserved = 0;
};
static_assert(sizeof(ResponseHeader) == 16);

// The control channel between the parent and the zygote is a SOCK_SEQPACKET socketpair:
// one request, one reply, each a single datagram, serialized by the parent's mutex.
//
// "Release worker `release_serial` (which the parent has already SIGKILLed and seen
// exit), then fork a new worker if `spawn`." Either part may be absent (0). Workers are
// named by a serial the zygote assigns, not by pid: a reaped worker's pid may already
// belong to its successor by the time the parent asks for its status.
struct ControlRequest {
  uint64_t release_serial = 0;
  int32_t spawn = 0;
  int32_t reserved = 0;
};

enum ReleaseState : int32_t {
  kReleaseNotAsked = 0,
  kReleaseReaped = 1,   // release_status is the old worker's waitpid() status
  kReleaseUnknown = 2,  // the zygote could not reap it (not its child, or not yet dead)
};

// The reply carries, when spawn_errno == 0, two descriptors by SCM_RIGHTS: the parent's
// end of the new worker's socket (already O_NONBLOCK) and a pidfd for the worker.
struct ControlReply {
  int32_t release_state = kReleaseNotAsked;
  int32_t release_status = 0;
  int32_t spawn_errno = 0;  // 0: spawned
  int32_t pid = 0;          // the new worker, when spawned
  uint64_t serial = 0;      // the new worker's serial, when spawned
};

// Exit codes a worker uses for its own failures, never for a handler's. High and odd so
// that they are unlikely to be confused with a handler's _exit().
inline constexpr int kWorkerExitOrphaned = 121;  // its zygote died before it started
inline constexpr int kWorkerExitProtocol = 122;  // a malformed request
inline constexpr int kWorkerExitIoError = 123;   // its socket failed
inline constexpr int kZygoteExitSetupFailed = 124;

// Sends what is left of a frame (a header of `header_size` bytes, then `payload`) after
// its first `done` bytes went: the header's rest and the payload in one sendmsg, so a
// small frame costs one system call. `flags` are sendmsg's (MSG_NOSIGNAL is added: a dead
// peer is an EPIPE to handle, not a SIGPIPE). Returns what sendmsg returns (EINTR is the
// caller's to retry). Async-signal-safe.
ssize_t SendFrameRest(int sock, const void* header, size_t header_size, std::string_view payload,
                      size_t done, int flags);

// Sends `size` bytes as one message with `nfds` descriptors attached (SCM_RIGHTS),
// MSG_NOSIGNAL. Returns what sendmsg returns. Async-signal-safe.
ssize_t SendWithFds(int sock, const void* data, size_t size, const int* fds, size_t nfds);

// Receives one message of at most `size` bytes and up to `max_fds` descriptors, which
// arrive close-on-exec. Sets *nfds to the number received. Returns what recvmsg returns;
// EINTR is retried. Async-signal-safe.
ssize_t RecvWithFds(int sock, void* data, size_t size, int* fds, size_t max_fds, size_t* nfds);

}  // namespace forklift::process::worker_internal

#endif  // FORKLIFT_PROCESS_WORKER_PROTOCOL_H_
