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
  std::string message = "forklift: cannot run '" + options_.argv[0] + "': " + ErrnoText(err) + "\n";
  if (options_.stderr_mode == OutputMode::kInherit) {
    ssize_t ignored = write(STDERR_FILENO, message.data(), message.size());
    (void)ignored;  // nowhere better to report a failing stderr
    return OkStatus();
  }
  return Deliver(out_[1], message);
}

namespace {

// posix_spawn's file actions and attributes, destroyed on every path.
class SpawnActions {
 public:
  SpawnActions() { posix_spawn_file_actions_init(&actions_); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&actions_); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

class SpawnAttributes {
 public:
  // The child's signal state as exec from a fresh shell would leave it, in a process
  // group of its own (POSIX_SPAWN_SETPGROUP with 0: the child leads a new group).
  SpawnAttributes() {
    posix_spawnattr_init(&attr_);
    sigset_t empty_mask;
    sigemptyset(&empty_mask);
    posix_spawnattr_setsigmask(&attr_, &empty_mask);
    // Ignored signals survive exec: a child of a program that ignores SIGPIPE would not die
    // writing to a closed pipe (`yes | head` would run forever). Reset them all.
    sigset_t default_set;
    sigfillset(&default_set);
    sigdelset(&default_set, SIGKILL);
    sigdelset(&default_set, SIGSTOP);
    posix_spawnattr_setsigdefault(&attr_, &default_set);
    posix_spawnattr_setpgroup(&attr_, 0);
    posix_spawnattr_setflags(
        &attr_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  }
  ~SpawnAttributes() { posix_spawnattr_destroy(&attr_); }
  SpawnAttributes(const SpawnAttributes&) = delete;
  SpawnAttributes& operator=(const SpawnAttributes&) = delete;
  const posix_spawnattr_t* get() const { return &attr_; }

 private:
  posix_spawnattr_t attr_;
};

// The child ends of its pipes, closed on every path once the child has its copies.
struct ChildFds {
  int fds[3] = {-1, -1, -1};
  ChildFds() = default;
  ~ChildFds() {
    for (int& fd : fds) CloseFd(fd);
  }
  ChildFds(const ChildFds&) = delete;
  ChildFds& operator=(const ChildFds&) = delete;
};

// argv as posix_spawn takes it, pointing into `args`.
std::vector<char*> ArgvOf(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  return argv;
}

// This program's environment with `env` set over it (the last of a name given twice wins,
// as with `env A=1 A=2`). envp() is environ itself when `env` is empty.
class Environment {
 public:
  explicit Environment(const std::vector<std::pair<std::string, std::string>>& env) {
    if (env.empty()) return;
    auto overridden = [&](std::string_view entry) {
      std::string_view name = entry.substr(0, entry.find('='));
      return std::any_of(env.begin(), env.end(), [&](const auto& kv) { return kv.first == name; });
    };
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      if (!overridden(*e)) array_.push_back(*e);
    }
    storage_.reserve(env.size());
    for (size_t i = 0; i < env.size(); ++i) {
      const std::string& name = env[i].first;
      bool later = std::any_of(env.begin() + static_cast<ptrdiff_t>(i) + 1, env.end(),
                               [&](const auto& kv) { return kv.first == name; });
      if (later) continue;
      storage_.push_back(name + "=" + env[i].second);
    }
    for (std::string& entry : storage_) array_.push_back(entry.data());
    array_.push_back(nullptr);
  }
  char** envp() { return array_.empty() ? environ : array_.data(); }

