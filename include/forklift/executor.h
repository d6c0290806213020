// A fixed pool of worker threads fed through a bounded queue.
//
// Submit() blocks while the queue is full, which is how a fast producer is held back by
// slow workers (backpressure) instead of buffering without bound. Cancellation is
// cooperative: RequestStop() flips the executor's stop_token, which tasks poll.
//
// Thread safety: every member function may be called from any thread, including from a
// task running on the executor, except the destructor.
#ifndef FORKLIFT_EXECUTOR_H_
#define FORKLIFT_EXECUTOR_H_

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <stop_token>
#include <utility>

#include "forklift/result.h"

namespace forklift {

struct ExecutorOptions {
  // Number of worker threads; must be >= 1 (0, the default, is refused: the caller decides,
  // e.g. from std::thread::hardware_concurrency()).
  size_t workers = 0;
  // Tasks that may wait in the queue; a power of two >= 2. Default: 1024.
  size_t queue_capacity = 1024;
};

// A unit of work. Exceptions escaping it are caught and counted, never propagated.
using Task = std::function<void()>;

class Executor {
 public:
  // Starts the workers. InvalidArgument (naming the option) when workers == 0 or
  // queue_capacity is not a power of two >= 2.
  static Result<std::unique_ptr<Executor>> Create(ExecutorOptions options);
  // Equivalent to Shutdown().
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Enqueues `task`, blocking while the queue is full. Cancelled once Shutdown() began.
  Status Submit(Task task);
  // Stops accepting tasks, runs every task already queued, joins the workers.
  // Idempotent. Must not be called from a task of this executor.
  void Shutdown();

  // Cooperative cancellation: after RequestStop(), stop_token().stop_requested() is true.
  // Queued tasks still run (they see the flag); nothing is dropped silently.
  void RequestStop() { stop_source_.request_stop(); }
  std::stop_token stop_token() const { return stop_source_.get_token(); }

  size_t worker_count() const;
  // Exceptions that escaped tasks so far.
  size_t unhandled_exceptions() const;
  // Index in [0, worker_count()) of the calling worker thread of *some* executor, or -1
  // when called from a thread that is no executor worker.
  static int CurrentWorkerIndex();

 private:
  class Impl;
  explicit Executor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::stop_source stop_source_;
};

// A set of tasks to wait for together (after oneTBB's task_group).
// Thread safety: Run() from any thread; Wait() from one thread at a time.
class TaskGroup {
 public:
  explicit TaskGroup(Executor& executor) : executor_(executor) {}
  // Waits for outstanding tasks.
  ~TaskGroup() { Wait(); }

  // Submits `task` as part of this group (blocking while the executor's queue is full).
  Status Run(Task task);
  // Returns once every task Run() so far has finished.
  void Wait();

 private:
  Executor& executor_;
  std::atomic<size_t> pending_{0};
};

}  // namespace forklift

#endif  // FORKLIFT_EXECUTOR_H_
