// The engine under run_batch(): feeds jobs through a bounded window, runs attempts on the
// executor (in-process or through the worker-process pool), parks retries in a delay
// queue, and hands outcomes to the outcome handler on the calling thread after recording them.
#include "forklift/detail/batch_engine.h"

#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <vector>

#include "batch/batch_options.h"
#include "core/delay_queue.h"
#include "core/format_duration.h"
#include "core/latency_histogram.h"
#include "core/progress_reporter.h"
#include "forklift/batch.h"
#include "forklift/executor.h"
#include "journal/journal.h"
#include "process/worker_pool.h"

namespace forklift::detail {
namespace {

size_t NextPowerOfTwo(size_t n) {
  size_t p = 2;
  while (p < n) p <<= 1;
  return p;
}

class Engine {
 public:
  Engine(const BatchOptions& options, uint64_t total, JobFeed& feed, OutcomeHandler& on_outcome,
         const EngineHooks& hooks)
      : options_(options),
        total_(total),
        feed_(feed),
        on_outcome_(on_outcome),
        hooks_(hooks),
        clock_(options.clock ? *options.clock : SystemClock()),
        window_(batch::EffectiveWindow(options)) {}

  // Normally everything is already drained by Run(); after an exception from the outcome
  // handler or the feed, this stops the workers before the state they use goes away.
  ~Engine() {
    stop_.request_stop();
    delays_.reset();
    if (executor_) executor_->Shutdown();
    for (BatchJob* job : done_) delete job;
    for (BatchJob* job : collected_) delete job;
    for (auto& [index, job] : reorder_) delete job;
  }

  Result<Summary> Run();

 private:
  Status Start();
  void Attempt(BatchJob* job);
  Status AttemptInProcess(BatchJob* job, TimePoint deadline);
  Status AttemptInWorker(BatchJob* job, TimePoint deadline);
  void AttemptRemote(BatchJob* job);
  // After an attempt: retry it after a backoff, or finish the job.
  void Conclude(BatchJob* job);
  void Finish(BatchJob* job);
  void Feed();
  void Collect(std::vector<BatchJob*>& done);
  Status Record(const std::vector<BatchJob*>& done);
  void Deliver(BatchJob* job);
  void DeliverOrPark(BatchJob* job);
  void FlushOrdered();
  Result<bool> AlreadyDone(const std::string& key);
  // The outcome callback or on_progress returned an error: the batch stops, and Run()
  // returns the first such error.
  void CallbackFailed(Error e);
  std::string TimeoutText() const {
    return options_.timeout ? core::FormatDuration(*options_.timeout) : std::string("no");
  }

  const BatchOptions& options_;
  const uint64_t total_;
  JobFeed& feed_;
  OutcomeHandler& on_outcome_;
  const EngineHooks& hooks_;
  Clock& clock_;
  const size_t window_;

  std::stop_source stop_;
  std::optional<std::stop_callback<std::function<void()>>> stop_link_;
  std::unique_ptr<journal::Journal> journal_;
  std::unique_ptr<process::WorkerPool> pool_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<core::DelayQueue> delays_;
  std::vector<std::mt19937_64> rngs_;  // one per worker: jitter without a shared lock
  std::mutex rng_mu_;                  // the last one's, for attempts that end remotely

  std::mutex done_mu_;
  std::condition_variable done_cv_;
  std::vector<BatchJob*> done_;

