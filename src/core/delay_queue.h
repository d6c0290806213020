// Runs callbacks at a time on a Clock, from one thread of its own. The engine parks items
// waiting out a retry backoff here, so a sleeping retry holds no worker.
// Thread safety: Add() and RunAllNow() from any thread.
#ifndef FORKLIFT_CORE_DELAY_QUEUE_H_
#define FORKLIFT_CORE_DELAY_QUEUE_H_

#include <functional>
#include <map>
#include <mutex>
#include <stop_token>
#include <thread>

#include "forklift/clock.h"

namespace forklift::core {

class DelayQueue {
 public:
  explicit DelayQueue(Clock& clock);
  // Runs whatever is still pending immediately, then joins the thread.
  ~DelayQueue();
  DelayQueue(const DelayQueue&) = delete;
  DelayQueue& operator=(const DelayQueue&) = delete;

  // Calls fn() on the queue's thread once clock.Now() >= due (in due order).
  void Add(TimePoint due, std::function<void()> fn);
  // From now on every pending and future callback runs without waiting (cancellation).
  void RunAllNow();
  size_t pending() const;

 private:
  void Loop();

  Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::multimap<TimePoint, std::function<void()>> entries_;
  std::stop_source wake_;  // interrupts the current timed sleep
  TimePoint sleeping_until_ = TimePoint::max();
  bool run_all_now_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace forklift::core

#endif  // FORKLIFT_CORE_DELAY_QUEUE_H_
