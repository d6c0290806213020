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
// Result<V>, ItemResult<V> (a failure that still carries a value), Status or void (the
// last two give Outcome<std::monostate>). An exception escaping fn becomes an kInternal
// error for that item alone.
//
// Thread safety: run_batch() may be called from several threads at once. `fn` and
// options.retry.retry_if run concurrently on the workers; the outcome callback and
// on_progress run on the calling thread, one call at a time. Either may return a Status:
// an error stops the batch as a cancellation does, and run_batch returns that error.
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

// A failed attempt that still has a value worth keeping (a command's exit status and
// output), or a plain success or failure. fn may return it instead of Result<V>; the
// outcome then carries the failure's value in Outcome::failed_value.
//
//   if (c.exit_code != 0) return ItemResult<Ran>::Failed(AbortedError("exit 3"), std::move(c));
//   return ItemResult<Ran>(std::move(c));
//
// Thread safety: a plain value.
template <class V>
struct ItemResult {
  using value_type = V;

  ItemResult(V v) : value(std::move(v)) {}                       // success
  ItemResult(Error e) : status(tl::unexpected(std::move(e))) {}  // failure, no value
  ItemResult(tl::unexpected<Error> e) : status(std::move(e)) {}  // failure, no value
  // A failure that keeps `v`.
  static ItemResult Failed(Error e, V v) {
    ItemResult r(std::move(e));
    r.value.emplace(std::move(v));
    return r;
  }
  static ItemResult Failed(tl::unexpected<Error> e, V v) {
    return Failed(std::move(e).value(), std::move(v));
  }
  // A Result's value or error (no value with the error).
  static ItemResult From(Result<V> r) {
    if (r) return ItemResult(std::move(*r));
    return ItemResult(std::move(r).error());
  }

  bool ok() const { return status.has_value(); }

  // Ok for a success (then `value` is set); the error for a failure.
  Status status;
  // The value: always set for a success; for a failure, set when it has one.
  std::optional<V> value;
};

// options.on_progress: a callable over (const Progress&) that returns void or Status. An
// error stops the batch as a cancellation does and becomes run_batch's result.
// Thread safety: as the callable's; the engine calls it from one thread at a time.
class ProgressCallback {
 public:
  ProgressCallback() = default;
  ProgressCallback(std::nullptr_t) {}  // NOLINT(google-explicit-constructor): "none"
  template <class F>
  requires(!std::is_same_v<F, ProgressCallback>) && std::invocable<F&, const Progress&> &&
      (std::is_void_v<std::invoke_result_t<F&, const Progress&>> ||
       std::is_convertible_v<std::invoke_result_t<F&, const Progress&>, Status>)
          ProgressCallback(F f) {  // NOLINT(google-explicit-constructor): assigned from lambdas
    // An empty std::function (or null function pointer) stays "none".
    if constexpr (std::is_constructible_v<bool, const F&>) {
      if (!static_cast<bool>(f)) return;
    }
    if constexpr (std::is_void_v<std::invoke_result_t<F&, const Progress&>>) {
      fn_ = [f = std::move(f)](const Progress& p) mutable -> Status {
        f(p);
        return OkStatus();
      };
    } else {
      fn_ = [f = std::move(f)](const Progress& p) mutable -> Status { return f(p); };
    }
  }
  explicit operator bool() const { return static_cast<bool>(fn_); }
  Status operator()(const Progress& p) const { return fn_(p); }

 private:
  std::function<Status(const Progress&)> fn_;
};