  std::vector<BatchJob*> collected_;  // taken from done_, being recorded and handed out
  uint64_t in_flight_ = 0;
  // options.ordered: finished (or skipped: nullptr) jobs waiting for their predecessors.
  std::map<uint64_t, BatchJob*> reorder_;
  uint64_t next_to_deliver_ = 0;
  bool feed_done_ = false;
  std::optional<Error> journal_error_;
  std::optional<Error> callback_error_;  // from the outcome handler or on_progress; stops the batch
  std::atomic<uint64_t> retries_{0};
  Summary summary_;
  core::LatencyHistogram latency_;
  core::ProgressReporter* progress_ = nullptr;  // lives in Run()
};

Status Engine::Start() {
  FORKLIFT_RETURN_IF_ERROR(batch::ValidateBatchOptions(options_, hooks_));
  if (!options_.batch_id.empty()) {
    std::string path = journal::ResolveJournalPath(options_.journal_path);
    auto j = journal::Journal::Open(path);
    if (!j) {
      return InvalidArgumentError("BatchOptions.journal_path: " + j.error().message);
    }
    journal_ = std::move(*j);
    FORKLIFT_RETURN_IF_ERROR(
        journal_->BeginRun(options_.batch_id, options_.run_kind,
                           options_.run_name.empty() ? options_.batch_id : options_.run_name));
  }
  // Fork the worker processes before this call starts any thread of its own.
  if (options_.isolation == Isolation::kProcess) {
    ChildFn child = hooks_.child_fn;
    auto pool = process::WorkerPool::Start(
        {.workers = options_.workers},
        [child](std::string_view request, TimePoint deadline) -> std::string {
          int32_t attempt = 1;
          std::memcpy(&attempt, request.data(), sizeof attempt);
          ItemContext ctx(SystemClock(), deadline, std::stop_token(), attempt);
          return child(request.substr(sizeof attempt), ctx);
        });
    if (!pool) return tl::unexpected(pool.error());
    pool_ = std::move(*pool);
  }
  std::random_device rd;
  for (size_t i = 0; i < options_.workers; ++i) {
    rngs_.emplace_back(options_.seed ? options_.seed + i : (uint64_t{rd()} << 32 | rd()));
  }
  if (options_.stop.stop_possible()) {
    stop_link_.emplace(options_.stop, std::function<void()>([this] { stop_.request_stop(); }));
  }
  delays_ = std::make_unique<core::DelayQueue>(clock_);
  // Room for the whole window, so Submit never blocks the feeding thread.
  FORKLIFT_ASSIGN_OR_RETURN(
      executor_, Executor::Create(
                     {.workers = options_.workers, .queue_capacity = NextPowerOfTwo(window_ + 1)}));
  return OkStatus();
}

Status Engine::AttemptInProcess(BatchJob* job, TimePoint deadline) {
  ItemContext ctx(clock_, deadline, stop_.get_token(), job->engine.attempts);
  Status s;
  try {
    s = job->Run(ctx);
  } catch (const std::exception& e) {
    s = InternalError(std::string("item threw: ") + e.what());
    job->SetError(s.error());
  } catch (...) {
    s = InternalError("item threw a non-standard exception");
    job->SetError(s.error());
  }
  // Cooperative timeouts: an item that returned after its deadline timed out, whatever it
  // returned, so thread and process isolation report the same outcome.
  if (clock_.Now() > deadline && (s || s.error().code != ErrorCode::kDeadlineExceeded)) {
    s = DeadlineExceededError("item ran past its " + TimeoutText() + " timeout");
    job->SetError(s.error());
  }
  return s;
}

Status Engine::AttemptInWorker(BatchJob* job, TimePoint deadline) {
  std::string& request = job->engine.request;
  if (request.empty()) {
    auto bytes = job->EncodeItem();
    if (!bytes) {
      job->SetError(bytes.error());
      return tl::unexpected(bytes.error());
    }
    request.resize(sizeof(int32_t));
    request += *bytes;
  }
  auto attempt = static_cast<int32_t>(job->engine.attempts);
  std::memcpy(request.data(), &attempt, sizeof attempt);
  int slot = Executor::CurrentWorkerIndex();
  auto response = pool_->Call(static_cast<size_t>(slot), request, deadline, stop_.get_token());
  if (!response) {
    Error e = response.error();
    if (e.code == ErrorCode::kDeadlineExceeded) {
      e.message = "item ran past its " + TimeoutText() + " timeout; its worker process was killed";
    }
    job->SetError(e);
    return tl::unexpected(e);
  }
  return job->AcceptEncodedResult(*response);
}

void Engine::Attempt(BatchJob* job) {
  auto& st = job->engine;
  if (stop_.stop_requested()) {
    // Not an attempt: an item that never started keeps attempts == 0, which is how the
    // journal and the sinks tell "never ran" from "cancelled while running".
    st.status =
        CancelledError(st.attempts == 0 ? "batch cancelled before the item ran"
                                        : "batch cancelled during the item's retry backoff");
    job->SetError(st.status.error());
    Finish(job);
    return;
  }
  ++st.attempts;
  TimePoint start = clock_.Now();
  if (st.attempts == 1) st.first_start = start;
  if (hooks_.remote) {
    AttemptRemote(job);
    return;
  }
  // Process isolation enforces deadlines with real time, whatever clock the batch uses.
  // No timeout: no deadline at all (not a far one), so nothing can ever time out.
  TimePoint deadline = options_.timeout ? (pool_ ? SystemClock().Now() : start) + *options_.timeout
                                        : TimePoint::max();
  st.status = pool_ ? AttemptInWorker(job, deadline) : AttemptInProcess(job, deadline);
  Conclude(job);
}

void Engine::AttemptRemote(BatchJob* job) {
  if (job->engine.request.empty()) {
    auto bytes = job->EncodeItem();
    if (!bytes) {
      job->SetError(bytes.error());
      job->engine.status = tl::unexpected(bytes.error());
      Finish(job);
      return;
    }
    job->engine.request = std::move(*bytes);
  }
  hooks_.remote->Submit(job->index, job->engine.attempts, job->engine.request, options_.timeout,
                        [this, job](Result<std::string> r) {
                          if (!r) {
                            job->SetError(r.error());
                            job->engine.status = tl::unexpected(r.error());
                          } else {
                            job->engine.status = job->AcceptEncodedResult(*r);
                          }
                          Conclude(job);
                        });
}

void Engine::Conclude(BatchJob* job) {
  auto& st = job->engine;
  if (!st.status && !stop_.stop_requested() &&
      ShouldRetry(st.status.error(), st.attempts, options_.retry)) {
    // Remote attempts end on a thread of the queue's: the jitter takes the last worker's
    // generator under a lock there (one thread calls back, so it is never contended).
    int worker = Executor::CurrentWorkerIndex();
    std::unique_lock<std::mutex> rng_lock(rng_mu_, std::defer_lock);
    if (worker < 0) rng_lock.lock();
    Duration delay =
        BackoffDelay(options_.retry, st.attempts,
                     rngs_[worker >= 0 ? static_cast<size_t>(worker) : rngs_.size() - 1]);
    if (rng_lock.owns_lock()) rng_lock.unlock();
    retries_.fetch_add(1, std::memory_order_relaxed);
    delays_->Add(clock_.Now() + delay, [this, job] {
      if (!executor_->Submit([this, job] { Attempt(job); })) {
        job->engine.status = CancelledError("batch shut down during a retry backoff");
        job->SetError(job->engine.status.error());
        Finish(job);
      }
    });
    return;
  }
  Finish(job);
}

void Engine::Finish(BatchJob* job) {
  {
    std::lock_guard lock(done_mu_);
    done_.push_back(job);
  }
  done_cv_.notify_one();
}

void Engine::Feed() {
  while (!feed_done_ && in_flight_ < window_ && !stop_.stop_requested()) {
    std::unique_ptr<BatchJob> job = feed_();
    if (!job) {
      feed_done_ = true;
      break;
    }
    if (journal_) {
      auto key = job->Key();
      if (!key) {  // validated up front; cannot happen for keyed types
        journal_error_ = key.error();
        stop_.request_stop();
        return;
      }
      job->engine.key = std::move(*key);
      auto done = AlreadyDone(job->engine.key);
      if (!done) {
        journal_error_ = done.error();
        stop_.request_stop();
        return;
      }
      if (*done) {
        ++summary_.skipped;
        if (options_.ordered) reorder_.emplace(job->index, nullptr);
        continue;
      }
    }
    BatchJob* raw = job.release();
    ++in_flight_;
    if (!executor_->Submit([this, raw] { Attempt(raw); })) {
      raw->engine.status = CancelledError("executor shut down");
      raw->SetError(raw->engine.status.error());
      Finish(raw);
    }
  }
}

// Whether a rerun skips this item, per options.resume.
Result<bool> Engine::AlreadyDone(const std::string& key) {
  if (options_.resume == BatchOptions::Resume::kNone) return false;
  FORKLIFT_ASSIGN_OR_RETURN(journal::ItemState state,
                            journal_->GetItemState(options_.batch_id, key));
  if (state == journal::ItemState::kSucceeded) return true;
  // Cancelled (interrupted) items did not finish: no resume skips them.
  return state == journal::ItemState::kFailed && options_.resume == BatchOptions::Resume::kFinished;
}

void Engine::Collect(std::vector<BatchJob*>& done) {
  std::unique_lock lock(done_mu_);
  done_cv_.wait(lock, [&] { return !done_.empty(); });
  done.swap(done_);
}

Status Engine::Record(const std::vector<BatchJob*>& done) {
  std::vector<journal::ItemRecord> records;
  records.reserve(done.size());
  for (BatchJob* job : done) {
    const auto& st = job->engine;
    // An item that never started is not recorded: what is not recorded runs on resume.
    if (st.attempts == 0) continue;
    journal::ItemRecord r;
    r.key = st.key;
    r.ok = st.status.has_value();
    if (!r.ok) {
      r.code = st.status.error().code;
      r.message = st.status.error().message;
      // Interrupted, not failed: it did not finish on its own, so no resume skips it.
      r.cancelled = r.code == ErrorCode::kCancelled;
    }
    r.attempts = st.attempts;
    r.elapsed_us =
        std::chrono::duration_cast<std::chrono::microseconds>(clock_.Now() - st.first_start)
            .count();
    records.push_back(std::move(r));
  }
  return journal_->RecordItems(options_.batch_id, records);
}

void Engine::CallbackFailed(Error e) {
  if (!callback_error_) callback_error_ = std::move(e);
  stop_.request_stop();
}

// An outcome is ready: delivered now, or parked until its predecessors are (ordered).
void Engine::DeliverOrPark(BatchJob* job) {
  if (!options_.ordered) {
    --in_flight_;
    Deliver(job);
    return;
  }
  reorder_.emplace(job->index, job);
}

void Engine::FlushOrdered() {
  while (!reorder_.empty() && reorder_.begin()->first == next_to_deliver_) {
    BatchJob* job = reorder_.begin()->second;
    reorder_.erase(reorder_.begin());
    ++next_to_deliver_;
    if (job) {
      --in_flight_;
      Deliver(job);
    }
  }
}

void Engine::Deliver(BatchJob* raw) {
  std::unique_ptr<BatchJob> job(raw);
  const auto& st = job->engine;
  // After the outcome handler or on_progress failed, nothing more reaches them.
  if (callback_error_) return;
  if (st.attempts == 0) {  // the stop came before it started
    ++summary_.not_run;
    if (auto s = on_outcome_(std::move(job), JobOutcome{0, Duration::zero()}); !s) {
      CallbackFailed(std::move(s).error());
    }
    return;
  }
  Duration elapsed = clock_.Now() - st.first_start;
  latency_.Record(elapsed);
  ++summary_.processed;
  if (st.status) {
    ++summary_.succeeded;
  } else if (st.status.error().code == ErrorCode::kCancelled) {
    ++summary_.interrupted;
  } else {
    ++summary_.failed;
    if (st.status.error().code == ErrorCode::kDeadlineExceeded) ++summary_.timed_out;
  }
  bool failed = !st.status.has_value();
  int attempts = st.attempts;
  if (auto s = on_outcome_(std::move(job), JobOutcome{attempts, elapsed}); !s) {
    CallbackFailed(std::move(s).error());
    return;
  }
  progress_->OnOutcome(failed);
}

Result<Summary> Engine::Run() {
  FORKLIFT_RETURN_IF_ERROR(Start());
  core::ProgressReporter progress(
      {.display = options_.display,
       .interval = options_.progress_interval,
       .total = total_,
       .label = options_.batch_id.empty() ? "forklift" : "forklift " + options_.batch_id,
       .callback = options_.on_progress
                       ? std::function<void(const Progress&)>([this](const Progress& p) {
                           if (callback_error_) return;
                           if (auto s = options_.on_progress(p); !s) {
                             CallbackFailed(std::move(s).error());
                           }
                         })
                       : nullptr},
      clock_);
  progress_ = &progress;
  TimePoint start = clock_.Now();
  for (;;) {
    Feed();
    FlushOrdered();
    if (in_flight_ == 0) break;
    if (stop_.stop_requested()) {
      delays_->RunAllNow();
      if (hooks_.remote) hooks_.remote->CancelAll();
    }
    Collect(collected_);
    // Group commit: everything that finished while we were busy lands in one transaction,
    // and the handler sees an outcome only once it is durable. Once the handler failed, what
    // finishes is neither recorded nor delivered, so a rerun runs it.
    if (journal_ && !journal_error_ && !callback_error_) {
      if (auto s = Record(collected_); !s) {
        journal_error_ = s.error();
        stop_.request_stop();
      }
    }
    for (BatchJob*& job : collected_) {
      BatchJob* handed = std::exchange(job, nullptr);  // owned by DeliverOrPark from here on
      DeliverOrPark(handed);
    }
    collected_.clear();
    FlushOrdered();
  }
  executor_->Shutdown();
  delays_.reset();
  progress.Finish();

  summary_.retried = retries_.load();
  summary_.cancelled = stop_.stop_requested() && !journal_error_ && !callback_error_;
  summary_.wall = clock_.Now() - start;
  double secs = std::chrono::duration<double>(summary_.wall).count();
  summary_.items_per_second = secs > 0 ? static_cast<double>(summary_.processed) / secs : 0;
  summary_.latency_p50 = latency_.Percentile(0.50);
  summary_.latency_p95 = latency_.Percentile(0.95);
  summary_.latency_max = latency_.Max();
  if (journal_) {
    const journal::RunStatus status = summary_.cancelled ? journal::RunStatus::kCancelled
                                      : summary_.failed || journal_error_ || callback_error_
                                          ? journal::RunStatus::kFailed
                                          : journal::RunStatus::kSucceeded;
    auto s = journal_->FinishRun(options_.batch_id, status, summary_.ToJson());
    if (!journal_error_ && !callback_error_ && !s) journal_error_ = s.error();
  }
  if (journal_error_) {
    return MakeError(journal_error_->code,
                     "journal write failed; outcomes after the last commit will rerun: " +
                         journal_error_->message);
  }
  if (callback_error_) return tl::unexpected(*callback_error_);
  return summary_;
}

}  // namespace

Result<Summary> RunBatchEngine(const BatchOptions& options, uint64_t total, JobFeed& feed,
                               OutcomeHandler& on_outcome, const EngineHooks& hooks) {
  Engine engine(options, total, feed, on_outcome, hooks);
  return engine.Run();
}

}  // namespace forklift::detail
