#include "queue/queue_worker.h"

#include <fmt/format.h>
#include <sys/random.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "core/format_duration.h"
#include "process/subprocess.h"
#include "queue/queue_job.h"
#include "queue/queue_store.h"

namespace forklift::queue {
namespace {

using Steady = std::chrono::steady_clock;

struct SliceState {
  Lease lease;
  std::stop_source kill;             // its jobs' stop: lost lease or forced stop
  std::atomic<bool> lost{false};     // no write of ours may count any more
  bool ended = false;                // its lease was ended with its last outcomes (dispatcher)
  size_t unreported = 0;             // jobs not yet recorded (guarded by Worker::mu_)
  std::vector<ItemOutcome> pending;  // finished, to record (guarded by Worker::mu_)
  // Steady-clock ns when its lease last started or was renewed (the request's start, so
  // never later than the server's view of it).
  std::atomic<int64_t> renewed_ns{0};
};

struct Task {
  std::shared_ptr<SliceState> slice;
  size_t index = 0;
};

class Worker {
 public:
  Worker(const WorkerOptions& o, const WorkerStops& stops) : o_(o), stops_(stops) {
    if (o_.worker_id.empty()) o_.worker_id = NewWorkerId();
  }
  int Run();

 private:
  void Say(const std::string& text) {
    std::string line = fmt::format("forklift worker: {}\n", text);
    (void)!::write(o_.stderr_fd, line.data(), line.size());
  }
  void Slot();
  void Heartbeat();
  void Fence();
  // Marks a slice lost and kills its jobs. Takes mu_.
  void Lose(const std::shared_ptr<SliceState>& s);
  // Records what finished, claims when `may_claim` and a slot (or the prefetch) is free,
  // in one transaction (QueueStore::Exchange), and ends slices all of whose jobs are
  // recorded. `claimed`: slices came. False when the connection failed.
  bool Flush(bool may_claim, bool& claimed);
  bool Connect(std::unique_ptr<QueueStore>& store, bool& said_down);

  WorkerOptions o_;
  WorkerStops stops_;
  std::unique_ptr<QueueStore> store_;
  std::mutex mu_;
  std::condition_variable wake_;  // the dispatcher: an outcome, a lost slice
  std::condition_variable tasks_cv_;
  std::deque<Task> tasks_;
  std::vector<std::shared_ptr<SliceState>> held_;
  int running_ = 0;
  bool done_ = false;
  bool last_claim_empty_ = false;  // the dispatcher's last Claim found no slice
  std::condition_variable done_cv_;
};

std::string Hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "host";
  return buf;
}

}  // namespace

std::string NewWorkerId() {
  uint64_t r = 0;
  if (::getrandom(&r, sizeof r, 0) != static_cast<ssize_t>(sizeof r)) {
    r = static_cast<uint64_t>(Steady::now().time_since_epoch().count());
  }
  return fmt::format("{}-{}-{:016x}", Hostname(), ::getpid(), r);
}

