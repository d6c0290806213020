// run_batch with a queue and serve_queue (forklift/queue_batch.h) on map --queue's pieces:
// QueueCoordinator enqueues attempts and follows their outcomes, RunWorker leases slices
// and runs their items through the item function instead of as commands.
#include "forklift/queue_batch.h"

#include <fmt/format.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "core/format_duration.h"
#include "queue/queue_coordinator.h"
#include "queue/queue_worker.h"

namespace forklift::detail {
namespace {

// A queue item's payload: the attempt's timeout in ms (-1: none), then the item's bytes.
std::string EncodePayload(const std::string& item, std::optional<Duration> timeout) {
  std::string out;
  int64_t ms = timeout ? queue::Millis(*timeout) : -1;
  Codec<int64_t>::Encode(ms, out);
  out += item;
  return out;
}

class QueueAttempts final : public RemoteAttempts {
 public:
  explicit QueueAttempts(std::unique_ptr<queue::QueueCoordinator> c) : c_(std::move(c)) {}

  void Submit(uint64_t index, int attempt, const std::string& item, std::optional<Duration> timeout,
              std::function<void(Result<std::string>)> done) override {
    // Keyed by input position: a rerun of the same input adopts what it enqueued before.
    queue::QueueItem qi{
        .key = std::to_string(index), .attempt = attempt, .payload = EncodePayload(item, timeout)};
    c_->Submit(std::move(qi), [done = std::move(done)](Result<queue::ItemOutcome> r) {
      if (!r) return done(tl::unexpected(r.error()));
      if (r->status == queue::OutcomeStatus::kDead) return done(InternalError(r->result));
      done(std::move(r->result));
    });
  }
  void CancelAll() override { c_->CancelAll(); }
  void Finish() { c_->Finish(); }

 private:
  std::unique_ptr<queue::QueueCoordinator> c_;
};

std::string RandomRunName() {
  uint64_t r = 0;
  if (::getrandom(&r, sizeof r, 0) != static_cast<ssize_t>(sizeof r)) {
    r = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  return fmt::format("batch-{:016x}", r);
}

}  // namespace

Result<std::unique_ptr<RemoteAttempts>> StartQueueAttempts(const QueueOptions& q,
                                                           const BatchOptions& options) {
  if (q.dsn.empty()) return InvalidArgumentError("QueueOptions.dsn must not be empty");
  if (q.slice_items == 0) return InvalidArgumentError("QueueOptions.slice_items must be >= 1");
  auto dsn = sinks::ParsePgDsn(q.dsn);
  if (!dsn) return InvalidArgumentError("QueueOptions.dsn: " + dsn.error().message);
  queue::CoordinatorOptions co;
  co.dsn = *dsn;
  co.schema = q.schema;
  co.run.name = !q.run_name.empty()         ? q.run_name
                : !options.batch_id.empty() ? "batch-" + options.batch_id
                                            : RandomRunName();
  co.run.kind = "batch";
  // A checkpointed batch's rerun finds its unfinished run and what it enqueued.
  co.adopt = !options.batch_id.empty();
  co.slice_items = q.slice_items;
  co.label = "forklift run_batch";
  co.stderr_fd = q.stderr_fd;
  FORKLIFT_ASSIGN_OR_RETURN(auto c, queue::QueueCoordinator::Start(co));
  return std::unique_ptr<RemoteAttempts>(new QueueAttempts(std::move(c)));
}

void FinishQueueAttempts(RemoteAttempts& remote) { static_cast<QueueAttempts&>(remote).Finish(); }

ServeReport ServeQueue(const ServeOptions& options, const ChildFn& child) {
  ServeReport report;
  auto dsn = sinks::ParsePgDsn(options.dsn);
  if (!dsn || options.workers == 0 || options.lease < std::chrono::seconds(1)) {
    std::string why = !dsn                   ? "ServeOptions.dsn: " + dsn.error().message
                      : options.workers == 0 ? std::string("ServeOptions.workers must be >= 1")
                                             : std::string("ServeOptions.lease must be >= 1s");
    std::string line = "forklift serve_queue: " + why + "\n";
    (void)!::write(options.stderr_fd, line.data(), line.size());
    report.exit_code = 2;
    return report;
  }
  queue::WorkerStats stats;
  queue::WorkerOptions wo;
  wo.dsn = *dsn;
  wo.schema = options.schema;
  wo.slots = static_cast<int>(options.workers);
  wo.run = options.run_name;
  wo.max_idle = options.max_idle;
  wo.lease = options.lease;
  wo.stderr_fd = options.stderr_fd;
  wo.stats = &stats;
  wo.prefetch = options.prefetch ? options.prefetch : options.workers;
  wo.claim_slices = std::max(1, options.claim_slices);
  wo.run_item = [&child](const queue::QueueItem& item,
                         const std::stop_token& stop) -> std::optional<std::string> {
    std::string_view in = item.payload;
    auto ms = Codec<int64_t>::Decode(in);
    std::string out;
    if (!ms) {
      EncodeResult(Result<std::monostate>(tl::unexpected(ms.error())), out);
      return out;
    }
    const TimePoint start = SystemClock().Now();
    const TimePoint deadline = *ms < 0 ? TimePoint::max() : start + std::chrono::milliseconds(*ms);
    ItemContext ctx(SystemClock(), deadline, stop, item.attempt);
    out = child(in, ctx);
    if (stop.stop_requested()) return std::nullopt;
    // Cooperative timeouts, as a local run: an item that returned late timed out.
    if (SystemClock().Now() > deadline) {
      out.clear();
      EncodeResult(Result<std::monostate>(DeadlineExceededError(
                       "item ran past its " + core::FormatDuration(std::chrono::milliseconds(*ms)) +
                       " timeout")),
                   out);
    }
    return out;
  };
  std::stop_source never;
  report.exit_code = queue::RunWorker(wo, {.graceful = options.stop, .force = never.get_token()});
  report.items = stats.items;
  report.claims = stats.claims;
  report.claim_p50 = stats.claim.Percentile(0.50);
  report.claim_p99 = stats.claim.Percentile(0.99);
  return report;
}

}  // namespace forklift::detail
