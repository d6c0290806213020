// Time behind a seam: the engine reads time and sleeps only through a Clock, so tests
// drive deadlines and retry backoff with a FakeClock instead of sleeping.
#ifndef FORKLIFT_CLOCK_H_
#define FORKLIFT_CLOCK_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stop_token>

namespace forklift {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::steady_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  // Thread-safe.
  virtual TimePoint Now() const = 0;
  // Blocks until Now() >= t or `stop` is requested. Returns true when the time was
  // reached, false when stopped first. Thread-safe.
  virtual bool SleepUntil(TimePoint t, const std::stop_token& stop) = 0;
};

// The process-wide steady clock. Never null; lives for the whole program.
Clock& SystemClock();

// A clock that moves only when told to. Sleepers wake when Advance() passes their time.
// Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start = TimePoint{} + std::chrono::hours(1)) : now_(start) {}

  TimePoint Now() const override;
  bool SleepUntil(TimePoint t, const std::stop_token& stop) override;

  void Advance(Duration d);
  // Number of threads blocked in SleepUntil right now; lets a test wait until the code
  // under test has gone to sleep before advancing time.
  int sleepers() const;
  // Blocks until at least n threads are sleeping.
  void WaitForSleepers(int n) const;
  // Blocks until SleepUntil has been entered at least n times in all, since construction.
  // Unlike WaitForSleepers, a sleeper that Advance() woke but that has not left yet does
  // not count twice: a test stepping through successive backoffs waits for call k, then
  // advances.
  void WaitForSleepCalls(int64_t n) const;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable_any cv_;
  TimePoint now_;
  int sleepers_ = 0;
  int64_t sleep_calls_ = 0;
};

}  // namespace forklift

#endif  // FORKLIFT_CLOCK_H_
