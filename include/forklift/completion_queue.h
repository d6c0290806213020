// as_completed for an Executor: submit functions, receive their results in the order they
// finish (Java's ExecutorCompletionService, Python's as_completed).
//
// Thread safety: Submit() and Next() may be called from different threads; the queue must
// outlive the tasks it submitted (the destructor waits for them).
#ifndef FORKLIFT_COMPLETION_QUEUE_H_
#define FORKLIFT_COMPLETION_QUEUE_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>

#include "forklift/executor.h"
#include "forklift/result.h"

namespace forklift {

template <class T>
class CompletionQueue {
 public:
  explicit CompletionQueue(Executor& executor) : executor_(executor) {}
  ~CompletionQueue() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return running_ == 0; });
  }
  CompletionQueue(const CompletionQueue&) = delete;
  CompletionQueue& operator=(const CompletionQueue&) = delete;

  // Runs fn() on the executor; its value (or the exception it threw, as kInternal) is
  // handed out by Next() once it finishes. Blocks while the executor's queue is full;
  // Cancelled when the executor is shut down.
  Status Submit(std::function<T()> fn) {
    {
      std::lock_guard lock(mu_);
      ++outstanding_;
      ++running_;
    }
    Status s = executor_.Submit([this, fn = std::move(fn)] {
      Result<T> r = tl::unexpected(Error{});
      try {
        r = fn();
      } catch (const std::exception& e) {
        r = InternalError(std::string("task threw: ") + e.what());
      } catch (...) {
        r = InternalError("task threw a non-standard exception");
      }
      std::lock_guard lock(mu_);
      done_.push_back(std::move(r));
      --running_;
      cv_.notify_all();
    });
    if (!s) {
      std::lock_guard lock(mu_);
      --outstanding_;
      --running_;
    }
    return s;
  }

  // The next finished result, blocking until one is ready; nullopt when every submitted
  // task's result has already been returned.
  std::optional<Result<T>> Next() {
    std::unique_lock lock(mu_);
    if (outstanding_ == 0) return std::nullopt;
    cv_.wait(lock, [&] { return !done_.empty(); });
    Result<T> r = std::move(done_.front());
    done_.pop_front();
    --outstanding_;
    return r;
  }

  // Submitted results not yet returned by Next().
  size_t outstanding() const {
    std::lock_guard lock(mu_);
    return outstanding_;
  }

 private:
  Executor& executor_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Result<T>> done_;
  size_t outstanding_ = 0;
  size_t running_ = 0;
};

}  // namespace forklift

#endif  // FORKLIFT_COMPLETION_QUEUE_H_
