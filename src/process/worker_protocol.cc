#include "process/worker_protocol.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

namespace forklift::process::worker_internal {

namespace {
// Room for the two descriptors of a ControlReply; a bigger request is a caller bug.
constexpr size_t kMaxFds = 2;
}  // namespace

ssize_t SendFrameRest(int sock, const void* header, size_t header_size, std::string_view payload,
                      size_t done, int flags) {
  iovec iov[2];
  size_t count = 0;
  char* payload_bytes = const_cast<char*>(payload.data());
  if (done < header_size) {
    iov[count++] = {const_cast<char*>(static_cast<const char*>(header)) + done, header_size - done};
    iov[count++] = {payload_bytes, payload.size()};
  } else {
    iov[count++] = {payload_bytes + (done - header_size), header_size + payload.size() - done};
  }
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = count;
  return sendmsg(sock, &msg, flags | MSG_NOSIGNAL);
}

ssize_t SendWithFds(int sock, const void* data, size_t size, const int* fds, size_t nfds) {
  if (nfds > kMaxFds) {
    errno = EINVAL;
    return -1;
  }
  iovec iov{const_cast<void*>(data), size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  if (nfds > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    std::memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
  }
  ssize_t n;
  do {
    n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n;
}

ssize_t RecvWithFds(int sock, void* data, size_t size, int* fds, size_t max_fds, size_t* nfds) {
  *nfds = 0;
  iovec iov{data, size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    // MSG_CMSG_CLOEXEC: the received descriptors must not leak into programs that
    // other threads of the parent exec.
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return n;
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof fd);
      if (*nfds < max_fds) {
        fds[(*nfds)++] = fd;
      } else {
        close(fd);  // more than the caller can hold: do not leak it
      }
    }
  }
  return n;
}

}  // namespace forklift::process::worker_internal
