#include "process/worker_pool.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace forklift::process {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;
using ::testing::HasSubstr;

TimePoint In(steady_clock::duration d) { return steady_clock::now() + d; }

// A byte pattern that catches reordered or dropped chunks.
std::string Pattern(size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>((i * 31 + i / 4096) % 251);
  return s;
}

// Writes a whole buffer to a pipe from the worker (test side channel).
void WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(99);
    p += n;
    size -= static_cast<size_t>(n);
  }
}

// Reads exactly `size` bytes from the side channel, giving up after 5 s.
bool ReadWithin(int fd, void* data, size_t size) {
  char* p = static_cast<char*>(data);
  const auto deadline = steady_clock::now() + seconds(5);
  while (size > 0) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = read(fd, p, size);
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// True once `pred` holds, polled for up to 2 s.
template <class Pred>
bool Eventually(Pred pred) {
  const auto deadline = steady_clock::now() + seconds(2);
  while (steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return pred();
}

bool ProcessGroupGone(pid_t pgid) { return kill(-pgid, 0) == -1 && errno == ESRCH; }
bool ProcessGone(pid_t pid) { return kill(pid, 0) == -1 && errno == ESRCH; }

// The handler under test. `side` is the write end of a pipe the test reads, for requests
// that must tell the test something before they hang or crash.
WorkerHandler TestHandler(int side = -1) {
  return [side](std::string_view req, TimePoint deadline) -> std::string {
    if (req == "segv") raise(SIGSEGV);
    if (req == "abort") std::abort();
    if (req == "exit3") _exit(3);
    if (req == "throw") throw std::runtime_error("boom");
    if (req == "pid") return std::to_string(getpid());
    if (req == "deadline") return std::to_string(deadline.time_since_epoch().count());
    if (req == "hang") {
      char started = 's';
      if (side >= 0) WriteAll(side, &started, 1);
      for (;;) pause();
    }
    if (req == "grandchild-hang" || req == "grandchild-segv") {
      pid_t g = fork();
      if (g == 0) {
        sleep(100);
        _exit(0);
      }
      int64_t ids[2] = {getpgid(0), g};
      WriteAll(side, ids, sizeof ids);
      if (req == "grandchild-segv") raise(SIGSEGV);
      for (;;) pause();
    }
    if (req.starts_with("big:")) return Pattern(std::stoul(std::string(req.substr(4))));
    if (req.starts_with("fd-open:")) {
      int fd = std::stoi(std::string(req.substr(8)));
      return fcntl(fd, F_GETFD) >= 0 ? "open" : "closed";
    }
    std::string out = "echo:";
    out.append(req);
    return out;
  };
}

std::unique_ptr<WorkerPool> MustStart(size_t workers, WorkerHandler handler,
                                      WorkerPoolOptions options = {}) {
  options.workers = workers;
  auto pool = WorkerPool::Start(options, std::move(handler));
  EXPECT_TRUE(pool.has_value()) << (pool ? "" : pool.error().ToString());
  return pool ? std::move(*pool) : nullptr;
}

class SidePipe {
 public:
  SidePipe() { EXPECT_EQ(pipe(fds_), 0); }  // not close-on-exec: workers keep it
  ~SidePipe() {
    close(fds_[0]);
    close(fds_[1]);
  }
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }

 private:
  int fds_[2] = {-1, -1};
};

TEST(WorkerPoolTest, BadWorkerCountIsInvalidArgument) {
  auto pool = WorkerPool::Start({.workers = 0}, TestHandler());
  ASSERT_FALSE(pool.has_value());
  EXPECT_EQ(pool.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(pool.error().message, HasSubstr("workers"));
  auto huge = WorkerPool::Start({.workers = size_t{1} << 40}, TestHandler());
  ASSERT_FALSE(huge.has_value());
  EXPECT_EQ(huge.error().code, ErrorCode::kInvalidArgument);
}

TEST(WorkerPoolTest, EchoFromManyThreadsOnManySlots) {
  auto pool = MustStart(4, TestHandler());
  ASSERT_NE(pool, nullptr);
  ASSERT_EQ(pool->size(), 4u);
  std::vector<pid_t> pids;
  for (size_t i = 0; i < pool->size(); ++i) pids.push_back(pool->worker_pid(i));
  for (size_t i = 0; i < pids.size(); ++i) {
    EXPECT_GT(pids[i], 0);
    for (size_t j = 0; j < i; ++j) EXPECT_NE(pids[i], pids[j]);
  }

  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (size_t slot = 0; slot < pool->size(); ++slot) {
    threads.emplace_back([&, slot] {
      for (int i = 0; i < 300; ++i) {
        // Sizes around the 4 KiB first-read buffers on both sides.
        std::string payload = std::to_string(slot) + "/" + std::to_string(i) + "/" +
                              std::string(static_cast<size_t>(i * 37 % 9000), 'x');
        auto r = pool->Call(slot, payload, In(seconds(10)), {});
        if (!r || *r != "echo:" + payload) ++failures;
      }
      auto pid = pool->Call(slot, "pid", In(seconds(10)), {});
      if (!pid || *pid != std::to_string(pool->worker_pid(slot))) ++failures;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (size_t i = 0; i < pids.size(); ++i) EXPECT_EQ(pool->worker_pid(i), pids[i]);
}

TEST(WorkerPoolTest, DeadlineReachesTheHandler) {
  auto pool = MustStart(1, TestHandler());
  ASSERT_NE(pool, nullptr);
  const TimePoint deadline = In(seconds(7));
  auto r = pool->Call(0, "deadline", deadline, {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(*r, std::to_string(deadline.time_since_epoch().count()));
}

TEST(WorkerPoolTest, SegvIsReportedAndTheWorkerReplaced) {
  auto pool = MustStart(2, TestHandler());
  ASSERT_NE(pool, nullptr);
  const pid_t before = pool->worker_pid(1);
  const pid_t other = pool->worker_pid(0);
  auto r = pool->Call(1, "segv", In(seconds(10)), {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInternal);
  EXPECT_THAT(r.error().message, HasSubstr("worker process died: killed by signal 11 (SIGSEGV)"));
  EXPECT_NE(pool->worker_pid(1), before);
  EXPECT_EQ(pool->worker_pid(0), other);  // the neighbour is untouched
  auto next = pool->Call(1, "again", In(seconds(10)), {});
  ASSERT_TRUE(next.has_value()) << next.error().ToString();
  EXPECT_EQ(*next, "echo:again");
}

TEST(WorkerPoolTest, AbortIsReportedAsSigabrt) {
  auto pool = MustStart(1, TestHandler());
  ASSERT_NE(pool, nullptr);
  auto r = pool->Call(0, "abort", In(seconds(10)), {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInternal);
  EXPECT_THAT(r.error().message, HasSubstr("killed by signal 6 (SIGABRT)"));
  auto next = pool->Call(0, "x", In(seconds(10)), {});
  ASSERT_TRUE(next.has_value()) << next.error().ToString();
  EXPECT_EQ(*next, "echo:x");
}

TEST(WorkerPoolTest, ExitStatusIsReported) {
  auto pool = MustStart(1, TestHandler());
  ASSERT_NE(pool, nullptr);
  auto r = pool->Call(0, "exit3", In(seconds(10)), {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInternal);
  EXPECT_EQ(r.error().message, "worker process died: exited with status 3");
  EXPECT_TRUE(pool->Call(0, "x", In(seconds(10)), {}).has_value());
}

TEST(WorkerPoolTest, ManyCrashesInARowDoNotExhaustTheZygote) {
  auto pool = MustStart(1, TestHandler());
  ASSERT_NE(pool, nullptr);
  for (int i = 0; i < 40; ++i) {
    auto r = pool->Call(0, i % 2 ? "segv" : "exit3", In(seconds(10)), {});
    ASSERT_FALSE(r.has_value());
    ASSERT_THAT(r.error().message, HasSubstr("worker process died"));
  }
  auto next = pool->Call(0, "x", In(seconds(10)), {});
  ASSERT_TRUE(next.has_value()) << next.error().ToString();
}

TEST(WorkerPoolTest, HandlerExceptionIsInternalAndTheWorkerLives) {
  auto pool = MustStart(1, TestHandler());
  ASSERT_NE(pool, nullptr);
  const pid_t before = pool->worker_pid(0);
  auto r = pool->Call(0, "throw", In(seconds(10)), {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInternal);
  EXPECT_EQ(r.error().message, "worker handler threw: boom");
  EXPECT_EQ(pool->worker_pid(0), before);
  EXPECT_TRUE(pool->Call(0, "x", In(seconds(10)), {}).has_value());
}

TEST(WorkerPoolTest, DeadlineKillsAndReplacesTheWorker) {
  auto pool = MustStart(1, TestHandler());
  ASSERT_NE(pool, nullptr);
  const pid_t before = pool->worker_pid(0);
  const auto start = steady_clock::now();
  auto r = pool->Call(0, "hang", start + milliseconds(100), {});
  const auto elapsed = steady_clock::now() - start;
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(r.error().message, "worker exceeded its deadline; killed");
  EXPECT_GE(elapsed, milliseconds(100));
  EXPECT_LT(elapsed, seconds(2));
  EXPECT_NE(pool->worker_pid(0), before);
  EXPECT_TRUE(ProcessGone(before));  // reaped by the zygote before Call returned
  auto next = pool->Call(0, "after", In(seconds(10)), {});
  ASSERT_TRUE(next.has_value()) << next.error().ToString();
  EXPECT_EQ(*next, "echo:after");
}

TEST(WorkerPoolTest, DeadlineKillsTheWholeProcessGroup) {
  SidePipe side;
  auto pool = MustStart(1, TestHandler(side.write_end()));
  ASSERT_NE(pool, nullptr);
  auto r = pool->Call(0, "grandchild-hang", In(milliseconds(100)), {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kDeadlineExceeded);
  int64_t ids[2] = {0, 0};
  ASSERT_TRUE(ReadWithin(side.read_end(), ids, sizeof ids));
  const auto pgid = static_cast<pid_t>(ids[0]);
  const auto grandchild = static_cast<pid_t>(ids[1]);
  ASSERT_GT(pgid, 1);
  ASSERT_NE(pgid, getpgid(0));  // its own group, never ours
  EXPECT_TRUE(Eventually([&] { return ProcessGroupGone(pgid); }));
  EXPECT_TRUE(ProcessGone(grandchild));
}

TEST(WorkerPoolTest, CrashIsSeenEvenWhenAGrandchildHoldsTheSocket) {
  SidePipe side;
  auto pool = MustStart(1, TestHandler(side.write_end()));
  ASSERT_NE(pool, nullptr);
  const auto start = steady_clock::now();
  auto r = pool->Call(0, "grandchild-segv", In(seconds(30)), {});
  EXPECT_LT(steady_clock::now() - start, seconds(2));  // not the 30 s deadline
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("(SIGSEGV)"));
  int64_t ids[2] = {0, 0};
  ASSERT_TRUE(ReadWithin(side.read_end(), ids, sizeof ids));
  EXPECT_TRUE(Eventually([&] { return ProcessGroupGone(static_cast<pid_t>(ids[0])); }));
  EXPECT_TRUE(pool->Call(0, "x", In(seconds(10)), {}).has_value());
}

TEST(WorkerPoolTest, StopCancelsPromptly) {
  SidePipe side;
  auto pool = MustStart(1, TestHandler(side.write_end()));
  ASSERT_NE(pool, nullptr);
  const pid_t before = pool->worker_pid(0);
  std::stop_source stop;
  Result<std::string> r = std::string();
  steady_clock::time_point returned;
  std::thread caller([&] {
    r = pool->Call(0, "hang", In(seconds(60)), stop.get_token());
    returned = steady_clock::now();
  });
  char started = 0;
  ASSERT_TRUE(ReadWithin(side.read_end(), &started, 1));  // the handler is running
  const auto requested = steady_clock::now();
  stop.request_stop();
  caller.join();
  EXPECT_LT(returned - requested, seconds(1));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kCancelled);
  EXPECT_NE(pool->worker_pid(0), before);
  // A fresh token on the same slot is not cancelled by the old stop.
  auto next = pool->Call(0, "x", In(seconds(10)), std::stop_source().get_token());
  ASSERT_TRUE(next.has_value()) << next.error().ToString();
}

TEST(WorkerPoolTest, AlreadyStoppedOrExpiredCallsLeaveTheWorkerAlone) {
  auto pool = MustStart(1, TestHandler());
  ASSERT_NE(pool, nullptr);
  const pid_t before = pool->worker_pid(0);
  std::stop_source stop;
  stop.request_stop();
  auto cancelled = pool->Call(0, "x", In(seconds(10)), stop.get_token());
  ASSERT_FALSE(cancelled.has_value());
  EXPECT_EQ(cancelled.error().code, ErrorCode::kCancelled);
  auto late = pool->Call(0, "x", steady_clock::now() - milliseconds(1), {});
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(pool->worker_pid(0), before);
}

TEST(WorkerPoolTest, LargeRequestAndResponseArriveIntact) {
  auto pool = MustStart(1, TestHandler());
  ASSERT_NE(pool, nullptr);
  constexpr size_t kBig = 8u << 20;
  auto r = pool->Call(0, "big:" + std::to_string(kBig), In(seconds(10)), {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  ASSERT_EQ(r->size(), kBig);
  EXPECT_TRUE(*r == Pattern(kBig));
  const std::string request = Pattern(kBig);
  auto echo = pool->Call(0, request, In(seconds(10)), {});
  ASSERT_TRUE(echo.has_value()) << echo.error().ToString();
  EXPECT_TRUE(*echo == "echo:" + request);
}

TEST(WorkerPoolTest, OversizedMessagesAreRefused) {
  auto pool = MustStart(1, TestHandler(), {.max_message_bytes = 1024});
  ASSERT_NE(pool, nullptr);
  const pid_t before = pool->worker_pid(0);
  auto big_request = pool->Call(0, std::string(2000, 'x'), In(seconds(10)), {});
  ASSERT_FALSE(big_request.has_value());
  EXPECT_EQ(big_request.error().code, ErrorCode::kInvalidArgument);
  auto big_response = pool->Call(0, "big:5000", In(seconds(10)), {});
  ASSERT_FALSE(big_response.has_value());
  EXPECT_EQ(big_response.error().code, ErrorCode::kInternal);
  EXPECT_THAT(big_response.error().message, HasSubstr("5000 bytes exceeds max_message_bytes"));
  EXPECT_EQ(pool->worker_pid(0), before);
}

TEST(WorkerPoolTest, WorkerKilledWhileIdleIsReplacedWithoutBlamingTheNextItem) {
  auto pool = MustStart(1, TestHandler());
  ASSERT_NE(pool, nullptr);
  const pid_t before = pool->worker_pid(0);
  ASSERT_EQ(kill(before, SIGKILL), 0);
  ASSERT_TRUE(Eventually([&] { return ProcessGone(before); }));  // the zygote reaped it
  auto r = pool->Call(0, "x", In(seconds(10)), {});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(*r, "echo:x");
  EXPECT_NE(pool->worker_pid(0), before);
}

TEST(WorkerPoolTest, CloseOnExecDescriptorsAreClosedInWorkers) {
  int keep[2];
  int drop[2];
  ASSERT_EQ(pipe(keep), 0);
  ASSERT_EQ(pipe2(drop, O_CLOEXEC), 0);
  auto pool = MustStart(1, TestHandler());
  ASSERT_NE(pool, nullptr);
  auto kept = pool->Call(0, "fd-open:" + std::to_string(keep[1]), In(seconds(10)), {});
  auto dropped = pool->Call(0, "fd-open:" + std::to_string(drop[1]), In(seconds(10)), {});
  ASSERT_TRUE(kept.has_value() && dropped.has_value());
  EXPECT_EQ(*kept, "open");
  EXPECT_EQ(*dropped, "closed");
  for (int fd : {keep[0], keep[1], drop[0], drop[1]}) close(fd);
}

TEST(WorkerPoolTest, BadSlotIsInvalidArgument) {
  auto pool = MustStart(2, TestHandler());
  ASSERT_NE(pool, nullptr);
  auto r = pool->Call(2, "x", In(seconds(10)), {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

TEST(WorkerPoolTest, DestructorLeavesNoChildBehind) {
  std::vector<pid_t> pids;
  {
    auto pool = MustStart(3, TestHandler());
    ASSERT_NE(pool, nullptr);
    for (size_t i = 0; i < pool->size(); ++i) {
      ASSERT_TRUE(pool->Call(i, "x", In(seconds(10)), {}).has_value());
      pids.push_back(pool->worker_pid(i));
    }
    // One crashed and one timed-out worker on the way, too.
    ASSERT_FALSE(pool->Call(0, "segv", In(seconds(10)), {}).has_value());
    ASSERT_FALSE(pool->Call(1, "hang", In(milliseconds(20)), {}).has_value());
    pids.push_back(pool->worker_pid(0));
    pids.push_back(pool->worker_pid(1));
  }
  int status = 0;
  EXPECT_EQ(waitpid(-1, &status, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  for (pid_t pid : pids) EXPECT_TRUE(ProcessGone(pid)) << pid;
}

TEST(WorkerPoolTest, StdioIsNeitherRepeatedNorLost) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  FILE* out = fdopen(fds[1], "w");
  ASSERT_NE(out, nullptr);
  ASSERT_EQ(setvbuf(out, nullptr, _IOFBF, 4096), 0);
  std::fputs("parent;", out);  // pending in the buffer when the workers are forked
  {
    auto pool = MustStart(1, [out](std::string_view, TimePoint) {
      std::fputs("worker;", out);  // left in the worker's buffer
      return std::string();
    });
    ASSERT_NE(pool, nullptr);
    ASSERT_TRUE(pool->Call(0, "", In(seconds(10)), {}).has_value());
  }  // the orderly shutdown flushes the worker's buffer
  std::fclose(out);
  std::string seen;
  char buf[64];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) seen.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  EXPECT_EQ(seen, "parent;worker;");
}

// Starts a pool in a child process (from its main thread, or from a thread that exits
// before the pool is used), then SIGKILLs that child: the zygote and workers must go too.
void ExpectWorkersDieWithTheirParent(bool start_on_other_thread) {
  SidePipe side;
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::unique_ptr<WorkerPool> pool;
    auto start = [&] {
      auto started = WorkerPool::Start({.workers = 2}, TestHandler());
      if (started) pool = std::move(*started);
    };
    if (start_on_other_thread) {
      std::thread(start).join();  // the thread that forked the zygote is gone now
    } else {
      start();
    }
    if (pool == nullptr) _exit(1);
    for (size_t slot = 0; slot < pool->size(); ++slot) {
      auto pid = pool->Call(slot, "pid", In(seconds(10)), {});
      if (!pid) _exit(2);
      const int64_t value = std::stoll(*pid);
      WriteAll(side.write_end(), &value, sizeof value);
    }
    for (;;) pause();
  }
  int64_t workers[2] = {0, 0};
  const bool reported = ReadWithin(side.read_end(), workers, sizeof workers);
  kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(reported) << "the child could not start a pool and call it";
  for (int64_t worker : workers) {
    EXPECT_TRUE(Eventually([&] { return ProcessGone(static_cast<pid_t>(worker)); })) << worker;
  }
}

TEST(WorkerPoolTest, WorkersDieWithTheirParent) { ExpectWorkersDieWithTheirParent(false); }

TEST(WorkerPoolTest, WorkersOutliveTheStartThreadButNotTheParent) {
  ExpectWorkersDieWithTheirParent(true);
}

TEST(WorkerPoolTest, EmptyRoundTripLatency) {
  auto pool = MustStart(1, TestHandler());
  ASSERT_NE(pool, nullptr);
  constexpr int kCalls = 5000;
  std::stop_source stop;  // a live token: the stop_callback cost is part of the call
  const auto start = steady_clock::now();
  for (int i = 0; i < kCalls; ++i) {
    auto r = pool->Call(0, "", In(seconds(10)), stop.get_token());
    ASSERT_TRUE(r.has_value());
  }
  const double us =
      std::chrono::duration<double, std::micro>(steady_clock::now() - start).count() / kCalls;
  std::printf("[ latency  ] empty request round trip: %.1f us per call\n", us);
  EXPECT_LT(us, 5000.0);  // generous: catches a sleep or a poll slice, not noise
}

}  // namespace
}  // namespace forklift::process
