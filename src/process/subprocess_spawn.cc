// The spawning half of Run() (subprocess.h): pipes, posix_spawn attributes and file
// actions, the environment, PATH lookup for an `env` that sets PATH, exec failures as
// exit codes 127/126, and the pidfd.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <vector>

#include "process/subprocess_job.h"

extern char** environ;

namespace forklift::process::subprocess_internal {
namespace {

std::atomic<bool> g_force_pidfd_fallback{false};
std::atomic<bool> g_pidfd_unsupported{false};  // learned from ENOSYS, once per process

int OpenPidfd(pid_t pid) {
  if (g_force_pidfd_fallback.load(std::memory_order_relaxed) ||
      g_pidfd_unsupported.load(std::memory_order_relaxed)) {
    return -1;
  }
  int fd = core::PidfdOpen(pid);
  if (fd < 0 && errno == ENOSYS) g_pidfd_unsupported.store(true, std::memory_order_relaxed);
  return fd;  // any other failure (EMFILE): this job polls waitpid instead
}

// argv[0] looked up in `path` (the PATH a caller's env sets), relative entries taken
// from the child's working directory. nullopt when no entry has an executable file.
std::optional<std::string> SearchPath(const std::string& file, std::string_view path,
                                      const std::string& cwd) {
  for (size_t begin = 0; begin <= path.size();) {
    size_t colon = std::min(path.find(':', begin), path.size());
    std::string dir(path.substr(begin, colon - begin));
    begin = colon + 1;
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + file;
    if (dir[0] != '/' && !cwd.empty()) candidate = cwd + "/" + candidate;
    struct stat st;
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return std::nullopt;
}

}  // namespace

Status Job::ReportSpawnFailure(int err) {
  done_.exit_code = err == ENOENT ? 127 : 126;
  done_.spawn_errno = err;
  std::string message =
      "forklift: cannot run '" + options_.argv[0] + "': " + ErrnoText(err) + "\n";
  if (options_.stderr_mode == OutputMode::kInherit) {
    ssize_t ignored = write(STDERR_FILENO, message.data(), message.size());
    (void)ignored;  // nowhere better to report a failing stderr
    return OkStatus();
  }
  return Deliver(out_[1], message);
}

Result<bool> Job::Spawn() {
  const SpawnOptions& o = options_;
  out_[0] = {-1, Stream::kStdout, o.stdout_mode, &done_.stdout_output, &done_.stdout_bytes};
  out_[1] = {-1, Stream::kStderr, o.stderr_mode, &done_.stderr_output, &done_.stderr_bytes};
  done_.stdout_output = OutputBuffer(o.output_memory_limit, o.spill_dir);
  done_.stderr_output = OutputBuffer(o.output_memory_limit, o.spill_dir);
  done_.start = std::chrono::system_clock::now();
  spawned_at_ = SteadyClock::now();

  // Which program: posix_spawnp searches this program's PATH, so a PATH set in `env`
  // needs our own search.
  const std::string* program = &o.argv[0];
  std::string resolved;
  bool search_path = o.argv[0].find('/') == std::string::npos;
  auto path_env = std::find_if(o.env.rbegin(), o.env.rend(),
                               [](const auto& kv) { return kv.first == "PATH"; });
  if (search_path && path_env != o.env.rend()) {
    std::optional<std::string> found = SearchPath(o.argv[0], path_env->second, o.cwd);
    if (!found) return ReportSpawnFailure(ENOENT).map([] { return false; });
    resolved = std::move(*found);
    program = &resolved;
    search_path = false;
  }

  // Descriptors for the child. The child ends are closed on every path by `child_fds`.
  int child_fds[3] = {-1, -1, -1};
  struct Closer {
    int* fds;
    ~Closer() {
      for (int i = 0; i < 3; ++i) CloseFd(fds[i]);
    }
  } closer{child_fds};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  struct ActionsGuard {
    posix_spawn_file_actions_t* a;
    ~ActionsGuard() { posix_spawn_file_actions_destroy(a); }
  } actions_guard{&actions};

  if (o.stdin_mode == InputMode::kNull) {
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  } else if (o.stdin_mode == InputMode::kData) {
    int fds[2];
    FORKLIFT_RETURN_IF_ERROR(core::MakePipe(fds, "subprocess"));
    child_fds[0] = fds[0];
    stdin_fd_ = fds[1];
    // Non-blocking on our end only (a separate open file description from the child's):
    // a child that does not read must not block us from reading its output.
    if (fcntl(stdin_fd_, F_SETFL, O_NONBLOCK) != 0) return SysError("fcntl(O_NONBLOCK)", errno);
    posix_spawn_file_actions_adddup2(&actions, child_fds[0], STDIN_FILENO);
  }
  for (int i = 0; i < 2; ++i) {
    if (out_[i].mode == OutputMode::kInherit) continue;
    int fds[2];
    FORKLIFT_RETURN_IF_ERROR(core::MakePipe(fds, "subprocess"));
    out_[i].fd = fds[0];
    child_fds[1 + i] = fds[1];
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO + i);
  }
  if (!o.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, o.cwd.c_str());

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  struct AttrGuard {
    posix_spawnattr_t* a;
    ~AttrGuard() { posix_spawnattr_destroy(a); }
  } attr_guard{&attr};
  sigset_t empty_mask;
  sigemptyset(&empty_mask);
  posix_spawnattr_setsigmask(&attr, &empty_mask);
  // Ignored signals survive exec: a child of a program that ignores SIGPIPE would not die
  // writing to a closed pipe (`yes | head` would run forever). Reset them all.
  sigset_t default_set;
  sigfillset(&default_set);
  sigdelset(&default_set, SIGKILL);
  sigdelset(&default_set, SIGSTOP);
  posix_spawnattr_setsigdefault(&attr, &default_set);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv;
  argv.reserve(o.argv.size() + 1);
  for (const std::string& arg : o.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);