namespace {

bool Worker::Connect(std::unique_ptr<QueueStore>& store, bool& said_down) {
  if (store && store->connection().ok()) return true;
  store.reset();
  auto s = QueueStore::Open(o_.dsn, o_.schema);
  if (!s) {
    if (!said_down) Say(fmt::format("cannot reach the queue: {} (retrying)", s.error().message));
    said_down = true;
    return false;
  }
  if (said_down) Say("reconnected to the queue");
  said_down = false;
  store = std::move(*s);
  return true;
}

void Worker::Lose(const std::shared_ptr<SliceState>& s) {
  if (!s->lost.exchange(true)) s->kill.request_stop();
  wake_.notify_all();
}

void Worker::Slot() {
  for (;;) {
    Task t;
    {
      std::unique_lock lock(mu_);
      tasks_cv_.wait(lock, [&] { return done_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      t = std::move(tasks_.front());
      tasks_.pop_front();
      ++running_;
    }
    SliceState& s = *t.slice;
    std::optional<ItemOutcome> outcome;
    if (!s.lost && !stops_.force.stop_requested() && o_.run_item) {
      const QueueItem& item = s.lease.items[t.index];
      auto bytes = o_.run_item(item, s.kill.get_token());
      if (bytes && !s.lost && !stops_.force.stop_requested()) {
        outcome = ItemOutcome{.item_id = item.id, .result = std::move(*bytes)};
      }
    } else if (!s.lost && !stops_.force.stop_requested()) {
      const QueueItem& item = s.lease.items[t.index];
      auto spawn = DecodeJob(item.payload);
      process::Completion c;
      if (!spawn) {
        c.exit_code = 255;
        (void)c.stderr_output.Append("forklift worker: " + spawn.error().message + "\n");
      } else {
        spawn->env = o_.job_env;
        spawn->registry = o_.registry;
        auto ran = process::Run(*spawn, s.kill.get_token());
        if (ran) {
          c = std::move(*ran);
        } else {
          // No process could run here (resources): a failure the coordinator may retry.
          c.exit_code = 255;
          (void)c.stderr_output.Append("forklift worker: " + ran.error().message + "\n");
        }
      }
      // A job we killed (lost lease, forced stop) did not finish: no outcome of ours.
      if (!c.cancelled && !s.lost && !stops_.force.stop_requested()) {
        auto bytes = EncodeCompletion(c);
        if (bytes) {
          outcome = ItemOutcome{.item_id = item.id, .result = std::move(*bytes)};
        } else {
          Say(fmt::format("job {}: {}", item.key, bytes.error().message));
        }
      }
    }
    std::lock_guard lock(mu_);
    --running_;
    if (outcome) {
      s.pending.push_back(std::move(*outcome));
    } else {
      --s.unreported;
    }
    // Items of an item function (thousands a second) wake the dispatcher only when a
    // slice is complete or the prefetch runs low; jobs, after each one.
    if (!o_.run_item || s.unreported == s.pending.size() || tasks_.size() <= o_.prefetch) {
      wake_.notify_all();
    }
  }
}

void Worker::Heartbeat() {
  std::unique_ptr<QueueStore> store;
  bool said_down = false;
  const Duration period = o_.lease / 4;
  int round = 0;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (done_cv_.wait_for(lock, period, [&] { return done_; })) return;
    }
    std::vector<std::shared_ptr<SliceState>> held;
    {
      std::lock_guard lock(mu_);
      for (const auto& s : held_)
        if (!s->lost) held.push_back(s);
    }
    if (!Connect(store, said_down)) continue;
    std::vector<Lease> leases;
    for (const auto& s : held)
      leases.push_back({s->lease.run_id, s->lease.slice_id, s->lease.token, {}});
    const int64_t started = Steady::now().time_since_epoch().count();
    auto renewed = store->Renew(o_.worker_id, leases, o_.lease);
    if (!renewed) {
      store.reset();
      continue;
    }
    std::set<int64_t> kept(renewed->begin(), renewed->end());
    for (const auto& s : held) {
      if (kept.count(s->lease.slice_id)) {
        s->renewed_ns.store(started);
      } else {
        std::lock_guard lock(mu_);
        Lose(s);
      }
    }
    // Every worker reaps: there is no daemon to do it, and a Reap is one cheap statement
    // when nothing expired.
    if (++round % 2 == 0) {
      auto reaped = store->Reap();
      if (!reaped) {
        store.reset();
      } else if (reaped->expired > 0) {
        Say(fmt::format("reaped {} expired lease(s) ({} split, {} dead-lettered)", reaped->expired,
                        reaped->split, reaped->dead_lettered));
      }
    }
  }
}

// Not on the heartbeat thread: that one may be stuck in a call to an unreachable server,
// and this must act before the lease ends all the same.
void Worker::Fence() {
  const auto limit = std::chrono::duration_cast<std::chrono::nanoseconds>(o_.lease * 6 / 10);
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (done_cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return done_; })) return;
    }
    const int64_t now = Steady::now().time_since_epoch().count();
    std::lock_guard lock(mu_);
    int killed = 0;
    int64_t oldest = 0;
    for (const auto& s : held_) {
      const int64_t since = now - s->renewed_ns.load();
      if (!s->lost && since >= limit.count()) {
        ++killed;
        oldest = std::max(oldest, since);
        Lose(s);
      }
    }
    if (killed > 0) {
      Say(
          fmt::format("no lease renewal for {}: killing the jobs of {} slice(s) before their "
                      "leases end (another worker takes them over)",
                      core::FormatDuration(Duration(oldest)), killed));
    }
  }
}

