#include "core/latency_histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace forklift::core {
namespace {

TEST(LatencyHistogramTest, EmptyIsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.Percentile(0.5), Duration::zero());
  EXPECT_EQ(h.Max(), Duration::zero());
}

TEST(LatencyHistogramTest, PercentilesWithinOneSixtyFourthOfExact) {
  std::mt19937_64 rng(1);
  std::lognormal_distribution<double> dist(13.0, 2.0);  // ns: ~µs to ~s, heavy tail
  std::vector<int64_t> values;
  LatencyHistogram h;
  for (int i = 0; i < 100000; ++i) {
    auto v = static_cast<int64_t>(dist(rng));
    values.push_back(v);
    h.Record(Duration(v));
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.95, 0.99}) {
    double exact = static_cast<double>(values[static_cast<size_t>(q * values.size()) - 1]);
    double got = static_cast<double>(h.Percentile(q).count());
    EXPECT_NEAR(got, exact, exact / 64 + 1) << "q=" << q;
  }
  EXPECT_EQ(h.Max().count(), values.back());
  EXPECT_EQ(h.count(), 100000u);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (int v = 1; v <= 10; ++v) h.Record(Duration(v));
  EXPECT_EQ(h.Percentile(0.5), Duration(5));
  EXPECT_EQ(h.Percentile(1.0), Duration(10));
}

}  // namespace
}  // namespace forklift::core
