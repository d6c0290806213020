// forklift map's run loop on fakes: a CommandRunner that runs no process and a FakeClock,
// so --halt, --retries, --delay, --timeout, resume keys and joblog rows are tested without
// sleeping or signalling. The journal, the joblog and the output are the real ones.
#include "map/map_runner.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "map/joblog.h"
#include "support/temp_dir.h"

namespace forklift::map {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
namespace fs = std::filesystem;

// One call of the fake runner: the command it was given and when, on the run's clock.
struct Call {
  std::string command;
  TimePoint at;
  Duration timeout;
};

class MapRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    dir_ = tmp_.path();
    out_path_ = dir_ + "/out";
    out_fd_ = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(out_fd_, 0);
  }
  void TearDown() override {
    StopTicking();
    if (out_fd_ >= 0) ::close(out_fd_);
  }

  // Runs `forklift map ARGS` with the journal in the test's directory and the fake.
  int Map(std::vector<std::string> args, int stdout_fd = -1) {
    args.insert(args.begin(), {"--journal", dir_ + "/journal.db"});
    auto options = ParseMapArgs(args);
    EXPECT_TRUE(options) << options.error().ToString();
    if (!options) return -1;
    MapIo io;
    io.stdin_fd = -1;
    io.stdout_fd = stdout_fd >= 0 ? stdout_fd : out_fd_;
    io.stderr_fd = 2;
    io.clock = &clock_;
    io.run_command = [this](const process::SpawnOptions& spawn, const std::stop_token& stop) {
      std::string command =
          spawn.argv.size() == 3 && spawn.argv[0] == "/bin/sh" ? spawn.argv[2] : Join(spawn.argv);
      {
        std::lock_guard lock(mu_);
        calls_.push_back({command, clock_.Now(), spawn.timeout});
      }
      return behave_(command, spawn, stop);
    };
    process::ProcessRegistry registry;
    return RunMap(*options, MapStops{}, registry, io);
  }

  static std::string Join(const std::vector<std::string>& argv) {
    std::string s;
    for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
    return s;
  }

  // A completion for a process that exited with `code` and wrote `out` to stdout, the way
  // process::Run reports it for the spawn's output mode.
  static Result<process::Completion> Exited(int code, const process::SpawnOptions& spawn,
                                            std::string_view out = "") {
    process::Completion c;
    c.pid = c.pgid = 4242;
    c.exit_code = code;
    c.start = std::chrono::system_clock::now();
    c.runtime = 1s;
    if (!out.empty()) {
      if (spawn.stdout_mode == process::OutputMode::kCapture) {
        EXPECT_TRUE(c.stdout_output.Append(out));
      } else if (spawn.stdout_mode == process::OutputMode::kCallback) {
        spawn.on_output(process::Stream::kStdout, out);
      }
      c.stdout_bytes = out.size();
    }
    return c;
  }

  std::string Output() {
    std::ifstream f(out_path_);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  // Joblog rows as (seq, exitval, signal, command).
  std::vector<std::tuple<uint64_t, int, int, std::string>> Rows(const std::string& path) {
    std::ifstream f(path);
    std::string line;
    std::vector<std::tuple<uint64_t, int, int, std::string>> rows;
    std::getline(f, line);  // header
    while (std::getline(f, line)) {
      std::vector<std::string> fields;
      std::stringstream ss(line);
      std::string field;
      while (std::getline(ss, field, '\t')) fields.push_back(field);
      EXPECT_EQ(fields.size(), 9u) << line;
      if (fields.size() != 9) continue;
      rows.emplace_back(std::stoull(fields[0]), std::stoi(fields[6]), std::stoi(fields[7]),
                        fields[8]);
    }
    std::sort(rows.begin(), rows.end());
    return rows;
  }

  std::vector<Call> Calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

  // Moves the fake clock in small steps while something sleeps on it (a backoff, a
  // --delay), so no sleeper is ever passed by more than a step.
  // `may_advance` (default: always) holds the clock still while it returns false.
  void StartTicking(Duration step, std::function<bool()> may_advance = {}) {
    ticking_ = true;
    ticker_ = std::thread([this, step, may_advance = std::move(may_advance)] {
      while (ticking_) {
        if (clock_.sleepers() > 0 && (!may_advance || may_advance())) clock_.Advance(step);
        std::this_thread::sleep_for(50us);
      }
    });
  }
  void StopTicking() {
    ticking_ = false;
    if (ticker_.joinable()) ticker_.join();
  }

  test_support::TempDir tmp_{"forklift-map-runner"};
  std::string dir_;
  std::string out_path_;
  int out_fd_ = -1;
  FakeClock clock_;
  std::mutex mu_;
  std::vector<Call> calls_;
  std::function<Result<process::Completion>(const std::string&, const process::SpawnOptions&,
                                            const std::stop_token&)>
      behave_ = [](const std::string&, const process::SpawnOptions& s, const std::stop_token&) {
        return Exited(0, s);
      };
  std::atomic<bool> ticking_{false};
  std::thread ticker_;
};