bool Worker::Flush(bool may_claim, bool& claimed) {
  claimed = false;
  std::vector<std::pair<std::shared_ptr<SliceState>, std::vector<ItemOutcome>>> batch;
  int free_slots;
  {
    std::lock_guard lock(mu_);
    for (const auto& s : held_) {
      if (!s->pending.empty()) batch.emplace_back(s, std::move(s->pending));
      s->pending.clear();
    }
    free_slots = o_.slots - running_ - static_cast<int>(tasks_.size());
  }
  // One transaction for what finished (every slice's outcomes, each fenced by its own
  // lease; a slice's last ones end it) and the next claim: one commit per round, however
  // many slices are held (the server's WAL flush, not the statements, is what a round costs).
  std::vector<QueueStore::SliceOutcomes> records;
  {
    std::lock_guard lock(mu_);
    for (auto& [s, outcomes] : batch) {
      if (s->lost) continue;
      records.push_back(
          {.lease = &s->lease, .outcomes = outcomes, .finish = s->unreported == outcomes.size()});
    }
  }
  const bool claim = may_claim && free_slots + static_cast<int>(o_.prefetch) > 0;
  if (may_claim) last_claim_empty_ = false;
  std::optional<QueueStore::Exchanged> ex;
  bool claim_failed = false;
  const auto t0 = Steady::now();
  if (!records.empty() || claim) {
    // Jobs (commands): a round's outcomes commit on their own before the claim, so a
    // worker that dies right after (a poison job killing it) has lost as few finished jobs
    // as it can. Items of an item function: one transaction for both (half the commits).
    const bool together = claim && (records.empty() || o_.run_item);
    auto r = store_->Exchange(records, o_.worker_id, together ? std::max(1, o_.claim_slices) : 0,
                              o_.lease, o_.run);
    if (r && claim && !together) {
      auto c = store_->Exchange({}, o_.worker_id, std::max(1, o_.claim_slices), o_.lease, o_.run);
      if (c) {
        r->claimed = std::move(c->claimed);
      } else {
        claim_failed = true;  // the outcomes are recorded: account for them, then reconnect
      }
    }
    if (!r) {
      // Keep them for the next connection: the fence decides then.
      std::lock_guard lock(mu_);
      for (auto& [s, outcomes] : batch)
        for (auto& o : outcomes) s->pending.push_back(std::move(o));
      return false;
    }
    ex = std::move(*r);
  }
  {
    // (Every slice of `records` is in batch; a slice lost before this round is not in
    // records, its outcomes are dropped.)
    std::set<int64_t> held, ending;
    if (ex) held.insert(ex->held.begin(), ex->held.end());
    for (const auto& r : records)
      if (r.finish) ending.insert(r.lease->slice_id);
    std::lock_guard lock(mu_);
    for (auto& [s, outcomes] : batch) {
      if (!s->lost) {
        if (!held.count(s->lease.slice_id)) {
          Lose(s);
        } else if (ending.count(s->lease.slice_id)) {
          s->ended = true;
        }
      }
      s->unreported -= outcomes.size();
      if (o_.stats && !s->lost) o_.stats->items += outcomes.size();
    }
  }
  if (claim_failed) return false;
  if (claim && ex) {
    last_claim_empty_ = ex->claimed.empty();
    if (!ex->claimed.empty() && o_.stats) {
      ++o_.stats->claims;
      o_.stats->claim.Record(Steady::now() - t0);
    }
    const int64_t started = t0.time_since_epoch().count();
    for (Lease& l : ex->claimed) {
      auto s = std::make_shared<SliceState>();
      s->lease = std::move(l);
      s->renewed_ns.store(started);
      s->unreported = s->lease.items.size();
      std::lock_guard lock(mu_);
      held_.push_back(s);
      for (size_t i = 0; i < s->lease.items.size(); ++i) tasks_.push_back({s, i});
    }
    if (!ex->claimed.empty()) {
      claimed = true;
      tasks_cv_.notify_all();
    }
  }
  // Slices with every job recorded end their lease (most ended with their last outcomes
  // above); lost ones leave once nothing of theirs runs (their jobs were killed).
  std::vector<std::shared_ptr<SliceState>> finished;
  {
    std::lock_guard lock(mu_);
    for (const auto& s : held_)
      if (s->unreported == 0 && s->pending.empty()) finished.push_back(s);
  }
  for (const auto& s : finished) {
    if (!s->lost && !s->ended) {
      auto r = store_->FinishSlice(s->lease);
      if (!r) return false;
    }
    std::lock_guard lock(mu_);
    std::erase(held_, s);
  }
  return true;
}

