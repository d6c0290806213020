#include "forklift/clock.h"

#include <thread>

namespace forklift {
namespace {

class SteadyClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  bool SleepUntil(TimePoint t, const std::stop_token& stop) override {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    // wait_until with a stop_token wakes on stop requests without polling.
    cv.wait_until(lock, stop, t, [] { return false; });
    return !stop.stop_requested();
  }
};

}  // namespace

Clock& SystemClock() {
  static SteadyClock clock;
  return clock;
}

TimePoint FakeClock::Now() const {
  std::lock_guard lock(mu_);
  return now_;
}

bool FakeClock::SleepUntil(TimePoint t, const std::stop_token& stop) {
  std::unique_lock lock(mu_);
  ++sleepers_;
  ++sleep_calls_;
  cv_.notify_all();
  bool reached = cv_.wait(lock, stop, [&] { return now_ >= t; });
  --sleepers_;
  return reached;
}

void FakeClock::Advance(Duration d) {
  std::lock_guard lock(mu_);
  now_ += d;
  cv_.notify_all();
}

int FakeClock::sleepers() const {
  std::lock_guard lock(mu_);
  return sleepers_;
}

void FakeClock::WaitForSleepers(int n) const {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return sleepers_ >= n; });
}

void FakeClock::WaitForSleepCalls(int64_t n) const {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return sleep_calls_ >= n; });
}

}  // namespace forklift
