#include "flow/flow_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

namespace forklift::flow {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string ReadHolder(int fd) {
  std::string text;
  char buf[512];
  ssize_t n;
  off_t off = 0;
  while ((n = pread(fd, buf, sizeof buf, off)) > 0 && text.size() < 4096) {
    text.append(buf, static_cast<size_t>(n));
    off += n;
  }
  return text;
}

// The holder's pid from the lock file, or 0.
pid_t HolderPid(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return 0;
  return j.value("pid", 0);
}

std::string HolderText(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return "holder unknown";
  std::time_t started = static_cast<std::time_t>(j.value("started_unix_s", 0.0));
  std::tm tm{};
  localtime_r(&started, &tm);
  char when[64];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  std::string run = j.value("run_id", "");
  return fmt::format("run {}, pid {}, started {}", run.empty() ? "(starting)" : run,
                     j.value("pid", 0), when);
}

}  // namespace

std::string FlowLock::PathFor(const std::string& journal_path, const std::string& flow_name) {
  return (fs::path(journal_path).parent_path() / ("flow-" + flow_name + ".lock")).string();
}

Result<std::unique_ptr<FlowLock>> FlowLock::Acquire(const std::string& path,
                                                    const std::string& flow_name,
                                                    std::optional<Duration> wait) {
  std::error_code ec;
  fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return InvalidArgumentError(
        fmt::format("cannot open the lock file '{}': {}", path, std::strerror(errno)));
  }
  using Steady = std::chrono::steady_clock;
  const auto start = Steady::now();
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) break;
    if (errno != EWOULDBLOCK && errno != EINTR) {
      int err = errno;
      close(fd);
      return InvalidArgumentError(fmt::format("cannot lock '{}': {}", path, std::strerror(err)));
    }
    std::string holder = ReadHolder(fd);
    pid_t pid = HolderPid(holder);
    // A holder that is gone while the lock is still held: its watchdog is ending the tasks
    // it left (a few hundred ms); wait for that rather than refuse.
    bool dying = pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
    Duration limit = wait.value_or(Duration::zero());
    if (dying) limit = std::max<Duration>(limit, std::chrono::seconds(10));
    if (Steady::now() - start >= limit) {
      close(fd);
      return AbortedError(fmt::format(
          "flow '{}' is already running: {} (lock {}){}", flow_name, HolderText(holder), path,
          dying ? "; that process is gone, and its watchdog, still ending its tasks, holds "
                  "the lock"
                : ""));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto lock = std::unique_ptr<FlowLock>(new FlowLock(path, fd));
  lock->Describe("");  // this pid at once; the run id once it is known
  return lock;
}

void FlowLock::Describe(const std::string& run_id) {
  double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string text =
      json{{"run_id", run_id}, {"pid", getpid()}, {"started_unix_s", now}}.dump() + "\n";
  if (ftruncate(fd_, 0) == 0) {
    ssize_t ignored = pwrite(fd_, text.data(), text.size(), 0);
    (void)ignored;
  }
}

FlowLock::~FlowLock() {
  flock(fd_, LOCK_UN);
  close(fd_);
}

}  // namespace forklift::flow
