#include "process/orphan_watchdog.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "process/process_registry.h"

extern char** environ;

namespace forklift::process {
namespace {

// The test process adopts the orphans of the "forklift" it forks (the job and the
// watchdog), so it can wait for their deaths and reap them.
class Subreaper {
 public:
  Subreaper() { prctl(PR_SET_CHILD_SUBREAPER, 1); }
  // Reaps what was adopted (a killed job's own children, e.g. its `sleep`), so that no
  // child of this test is left for the next test to find.
  ~Subreaper() {
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < until) {
      pid_t r = waitpid(-1, nullptr, WNOHANG);
      if (r < 0) return;  // ECHILD: none left
      if (r == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
};

pid_t SpawnGroup(const char* script) {
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  char* argv[] = {const_cast<char*>("/bin/sh"), const_cast<char*>("-c"), const_cast<char*>(script),
                  nullptr};
  pid_t pid = -1;
  if (posix_spawn(&pid, "/bin/sh", nullptr, &attr, argv, environ) != 0) pid = -1;
  posix_spawnattr_destroy(&attr);
  return pid;
}

// Waits (bounded) until `pid`, a child of ours, has ended; returns its wait status, or -1
// when it is still alive after `limit`.
int WaitFor(pid_t pid, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  auto until = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (std::chrono::steady_clock::now() < until) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -1;
}

// A job that ignores SIGTERM, and a marker it writes once the trap is set.
struct Stubborn {
  std::string marker = (std::filesystem::temp_directory_path() /
                        ("forklift-watchdog-trap-" + std::to_string(getpid())))
                           .string();
  std::string script = "trap '' TERM; : > " + marker + "; while :; do sleep 1; done";
  Stubborn() { std::filesystem::remove(marker); }
  ~Stubborn() { std::filesystem::remove(marker); }
  bool WaitReady() {
    for (int i = 0; i < 4000; ++i) {
      if (std::filesystem::exists(marker)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
};

struct Forked {
  pid_t forklift = -1;  // the stand-in for forklift
  pid_t job = -1;       // its job, leading its own group
  pid_t watchdog = -1;
};

// Forks a stand-in for forklift that starts a watchdog, starts a job group running
// `script`, registers it (unless `remove_again`), reports the pids, then either waits to
// be killed or, with `goodbye`, ends its watchdog properly and exits.
Forked ForkForklift(const char* script, bool remove_again, bool goodbye, int lock_fd = -1,
                    std::vector<std::string> then_exec = {}) {
  int report[2];
  EXPECT_EQ(pipe(report), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(report[0]);
    WatchdogOptions options;
    if (lock_fd >= 0) options.keep_fds = {lock_fd};
    options.then_exec = then_exec;
    auto dog = OrphanWatchdog::Start(options);
    if (!dog) _exit(3);
    ProcessRegistry registry;
    registry.Watch(dog->get());
    pid_t job = SpawnGroup(script);
    registry.Add(job);
    if (remove_again) registry.Remove(job);
    pid_t pids[2] = {job, (*dog)->pid()};
    if (write(report[1], pids, sizeof pids) != sizeof pids) _exit(4);
    if (goodbye) {
      dog->reset();
      _exit(0);
    }
    for (;;) pause();
  }
  close(report[1]);
  pid_t pids[2] = {-1, -1};
  EXPECT_EQ(read(report[0], pids, sizeof pids), static_cast<ssize_t>(sizeof pids));
  close(report[0]);
  return {pid, pids[0], pids[1]};
}

TEST(OrphanWatchdogTest, ASigkilledProgramsRegisteredGroupIsEnded) {
  Subreaper subreaper;
  Forked f = ForkForklift("exec sleep 1000", /*remove_again=*/false, /*goodbye=*/false);
  ASSERT_GT(f.job, 0);
  ASSERT_EQ(kill(f.forklift, SIGKILL), 0);
  ASSERT_NE(WaitFor(f.forklift), -1);
  int status = WaitFor(f.job);
  ASSERT_NE(status, -1) << "the job outlived its forklift";
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_NE(WaitFor(f.watchdog), -1) << "the watchdog did not exit after its work";
}

TEST(OrphanWatchdogTest, AfterEndingTheGroupsTheWatchdogExecsItsSweep) {
  Subreaper subreaper;
  const std::string marker = (std::filesystem::temp_directory_path() /
                              ("forklift-watchdog-sweep-" + std::to_string(getpid())))
                                 .string();
  std::filesystem::remove(marker);
  Forked f = ForkForklift("exec sleep 1000", false, false, -1,
                          {"/bin/sh", "-c", "echo swept > " + marker});
  ASSERT_GT(f.job, 0);
  ASSERT_EQ(kill(f.forklift, SIGKILL), 0);
  ASSERT_NE(WaitFor(f.forklift), -1);
  ASSERT_NE(WaitFor(f.job), -1) << "the registered group is ended as before";
  ASSERT_NE(WaitFor(f.watchdog), -1) << "the sweep (exec'd in the watchdog's pid) exited";
  std::string text;
  if (FILE* in = std::fopen(marker.c_str(), "r")) {
    char buf[16] = {};
    text = std::fgets(buf, sizeof buf, in) ? buf : "";
    std::fclose(in);
  }
  std::filesystem::remove(marker);
  EXPECT_EQ(text, "swept\n");
}

TEST(OrphanWatchdogTest, AJobIgnoringSigtermGetsSigkillAtTheEndOfTheSequence) {
  Subreaper subreaper;
  Stubborn job;
  Forked f = ForkForklift(job.script.c_str(), false, false);
  ASSERT_GT(f.job, 0);
  ASSERT_TRUE(job.WaitReady());
  ASSERT_EQ(kill(f.forklift, SIGKILL), 0);
  ASSERT_NE(WaitFor(f.forklift), -1);
  int status = WaitFor(f.job);
  ASSERT_NE(status, -1);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_NE(WaitFor(f.watchdog), -1);
}

TEST(OrphanWatchdogTest, AGoodbyeLeavesRegisteredGroupsAlone) {
  Subreaper subreaper;
  Forked f = ForkForklift("exec sleep 1000", /*remove_again=*/false, /*goodbye=*/true);
  ASSERT_GT(f.job, 0);
  ASSERT_NE(WaitFor(f.forklift), -1);
  // The destructor reaped its watchdog before the stand-in exited.
  EXPECT_EQ(kill(f.watchdog, 0), -1);
  EXPECT_EQ(waitpid(f.job, nullptr, WNOHANG), 0) << "the job was killed";
  kill(-f.job, SIGKILL);
  EXPECT_NE(WaitFor(f.job), -1);
}

TEST(OrphanWatchdogTest, AGroupThatEndedIsNotSignalled) {
  Subreaper subreaper;
  Forked f = ForkForklift("exec sleep 1000", /*remove_again=*/true, /*goodbye=*/false);
  ASSERT_GT(f.job, 0);
  ASSERT_EQ(kill(f.forklift, SIGKILL), 0);
  ASSERT_NE(WaitFor(f.forklift), -1);
  // The watchdog exits once it has ended what was registered, here nothing.
  EXPECT_NE(WaitFor(f.watchdog), -1);
  EXPECT_EQ(kill(f.job, 0), 0) << "a withdrawn group was signalled";
  kill(-f.job, SIGKILL);
  EXPECT_NE(WaitFor(f.job), -1);
}

TEST(OrphanWatchdogTest, AKeptLockIsHeldUntilTheGroupsAreGone) {
  Subreaper subreaper;
  std::string path = (std::filesystem::temp_directory_path() /
                      ("forklift-watchdog-" + std::to_string(getpid()) + ".lock"))
                         .string();
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX | LOCK_NB), 0);
  Stubborn job;
  Forked f = ForkForklift(job.script.c_str(), false, false, fd);
  ASSERT_GT(f.job, 0);
  close(fd);  // only the forklift stand-in and its watchdog hold the lock now
  ASSERT_TRUE(job.WaitReady());
  ASSERT_EQ(kill(f.forklift, SIGKILL), 0);
  ASSERT_NE(WaitFor(f.forklift), -1);
  int other = open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(other, 0);
  bool locked = false;
  for (int i = 0; i < 4000 && !locked; ++i) {
    locked = flock(other, LOCK_EX | LOCK_NB) == 0;
    if (locked) {
      // Whoever takes the lock next finds the job gone (a zombie at most, not reaped yet).
      int status = 0;
      EXPECT_EQ(waitpid(f.job, &status, WNOHANG), f.job) << "lock free while the job lives";
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  EXPECT_TRUE(locked);
  close(other);
  std::filesystem::remove(path);
  WaitFor(f.job, std::chrono::milliseconds(10));
  EXPECT_NE(WaitFor(f.watchdog), -1);
}

}  // namespace
}  // namespace forklift::process
