// run_batch(): a function over many items on a worker pool, with per-item timeouts,
// isolated errors, retries, progress, checkpoints and a summary. The C++ front door of
// forklift; see docs/batch.md for a tour.
//
//   auto r = forklift::run_batch(symbols, [](const std::string& sym, forklift::ItemContext& ctx)
//                                -> forklift::Result<int> { ... }, options);
//
// Items come from any input range, consumed lazily through a bounded window (at most
// `window` items are in flight at once), so a range of 10,000,000 generated items runs in
// memory that does not depend on its length. Outcomes arrive in completion order (input
// order with options.ordered).
//
// `fn` is called as fn(const Item&, ItemContext&) or fn(const Item&), and returns V,
// Result<V>, Status or void (the last two give Outcome<std::monostate>). An exception
// escaping fn becomes an kInternal error for that item alone.
//
// Thread safety: run_batch() may be called from several threads at once. `fn` runs
// concurrently on the workers; the outcome sink and on_progress run on the calling thread,
// one call at a time.
#ifndef FORKLIFT_BATCH_H_
#define FORKLIFT_BATCH_H_

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ranges>
#include <stop_token>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "forklift/clock.h"
#include "forklift/codec.h"
#include "forklift/detail/batch_engine.h"
#include "forklift/item_context.h"
#include "forklift/progress.h"
#include "forklift/result.h"
#include "forklift/retry.h"
#include "forklift/summary.h"

namespace forklift {

enum class Isolation {
  // Items run on threads of this process; timeouts are cooperative (the item's context
  // reports its deadline; an item that returns late is recorded as DeadlineExceeded).
  kThread,
  // Items run in pre-forked worker processes; an item that crashes its worker or overruns
  // its timeout is killed, recorded with the signal or the timeout, and the worker is
  // replaced. Needs Codec<Item> and Codec<V> (codec.h).
  kProcess,
};




struct BatchOptions {
  // Worker threads (or processes), >= 1. Default: one per core.
  size_t workers = DefaultWorkerCount();
  // Items in flight (submitted, not yet collected), >= workers. 0 (the default) means
  // 4 × workers.
  size_t window = 0;
  // Per-item, per-attempt timeout, > 0. Default 60s.
  Duration timeout = std::chrono::seconds(60);
  RetryOptions retry;
  Isolation isolation = Isolation::kThread;  // default kThread
  // Called on the calling thread after each outcome. Default: none.
  std::function<void(const Progress&)> on_progress;
  ProgressDisplay display = ProgressDisplay::kAuto;  // default kAuto
  // Period of plain progress lines. Default 5s.
  Duration progress_interval = std::chrono::seconds(5);
  // Checkpoints: with a non-empty batch_id, every outcome is recorded in the journal, and
  // items recorded as succeeded under this batch_id are skipped (summary.skipped) on a
  // rerun. Needs an item key: Codec<Item> (codec.h) or a string/arithmetic Item.
  std::string batch_id;  // default "": no checkpoints
  // Journal file; "" means $FORKLIFT_JOURNAL, else .forklift/journal.db.
  std::string journal_path;
  // How the run is listed by `forklift runs`: its kind (default "batch") and a
  // human-readable name (default: the batch_id).
  std::string run_kind = "batch";
  std::string run_name;
  // Which items recorded under batch_id a rerun skips. Default kSucceeded.
  enum class Resume {
    kNone,       // skip nothing (outcomes are still recorded)
    kSucceeded,  // skip items recorded as succeeded; failed ones run again
    kFinished,   // skip every item that finished, succeeded or failed
  };
  // Whatever the mode, a resume runs the items that never started (not recorded) and
  // those a stop interrupted while running (recorded as cancelled: final error Cancelled).
  Resume resume = Resume::kSucceeded;
  // Deliver outcomes in input order (GNU parallel's -k) instead of completion order. An
  // item that finished early keeps its window slot until it is delivered, so memory stays
  // bounded by the window. Default false.
  bool ordered = false;
  // Cooperative cancellation: once requested, no further item starts, running items see
  // it in their context, and run_batch returns with summary.cancelled set.
  std::stop_token stop;
  // Time source for deadlines and backoff; nullptr means SystemClock().
  Clock* clock = nullptr;
  // Seed of the backoff jitter; 0 (the default) seeds from std::random_device.
  uint64_t seed = 0;

