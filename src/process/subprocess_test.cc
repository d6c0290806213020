#include "process/subprocess.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/temp_dir.h"

namespace forklift::process {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test_support::TempDir;
using ::testing::HasSubstr;

SpawnOptions Sh(const std::string& script) {
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", script};
  return o;
}

std::string Out(const Completion& c) { return c.stdout_output.ReadAll().value(); }
std::string Err(const Completion& c) { return c.stderr_output.ReadAll().value(); }

// Polls a condition that no descriptor announces (another thread's progress).
bool WaitFor(const std::function<bool()>& condition, Duration limit = seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

struct ProcInfo {
  pid_t pid;
  char state;
  pid_t pgrp;
  std::string cmdline;  // arguments joined by spaces
};

// Every process /proc lists, with its state, group and command line.
std::vector<ProcInfo> Processes() {
  std::vector<ProcInfo> all;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return all;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    std::ifstream stat_file(std::string("/proc/") + e->d_name + "/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), {});
    size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    ProcInfo info{atoi(e->d_name), 0, 0, {}};
    long ppid = 0;
    long pgrp = 0;
    if (sscanf(stat.c_str() + paren + 1, " %c %ld %ld", &info.state, &ppid, &pgrp) != 3) continue;
    info.pgrp = static_cast<pid_t>(pgrp);
    std::ifstream cmd_file(std::string("/proc/") + e->d_name + "/cmdline");
    std::string cmd((std::istreambuf_iterator<char>(cmd_file)), {});
    for (char& ch : cmd) ch = ch == '\0' ? ' ' : ch;
    while (!cmd.empty() && cmd.back() == ' ') cmd.pop_back();
    info.cmdline = cmd;
    all.push_back(info);
  }
  closedir(dir);
  return all;
}

// Live (not zombie) processes of a group.
std::vector<ProcInfo> LiveMembers(pid_t pgid) {
  std::vector<ProcInfo> live;
  for (const ProcInfo& p : Processes()) {
    if (p.pgrp == pgid && p.state != 'Z' && p.state != 'X') live.push_back(p);
  }
  return live;
}

// This test process adopts orphans while it lives (PR_SET_CHILD_SUBREAPER). The sandbox's
// PID 1 does not reap orphans, so without this a killed group's dead members would stay
// zombies forever and kill(-pgid, 0) would keep finding them; with it they are ours, and
// Run reaps the ones of its group.
class AdoptOrphans {
 public:
  AdoptOrphans() { EXPECT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0); }
  ~AdoptOrphans() { prctl(PR_SET_CHILD_SUBREAPER, 0); }
};

void ExpectGroupGone(pid_t pgid) {
  ASSERT_GT(pgid, 0);
  errno = 0;
  EXPECT_EQ(kill(-pgid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  std::vector<ProcInfo> live = LiveMembers(pgid);
  for (const ProcInfo& p : live) ADD_FAILURE() << "left behind: " << p.pid << " " << p.cmdline;
  for (const ProcInfo& p : Processes()) {
    if (p.pgrp == pgid && p.cmdline == "sleep 100") ADD_FAILURE() << "sleep 100 left: " << p.pid;
  }
}

TEST(SubprocessTest, ExitCodes) {
  for (int code : {0, 1, 3, 255}) {
    auto c = process::Run(Sh("exit " + std::to_string(code)));
    ASSERT_TRUE(c) << c.error().ToString();
    EXPECT_EQ(c->exit_code, code);
    EXPECT_EQ(c->signal, 0);
    EXPECT_EQ(c->ok(), code == 0);
    EXPECT_GT(c->pid, 0);
    EXPECT_EQ(c->pgid, c->pid);
    EXPECT_FALSE(c->timed_out);
    EXPECT_FALSE(c->cancelled);
  }
  auto t = process::Run({.argv = {"true"}});
  ASSERT_TRUE(t) << t.error().ToString();
  EXPECT_EQ(t->exit_code, 0);
  EXPECT_EQ(t->stdout_bytes + t->stderr_bytes, 0u);
}

TEST(SubprocessTest, KilledBySignal) {
  auto c = process::Run(Sh("ulimit -c 0; kill -SEGV $$"));
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->signal, SIGSEGV);
  EXPECT_EQ(c->exit_code, -1);
  EXPECT_FALSE(c->ok());
}

TEST(SubprocessTest, CapturesStdoutAndStderrApart) {
  auto c = process::Run(Sh("printf out1; printf err1 >&2; printf out2; printf 'err2\\n' >&2"));
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(Out(*c), "out1out2");
  EXPECT_EQ(Err(*c), "err1err2\n");
  EXPECT_EQ(c->stdout_bytes, 8u);
  EXPECT_EQ(c->stderr_bytes, 9u);
}

TEST(SubprocessTest, BinaryOutputWithNulsAndNoFinalNewline) {
  auto c = process::Run({.argv = {"printf", "a\\000b\\000\\377c"}});
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(Out(*c), std::string("a\0b\0\377c", 6));
}

std::string Seq(int n) {
  std::string s;
  for (int i = 1; i <= n; ++i) s += std::to_string(i) + "\n";
  return s;
}

TEST(SubprocessTest, LargeOutputSpillsAndReadsBackIntact) {
  const std::string expected = Seq(500000);  // 3.4 MB
  ASSERT_GT(expected.size(), 3u << 20);
  SpawnOptions o{.argv = {"seq", "500000"}};
  o.output_memory_limit = 64 * 1024;
  auto c = process::Run(o);
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_TRUE(c->stdout_output.spilled());
  EXPECT_LE(c->stdout_output.memory_used(), o.output_memory_limit);
  EXPECT_EQ(c->stdout_bytes, expected.size());
  EXPECT_EQ(Out(*c), expected);
  EXPECT_FALSE(c->stderr_output.spilled());
}

TEST(SubprocessTest, CallbackGetsEveryByte) {
  std::string out;
  std::string err;
  SpawnOptions o = Sh("seq 100000; echo done >&2");
  o.stdout_mode = OutputMode::kCallback;
  o.stderr_mode = OutputMode::kCallback;
  int calls = 0;
  o.on_output = [&](Stream s, std::string_view bytes) {
    ++calls;
    (s == Stream::kStdout ? out : err).append(bytes);
  };
  auto c = process::Run(o);
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(out, Seq(100000));
  EXPECT_EQ(err, "done\n");
  EXPECT_GT(calls, 1);
  EXPECT_EQ(c->stdout_bytes, out.size());
  EXPECT_TRUE(c->stdout_output.empty());
}

TEST(SubprocessTest, CallbackThatThrowsEndsTheJob) {
  SpawnOptions o = Sh("echo x; exec sleep 100");
  o.stdout_mode = OutputMode::kCallback;
  o.on_output = [](Stream, std::string_view) { throw std::runtime_error("sink broke"); };
  ProcessRegistry registry;
  o.registry = &registry;
  auto start = std::chrono::steady_clock::now();
  auto c = process::Run(o);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kInternal);
  EXPECT_THAT(c.error().message, HasSubstr("sink broke"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(2));
  EXPECT_EQ(registry.size(), 0u);
}

TEST(SubprocessTest, InheritWritesToOurDescriptors) {
  FILE* capture = tmpfile();
  ASSERT_NE(capture, nullptr);
  fflush(stdout);
  int saved = dup(STDOUT_FILENO);
  ASSERT_GE(saved, 0);
  ASSERT_EQ(dup2(fileno(capture), STDOUT_FILENO), STDOUT_FILENO);
  SpawnOptions o = Sh("echo straight through");
  o.stdout_mode = OutputMode::kInherit;
  auto c = process::Run(o);
  dup2(saved, STDOUT_FILENO);
  close(saved);
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->stdout_bytes, 0u);
  EXPECT_TRUE(c->stdout_output.empty());
  rewind(capture);
  char line[64] = {};
  ASSERT_NE(fgets(line, sizeof line, capture), nullptr);
  EXPECT_STREQ(line, "straight through\n");
  fclose(capture);
}

TEST(SubprocessTest, CwdAndEnv) {
  TempDir dir("forklift-cwd");
  const char* tmpl = dir.path().c_str();
  char* real = realpath(tmpl, nullptr);
  SpawnOptions o = Sh("pwd; printf '%s|%s|%s' \"$FORKLIFT_A\" \"$FORKLIFT_B\" \"$HOME\"");
  o.cwd = tmpl;
  o.env = {{"FORKLIFT_A", "one"}, {"HOME", "/elsewhere"}, {"FORKLIFT_A", "two"}};
  setenv("FORKLIFT_B", "inherited", 1);
  auto c = process::Run(o);
  unsetenv("FORKLIFT_B");
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(Out(*c), std::string(real) + "\ntwo|inherited|/elsewhere");
  free(real);
}

TEST(SubprocessTest, PathFromEnvFindsTheProgram) {
  TempDir dir("forklift-path");
  const std::string tmpl = dir.path();
  std::string prog = tmpl + "/forklift-hello";
  {
    std::ofstream f(prog);
    f << "#!/bin/sh\necho hello from path\n";
  }
  chmod(prog.c_str(), 0755);
  SpawnOptions o{.argv = {"forklift-hello"}};
  o.env = {{"PATH", std::string("/nonexistent:") + tmpl}};
  auto c = process::Run(o);
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->exit_code, 0);
  EXPECT_EQ(Out(*c), "hello from path\n");
  o.env = {{"PATH", "/nonexistent"}};
  auto missing = process::Run(o);
  ASSERT_TRUE(missing) << missing.error().ToString();
  EXPECT_EQ(missing->exit_code, 127);
}

