#include "core/delay_queue.h"

#include <vector>

namespace forklift::core {

DelayQueue::DelayQueue(Clock& clock) : clock_(clock), thread_([this] { Loop(); }) {}

DelayQueue::~DelayQueue() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    run_all_now_ = true;
    wake_.request_stop();
  }
  cv_.notify_all();
  thread_.join();
}

void DelayQueue::Add(TimePoint due, std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    entries_.emplace(due, std::move(fn));
    if (due < sleeping_until_) wake_.request_stop();
  }
  cv_.notify_all();
}

void DelayQueue::RunAllNow() {
  {
    std::lock_guard lock(mu_);
    run_all_now_ = true;
    wake_.request_stop();
  }
  cv_.notify_all();
}

size_t DelayQueue::pending() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

void DelayQueue::Loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !entries_.empty(); });
    if (entries_.empty()) return;  // stopping with nothing left
    std::vector<std::function<void()>> ready;
    TimePoint now = clock_.Now();
    while (!entries_.empty() && (run_all_now_ || entries_.begin()->first <= now)) {
      ready.push_back(std::move(entries_.begin()->second));
      entries_.erase(entries_.begin());
    }
    if (!ready.empty()) {
      lock.unlock();
      for (auto& fn : ready) fn();
      lock.lock();
      continue;
    }
    // Sleep until the earliest entry, or until Add()/RunAllNow() brings something sooner.
    TimePoint due = entries_.begin()->first;
    wake_ = std::stop_source();
    std::stop_token token = wake_.get_token();
    sleeping_until_ = due;
    lock.unlock();
    clock_.SleepUntil(due, token);
    lock.lock();
    sleeping_until_ = TimePoint::max();
  }
}

}  // namespace forklift::core