  static size_t DefaultWorkerCount();
};

template <class V>
struct Outcome {
  uint64_t index = 0;     // position of the item in the input range
  Result<V> value;        // the value, or the final attempt's error
  // Attempts started; 0 for an item the stop reached before it started (value: Cancelled),
  // which is not recorded in the journal, so every resume runs it.
  int attempts = 0;
  Duration elapsed{};     // from the first attempt's start to the last one's end
  bool ok() const { return value.has_value(); }
};

template <class V>
struct BatchResult {
  std::vector<Outcome<V>> outcomes;  // in completion order
  Summary summary;
};

namespace detail {

template <class R>
struct Normalize {
  using Value = R;
  static Result<R> Wrap(R&& r) { return Result<R>(std::move(r)); }
};
template <class V>
struct Normalize<Result<V>> {
  using Value = V;
  static Result<V> Wrap(Result<V>&& r) { return std::move(r); }
};
template <>
struct Normalize<Status> {
  using Value = std::monostate;
  static Result<std::monostate> Wrap(Status&& s) {
    if (!s) return tl::unexpected(std::move(s).error());
    return std::monostate{};
  }
};

template <class Fn, class Item>
decltype(auto) InvokeItemFn(Fn& fn, const Item& item, ItemContext& ctx) {
  if constexpr (std::is_invocable_v<Fn&, const Item&, ItemContext&>) {
    return fn(item, ctx);
  } else {
    return fn(item);
  }
}

template <class Fn, class Item>
using RawResultT = decltype(InvokeItemFn(std::declval<Fn&>(), std::declval<const Item&>(),
                                         std::declval<ItemContext&>()));

template <class Fn, class Item>
Result<typename Normalize<std::conditional_t<
    std::is_void_v<RawResultT<Fn, Item>>, Status, std::decay_t<RawResultT<Fn, Item>>>>::Value>
CallItemFn(Fn& fn, const Item& item, ItemContext& ctx) {
  using Raw = RawResultT<Fn, Item>;
  if constexpr (std::is_void_v<Raw>) {
    InvokeItemFn(fn, item, ctx);
    return std::monostate{};
  } else {
    using N = Normalize<std::decay_t<Raw>>;
    return N::Wrap(InvokeItemFn(fn, item, ctx));
  }
}

template <class Fn, class Item>
using ValueT = typename decltype(CallItemFn(std::declval<Fn&>(), std::declval<const Item&>(),
                                            std::declval<ItemContext&>()))::value_type;

template <class Item, class V, class Fn>
class TypedJob final : public BatchJob {
 public:
  TypedJob(uint64_t idx, Item item, Fn* fn) : item_(std::move(item)), fn_(fn) { index = idx; }

  Status Run(ItemContext& ctx) override {
    value_ = CallItemFn(*fn_, item_, ctx);
    return StatusOf();
  }
  Result<std::string> EncodeItem() const override {
    if constexpr (kHasCodec<Item>) {
      std::string out;
      Codec<Item>::Encode(item_, out);
      return out;
    } else {
      return InvalidArgumentError("isolation=process needs a Codec for the item type");
    }
  }
  Status AcceptEncodedResult(std::string_view bytes) override {
    if constexpr (kHasCodec<V>) {
      auto decoded = DecodeResult<V>(bytes);
      if (!decoded) {
        value_ = tl::unexpected(decoded.error());
      } else {
        value_ = std::move(*decoded);
      }
      return StatusOf();
    } else {
      return InvalidArgumentError("isolation=process needs a Codec for the value type");
    }
  }
  void SetError(Error e) override { value_ = tl::unexpected(std::move(e)); }
  Result<std::string> Key() const override {
    if constexpr (kHasItemKey<Item>) {
      return ItemKey(item_);
    } else {
      return InvalidArgumentError("checkpoints need an item key: give the item type a Codec");
    }
  }