TEST_F(MapRunnerTest, RunsEveryJobWritesItsOutputAndLogsARowEach) {
  std::string joblog = dir_ + "/jl";
  behave_ = [](const std::string& cmd, const process::SpawnOptions& s, const std::stop_token&) {
    return Exited(cmd == "echo b" ? 3 : 0, s, cmd.substr(5) + "\n");
  };
  EXPECT_EQ(Map({"-j2", "--joblog", joblog, "echo", ":::", "a", "b", "c"}), 1);
  std::string out = Output();
  for (const char* line : {"a\n", "b\n", "c\n"}) EXPECT_THAT(out, HasSubstr(line));
  EXPECT_EQ(out.size(), 6u);
  EXPECT_THAT(Rows(joblog),
              ElementsAre(std::make_tuple(1u, 0, 0, "echo a"), std::make_tuple(2u, 3, 0, "echo b"),
                          std::make_tuple(3u, 0, 0, "echo c")));
}

TEST_F(MapRunnerTest, HaltNowOnTheFirstFailureStartsNothingMore) {
  behave_ = [](const std::string& cmd, const process::SpawnOptions& s, const std::stop_token&) {
    return Exited(cmd == "work 1" ? 4 : 0, s);
  };
  // -j1: the failing first job is counted on its worker before it takes the next one.
  EXPECT_EQ(Map({"-j1", "--halt", "now,fail=1", "work", ":::", "1", "2", "3", "4"}), 4)
      << "a threshold of one job exits with that job's status";
  EXPECT_EQ(Calls().size(), 1u);
}

TEST_F(MapRunnerTest, HaltSoonAfterTwoFailuresLetsNoThirdStart) {
  behave_ = [](const std::string&, const process::SpawnOptions& s, const std::stop_token&) {
    return Exited(1, s);
  };
  EXPECT_EQ(Map({"-j1", "--halt", "soon,fail=2", "work", ":::", "1", "2", "3", "4", "5"}), 2);
  EXPECT_EQ(Calls().size(), 2u);
}

TEST_F(MapRunnerTest, HaltOnSuccessExitsZero) {
  behave_ = [](const std::string& cmd, const process::SpawnOptions& s, const std::stop_token&) {
    return Exited(cmd == "work 2" ? 0 : 1, s);
  };
  EXPECT_EQ(Map({"-j1", "--halt", "now,success=1", "work", ":::", "1", "2", "3"}), 0);
  EXPECT_EQ(Calls().size(), 2u);
}

TEST_F(MapRunnerTest, FailedJobsAreRetriedWithBackoffOnTheRunsClock) {
  std::string joblog = dir_ + "/jl";
  std::atomic<int> attempts{0};
  behave_ = [&](const std::string&, const process::SpawnOptions& s, const std::stop_token&) {
    return Exited(++attempts < 3 ? 1 : 0, s);
  };
  StartTicking(10ms);
  EXPECT_EQ(
      Map({"-j1", "--retries", "3", "--retry-delay", "1s", "--joblog", joblog, "work", ":::", "x"}),
      0);
  StopTicking();
  std::vector<Call> calls = Calls();
  ASSERT_EQ(calls.size(), 3u);
  // Full jitter: retry n waits in [0, 1s * 2^(n-1)], plus a tick of slack.
  EXPECT_LE(calls[1].at - calls[0].at, 1s + 20ms);
  EXPECT_LE(calls[2].at - calls[1].at, 2s + 20ms);
  EXPECT_THAT(Rows(joblog), ElementsAre(std::make_tuple(1u, 0, 0, "work x")))
      << "one row, for the attempt that ended the job";
}