TEST(SubprocessTest, MissingProgramIs127WithAMessage) {
  auto c = process::Run({.argv = {"forklift-no-such-program", "arg"}});
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->exit_code, 127);
  EXPECT_EQ(c->signal, 0);
  EXPECT_EQ(c->spawn_errno, ENOENT);
  EXPECT_EQ(c->pid, -1);
  EXPECT_EQ(Err(*c),
            "forklift: cannot run 'forklift-no-such-program': No such file or directory\n");
  EXPECT_FALSE(c->ok());

  auto by_path = process::Run({.argv = {"/nonexistent/prog"}});
  ASSERT_TRUE(by_path) << by_path.error().ToString();
  EXPECT_EQ(by_path->exit_code, 127);

  // Found but not executable: 126, as a shell says.
  auto not_exec = process::Run({.argv = {"/etc/passwd"}});
  ASSERT_TRUE(not_exec) << not_exec.error().ToString();
  EXPECT_EQ(not_exec->exit_code, 126);
  EXPECT_THAT(Err(*not_exec), HasSubstr("Permission denied"));

  // The message follows the stderr mode.
  std::string err;
  SpawnOptions o{.argv = {"forklift-no-such-program"}};
  o.stderr_mode = OutputMode::kCallback;
  o.on_output = [&](Stream s, std::string_view b) {
    if (s == Stream::kStderr) err.append(b);
  };
  auto cb = process::Run(o);
  ASSERT_TRUE(cb);
  EXPECT_THAT(err, HasSubstr("cannot run 'forklift-no-such-program'"));
}

