#include "core/fd.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <gtest/gtest.h>

namespace forklift::core {
namespace {

bool IsOpen(int fd) { return fcntl(fd, F_GETFD) >= 0; }

TEST(FdTest, UniqueFdClosesOnceAndMovesOwnership) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const int raw = fds[0];
  {
    UniqueFd a(raw);
    EXPECT_TRUE(a.valid());
    UniqueFd b(std::move(a));
    EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the moved-from state
    EXPECT_EQ(b.get(), raw);
    UniqueFd c;
    c = std::move(b);
    EXPECT_EQ(c.get(), raw);
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_FALSE(IsOpen(raw));
  UniqueFd w(fds[1]);
  const int released = w.release();
  EXPECT_FALSE(w.valid());
  EXPECT_TRUE(IsOpen(released));
  int closing = released;
  CloseFd(closing);
  EXPECT_EQ(closing, -1);
  EXPECT_FALSE(IsOpen(released));
  CloseFd(closing);  // -1: nothing to do
}

TEST(FdTest, PipeEndsAreCloseOnExecAndAboveStdio) {
  // With stdin closed a plain pipe would take fd 0.
  const int saved = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 10);
  ASSERT_GE(saved, 0);
  close(STDIN_FILENO);
  int fds[2] = {-1, -1};
  Status made = MakePipe(fds, "test");
  dup2(saved, STDIN_FILENO);
  close(saved);
  ASSERT_TRUE(made) << made.error().ToString();
  for (int fd : fds) {
    EXPECT_GT(fd, 2);
    EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  }
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  char c = 0;
  EXPECT_EQ(read(fds[0], &c, 1), 1);
  CloseFd(fds[0]);
  CloseFd(fds[1]);
}

TEST(FdTest, EventFdWakesAPollUntilCleared) {
  auto ev = MakeEventFd("test");
  ASSERT_TRUE(ev) << ev.error().ToString();
  pollfd p{ev->get(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0);
  SignalEventFd(ev->get());
  SignalEventFd(ev->get());
  EXPECT_EQ(poll(&p, 1, 0), 1);
  ClearEventFd(ev->get());
  EXPECT_EQ(poll(&p, 1, 0), 0);
  ClearEventFd(ev->get());  // already 0: no block (non-blocking)
}

TEST(FdTest, PidfdBecomesReadableWhenTheChildExits) {
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    pause();
    _exit(0);
  }
  UniqueFd pidfd(PidfdOpen(pid));
  ASSERT_TRUE(pidfd.valid()) << ErrnoText(errno);
  pollfd p{pidfd.get(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0);
  EXPECT_EQ(PidfdSendSignal(pidfd.get(), SIGKILL), 0);
  EXPECT_EQ(poll(&p, 1, 5000), 1);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status));
}

TEST(FdTest, ErrnoWordsAndTheirClassification) {
  EXPECT_EQ(ErrnoText(ENOENT), "No such file or directory");
  EXPECT_EQ(ErrnoMessage("open", ENOENT), "open: No such file or directory");
  EXPECT_EQ(ErrnoError("pipe2", EMFILE).code, ErrorCode::kUnavailable);
  EXPECT_EQ(ErrnoError("pipe2", EMFILE).message, "pipe2: Too many open files");
  EXPECT_EQ(ErrnoError("x", EINVAL).code, ErrorCode::kInternal);
}

}  // namespace
}  // namespace forklift::core
