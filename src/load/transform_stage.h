// TransformStage: runs a chunk transform on up to `workers` threads at once and hands the
// results on in the order the chunks came in, between the reader and the writers' queues.
//
//   TransformStage stage(3, transform, [&](sinks::Chunk&& c) { queue.Push(std::move(c)); });
//   for (...) FORKLIFT_RETURN_IF_ERROR(stage.Push(std::move(chunk)));
//   FORKLIFT_RETURN_IF_ERROR(stage.Finish());
//
// Why in order: a key's rows go to one partition's queue, and its writer commits them in
// the order it pops them, so emitting in input order keeps "a key's rows apply in input
// order" (chunker.h) whatever order the transforms finish in. The chunk keeps its
// identity (number, lines, checksum): resume and the ledger do not see the stage.
//
// Memory: at most 2 x workers chunks are in the stage (running, waiting for a worker, or
// finished and waiting for an earlier chunk); Push blocks while the stage is full.
//
// Thread safety: Push and Finish are called from one thread (the reader's), which is also
// the thread `emit` runs on; `transform` runs on the stage's own threads, several at once.
#ifndef FORKLIFT_LOAD_TRANSFORM_STAGE_H_
#define FORKLIFT_LOAD_TRANSFORM_STAGE_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "forklift/result.h"
#include "sinks/chunk.h"

namespace forklift::load {

class TransformStage {
 public:
  // A chunk in, the chunk to write out; nullopt drops it (a stop reached it: never
  // committed, a rerun does it). It must turn its own failures into dead letters (the
  // chunk's parse_rejects); an exception it throws fails the stage (Push/Finish return
  // Internal naming the chunk) and later chunks are dropped.
  using Transform = std::function<std::optional<sinks::Chunk>(sinks::Chunk&&)>;
  using Emit = std::function<void(sinks::Chunk&&)>;

  // workers >= 1 (a smaller value is taken as 1). Starts the threads.
  TransformStage(int workers, Transform transform, Emit emit);
  // Finish() if it was not called.
  ~TransformStage();
  TransformStage(const TransformStage&) = delete;
  TransformStage& operator=(const TransformStage&) = delete;

  // Queues `chunk`, emitting the finished ones that are next in order first; blocks while
  // the stage is full. Failure: the first exception of a transform (Internal); the chunk
  // is then dropped.
  Status Push(sinks::Chunk&& chunk);

  // Waits for every queued chunk, emits them in order, and stops the threads. Failure:
  // as Push. Idempotent.
  Status Finish();

 private:
  void Work();
  // Emits, in order, the finished chunks that are next; `lock` is released around emit_.
  void EmitReady(std::unique_lock<std::mutex>& lock);
  Status ErrorLocked() const;

  Transform transform_;
  Emit emit_;
  size_t window_;
  std::mutex mu_;
  std::condition_variable work_cv_;                       // todo_ grew, or closing_
  std::condition_variable done_cv_;                       // done_ grew
  std::deque<std::pair<uint64_t, sinks::Chunk>> todo_;    // guarded by mu_
  std::map<uint64_t, std::optional<sinks::Chunk>> done_;  // guarded by mu_
  uint64_t next_in_ = 0;                                  // guarded by mu_
  uint64_t next_out_ = 0;                                 // guarded by mu_
  bool closing_ = false;                                  // guarded by mu_
  std::optional<Error> error_;                            // guarded by mu_
  bool finished_ = false;                                 // the caller's thread only
  std::vector<std::thread> threads_;
};

}  // namespace forklift::load

#endif  // FORKLIFT_LOAD_TRANSFORM_STAGE_H_