struct BatchOptions {
  // Worker threads (or processes), >= 1. Default: one per core.
  size_t workers = DefaultWorkerCount();
  // Items in flight (submitted, not yet collected), >= workers. 0 (the default) means
  // 4 × workers.
  size_t window = 0;
  // Per-item, per-attempt timeout, > 0 when set; std::nullopt means none: attempts get
  // no deadline (ItemContext::deadline() is TimePoint::max()) and are never timed out.
  // Default 60s.
  std::optional<Duration> timeout = std::chrono::seconds(60);
  RetryOptions retry;
  Isolation isolation = Isolation::kThread;  // default kThread
  // Called on the calling thread after each outcome; may return a Status (see
  // ProgressCallback). Default: none.
  ProgressCallback on_progress;
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
  uint64_t index = 0;  // position of the item in the input range
  Result<V> value;     // the value, or the final attempt's error
  // Attempts started; 0 for an item the stop reached before it started (value: Cancelled),
  // which is not recorded in the journal, so every resume runs it.
  int attempts = 0;
  Duration elapsed{};  // from the first attempt's start to the last one's end
  // For a failure: the value its final attempt returned with its error (ItemResult's
  // Failed), e.g. a command's exit status and output. nullopt for a success (the value is
  // in `value`) and for failures without one: errors the engine decided (a timeout, a
  // crash, a cancellation) carry none.
  std::optional<V> failed_value = std::nullopt;
  bool ok() const { return value.has_value(); }
};

template <class V>
struct BatchResult {
  std::vector<Outcome<V>> outcomes;  // in completion order
  Summary summary;
};

namespace detail {

// Every return type of fn, as an ItemResult<Value>.
template <class R>
struct Normalize {
  using Value = R;
  static ItemResult<R> Wrap(R&& r) { return ItemResult<R>(std::move(r)); }
};
template <class V>
struct Normalize<Result<V>> {
  using Value = V;
  static ItemResult<V> Wrap(Result<V>&& r) { return ItemResult<V>::From(std::move(r)); }
};
template <class V>
struct Normalize<ItemResult<V>> {
  using Value = V;
  static ItemResult<V> Wrap(ItemResult<V>&& r) { return std::move(r); }
};
template <>
struct Normalize<Status> {
  using Value = std::monostate;
  static ItemResult<std::monostate> Wrap(Status&& s) {
    if (!s) return ItemResult<std::monostate>(std::move(s).error());
    return ItemResult<std::monostate>(std::monostate{});
  }
};

// ItemResult<V> on the process-isolation wire: Result<V>'s encoding (codec.h), or tag 2,
// the error, then the value that came with it.
template <HasCodec V>
void EncodeItemResult(const ItemResult<V>& r, std::string& out) {
  if (r.ok() || !r.value) {
    if (r.ok()) {
      EncodeResult(Result<V>(*r.value), out);
    } else {
      EncodeResult(Result<V>(tl::unexpected(r.status.error())), out);
    }
    return;
  }
  out.push_back(2);
  Codec<int32_t>::Encode(static_cast<int32_t>(r.status.error().code), out);
  Codec<std::string>::Encode(r.status.error().message, out);
  Codec<V>::Encode(*r.value, out);
}

template <HasCodec V>
Result<ItemResult<V>> DecodeItemResult(std::string_view in) {
  if (in.empty() || in[0] != 2) {
    FORKLIFT_ASSIGN_OR_RETURN(Result<V> r, DecodeResult<V>(in));
    return ItemResult<V>::From(std::move(r));
  }
  in.remove_prefix(1);
  FORKLIFT_ASSIGN_OR_RETURN(int32_t code, Codec<int32_t>::Decode(in));
  FORKLIFT_ASSIGN_OR_RETURN(std::string message, Codec<std::string>::Decode(in));
  if (code < 1 || code > static_cast<int32_t>(ErrorCode::kDataLoss)) {
    return DataLossError("codec: bad error code " + std::to_string(code));
  }
  FORKLIFT_ASSIGN_OR_RETURN(V v, DecodeAll<V>(in));
  return ItemResult<V>::Failed(Error{static_cast<ErrorCode>(code), std::move(message)},
                               std::move(v));
}

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
ItemResult<typename Normalize<std::conditional_t<std::is_void_v<RawResultT<Fn, Item>>, Status,
                                                 std::decay_t<RawResultT<Fn, Item>>>>::Value>
CallItemFn(Fn& fn, const Item& item, ItemContext& ctx) {
  using Raw = RawResultT<Fn, Item>;
  if constexpr (std::is_void_v<Raw>) {
    InvokeItemFn(fn, item, ctx);
    return ItemResult<std::monostate>(std::monostate{});
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
      auto decoded = DecodeItemResult<V>(bytes);
      if (!decoded) {
        value_ = ItemResult<V>(decoded.error());
      } else {
        value_ = std::move(*decoded);
      }
      return StatusOf();
    } else {
      return InvalidArgumentError("isolation=process needs a Codec for the value type");
    }
  }
  void SetError(Error e) override { value_ = ItemResult<V>(std::move(e)); }
  Result<std::string> Key() const override {
    if constexpr (kHasItemKey<Item>) {
      return ItemKey(item_);
    } else {
      return InvalidArgumentError("checkpoints need an item key: give the item type a Codec");
    }
  }