int Worker::Run() {
  auto first = QueueStore::Open(o_.dsn, o_.schema);
  if (!first) {
    Say(fmt::format("--queue {}: {}", o_.dsn.Masked(), first.error().message));
    return 2;
  }
  store_ = std::move(*first);
  if (auto s = store_->RegisterWorker(o_.worker_id, Hostname(), ::getpid(), o_.slots); !s) {
    Say(fmt::format("--queue {}: {}", o_.dsn.Masked(), s.error().message));
    return 2;
  }
  Say(fmt::format("{}: {} slot(s) on {} (schema {}{}{})", o_.worker_id, o_.slots, o_.dsn.Masked(),
                  o_.schema, o_.run.empty() ? "" : ", run ", o_.run));
  std::vector<std::thread> threads;
  for (int i = 0; i < o_.slots; ++i) threads.emplace_back([this] { Slot(); });
  threads.emplace_back([this] { Heartbeat(); });
  threads.emplace_back([this] { Fence(); });
  std::stop_callback on_force(stops_.force, [this] {
    std::lock_guard lock(mu_);
    for (const auto& s : held_) s->kill.request_stop();
    wake_.notify_all();
  });
  std::stop_callback on_graceful(stops_.graceful, [this] { wake_.notify_all(); });

  bool said_down = false;
  auto last_work = Steady::now();
  Duration idle_poll = std::chrono::milliseconds(5);
  for (;;) {
    if (stops_.force.stop_requested()) break;
    bool connected = Connect(store_, said_down);
    bool claimed = false;
    if (connected && !Flush(!stops_.graceful.stop_requested(), claimed)) connected = false;
    if (!connected) store_.reset();
    std::unique_lock lock(mu_);
    bool busy = !held_.empty() || running_ > 0;
    if (busy || claimed) last_work = Steady::now();
    if (stops_.graceful.stop_requested() && !busy) break;
    if (o_.max_idle && !busy && Steady::now() - last_work >= *o_.max_idle) {
      Say(fmt::format("no work for {} (--max-idle): exiting", core::FormatDuration(*o_.max_idle)));
      break;
    }
    if (claimed) {
      idle_poll = std::chrono::milliseconds(5);
      continue;
    }
    // Idle polls back off to 250 ms; an outcome wakes the loop at once.
    bool full =
        running_ + static_cast<int>(tasks_.size()) >= o_.slots + static_cast<int>(o_.prefetch);
    Duration wait = connected ? (full ? std::chrono::milliseconds(250) : idle_poll)
                              : std::chrono::milliseconds(500);
    if (!connected || !full)
      idle_poll = std::min<Duration>(idle_poll * 2, std::chrono::milliseconds(250));
    // Outcomes are recorded a slice at a time, or after at most 20 ms: one commit per
    // finished job would bound the rate by the server's fsync.
    if (busy) wait = std::min<Duration>(wait, std::chrono::milliseconds(20));
    wake_.wait_for(lock, wait, [&] {
      if (!connected) return stops_.force.stop_requested();
      bool slice_done = false;
      for (const auto& s : held_) slice_done = slice_done || s->unreported == s->pending.size();
      // A claim that found nothing waits out the poll, however low the prefetch.
      bool low = o_.prefetch > 0 && !last_claim_empty_ && tasks_.size() < o_.prefetch;
      return slice_done || low || stops_.force.stop_requested() ||
             (stops_.graceful.stop_requested() && held_.empty() && running_ == 0);
    });
  }
  {
    std::lock_guard lock(mu_);
    done_ = true;
    tasks_.clear();
  }
  tasks_cv_.notify_all();
  done_cv_.notify_all();
  for (auto& t : threads) t.join();
  bool forced = stops_.force.stop_requested();
  if (store_ && store_->connection().ok()) {
    std::vector<Lease> back;
    for (const auto& s : held_)
      if (!s->lost) back.push_back({s->lease.run_id, s->lease.slice_id, s->lease.token, {}});
    if (!back.empty()) (void)store_->Release(back);
    (void)store_->UnregisterWorker(o_.worker_id);
  }
  return forced ? 1 : 0;
}

}  // namespace

int RunWorker(const WorkerOptions& options, const WorkerStops& stops) {
  Worker w(options, stops);
  return w.Run();
}

}  // namespace forklift::queue
