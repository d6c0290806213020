#include "process/survivors.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

namespace forklift::process {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  return {std::istreambuf_iterator<char>(in), {}};
}

// Fields of /proc/PID/stat after the command name (which may hold spaces and parens):
// [0] state, [2] pgrp.
std::vector<std::string> StatFields(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  std::vector<std::string> fields;
  if (close == std::string::npos) return fields;
  size_t i = close + 1;
  while (i < stat.size() && fields.size() < 3) {
    while (i < stat.size() && stat[i] == ' ') ++i;
    size_t start = i;
    while (i < stat.size() && stat[i] != ' ') ++i;
    if (i > start) fields.push_back(stat.substr(start, i - start));
  }
  return fields;
}

bool AnyLive(std::span<const pid_t> pids) {
  for (pid_t p : pids) {
    if (IsLive(p)) return true;
  }
  return false;
}

void SignalAll(std::span<const pid_t> pids, int sig) {
  for (pid_t p : pids) {
    std::vector<std::string> f = StatFields(p);
    if (f.size() >= 3) {
      pid_t pgrp = static_cast<pid_t>(std::stol(f[2]));
      if (pgrp > 1 && pgrp != getpgrp()) kill(-pgrp, sig);
    }
    kill(p, sig);
  }
}

}  // namespace

bool IsLive(pid_t pid) {
  std::vector<std::string> f = StatFields(pid);
  return !f.empty() && f[0] != "Z" && f[0] != "X";
}

std::vector<pid_t> FindProcessesWithEnv(std::string_view name, std::string_view value) {
  std::string mark;
  mark.reserve(name.size() + value.size() + 2);
  mark.append(name).append("=").append(value);
  std::vector<pid_t> found;
  DIR* proc = opendir("/proc");
  if (!proc) return found;
  const pid_t self = getpid();
  while (dirent* e = readdir(proc)) {
    if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
    pid_t pid = static_cast<pid_t>(std::stol(e->d_name));
    if (pid == self) continue;
    std::string env = ReadFile(std::string("/proc/") + e->d_name + "/environ");
    // Entries are NUL-terminated; match whole entries only.
    for (size_t at = env.find(mark); at != std::string::npos; at = env.find(mark, at + 1)) {
      bool starts = at == 0 || env[at - 1] == '\0';
      bool ends = at + mark.size() == env.size() || env[at + mark.size()] == '\0';
      if (starts && ends) {
        if (IsLive(pid)) found.push_back(pid);
        break;
      }
    }
  }
  closedir(proc);
  return found;
}

int EndProcesses(std::span<const pid_t> pids, const TermSeq& seq) {
  int live = 0;
  for (pid_t p : pids) live += IsLive(p) ? 1 : 0;
  if (live == 0) return 0;
  using Clock = std::chrono::steady_clock;
  for (const TermSeq::Step& step : seq.steps) {
    if (!AnyLive(pids)) return live;
    SignalAll(pids, step.signal);
    auto until = Clock::now() + step.wait;
    while (Clock::now() < until && AnyLive(pids)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  auto until = Clock::now() + std::chrono::seconds(1);
  while (AnyLive(pids) && Clock::now() < until) {
    SignalAll(pids, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return live;
}

}  // namespace forklift::process
