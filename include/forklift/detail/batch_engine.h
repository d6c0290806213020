// The type-erased engine under run_batch(). Not for direct use: batch.h's templates
// turn items and a function into BatchJobs and call RunBatchEngine.
#ifndef FORKLIFT_DETAIL_BATCH_ENGINE_H_
#define FORKLIFT_DETAIL_BATCH_ENGINE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "forklift/clock.h"
#include "forklift/item_context.h"
#include "forklift/result.h"
#include "forklift/summary.h"

namespace forklift {

struct BatchOptions;

namespace detail {

// One item and, once run, its result.
class BatchJob {
 public:
  virtual ~BatchJob() = default;
  // Thread isolation: runs one attempt, keeps its value; returns its status.
  virtual Status Run(ItemContext& ctx) = 0;
  // Process isolation: the item's bytes for the worker process.
  virtual Result<std::string> EncodeItem() const = 0;
  // Process isolation: adopts the encoded ItemResult<V> from the worker; returns its
  // status.
  virtual Status AcceptEncodedResult(std::string_view bytes) = 0;
  // Records an error decided by the engine (timeout, crash, cancellation); drops any
  // value the attempt returned, so such failures carry none in either isolation mode.
  virtual void SetError(Error e) = 0;
  // The checkpoint key of the item.
  virtual Result<std::string> Key() const = 0;

  uint64_t index = 0;

  // Owned by the engine while the job is in flight.
  struct EngineState {
    int attempts = 0;
    TimePoint first_start{};
    std::string key;      // checkpoint key, when checkpoints are on
    std::string request;  // process isolation: the encoded item, kept for retries
    Status status;        // the last attempt's
  } engine;
};

struct JobOutcome {
  int attempts = 0;
  Duration elapsed{};
};

// Returns the next job, or nullptr at the end of the input. Called on the calling thread.
using JobFeed = std::function<std::unique_ptr<BatchJob>()>;
// Receives each finished job (its value already set). Called on the calling thread. An
// error stops the batch (RunBatchEngine returns it); it is not called again after one.
using OutcomeHandler = std::function<Status(std::unique_ptr<BatchJob>, JobOutcome)>;
// Process isolation, in the worker process: item bytes -> encoded ItemResult<V>.
using ChildFn = std::function<std::string(std::string_view item, ItemContext& ctx)>;

// Attempts that run somewhere else (a work queue's workers, forklift/queue_batch.h): the
// engine hands each attempt over and goes on; the result comes back through `done`.
class RemoteAttempts {
 public:
  virtual ~RemoteAttempts() = default;
  // Starts attempt `attempt` of the item at input position `index` (`item`: its codec
  // bytes; `timeout`: the per-attempt timeout, enforced where it runs). Must not block
  // for long. `done` is called exactly once, from any thread, with the encoded
  // ItemResult<V> or the error that ended the attempt (Cancelled after CancelAll).
  virtual void Submit(uint64_t index, int attempt, const std::string& item,
                      std::optional<Duration> timeout,
                      std::function<void(Result<std::string>)> done) = 0;
  // The batch is stopping: every attempt not yet done ends with Cancelled, now.
  virtual void CancelAll() = 0;
};

struct EngineHooks {
  ChildFn child_fn;       // null when the item or value type has no Codec
  bool has_keys = false;  // whether BatchJob::Key() can succeed
  // Set: attempts run there instead of on the engine's threads (needs child_fn's codecs).
  RemoteAttempts* remote = nullptr;
};

// Runs the batch (see run_batch in batch.h for the contract). Not thread-safe with
// itself on the same feed and handler; separate calls may run at once.
Result<Summary> RunBatchEngine(const BatchOptions& options, uint64_t total, JobFeed& feed,
                               OutcomeHandler& on_outcome, const EngineHooks& hooks);

}  // namespace detail
}  // namespace forklift

#endif  // FORKLIFT_DETAIL_BATCH_ENGINE_H_
