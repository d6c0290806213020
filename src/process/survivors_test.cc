#include "process/survivors.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace forklift::process {
namespace {

// `sh -c SCRIPT` in a group of its own, with MARK=VALUE in its environment.
pid_t SpawnMarked(const std::string& value, const char* script) {
  std::string mark = "FORKLIFT_SURVIVOR_TEST=" + value;
  char* envp[] = {mark.data(), nullptr};
  char* argv[] = {const_cast<char*>("/bin/sh"), const_cast<char*>("-c"), const_cast<char*>(script),
                  nullptr};
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, "/bin/sh", nullptr, &attr, argv, envp), 0);
  posix_spawnattr_destroy(&attr);
  return pid;
}

std::string Unique(const char* what) { return what + std::to_string(getpid()); }

TEST(SurvivorsTest, FindsExactlyTheMarkedProcessesAndEndsThem) {
  const std::string mine = Unique("run-a-"), other = Unique("run-a-x");
  pid_t a = SpawnMarked(mine, "exec sleep 100");
  pid_t b = SpawnMarked(other, "exec sleep 100");  // a longer value is not a match
  std::vector<pid_t> found;
  for (int i = 0; i < 2000 && found.empty(); ++i) {  // until exec has set the environment
    found = FindProcessesWithEnv("FORKLIFT_SURVIVOR_TEST", mine);
    if (found.empty()) usleep(1000);
  }
  ASSERT_EQ(found, std::vector<pid_t>{a});
  EXPECT_EQ(EndProcesses(found, TermSeq::Default()), 1);
  int status = 0;
  ASSERT_EQ(waitpid(a, &status, 0), a);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_TRUE(FindProcessesWithEnv("FORKLIFT_SURVIVOR_TEST", mine).empty());
  EXPECT_TRUE(IsLive(b)) << "a process with another mark is left alone";
  kill(b, SIGKILL);
  waitpid(b, nullptr, 0);
}

TEST(SurvivorsTest, AProcessIgnoringSigtermIsKilledAtTheEnd) {
  const std::string mine = Unique("run-b-");
  pid_t a = SpawnMarked(mine, "trap '' TERM; while :; do sleep 1; done");
  // The shell and, once its loop runs (the trap is set), its `sleep` carry the mark.
  std::vector<pid_t> found;
  for (int i = 0; i < 5000 && found.size() < 2; ++i) {
    found = FindProcessesWithEnv("FORKLIFT_SURVIVOR_TEST", mine);
    if (found.size() < 2) usleep(1000);
  }
  ASSERT_EQ(found.size(), 2u);
  EXPECT_TRUE(std::count(found.begin(), found.end(), a));
  EndProcesses(found, TermSeq::Default());
  int status = 0;
  ASSERT_EQ(waitpid(a, &status, 0), a);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

}  // namespace
}  // namespace forklift::process
