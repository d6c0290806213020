#include "forklift/executor.h"

#include <mutex>
#include <thread>
#include <vector>

#include "core/mpmc_queue.h"

namespace forklift {
namespace {

thread_local int current_worker_index = -1;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spinning before parking keeps a busy pool off futex syscalls between close tasks.
constexpr int kSpinPolls = 64;
constexpr int kYieldPolls = 4;

}  // namespace

// Workers park on an "event count" (work_epoch_) only after announcing themselves in
// sleeping_; producers bump the epoch only when someone sleeps. The seq_cst fences on both
// sides make the announce-then-recheck and push-then-check pairs a Dekker handshake, so a
// task is never left in the queue with every worker asleep. Producers blocked on a full
// queue park the same way on space_epoch_.
class Executor::Impl {
 public:
  Impl(size_t workers, size_t capacity) : queue_(capacity) {
    threads_.reserve(workers);
    for (size_t i = 0; i < workers; ++i) {
      threads_.emplace_back([this, i] { WorkerLoop(static_cast<int>(i)); });
    }
  }

  Status Submit(Task& task) {
    SubmitterScope scope(this);
    if (closed_.load(std::memory_order_seq_cst)) return CancelledError("executor is shut down");
    if (queue_.TryPush(task)) {
      WakeWorker();
      return OkStatus();
    }
    for (int i = 0; i < kSpinPolls; ++i) {
      CpuRelax();
      if (queue_.TryPush(task)) {
        WakeWorker();
        return OkStatus();
      }
    }
    for (;;) {
      uint32_t epoch = space_epoch_.load(std::memory_order_seq_cst);
      blocked_producers_.fetch_add(1, std::memory_order_seq_cst);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      bool pushed = queue_.TryPush(task);
      if (!pushed && !closed_.load(std::memory_order_seq_cst)) {
        space_epoch_.wait(epoch, std::memory_order_seq_cst);
      }
      blocked_producers_.fetch_sub(1, std::memory_order_seq_cst);
      if (pushed) {
        WakeWorker();
        return OkStatus();
      }
      if (closed_.load(std::memory_order_seq_cst)) {
        return CancelledError("executor shut down while the submission waited for room");
      }
    }
  }

  void Shutdown() {
    std::call_once(shutdown_once_, [this] {
      closed_.store(true, std::memory_order_seq_cst);
      // Producers blocked on a full queue must see closed_ and leave.
      space_epoch_.fetch_add(1, std::memory_order_seq_cst);
      space_epoch_.notify_all();
      // After this no task can enter the queue, so workers that find it empty may exit.
      while (submitters_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
      work_epoch_.fetch_add(1, std::memory_order_seq_cst);
      work_epoch_.notify_all();
      for (auto& t : threads_) t.join();
    });
  }

  size_t workers() const { return threads_.size(); }
  size_t exceptions() const { return exceptions_.load(std::memory_order_relaxed); }

 private:
  struct SubmitterScope {
    explicit SubmitterScope(Impl* impl) : impl_(impl) {
      impl_->submitters_.fetch_add(1, std::memory_order_seq_cst);
    }
    ~SubmitterScope() { impl_->submitters_.fetch_sub(1, std::memory_order_seq_cst); }
    Impl* impl_;
  };

  void WakeWorker() {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_relaxed) > 0) {
      work_epoch_.fetch_add(1, std::memory_order_seq_cst);
      work_epoch_.notify_one();
    }
  }

  void NotifySpace() {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (blocked_producers_.load(std::memory_order_relaxed) > 0) {
      space_epoch_.fetch_add(1, std::memory_order_seq_cst);
      space_epoch_.notify_all();
    }
  }

  bool Pop(Task& task) {
    if (!queue_.TryPop(task)) return false;
    NotifySpace();
    return true;
  }

  void Run(Task& task) {
    try {
      task();
    } catch (...) {
      exceptions_.fetch_add(1, std::memory_order_relaxed);
    }
    task = nullptr;
  }

  bool Finished() const {
    return closed_.load(std::memory_order_seq_cst) &&
           submitters_.load(std::memory_order_seq_cst) == 0;
  }

  void WorkerLoop(int index) {
    current_worker_index = index;
    Task task;
    for (;;) {
      if (Pop(task)) {
        Run(task);
        continue;
      }
      bool found = false;
      for (int i = 0; i < kSpinPolls + kYieldPolls && !found; ++i) {
        if (i < kSpinPolls) {
          CpuRelax();
        } else {
          std::this_thread::yield();
        }
        found = Pop(task);
      }
      if (found) {
        Run(task);
        continue;
      }
      uint32_t epoch = work_epoch_.load(std::memory_order_seq_cst);
      sleeping_.fetch_add(1, std::memory_order_seq_cst);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (Pop(task)) {
        sleeping_.fetch_sub(1, std::memory_order_seq_cst);
        Run(task);
        continue;
      }
      if (Finished()) {
        sleeping_.fetch_sub(1, std::memory_order_seq_cst);
        if (Pop(task)) {
          Run(task);
          continue;
        }
        return;
      }
      work_epoch_.wait(epoch, std::memory_order_seq_cst);
      sleeping_.fetch_sub(1, std::memory_order_seq_cst);
    }
  }

  core::MpmcQueue<Task> queue_;
  std::vector<std::thread> threads_;
  std::once_flag shutdown_once_;
  std::atomic<bool> closed_{false};
  std::atomic<int> submitters_{0};
  alignas(64) std::atomic<uint32_t> work_epoch_{0};
  std::atomic<int> sleeping_{0};
  alignas(64) std::atomic<uint32_t> space_epoch_{0};
  std::atomic<int> blocked_producers_{0};
  std::atomic<size_t> exceptions_{0};
};

Result<std::unique_ptr<Executor>> Executor::Create(ExecutorOptions options) {
  if (options.workers == 0) {
    return InvalidArgumentError("executor: workers must be >= 1, got 0");
  }
  size_t cap = options.queue_capacity;
  if (cap < 2 || (cap & (cap - 1)) != 0) {
    return InvalidArgumentError("executor: queue_capacity must be a power of two >= 2, got " +
                                std::to_string(cap));
  }
  return std::unique_ptr<Executor>(
      new Executor(std::make_unique<Impl>(options.workers, options.queue_capacity)));
}

Executor::Executor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Executor::~Executor() { Shutdown(); }

Status Executor::Submit(Task task) { return impl_->Submit(task); }

void Executor::Shutdown() { impl_->Shutdown(); }

size_t Executor::worker_count() const { return impl_->workers(); }

size_t Executor::unhandled_exceptions() const { return impl_->exceptions(); }

int Executor::CurrentWorkerIndex() { return current_worker_index; }

Status TaskGroup::Run(Task task) {
  pending_.fetch_add(1, std::memory_order_relaxed);
  Status s = executor_.Submit([this, task = std::move(task)] {
    struct Done {
      std::atomic<size_t>& pending;
      ~Done() {
        if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) pending.notify_all();
      }
    } done{pending_};
    task();
  });
  if (!s) {
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_all();
  }
  return s;
}

void TaskGroup::Wait() {
  for (;;) {
    size_t p = pending_.load(std::memory_order_acquire);
    if (p == 0) return;
    pending_.wait(p, std::memory_order_acquire);
  }
}

}  // namespace forklift
