// What an item's function sees of the batch running it: its deadline, cancellation and
// which attempt this is. Checking it is how thread-isolated items honour timeouts.
//
// Thread safety: an ItemContext belongs to one attempt of one item; use it from the thread
// running that attempt.
#ifndef FORKLIFT_ITEM_CONTEXT_H_
#define FORKLIFT_ITEM_CONTEXT_H_

#include <stop_token>

#include "forklift/clock.h"
#include "forklift/result.h"

namespace forklift {

class ItemContext {
 public:
  ItemContext(Clock& clock, TimePoint deadline, std::stop_token stop, int attempt)
      : clock_(&clock), deadline_(deadline), stop_(std::move(stop)), attempt_(attempt) {}

  TimePoint deadline() const { return deadline_; }
  const std::stop_token& stop_token() const { return stop_; }
  // 1 for the first attempt.
  int attempt() const { return attempt_; }
  Clock& clock() const { return *clock_; }

  bool Expired() const { return clock_->Now() >= deadline_; }
  bool Cancelled() const { return stop_.stop_requested(); }
  // Ok while the item may go on; Cancelled or DeadlineExceeded once it should return.
  Status Check() const {
    if (Cancelled()) return CancelledError("batch cancelled");
    if (Expired()) return DeadlineExceededError("item deadline passed");
    return OkStatus();
  }
  // Sleeps until `t`, the deadline or cancellation, whichever is first. Returns Check().
  Status SleepUntil(TimePoint t) const {
    clock_->SleepUntil(t < deadline_ ? t : deadline_, stop_);
    if (clock_->Now() < t) return Check();
    return OkStatus();
  }

 private:
  Clock* clock_;
  TimePoint deadline_;
  std::stop_token stop_;
  int attempt_;
};

}  // namespace forklift

#endif  // FORKLIFT_ITEM_CONTEXT_H_
