#include "queue/queue_coordinator.h"

#include <fmt/format.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "queue/queue_job.h"

namespace forklift::queue {
namespace {

using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Waiter {
  QueueItem item;
  int64_t id = 0;
  std::optional<ItemOutcome> outcome;
  bool abandoned = false;
  QueueCoordinator::Done done;  // Submit's: called instead of waking a Run()
  // Run()'s own wakeup (under State::mu): one waiter woken per outcome, not every Run()
  // in flight (with -j 256, a broadcast per poll cost more CPU than the jobs).
  std::condition_variable cv;
};

}  // namespace

struct QueueCoordinator::State {
  CoordinatorOptions o;
  std::unique_ptr<QueueStore> store;
  int64_t run_id = 0;
  std::mutex mu;
  std::condition_variable pump_cv;
  std::deque<std::shared_ptr<Waiter>> to_enqueue;
  std::unordered_map<int64_t, std::shared_ptr<Waiter>> waiting;
  bool stopping = false;
  bool finished = false;
  std::thread pump;

  void Say(const std::string& text) const {
    std::string line = fmt::format("{}: {}\n", o.label, text);
    (void)!::write(o.stderr_fd, line.data(), line.size());
  }
  bool Reconnect(bool& said_down);
  void Pump();
};

bool QueueCoordinator::State::Reconnect(bool& said_down) {
  if (store && store->connection().ok()) return true;
  store.reset();
  auto s = QueueStore::Open(o.dsn, o.schema);
  Result<int64_t> id = s ? (*s)->OpenRun(o.run, /*adopt=*/true) : tl::unexpected(s.error());
  if (!id) {
    if (!said_down) Say(fmt::format("cannot reach the queue: {} (retrying)", id.error().message));
    said_down = true;
    return false;
  }
  if (said_down) Say("reconnected to the queue");
  said_down = false;
  store = std::move(*s);
  run_id = *id;
  return true;
}

void QueueCoordinator::State::Pump() {
  bool said_down = false;
  bool said_no_worker = false;
  auto next_worker_check = Steady::now() + std::chrono::seconds(2);
  Duration poll = milliseconds(1);
  std::unique_lock lock(mu);
  for (;;) {
    pump_cv.wait_for(lock, waiting.empty() ? Duration(milliseconds(200)) : poll,
                     [&] { return stopping || !to_enqueue.empty(); });
    if (stopping) return;
    if (!to_enqueue.empty() && to_enqueue.size() < o.slice_items) {
      // Let a burst of submissions gather into one slice.
      pump_cv.wait_for(lock, milliseconds(2),
                       [&] { return stopping || to_enqueue.size() >= o.slice_items; });
    }
    std::vector<std::shared_ptr<Waiter>> batch;
    while (!to_enqueue.empty() && batch.size() < o.slice_items) {
      if (!to_enqueue.front()->abandoned) batch.push_back(to_enqueue.front());
      to_enqueue.pop_front();
    }
    std::vector<int64_t> ids;
    for (const auto& [id, w] : waiting) ids.push_back(id);
    lock.unlock();
    bool ok = Reconnect(said_down);
    std::optional<std::vector<int64_t>> enqueued;
    if (ok && !batch.empty()) {
      std::vector<QueueItem> items;
      for (const auto& w : batch) items.push_back(w->item);
      auto r = store->Enqueue(run_id, items);
      if (r) {
        enqueued = std::move(*r);
      } else {
        ok = false;
      }
    }
    std::optional<std::vector<ItemOutcome>> outcomes;
    if (ok && !ids.empty()) {
      auto r = store->Outcomes(run_id, ids);
      if (r) {
        outcomes = std::move(*r);
      } else {
        ok = false;
      }
    }
    if (ok && Steady::now() >= next_worker_check) {
      next_worker_check = Steady::now() + std::chrono::seconds(2);
      if (auto live = store->LiveWorkers(std::chrono::seconds(30));
          live && (!ids.empty() || enqueued)) {
        if (*live == 0 && !said_no_worker) {
          Say(
              fmt::format("no worker is attached to the queue {} (schema {}): jobs wait until one "
                          "runs 'forklift worker --queue DSN'",
                          o.dsn.Masked(), o.schema));
          said_no_worker = true;
        } else if (*live > 0 && said_no_worker) {
          Say(fmt::format("{} worker(s) attached", *live));
          said_no_worker = false;
        }
      }
    }
    if (!ok) store.reset();
    lock.lock();
    if (enqueued) {
      for (size_t i = 0; i < batch.size(); ++i) {
        batch[i]->id = (*enqueued)[i];
        waiting[batch[i]->id] = batch[i];
      }
    } else {
      // Not enqueued (connection lost): first in line again, in order.
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) to_enqueue.push_front(*it);
    }
    bool any = false;
    std::vector<std::pair<QueueCoordinator::Done, ItemOutcome>> calls;
    if (outcomes) {
      for (auto& oc : *outcomes) {
        auto it = waiting.find(oc.item_id);
        if (it == waiting.end()) continue;
        if (it->second->done) {
          calls.emplace_back(std::move(it->second->done), std::move(oc));
        } else {
          it->second->outcome = std::move(oc);
          it->second->cv.notify_one();
          any = true;
        }
        waiting.erase(it);
      }
    }
    if (!calls.empty()) {
      lock.unlock();
      for (auto& [done, oc] : calls) done(std::move(oc));
      lock.lock();
      any = true;
    }
    for (auto it = waiting.begin(); it != waiting.end();) {
      it = it->second->abandoned ? waiting.erase(it) : std::next(it);
    }
    // Poll fast while outcomes come in, back off to 20 ms while none do.
    poll = any ? Duration(milliseconds(1)) : std::min<Duration>(poll * 2, milliseconds(20));
    if (!ok) {
      lock.unlock();
      std::this_thread::sleep_for(milliseconds(500));
      lock.lock();
    }
  }
}