  Result<V>& value() { return value_; }

 private:
  Status StatusOf() const {
    if (value_) return OkStatus();
    return tl::unexpected(value_.error());
  }

  Item item_;
  Fn* fn_;
  Result<V> value_ = tl::unexpected(Error{ErrorCode::kInternal, "not run"});
};

// The child-side body of process isolation: decode the item, run fn, encode its result.
template <class Item, class V, class Fn>
ChildFn MakeChildFn(Fn* fn) {
  if constexpr (kHasCodec<Item> && kHasCodec<V>) {
    return [fn](std::string_view bytes, ItemContext& ctx) -> std::string {
      Result<V> r = tl::unexpected(Error{});
      auto item = DecodeAll<Item>(bytes);
      if (!item) {
        r = tl::unexpected(item.error());
      } else {
        try {
          r = CallItemFn(*fn, *item, ctx);
        } catch (const std::exception& e) {
          r = InternalError(std::string("item threw: ") + e.what());
        } catch (...) {
          r = InternalError("item threw a non-standard exception");
        }
      }
      std::string out;
      EncodeResult(r, out);
      return out;
    };
  } else {
    return nullptr;
  }
}

template <class Items>
uint64_t SizeHint(Items& items) {
  if constexpr (std::ranges::sized_range<Items>) {
    return static_cast<uint64_t>(std::ranges::size(items));
  } else {
    return 0;
  }
}

}  // namespace detail

// Streaming form: on_outcome(Outcome<V>&&) is called on the calling thread for every
// item, in completion order; nothing is kept, so memory stays bounded by the window.
// Returns the summary, or InvalidArgument naming a bad option (nothing runs then), or an
// error opening the journal. Item failures are outcomes, never the return value.
template <std::ranges::input_range Items, class Fn, class Sink>
Result<Summary> run_batch(Items&& items, Fn fn, const BatchOptions& options, Sink on_outcome) {
  using Item = std::remove_cvref_t<std::ranges::range_reference_t<Items>>;
  using V = detail::ValueT<Fn, Item>;
  using Job = detail::TypedJob<Item, V, Fn>;

  auto it = std::ranges::begin(items);
  auto end = std::ranges::end(items);
  uint64_t next_index = 0;
  detail::JobSource source = [&]() -> std::unique_ptr<detail::BatchJob> {
    if (it == end) return nullptr;
    auto job = std::make_unique<Job>(next_index++, Item(*it), &fn);
    ++it;
    return job;
  };
  detail::JobSink sink = [&](std::unique_ptr<detail::BatchJob> job, detail::JobOutcome info) {
    auto& typed = static_cast<Job&>(*job);
    on_outcome(Outcome<V>{job->index, std::move(typed.value()), info.attempts, info.elapsed});
  };
  detail::EngineHooks hooks;
  hooks.child_fn = detail::MakeChildFn<Item, V>(&fn);
  hooks.has_keys = kHasItemKey<Item>;
  return detail::RunBatchEngine(options, detail::SizeHint(items), source, sink, hooks);
}

// Collecting form: every outcome, in completion order, plus the summary.
template <std::ranges::input_range Items, class Fn>
auto run_batch(Items&& items, Fn fn, const BatchOptions& options = {})
    -> Result<BatchResult<detail::ValueT<Fn, std::remove_cvref_t<std::ranges::range_reference_t<Items>>>>> {
  using V = detail::ValueT<Fn, std::remove_cvref_t<std::ranges::range_reference_t<Items>>>;
  BatchResult<V> result;
  auto summary = run_batch(std::forward<Items>(items), std::move(fn), options,
                           [&](Outcome<V>&& o) { result.outcomes.push_back(std::move(o)); });
  if (!summary) return tl::unexpected(summary.error());
  result.summary = std::move(*summary);
  return result;
}

}  // namespace forklift

#endif  // FORKLIFT_BATCH_H_