TEST(SubprocessTest, MissingCwdIsAnErrorNamingIt) {
  SpawnOptions o{.argv = {"true"}, .cwd = "/nonexistent/forklift-dir"};
  auto c = process::Run(o);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(c.error().message, HasSubstr("/nonexistent/forklift-dir"));
  o.cwd = "/etc/passwd";
  auto not_dir = process::Run(o);
  ASSERT_FALSE(not_dir);
  EXPECT_EQ(not_dir.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(not_dir.error().message, HasSubstr("/etc/passwd"));
}

TEST(SubprocessTest, BadOptions) {
  auto empty = process::Run(SpawnOptions{});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);
  SpawnOptions o{.argv = {"true"}};
  o.stdout_mode = OutputMode::kCallback;
  auto no_callback = process::Run(o);
  ASSERT_FALSE(no_callback);
  EXPECT_EQ(no_callback.error().code, ErrorCode::kInvalidArgument);
}

void ExpectTimeoutKillsTheGroup() {
  AdoptOrphans adopt;
  SpawnOptions o = Sh("sleep 100 & sleep 100");
  o.timeout = milliseconds(200);
  auto start = std::chrono::steady_clock::now();
  auto c = process::Run(o);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_TRUE(c->timed_out);
  EXPECT_FALSE(c->cancelled);
  EXPECT_EQ(c->signal, SIGTERM);
  EXPECT_GE(took, milliseconds(200));
  EXPECT_LT(took, seconds(1));
  EXPECT_GE(c->runtime, milliseconds(200));
  ExpectGroupGone(c->pgid);
}

