#include "core/latency_histogram.h"

#include <bit>
#include <cmath>

namespace forklift::core {

int LatencyHistogram::BucketOf(uint64_t v) {
  if (v < static_cast<uint64_t>(kLinear)) return static_cast<int>(v);
  int shift = std::bit_width(v) - (kSubBits + 1);  // keeps the top kSubBits+1 bits
  auto mantissa = static_cast<int>(v >> shift);    // in [32, 63]
  return kLinear + (shift - 1) * (1 << kSubBits) + (mantissa - (1 << kSubBits));
}

uint64_t LatencyHistogram::Midpoint(int bucket) {
  if (bucket < kLinear) return static_cast<uint64_t>(bucket);
  int rel = bucket - kLinear;
  int shift = rel / (1 << kSubBits) + 1;
  uint64_t mantissa = static_cast<uint64_t>(rel % (1 << kSubBits) + (1 << kSubBits));
  return (mantissa << shift) + (uint64_t{1} << (shift - 1));
}

void LatencyHistogram::Record(Duration d) {
  uint64_t v = d.count() > 0 ? static_cast<uint64_t>(d.count()) : 0;
  ++counts_[BucketOf(v)];
  ++count_;
  if (v > max_) max_ = v;
}

Duration LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) return Duration::zero();
  auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += counts_[b];
    if (seen >= rank) {
      uint64_t mid = Midpoint(b);
      return Duration(static_cast<Duration::rep>(mid < max_ ? mid : max_));
    }
  }
  return Duration(static_cast<Duration::rep>(max_));
}

}  // namespace forklift::core