TEST_F(MapRunnerTest, OutOfRetriesTheLastFailureIsLoggedAndCounted) {
  std::string joblog = dir_ + "/jl";
  behave_ = [](const std::string&, const process::SpawnOptions& s, const std::stop_token&) {
    return Exited(7, s);
  };
  EXPECT_EQ(Map({"-j1", "--retries", "2", "--joblog", joblog, "work", ":::", "x", "y"}), 2);
  EXPECT_EQ(Calls().size(), 4u);
  EXPECT_THAT(Rows(joblog), ElementsAre(std::make_tuple(1u, 7, 0, "work x"),
                                        std::make_tuple(2u, 7, 0, "work y")));
}

TEST_F(MapRunnerTest, ASpawnWithoutResourcesIsRetriedAndAnotherErrorIsNot) {
  std::atomic<int> tries{0};
  behave_ = [&](const std::string& cmd, const process::SpawnOptions& s,
                const std::stop_token&) -> Result<process::Completion> {
    if (cmd == "work bad") return InvalidArgumentError("no such directory");
    if (++tries == 1) return UnavailableError("out of processes");
    return Exited(0, s);
  };
  EXPECT_EQ(Map({"-j1", "--retries", "3", "work", ":::", "ok", "bad"}), 1);
  std::vector<std::string> commands;
  for (const Call& c : Calls()) commands.push_back(c.command);
  // (A retry waits in the delay queue, so "work bad" may start between the two.)
  EXPECT_THAT(commands, UnorderedElementsAre("work ok", "work ok", "work bad"));
}

TEST_F(MapRunnerTest, TimeoutsGoToTheRunnerAndTimedOutJobsLogMinusOne) {
  std::string joblog = dir_ + "/jl";
  behave_ = [](const std::string& cmd, const process::SpawnOptions& s,
               const std::stop_token&) -> Result<process::Completion> {
    auto c = Exited(0, s);
    if (cmd == "work slow") {
      c->timed_out = true;
      c->exit_code = -1;
      c->signal = 15;
    }
    return c;
  };
  EXPECT_EQ(Map({"-j1", "--timeout", "5s", "--joblog", joblog, "work", ":::", "fast", "slow"}), 1);
  for (const Call& c : Calls()) EXPECT_EQ(c.timeout, 5s) << c.command;
  EXPECT_THAT(Rows(joblog), ElementsAre(std::make_tuple(1u, 0, 0, "work fast"),
                                        std::make_tuple(2u, -1, 15, "work slow")));
}

TEST_F(MapRunnerTest, APercentTimeoutFollowsTheMedianOfSuccessfulRuns) {
  // Each fake job "ran" 1s: no limit before the first success, then 200% of 1s.
  EXPECT_EQ(Map({"-j1", "--timeout", "200%", "work", ":::", "1", "2", "3"}), 0);
  std::vector<Call> calls = Calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].timeout, Duration::zero());
  EXPECT_NEAR(std::chrono::duration<double>(calls[1].timeout).count(), 2.0, 0.05);
  EXPECT_NEAR(std::chrono::duration<double>(calls[2].timeout).count(), 2.0, 0.05);
}

TEST_F(MapRunnerTest, DelayStartsJobsInOrderAndApart) {
  // The clock waits at each job's due time (the first at once, then every 10s) until the
  // fake runner has noted that job's start: a runner thread slow to get the CPU must not
  // see the clock run on, or the starts it notes would look closer than map made them.
  const TimePoint t0 = clock_.Now();
  StartTicking(100ms, [&] {
    const auto due = std::min<int64_t>(6, 1 + (clock_.Now() - t0) / 10s);
    return static_cast<int64_t>(Calls().size()) >= due;
  });
  EXPECT_EQ(Map({"-j3", "--delay", "10s", "work", ":::", "1", "2", "3", "4", "5", "6"}), 0);
  StopTicking();
  std::vector<Call> calls = Calls();
  ASSERT_EQ(calls.size(), 6u);
  std::sort(calls.begin(), calls.end(), [](const Call& a, const Call& b) { return a.at < b.at; });
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].command, "work " + std::to_string(i + 1)) << "started in job order";
    if (i > 0) {
      EXPECT_GE(calls[i].at - calls[i - 1].at, 10s) << i;
    }
  }
}

