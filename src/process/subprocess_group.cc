#include "process/subprocess_group.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace forklift::process::subprocess_internal {
namespace {

// Reads "/proc/<pid>/stat" and says whether that process is a live member of pgid.
bool IsLiveMember(const char* pid_name, pid_t pgid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%s/stat", pid_name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;  // exited since readdir
  char buf[512];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so parse
  // from the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return false;
  char state = 0;
  long ppid = 0;
  long pgrp = 0;
  if (std::sscanf(p + 1, " %c %ld %ld", &state, &ppid, &pgrp) != 3) return false;
  return pgrp == pgid && state != 'Z' && state != 'X';
}

}  // namespace

bool GroupHasLiveMember(pid_t pgid) {
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return true;
  bool live = false;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] < '1' || entry->d_name[0] > '9') continue;
    if (IsLiveMember(entry->d_name, pgid)) {
      live = true;
      break;
    }
  }
  closedir(dir);
  return live;
}

void ReapOurMembers(pid_t pgid) {
  while (waitpid(-pgid, nullptr, WNOHANG) > 0) {
  }
}

bool GroupGone(pid_t pgid) {
  ReapOurMembers(pgid);
  if (kill(-pgid, 0) != 0 && errno == ESRCH) return true;
  if (GroupHasLiveMember(pgid)) return false;
  // Members that died between the first reap and the scan, and are ours to reap: reap
  // them now, or they would outlive the job as zombies of this program.
  ReapOurMembers(pgid);
  return true;
}

}  // namespace forklift::process::subprocess_internal