QueueCoordinator::QueueCoordinator(std::unique_ptr<State> state) : state_(std::move(state)) {}

Result<std::unique_ptr<QueueCoordinator>> QueueCoordinator::Start(const CoordinatorOptions& o) {
  auto state = std::make_unique<State>();
  state->o = o;
  if (state->o.slice_items == 0) state->o.slice_items = 1;
  FORKLIFT_ASSIGN_OR_RETURN(state->store, QueueStore::Open(o.dsn, o.schema));
  FORKLIFT_ASSIGN_OR_RETURN(state->run_id, state->store->OpenRun(o.run, o.adopt));
  State* s = state.get();
  state->pump = std::thread([s] { s->Pump(); });
  return std::unique_ptr<QueueCoordinator>(new QueueCoordinator(std::move(state)));
}

QueueCoordinator::~QueueCoordinator() { Finish(); }

Result<process::Completion> QueueCoordinator::Run(const std::string& key, int attempt,
                                                  const process::SpawnOptions& spawn,
                                                  const std::stop_token& stop) {
  State& s = *state_;
  auto w = std::make_shared<Waiter>();
  w->item = {.key = key, .attempt = attempt, .payload = EncodeJob(spawn)};
  // Before the lock: a callback whose token is already stopped runs right here.
  std::stop_callback wake(stop, [&s, &w] {
    std::lock_guard l(s.mu);
    w->cv.notify_all();
  });
  std::unique_lock lock(s.mu);
  if (s.finished) return CancelledError("the queue run is over");
  s.to_enqueue.push_back(w);
  s.pump_cv.notify_one();
  w->cv.wait(lock, [&] { return w->outcome || stop.stop_requested() || s.finished; });
  if (!w->outcome) {
    w->abandoned = true;
    process::Completion c;
    c.cancelled = true;
    c.start = std::chrono::system_clock::now();
    return c;
  }
  ItemOutcome oc = std::move(*w->outcome);
  lock.unlock();
  if (oc.status == OutcomeStatus::kDead) return InternalError(oc.result);
  FORKLIFT_ASSIGN_OR_RETURN(process::Completion c, DecodeCompletion(oc.result));
  // The job's output, as the mode the coordinator's run asked for would have passed it.
  for (auto [stream, mode, buffer] :
       {std::tuple{process::Stream::kStdout, spawn.stdout_mode, &c.stdout_output},
        std::tuple{process::Stream::kStderr, spawn.stderr_mode, &c.stderr_output}}) {
    if (mode == process::OutputMode::kCapture) continue;
    FORKLIFT_ASSIGN_OR_RETURN(std::string text, buffer->ReadAll());
    if (mode == process::OutputMode::kCallback && spawn.on_output && !text.empty()) {
      spawn.on_output(stream, text);
    } else if (mode == process::OutputMode::kInherit) {
      (void)buffer->WriteTo(stream == process::Stream::kStdout ? 1 : 2);
    }
    *buffer = process::OutputBuffer();
  }
  return c;
}

void QueueCoordinator::Submit(QueueItem item, Done done) {
  State& s = *state_;
  auto w = std::make_shared<Waiter>();
  w->item = std::move(item);
  {
    std::lock_guard lock(s.mu);
    if (!s.finished) {
      w->done = std::move(done);
      s.to_enqueue.push_back(std::move(w));
      s.pump_cv.notify_one();
      return;
    }
  }
  done(CancelledError("the queue run is over"));
}

void QueueCoordinator::CancelAll() {
  State& s = *state_;
  std::vector<Done> calls;
  {
    std::lock_guard lock(s.mu);
    for (auto& w : s.to_enqueue) {
      if (w->done) {
        calls.push_back(std::move(w->done));
        w->done = nullptr;
        w->abandoned = true;
      }
    }
    for (auto& [id, w] : s.waiting) {
      if (w->done) {
        calls.push_back(std::move(w->done));
        w->done = nullptr;
        w->abandoned = true;
      }
    }
  }
  for (auto& done : calls) done(CancelledError("batch cancelled while the item was in the queue"));
}

void QueueCoordinator::Finish() {
  State& s = *state_;
  {
    std::lock_guard lock(s.mu);
    if (s.finished) return;
    s.finished = true;
    s.stopping = true;
    for (auto& w : s.to_enqueue) w->cv.notify_all();
    for (auto& [id, w] : s.waiting) w->cv.notify_all();
    s.pump_cv.notify_all();
  }
  if (s.pump.joinable()) s.pump.join();
  {
    // Waiters the pump held while it was between locks are in these now.
    std::lock_guard lock(s.mu);
    for (auto& w : s.to_enqueue) w->cv.notify_all();
    for (auto& [id, w] : s.waiting) w->cv.notify_all();
  }
  CancelAll();
  bool said = true;
  if (!s.Reconnect(said)) return;
  // Cancel first: a worker still running a job of the run kills it at its next heartbeat
  // (its lease is no longer renewed, and the drop takes the rows away).
  (void)s.store->CancelRun(s.run_id);
  if (auto d = s.store->DropRun(s.run_id); !d) {
    s.Say(fmt::format("could not drop run {} from the queue: {}", s.o.run.name, d.error().message));
  }
}

}  // namespace forklift::queue
