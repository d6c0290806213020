// run_batch() through a PostgreSQL work queue (docs/queue.md, docs/batch.md): the calling
// program is the coordinator, and worker programs — on any number of hosts — call
// serve_queue() with the same item function.
//
//   // coordinator
//   auto r = forklift::run_batch(symbols, Scrape, options, forklift::QueueOptions{.dsn = dsn});
//   // each worker program
//   return forklift::serve_queue<std::string>(Scrape, {.dsn = dsn, .workers = 8});
//
// Items and values travel as codec.h bytes (native-endian: coordinator and workers share
// an architecture and the same Codec specializations). The queue's protocol is map
// --queue's: slices of items leased with a token and renewed by heartbeat, every write
// fenced by the token, expired leases reaped, poison items split out and dead-lettered.
// Execution is at-least-once; each item gets exactly one outcome.
//
// Not part of the installed libforklift (it needs libpq): link forklift_queue and
// forklift_batch from this build (docs/install.md).
#ifndef FORKLIFT_QUEUE_BATCH_H_
#define FORKLIFT_QUEUE_BATCH_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include "forklift/batch.h"

namespace forklift {

struct QueueOptions {
  std::string dsn;                  // PostgreSQL connection string; required
  std::string schema = "forklift";  // the queue's schema (created or migrated on first use)
  // Most items per slice (a worker's unit of lease). Default 500.
  size_t slice_items = 500;
  // Items in the queue at once; 0 (default): BatchOptions.window when set, else
  // 8 x slice_items. What bounds the coordinator's memory.
  size_t in_flight = 0;
  // The run's name in the queue; "" (default): "batch-" + BatchOptions.batch_id, or a
  // fresh random name without one. With a batch_id a rerun adopts the unfinished run of
  // that name: items already enqueued are followed, not enqueued again.
  std::string run_name;
  int stderr_fd = 2;  // where the coordinator says it has no worker, lost the server, ...
};

struct ServeOptions {
  std::string dsn;                  // required
  std::string schema = "forklift";  // as the coordinator's
  size_t workers = 1;               // items run at once on this worker's threads; >= 1
  std::string run_name;             // serve only this run; "" (default): any open run
  // Exit after this long without work; unset (default): wait for work until `stop`.
  std::optional<Duration> max_idle;
  Duration lease = std::chrono::seconds(10);  // >= 1 s; renewed every lease/4
  // Items claimed beyond the free threads, so threads do not wait for a claim's round
  // trip; 0 (default): one per thread. Raise it for items of microseconds; keep it low
  // for slow items, which other workers could take meanwhile.
  size_t prefetch = 0;
  int claim_slices = 1;  // most slices per claim; >= 1
  std::stop_token stop;  // claim nothing more, finish what is held
  int stderr_fd = 2;
};

// What one serve_queue() did.
struct ServeReport {
  int exit_code = 0;  // 0: max_idle or stop; 2: the queue could not be opened
  uint64_t items = 0;
  uint64_t claims = 0;  // Claim calls that returned slices
  // Claim latency: from a claim's request to its return, over claims that returned
  // slices.
  Duration claim_p50{};
  Duration claim_p99{};
};

namespace detail {

// Implemented in forklift_queue (src/queue/queue_batch.cc).
Result<std::unique_ptr<RemoteAttempts>> StartQueueAttempts(const QueueOptions& q,
                                                           const BatchOptions& options);
void FinishQueueAttempts(RemoteAttempts& remote);
ServeReport ServeQueue(const ServeOptions& options, const ChildFn& child);

}  // namespace detail

// As run_batch(items, fn, options, on_outcome) (batch.h), with each attempt run by a
// serve_queue() worker instead of this process's threads: same outcomes (an item's error
// as the worker's fn returned it), summary, retries (each retry is a new queue item),
// checkpoints and resume. BatchOptions.workers is unused; isolation must be kThread (the
// worker runs fn on threads; its timeout is cooperative, as for a local run).
// Failure, besides batch.h's: the queue's connection errors at the start (nothing runs);
// FailedPrecondition when another coordinator follows the same run. A connection lost
// later is retried until the batch ends or stops. Without a live worker it says so on
// q.stderr_fd and waits.
// Thread safety: as run_batch's; on_outcome runs on the calling thread.
template <std::ranges::input_range Items, class Fn, class OnOutcome>
Result<Summary> run_batch(Items&& items, Fn fn, const BatchOptions& options, const QueueOptions& q,
                          OnOutcome on_outcome) {
  using Item = std::remove_cvref_t<std::ranges::range_reference_t<Items>>;
  using V = detail::ValueT<Fn, Item>;
  static_assert(kHasCodec<Item> && kHasCodec<V>,
                "run_batch with a queue needs forklift::Codec for the item and value types");
  using Job = detail::TypedJob<Item, V, Fn>;
  using Returned = std::invoke_result_t<OnOutcome&, Outcome<V>&&>;
  BatchOptions o = options;
  if (o.isolation != Isolation::kThread) {
    return InvalidArgumentError("run_batch with a queue: BatchOptions.isolation must be kThread");
  }
  o.window = q.in_flight ? q.in_flight : (options.window ? options.window : 8 * q.slice_items);
  o.workers = 1;  // the engine's own thread only hands attempts to the queue
  FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<detail::RemoteAttempts> remote,
                            detail::StartQueueAttempts(q, o));
  auto it = std::ranges::begin(items);
  auto end = std::ranges::end(items);
  uint64_t next_index = 0;
  detail::JobFeed feed = [&]() -> std::unique_ptr<detail::BatchJob> {
    if (it == end) return nullptr;
    auto job = std::make_unique<Job>(next_index++, Item(*it), &fn);
    ++it;
    return job;
  };
  detail::OutcomeHandler handler = [&](std::unique_ptr<detail::BatchJob> job,
                                       detail::JobOutcome info) -> Status {
    auto& typed = static_cast<Job&>(*job);
    if constexpr (std::is_void_v<Returned>) {
      on_outcome(typed.TakeOutcome(info));
      return OkStatus();
    } else {
      return on_outcome(typed.TakeOutcome(info));
    }
  };
  detail::EngineHooks hooks;
  hooks.child_fn = detail::MakeChildFn<Item, V>(&fn);
  hooks.has_keys = kHasItemKey<Item>;
  hooks.remote = remote.get();
  auto summary = detail::RunBatchEngine(o, detail::SizeHint(items), feed, handler, hooks);
  detail::FinishQueueAttempts(*remote);
  return summary;
}