TEST(SubprocessTest, TimeoutKillsTheWholeGroup) { ExpectTimeoutKillsTheGroup(); }

TEST(SubprocessTest, TermIgnoringChildIsKilledAtTheEndOfTheSequence) {
  AdoptOrphans adopt;
  SpawnOptions o = Sh("trap '' TERM; sleep 100");
  o.timeout = milliseconds(100);
  o.termseq = TermSeq::Parse("TERM,50,TERM,50").value();  // no KILL: the final one comes anyway
  auto start = std::chrono::steady_clock::now();
  auto c = process::Run(o);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_TRUE(c->timed_out);
  EXPECT_EQ(c->signal, SIGKILL);
  EXPECT_GE(took, milliseconds(200));  // 100 ms timeout + both TERM waits
  EXPECT_LT(took, seconds(1));
  ExpectGroupGone(c->pgid);
}

TEST(SubprocessTest, GrandchildHoldingTheOutputIsWaitedFor) {
  auto c = process::Run(Sh("echo a; (sleep 0.3; echo b) &"));
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->exit_code, 0);
  EXPECT_EQ(Out(*c), "a\nb\n");
  EXPECT_GE(c->runtime, milliseconds(300));
}

TEST(SubprocessTest, TimeoutAppliesWhileAGrandchildHoldsTheOutput) {
  AdoptOrphans adopt;
  SpawnOptions o = Sh("sleep 100 & echo started");
  o.timeout = milliseconds(200);
  auto c = process::Run(o);
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_TRUE(c->timed_out);
  EXPECT_EQ(c->exit_code, 0);  // the leader itself finished in time
  EXPECT_EQ(Out(*c), "started\n");
  EXPECT_LT(c->runtime, seconds(1));
  ExpectGroupGone(c->pgid);
}

TEST(SubprocessTest, OutputHeldOutsideTheGroupDoesNotHoldTheJob) {
  // setsid puts the sleep in a session (and group) of its own, still holding stdout.
  SpawnOptions o = Sh("setsid sleep 100.25 & echo x");
  o.timeout = seconds(10);
  auto c = process::Run(o);
  for (const ProcInfo& p : Processes()) {
    if (p.cmdline == "sleep 100.25") kill(p.pid, SIGKILL);
  }
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_FALSE(c->timed_out);
  EXPECT_EQ(c->exit_code, 0);
  EXPECT_EQ(Out(*c), "x\n");
  EXPECT_LT(c->runtime, seconds(1));
}

TEST(SubprocessTest, StopTokenCancels) {
  std::stop_source source;
  ProcessRegistry registry;
  SpawnOptions o{.argv = {"sleep", "100"}, .registry = &registry};
  Result<Completion> c = InternalError("not run");
  std::thread runner([&] { c = process::Run(o, source.get_token()); });
  ASSERT_TRUE(WaitFor([&] { return registry.size() == 1; }));
  auto start = std::chrono::steady_clock::now();
  source.request_stop();
  runner.join();
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_TRUE(c->cancelled);
  EXPECT_FALSE(c->timed_out);
  EXPECT_EQ(c->signal, SIGTERM);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(500));
  EXPECT_EQ(registry.size(), 0u);
}

