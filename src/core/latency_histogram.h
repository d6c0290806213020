// Fixed-size log-linear histogram of durations (HdrHistogram's idea, 2 KiB of counters):
// percentiles over any number of items in constant memory, within 1/64 of the true value.
// Thread safety: none; one owner records and reads.
#ifndef FORKLIFT_CORE_LATENCY_HISTOGRAM_H_
#define FORKLIFT_CORE_LATENCY_HISTOGRAM_H_

#include <array>
#include <cstdint>

#include "forklift/clock.h"

namespace forklift::core {

class LatencyHistogram {
 public:
  void Record(Duration d);
  // The value at quantile q in [0, 1] (bucket midpoint, capped at the exact max); zero when
  // nothing was recorded.
  Duration Percentile(double q) const;
  Duration Max() const { return Duration(max_); }
  uint64_t count() const { return count_; }

 private:
  static constexpr int kSubBits = 5;  // 32 sub-buckets per power of two
  static constexpr int kLinear = 2 << kSubBits;
  static constexpr int kBuckets = kLinear + (64 - kSubBits - 1) * (1 << kSubBits);
  static int BucketOf(uint64_t v);
  static uint64_t Midpoint(int bucket);

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

}  // namespace forklift::core

#endif  // FORKLIFT_CORE_LATENCY_HISTOGRAM_H_