TEST_F(MapRunnerTest, AResumeWritesTheJoblogRowASigkillCutAfterTheJournalCommit) {
  std::string joblog = dir_ + "/jl";
  EXPECT_EQ(Map({"-j1", "--joblog", joblog, "work", ":::", "a", "b", "c"}), 0);
  ASSERT_EQ(Rows(joblog).size(), 3u);
  // What a SIGKILL right after the journal's commit of job 3 leaves: no row for it.
  {
    std::ifstream in(joblog);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    all.erase(all.rfind('\n', all.size() - 2) + 1);
    std::ofstream(joblog, std::ios::trunc) << all;
  }
  ASSERT_EQ(Rows(joblog).size(), 2u);
  calls_.clear();
  EXPECT_EQ(Map({"-j1", "--resume", "--joblog", joblog, "work", ":::", "a", "b", "c"}), 0);
  EXPECT_TRUE(Calls().empty()) << "the journal has every job done: none runs again";
  EXPECT_THAT(Rows(joblog),
              ElementsAre(std::make_tuple(1u, 0, 0, "work a"), std::make_tuple(2u, 0, 0, "work b"),
                          std::make_tuple(3u, 0, 0, "work c")));
  calls_.clear();
  EXPECT_EQ(Map({"-j1", "--resume", "--joblog", joblog, "work", ":::", "a", "b", "c"}), 0);
  EXPECT_EQ(Rows(joblog).size(), 3u) << "written once";
}

TEST_F(MapRunnerTest, ResumeKeysJobsByContentAndOccurrence) {
  std::string joblog = dir_ + "/jl";
  // First run: the second "a" fails, the rest succeed.
  std::atomic<int> a_runs{0};
  behave_ = [&](const std::string& cmd, const process::SpawnOptions& s, const std::stop_token&) {
    return Exited(cmd == "work a" && ++a_runs == 2 ? 1 : 0, s);
  };
  EXPECT_EQ(Map({"-j1", "--joblog", joblog, "work", ":::", "a", "b", "a"}), 1);
  ASSERT_EQ(Calls().size(), 3u);

  // Reordered input: each job keeps its key (content, then occurrence), so
  // --resume-failed reruns only the second "a", wherever it now stands.
  calls_.clear();
  behave_ = [](const std::string&, const process::SpawnOptions& s, const std::stop_token&) {
    return Exited(0, s);
  };
  EXPECT_EQ(Map({"-j1", "--resume-failed", "--joblog", joblog, "work", ":::", "a", "a", "b"}), 0);
  std::vector<Call> calls = Calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].command, "work a");

  calls_.clear();
  EXPECT_EQ(Map({"-j1", "--resume", "--joblog", joblog, "work", ":::", "b", "a", "a"}), 0);
  EXPECT_TRUE(Calls().empty()) << "everything is recorded done";
}

TEST_F(MapRunnerTest, OutputThatCannotBeWrittenStopsTheRun) {
  int full = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(full, 0);
  behave_ = [](const std::string& cmd, const process::SpawnOptions& s, const std::stop_token&) {
    return Exited(0, s, cmd + "\n");
  };
  std::vector<std::string> args = {"-j1", "work", ":::"};
  for (int i = 0; i < 50; ++i) args.push_back(std::to_string(i));
  EXPECT_EQ(Map(args, full), 255);
  EXPECT_LE(Calls().size(), 3u) << "the first failed write stops the run (-j1: window 2)";
  ::close(full);
}

TEST_F(MapRunnerTest, LineBufferedOutputThatCannotBeWrittenStopsItsJob) {
  int full = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(full, 0);
  std::atomic<bool> stopped_job{false};
  behave_ = [&](const std::string&, const process::SpawnOptions& s,
                const std::stop_token& stop) -> Result<process::Completion> {
    EXPECT_EQ(s.stdout_mode, process::OutputMode::kCallback);
    s.on_output(process::Stream::kStdout, "a line\n");  // the write fails
    // process::Run applies the termseq when the token is requested; the fake reports it.
    stopped_job = stop.stop_requested();
    auto c = Exited(-1, s);
    c->cancelled = true;
    c->signal = 15;
    return c;
  };
  EXPECT_EQ(Map({"-j1", "--line-buffer", "work", ":::", "1", "2", "3"}, full), 255);
  EXPECT_TRUE(stopped_job.load());
  EXPECT_LE(Calls().size(), 2u);
  ::close(full);
}

}  // namespace
}  // namespace forklift::map