// Collecting form: every outcome, in completion order, plus the summary.
template <std::ranges::input_range Items, class Fn>
auto run_batch(Items&& items, Fn fn, const BatchOptions& options, const QueueOptions& q) -> Result<
    BatchResult<detail::ValueT<Fn, std::remove_cvref_t<std::ranges::range_reference_t<Items>>>>> {
  using V = detail::ValueT<Fn, std::remove_cvref_t<std::ranges::range_reference_t<Items>>>;
  BatchResult<V> result;
  auto summary = run_batch(std::forward<Items>(items), std::move(fn), options, q,
                           [&](Outcome<V>&& o) { result.outcomes.push_back(std::move(o)); });
  if (!summary) return tl::unexpected(summary.error());
  result.summary = std::move(*summary);
  return result;
}

// A worker program's body: leases slices of the queue's batch runs, runs their items with
// `fn` (the coordinator's item function, Item its item type) on options.workers threads
// with the attempt's timeout (ItemContext's deadline, cooperative; an item that returns
// late is DeadlineExceeded) and records each outcome fenced by its slice's lease token.
// A lease lost (reaped, the run cancelled) stops its items (ItemContext::Cancelled()) and
// records nothing of them. Returns after options.max_idle without work or options.stop,
// with what it did; exit_code 2 (said on stderr_fd) when the queue cannot be opened.
// Connection losses later are retried. Thread safety: fn runs on several threads at once.
template <class Item, class Fn>
ServeReport serve_queue(Fn fn, const ServeOptions& options) {
  using V = detail::ValueT<Fn, Item>;
  static_assert(kHasCodec<Item> && kHasCodec<V>,
                "serve_queue needs forklift::Codec for the item and value types");
  return detail::ServeQueue(options, detail::MakeChildFn<Item, V>(&fn));
}

}  // namespace forklift

#endif  // FORKLIFT_QUEUE_BATCH_H_