TEST(SubprocessTest, StopBeforeStartSpawnsNothing) {
  std::stop_source source;
  source.request_stop();
  auto c = process::Run({.argv = {"true"}}, source.get_token());
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kCancelled);
}

TEST(SubprocessTest, AStopDoesNotLeakIntoTheNextRun) {
  std::stop_source first;
  std::thread stopper([&] { first.request_stop(); });
  auto a = process::Run({.argv = {"sleep", "100"}}, first.get_token());
  stopper.join();
  ASSERT_TRUE(a || a.error().code == ErrorCode::kCancelled);
  std::stop_source second;
  auto b = process::Run(Sh("sleep 0.05; exit 4"), second.get_token());
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_FALSE(b->cancelled);
  EXPECT_EQ(b->exit_code, 4);
}

TEST(SubprocessTest, KillAllReachesJobsOnOtherThreads) {
  ProcessRegistry registry;
  constexpr int kJobs = 3;
  std::vector<Result<Completion>> results;
  for (int i = 0; i < kJobs; ++i) results.emplace_back(InternalError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kJobs; ++i) {
    threads.emplace_back([&, i] {
      SpawnOptions o = Sh("sleep 100");
      o.registry = &registry;
      results[i] = process::Run(o);
    });
  }
  ASSERT_TRUE(WaitFor([&] { return registry.size() == kJobs; }));
  EXPECT_EQ(registry.KillAll(SIGTERM), kJobs);
  for (std::thread& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r) << r.error().ToString();
    EXPECT_EQ(r->signal, SIGTERM);
  }
  EXPECT_EQ(registry.size(), 0u);
}

TEST(SubprocessTest, RegistryShutdownKillsJobsStartedAfterIt) {
  ProcessRegistry registry;
  registry.Shutdown(SIGKILL);
  SpawnOptions o{.argv = {"sleep", "100"}, .registry = &registry};
  auto c = process::Run(o);
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->signal, SIGKILL);
}

TEST(SubprocessTest, StdinDataReachesTheChild) {
  std::string data;
  for (int i = 0; i < 300000; ++i) data += static_cast<char>(i * 7 % 256);  // NULs too
  SpawnOptions o{.argv = {"cat"}, .stdin_mode = InputMode::kData, .stdin_data = data};
  auto c = process::Run(o);
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->exit_code, 0);
  EXPECT_EQ(Out(*c), data);

  o.stdin_data.clear();
  auto empty = process::Run(o);
  ASSERT_TRUE(empty) << empty.error().ToString();
  EXPECT_EQ(Out(*empty), "");
}

TEST(SubprocessTest, ChildThatStopsReadingStdinDoesNotKillUs) {
  std::string data(4 << 20, 'z');
  SpawnOptions o{.argv = {"head", "-c", "10"}, .stdin_mode = InputMode::kData, .stdin_data = data};
  auto c = process::Run(o);
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->exit_code, 0);
  EXPECT_EQ(Out(*c), "zzzzzzzzzz");
  o.argv = {"true"};
  auto t = process::Run(o);
  ASSERT_TRUE(t) << t.error().ToString();
  EXPECT_EQ(t->exit_code, 0);
  // No SIGPIPE is left pending for this thread either.
  sigset_t pending;
  sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));
}

TEST(SubprocessTest, InheritedStdinIsOurs) {
  FILE* input = tmpfile();
  ASSERT_NE(input, nullptr);
  fputs("from our stdin", input);
  fflush(input);
  rewind(input);
  int saved = dup(STDIN_FILENO);
  ASSERT_EQ(dup2(fileno(input), STDIN_FILENO), STDIN_FILENO);
  auto c = process::Run({.argv = {"cat"}, .stdin_mode = InputMode::kInherit});
  dup2(saved, STDIN_FILENO);
  close(saved);
  fclose(input);
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(Out(*c), "from our stdin");
}

