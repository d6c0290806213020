// A bounded blocking queue of chunks between the reader and the writers. It is how memory
// stays bounded: the reader blocks while writers are behind. Chunks are coarse (thousands
// of rows), so a mutex and two condition variables cost nothing measurable here.
// Thread safety: every member is thread-safe.
#ifndef FORKLIFT_LOAD_CHUNK_QUEUE_H_
#define FORKLIFT_LOAD_CHUNK_QUEUE_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>

#include "sinks/chunk.h"

namespace forklift::load {

class ChunkQueue {
 public:
  explicit ChunkQueue(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  // Blocks while full. False (and the chunk is dropped) once the queue is closed.
  bool Push(sinks::Chunk&& chunk) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(chunk));
    not_empty_.notify_one();
    return true;
  }

  // Blocks while empty and open. nullopt once closed and drained (or discarded).
  std::optional<sinks::Chunk> Pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return std::nullopt;
    sinks::Chunk c = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return c;
  }

  // No more pushes; pops drain what is queued, then return nullopt.
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }

  // Close() and drop what is queued (never committed, so a rerun does it).
  void Discard() {
    std::lock_guard lock(mu_);
    closed_ = true;
    items_.clear();
    not_empty_.notify_all();
    not_full_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<sinks::Chunk> items_;
  size_t capacity_;
  bool closed_ = false;
};

}  // namespace forklift::load

#endif  // FORKLIFT_LOAD_CHUNK_QUEUE_H_