  char** envp = environ;
  std::vector<std::string> env_storage;
  std::vector<char*> env_array;
  if (!o.env.empty()) {
    auto overridden = [&](std::string_view entry) {
      std::string_view name = entry.substr(0, entry.find('='));
      return std::any_of(o.env.begin(), o.env.end(),
                         [&](const auto& kv) { return kv.first == name; });
    };
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      if (!overridden(*e)) env_array.push_back(*e);
    }
    env_storage.reserve(o.env.size());
    for (size_t i = 0; i < o.env.size(); ++i) {
      const std::string& name = o.env[i].first;
      // A name given twice: the last one wins, as with `env A=1 A=2`.
      bool later = std::any_of(o.env.begin() + static_cast<ptrdiff_t>(i) + 1, o.env.end(),
                               [&](const auto& kv) { return kv.first == name; });
      if (later) continue;
      env_storage.push_back(name + "=" + o.env[i].second);
    }
    for (std::string& entry : env_storage) env_array.push_back(entry.data());
    env_array.push_back(nullptr);
    envp = env_array.data();
  }

  pid_t pid = -1;
  int err = search_path
                ? posix_spawnp(&pid, program->c_str(), &actions, &attr, argv.data(), envp)
                : posix_spawn(&pid, program->c_str(), &actions, &attr, argv.data(), envp);
  if (err != 0) {
    if (err == EAGAIN || err == ENOMEM || err == EMFILE || err == ENFILE) {
      return SysError("posix_spawn", err);
    }
    // chdir failures come back from posix_spawn like exec failures; the cwd was there a
    // moment ago, so say so if it has gone since.
    struct stat st;
    if (!o.cwd.empty() && (stat(o.cwd.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))) {
      return NotFoundError("subprocess: working directory '" + o.cwd + "' vanished");
    }
    return ReportSpawnFailure(err).map([] { return false; });
  }
  pid_ = pid;
  done_.pid = pid;
  done_.pgid = pid;  // POSIX_SPAWN_SETPGROUP with 0: the child leads a new group
  if (o.registry != nullptr) {
    o.registry->Add(pid);
    registered_ = true;
  }
  if (stdin_fd_ >= 0 && o.stdin_data.empty()) CloseFd(stdin_fd_);  // EOF at once
  pidfd_ = OpenPidfd(pid);
  if (pidfd_ < 0) next_reap_poll_ = spawned_at_ + reap_slice_;
  // A timeout too large for a time point (Duration::max()) is no timeout.
  if (o.timeout.count() > 0 && o.timeout < TimePoint::max() - spawned_at_) {
    term_next_ = spawned_at_ + o.timeout;
  }
  return true;
}

void ForcePidfdFallbackForTesting(bool force) {
  g_force_pidfd_fallback.store(force, std::memory_order_relaxed);
}

}  // namespace forklift::process::subprocess_internal
