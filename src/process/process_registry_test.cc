#include "process/process_registry.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

extern char** environ;

namespace forklift::process {
namespace {

// A `sleep 100` leading its own process group, reaped by ~Sleeper.
class Sleeper {
 public:
  Sleeper() {
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    char* argv[] = {const_cast<char*>("sleep"), const_cast<char*>("100"), nullptr};
    EXPECT_EQ(posix_spawnp(&pid_, "sleep", nullptr, &attr, argv, environ), 0);
    posix_spawnattr_destroy(&attr);
  }
  ~Sleeper() {
    if (!reaped_) {
      kill(-pid_, SIGKILL);
      Wait();
    }
  }
  pid_t pid() const { return pid_; }
  // The signal that ended it (blocks until it ends).
  int Wait() {
    int status = 0;
    EXPECT_EQ(waitpid(pid_, &status, 0), pid_);
    reaped_ = true;
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

TEST(ProcessRegistryTest, AddRemoveCounts) {
  ProcessRegistry registry;
  EXPECT_EQ(registry.size(), 0u);
  registry.Add(100001);
  registry.Add(100002);
  registry.Add(100001);
  EXPECT_EQ(registry.size(), 3u);
  registry.Remove(100001);
  EXPECT_EQ(registry.size(), 2u);
  registry.Remove(424242);  // not registered: no-op
  EXPECT_EQ(registry.size(), 2u);
  registry.Remove(100001);
  registry.Remove(100002);
  EXPECT_EQ(registry.size(), 0u);
}

TEST(ProcessRegistryTest, KillAllSignalsEveryGroup) {
  ProcessRegistry registry;
  Sleeper a;
  Sleeper b;
  registry.Add(a.pid());
  registry.Add(b.pid());
  EXPECT_EQ(registry.KillAll(SIGTERM), 2);
  EXPECT_EQ(a.Wait(), SIGTERM);
  EXPECT_EQ(b.Wait(), SIGTERM);
  // Dead but still registered (reaped above, so the ids are gone): nothing reached.
  EXPECT_EQ(registry.KillAll(0), 0);
}

TEST(ProcessRegistryTest, ShutdownAlsoSignalsLaterGroups) {
  ProcessRegistry registry;
  Sleeper before;
  registry.Add(before.pid());
  EXPECT_EQ(registry.shutdown_signal(), 0);
  EXPECT_EQ(registry.Shutdown(SIGKILL), 1);
  EXPECT_EQ(registry.shutdown_signal(), SIGKILL);
  EXPECT_EQ(before.Wait(), SIGKILL);
  Sleeper after;
  registry.Add(after.pid());
  EXPECT_EQ(after.Wait(), SIGKILL);
}

}  // namespace
}  // namespace forklift::process