TEST(SubprocessTest, DefaultStdinIsDevNull) {
  auto c = process::Run({.argv = {"cat"}});
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->exit_code, 0);
  EXPECT_EQ(Out(*c), "");
}

TEST(SubprocessTest, ChildGetsCleanSignalState) {
  // Whatever this thread blocks or the program ignores, the child starts clean.
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &block, &old);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction old_pipe {};
  sigaction(SIGPIPE, &ignore, &old_pipe);
  auto c = process::Run(Sh("exec grep -E '^Sig(Blk|Ign)' /proc/self/status"));
  sigaction(SIGPIPE, &old_pipe, nullptr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(c) << c.error().ToString();
  unsigned long long blocked = ~0ull;
  unsigned long long ignored = ~0ull;
  ASSERT_EQ(sscanf(Out(*c).c_str(), "SigBlk: %llx SigIgn: %llx", &blocked, &ignored), 2) << Out(*c);
  EXPECT_EQ(blocked, 0u);
  // Signals 1-31; glibc's posix_spawn leaves its two internal real-time signals (32, 33)
  // ignored, which only glibc itself uses (and re-installs handlers for).
  EXPECT_EQ(ignored & 0x7fffffffull, 0u) << std::hex << ignored;
}

TEST(SubprocessTest, ManyThreadsManyJobsKeepTheirOutputsApart) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 40;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string word = std::to_string(t) + ":" + std::to_string(i);
        auto c = process::Run({.argv = {"echo", word}});
        if (!c || Out(*c) != word + "\n" || c->exit_code != 0) ++wrong;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(SubprocessTest, PidfdFallbackBehavesTheSame) {
  struct Fallback {
    Fallback() { subprocess_internal::ForcePidfdFallbackForTesting(true); }
    ~Fallback() { subprocess_internal::ForcePidfdFallbackForTesting(false); }
  } fallback;
  auto c = process::Run(Sh("echo fallback; exit 5"));
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->exit_code, 5);
  EXPECT_EQ(Out(*c), "fallback\n");
  auto closed = process::Run(Sh("exec >&- 2>&-; sleep 0.05; exit 6"));  // exit after EOF
  ASSERT_TRUE(closed) << closed.error().ToString();
  EXPECT_EQ(closed->exit_code, 6);
  ExpectTimeoutKillsTheGroup();
}

int OpenDescriptors() {
  int n = 0;
  DIR* dir = opendir("/proc/self/fd");
  while (dirent* e = readdir(dir)) n += e->d_name[0] != '.';
  closedir(dir);
  return n;
}

TEST(SubprocessTest, LeavesNoDescriptorBehind) {
  int before = OpenDescriptors();
  std::stop_source stopped;
  std::thread stopper([&] { stopped.request_stop(); });
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(process::Run(Sh("echo out; echo err >&2"), std::stop_source().get_token()));
    ASSERT_TRUE(process::Run({.argv = {"forklift-no-such-program"}}));
    ASSERT_TRUE(
        process::Run({.argv = {"cat"}, .stdin_mode = InputMode::kData, .stdin_data = "data"}));
    SpawnOptions spill{.argv = {"seq", "20000"}};
    spill.output_memory_limit = 1024;
    ASSERT_TRUE(process::Run(spill));
    SpawnOptions slow = Sh("sleep 100");
    slow.timeout = milliseconds(20);
    ASSERT_TRUE(process::Run(slow));
  }
  stopper.join();
  auto cancelled = process::Run(Sh("sleep 100"), stopped.get_token());
  ASSERT_FALSE(cancelled);
  EXPECT_EQ(OpenDescriptors(), before);
}

TEST(SubprocessTest, RecordsStartAndRuntime) {
  auto before = std::chrono::system_clock::now();
  auto c = process::Run(Sh("sleep 0.05"));
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_GE(c->start, before);
  EXPECT_LE(c->start, std::chrono::system_clock::now());
  EXPECT_GE(c->runtime, milliseconds(50));
  EXPECT_LT(c->runtime, seconds(1));
}

}  // namespace
}  // namespace forklift::process
