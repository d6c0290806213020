// A bounded multi-producer multi-consumer queue (Dmitry Vyukov's array queue): one CAS per
// push or pop and no lock, so an idle-free executor pays tens of nanoseconds per task.
// Blocking is layered on top by the executor; this queue only ever fails fast.
//
// Thread safety: TryPush and TryPop may be called from any number of threads.
#ifndef FORKLIFT_CORE_MPMC_QUEUE_H_
#define FORKLIFT_CORE_MPMC_QUEUE_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace forklift::core {

template <class T>
class MpmcQueue {
 public:
  // capacity must be a power of two >= 2 (checked by the caller).
  explicit MpmcQueue(size_t capacity) : mask_(capacity - 1), cells_(new Cell[capacity]) {
    for (size_t i = 0; i < capacity; ++i) cells_[i].sequence.store(i, std::memory_order_relaxed);
  }
  MpmcQueue(const MpmcQueue&) = delete;
  MpmcQueue& operator=(const MpmcQueue&) = delete;

  size_t capacity() const { return mask_ + 1; }

  // Moves from `value` and returns true if there was room; leaves it untouched otherwise.
  bool TryPush(T& value) {
    size_t pos = enqueue_pos_.load(std::memory_order_relaxed);
    for (;;) {
      Cell& cell = cells_[pos & mask_];
      size_t seq = cell.sequence.load(std::memory_order_acquire);
      auto diff = static_cast<std::ptrdiff_t>(seq) - static_cast<std::ptrdiff_t>(pos);
      if (diff == 0) {
        if (enqueue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          cell.value = std::move(value);
          cell.sequence.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // full
      } else {
        pos = enqueue_pos_.load(std::memory_order_relaxed);
      }
    }
  }

  bool TryPop(T& out) {
    size_t pos = dequeue_pos_.load(std::memory_order_relaxed);
    for (;;) {
      Cell& cell = cells_[pos & mask_];
      size_t seq = cell.sequence.load(std::memory_order_acquire);
      auto diff = static_cast<std::ptrdiff_t>(seq) - static_cast<std::ptrdiff_t>(pos + 1);
      if (diff == 0) {
        if (dequeue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          out = std::move(cell.value);
          cell.value = T();  // release captured state now, not when the slot is reused
          cell.sequence.store(pos + mask_ + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // empty
      } else {
        pos = dequeue_pos_.load(std::memory_order_relaxed);
      }
    }
  }

  // A racy hint, exact only when no push or pop is in progress.
  bool LooksEmpty() const {
    return enqueue_pos_.load(std::memory_order_seq_cst) ==
           dequeue_pos_.load(std::memory_order_seq_cst);
  }

 private:
  static constexpr size_t kLine = 64;
  struct Cell {
    std::atomic<size_t> sequence;
    T value;
  };
  const size_t mask_;
  std::unique_ptr<Cell[]> cells_;
  alignas(kLine) std::atomic<size_t> enqueue_pos_{0};
  alignas(kLine) std::atomic<size_t> dequeue_pos_{0};
  char pad_[kLine - sizeof(std::atomic<size_t>)];
};

}  // namespace forklift::core

#endif  // FORKLIFT_CORE_MPMC_QUEUE_H_