  // The outcome of the last attempt, moved out.
  Outcome<V> TakeOutcome(JobOutcome info) {
    Outcome<V> o{.index = index,
                 .value = tl::unexpected(Error{}),
                 .attempts = info.attempts,
                 .elapsed = info.elapsed,
                 .failed_value = std::nullopt};
    if (value_.ok()) {
      o.value = std::move(*value_.value);
    } else {
      o.value = tl::unexpected(std::move(value_.status).error());
      o.failed_value = std::move(value_.value);
    }
    return o;
  }

 private:
  Status StatusOf() const { return value_.status; }

  Item item_;
  Fn* fn_;
  ItemResult<V> value_{Error{ErrorCode::kInternal, "not run"}};
};

// The child-side body of process isolation: decode the item, run fn, encode its result.
template <class Item, class V, class Fn>
ChildFn MakeChildFn(Fn* fn) {
  if constexpr (kHasCodec<Item> && kHasCodec<V>) {
    return [fn](std::string_view bytes, ItemContext& ctx) -> std::string {
      ItemResult<V> r{Error{}};
      auto item = DecodeAll<Item>(bytes);
      if (!item) {
        r = ItemResult<V>(item.error());
      } else {
        try {
          r = CallItemFn(*fn, *item, ctx);
        } catch (const std::exception& e) {
          r = ItemResult<V>(Error{ErrorCode::kInternal, std::string("item threw: ") + e.what()});
        } catch (...) {
          r = ItemResult<V>(Error{ErrorCode::kInternal, "item threw a non-standard exception"});
        }
      }
      std::string out;
      EncodeItemResult(r, out);
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
// on_outcome returns void or Status.
// Success: the summary (item failures are outcomes, never the return value).
// Failure: InvalidArgument naming a bad option (nothing runs then); an error opening or
// writing the journal; or the first error on_outcome or on_progress returned. After such
// an error no item starts, running items see cancellation, on_outcome is not called again,
// and outcomes that were not yet recorded in the journal stay unrecorded (a rerun runs
// them). An exception from on_outcome propagates once the workers have stopped.
template <std::ranges::input_range Items, class Fn, class OnOutcome>
Result<Summary> run_batch(Items&& items, Fn fn, const BatchOptions& options, OnOutcome on_outcome) {
  using Item = std::remove_cvref_t<std::ranges::range_reference_t<Items>>;
  using V = detail::ValueT<Fn, Item>;
  using Job = detail::TypedJob<Item, V, Fn>;
  using Returned = std::invoke_result_t<OnOutcome&, Outcome<V>&&>;
  static_assert(std::is_void_v<Returned> || std::is_convertible_v<Returned, Status>,
                "run_batch: on_outcome must return void or Status");

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
  return detail::RunBatchEngine(options, detail::SizeHint(items), feed, handler, hooks);
}

// Collecting form: every outcome, in completion order, plus the summary.
template <std::ranges::input_range Items, class Fn>
auto run_batch(Items&& items, Fn fn, const BatchOptions& options = {}) -> Result<
    BatchResult<detail::ValueT<Fn, std::remove_cvref_t<std::ranges::range_reference_t<Items>>>>> {
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