 private:
  std::vector<std::string> storage_;
  std::vector<char*> array_;
};

}  // namespace

void Job::ResetCompletion() {
  const SpawnOptions& o = options_;
  out_[0] = {-1, Stream::kStdout, o.stdout_mode, &done_.stdout_output, &done_.stdout_bytes};
  out_[1] = {-1, Stream::kStderr, o.stderr_mode, &done_.stderr_output, &done_.stderr_bytes};
  done_.stdout_output = OutputBuffer(o.output_memory_limit, o.spill_dir);
  done_.stderr_output = OutputBuffer(o.output_memory_limit, o.spill_dir);
  done_.start = std::chrono::system_clock::now();
  spawned_at_ = SteadyClock::now();
}

std::optional<Job::Program> Job::ResolveProgram() const {
  const SpawnOptions& o = options_;
  // posix_spawnp searches this program's PATH, so a PATH set in `env` needs our own search.
  const bool bare_name = o.argv[0].find('/') == std::string::npos;
  auto path_env =
      std::find_if(o.env.rbegin(), o.env.rend(), [](const auto& kv) { return kv.first == "PATH"; });
  if (!bare_name || path_env == o.env.rend()) {
    return Program{.path = o.argv[0], .search_path = bare_name};
  }
  std::optional<std::string> found = SearchPath(o.argv[0], path_env->second, o.cwd);
  if (!found) return std::nullopt;
  return Program{.path = std::move(*found), .search_path = false};
}

Status Job::SetUpStdio(posix_spawn_file_actions_t* actions, int child_fds[3]) {
  const SpawnOptions& o = options_;
  if (o.stdin_mode == InputMode::kNull) {
    posix_spawn_file_actions_addopen(actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  } else if (o.stdin_mode == InputMode::kData) {
    int fds[2];
    FORKLIFT_RETURN_IF_ERROR(core::MakePipe(fds, "subprocess"));
    child_fds[0] = fds[0];
    stdin_fd_ = fds[1];
    // Non-blocking on our end only (a separate open file description from the child's):
    // a child that does not read must not block us from reading its output.
    if (fcntl(stdin_fd_, F_SETFL, O_NONBLOCK) != 0) return SysError("fcntl(O_NONBLOCK)", errno);
    posix_spawn_file_actions_adddup2(actions, child_fds[0], STDIN_FILENO);
  }
  for (int i = 0; i < 2; ++i) {
    if (out_[i].mode == OutputMode::kInherit) continue;
    int fds[2];
    FORKLIFT_RETURN_IF_ERROR(core::MakePipe(fds, "subprocess"));
    out_[i].fd = fds[0];
    child_fds[1 + i] = fds[1];
    posix_spawn_file_actions_adddup2(actions, fds[1], STDOUT_FILENO + i);
  }
  if (!o.cwd.empty()) posix_spawn_file_actions_addchdir_np(actions, o.cwd.c_str());
  return OkStatus();
}

Result<bool> Job::JudgeSpawnError(int err) {
  if (err == EAGAIN || err == ENOMEM || err == EMFILE || err == ENFILE) {
    return SysError("posix_spawn", err);
  }
  // chdir failures come back from posix_spawn like exec failures; the cwd was there a
  // moment ago, so say so if it has gone since.
  const std::string& cwd = options_.cwd;
  struct stat st;
  if (!cwd.empty() && (stat(cwd.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))) {
    return NotFoundError("subprocess: working directory '" + cwd + "' vanished");
  }
  return ReportSpawnFailure(err).map([] { return false; });
}

void Job::Started(pid_t pid) {
  const SpawnOptions& o = options_;
  pid_ = pid;
  done_.pid = pid;
  done_.pgid = pid;  // the child leads a new group (SpawnAttributes)
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
}

Result<bool> Job::Spawn() {
  ResetCompletion();
  std::optional<Program> program = ResolveProgram();
  if (!program) return ReportSpawnFailure(ENOENT).map([] { return false; });

  ChildFds child;  // closed on every path, once the child has its copies
  SpawnActions actions;
  FORKLIFT_RETURN_IF_ERROR(SetUpStdio(actions.get(), child.fds));
  SpawnAttributes attr;
  std::vector<char*> argv = ArgvOf(options_.argv);
  Environment env(options_.env);

  pid_t pid = -1;
  const int err = program->search_path ? posix_spawnp(&pid, program->path.c_str(), actions.get(),
                                                      attr.get(), argv.data(), env.envp())
                                       : posix_spawn(&pid, program->path.c_str(), actions.get(),
                                                     attr.get(), argv.data(), env.envp());
  if (err != 0) return JudgeSpawnError(err);
  Started(pid);
  return true;
}

void ForcePidfdFallbackForTesting(bool force) {
  g_force_pidfd_fallback.store(force, std::memory_order_relaxed);
}

}  // namespace forklift::process::subprocess_internal
