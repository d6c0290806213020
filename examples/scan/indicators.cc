#include "scan/indicators.h"

#include <cmath>
#include <limits>

namespace forklift::scan {
namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A fixed-window rolling mean computed exactly the way pandas' roll_mean (pandas 1.5,
// _libs/window/aggregations.pyx) does it, because the anchor is pandas: a running sum with
// one Kahan compensation for additions and another for removals, NaN skipped, NaN until
// `min_periods` values are present, the last value itself for a run of equal values, and
// sign clean-up. Summing each window afresh would differ in the last bits, and a near-tie
// between SMA20 and SMA50 could then compare the other way and flip a match. O(1) per row.
class RollingMean {
 public:
  void Add(double v) {
    if (std::isnan(v)) return;
    ++nobs_;
    Kahan(v, add_compensation_);
    if (std::signbit(v)) ++neg_ct_;
    same_run_ = (v == prev_) ? same_run_ + 1 : 1;
    prev_ = v;
  }
  void Remove(double v) {
    if (std::isnan(v)) return;
    --nobs_;
    Kahan(-v, remove_compensation_);
    if (std::signbit(v)) --neg_ct_;
  }
  double Mean(size_t min_periods) const {
    if (nobs_ < static_cast<int>(min_periods) || nobs_ == 0) return kNaN;
    double result = sum_ / nobs_;
    if (same_run_ >= nobs_) return prev_;
    if (neg_ct_ == 0 && result < 0) return 0;
    if (neg_ct_ == nobs_ && result > 0) return 0;
    return result;
  }

 private:
  void Kahan(double v, double& compensation) {
    double y = v - compensation;
    double t = sum_ + y;
    compensation = t - sum_ - y;
    sum_ = t;
  }
  int nobs_ = 0;
  int neg_ct_ = 0;
  int same_run_ = 0;
  double sum_ = 0;
  double add_compensation_ = 0;
  double remove_compensation_ = 0;
  double prev_ = kNaN;
};

std::vector<double> Rolling(std::span<const double> x, size_t window) {
  std::vector<double> out(x.size());
  RollingMean m;
  for (size_t i = 0; i < x.size(); ++i) {
    if (i >= window) m.Remove(x[i - window]);
    m.Add(x[i]);
    out[i] = m.Mean(window);
  }
  return out;
}

}  // namespace

std::vector<double> SimpleMovingAverage(std::span<const double> x, size_t window) {
  return Rolling(x, window);
}

std::vector<double> RelativeStrengthIndex(std::span<const double> close, size_t window) {
  const size_t n = close.size();
  // pandas: d = close.diff(); up = d.clip(lower=0); dn = -(d.clip(upper=0)). The first
  // change is NaN, and dn keeps the -0.0 that negating a clipped 0 gives.
  std::vector<double> gain(n, kNaN), loss(n, kNaN);
  for (size_t i = 1; i < n; ++i) {
    double d = close[i] - close[i - 1];
    gain[i] = d < 0 ? 0.0 : d;
    loss[i] = -(d > 0 ? 0.0 : d);
  }
  std::vector<double> up = Rolling(gain, window), dn = Rolling(loss, window);
  std::vector<double> rsi(n);
  // IEEE arithmetic gives pandas' edge cases by itself: D = 0 < U makes U/D infinite and
  // RSI 100; U = D = 0 makes it NaN.
  for (size_t i = 0; i < n; ++i) rsi[i] = 100.0 - 100.0 / (1.0 + up[i] / dn[i]);
  return rsi;
}

std::vector<size_t> CrossoverSignals(std::span<const double> close) {
  // One pass with the four rolling means side by side rather than four passes: each mean
  // is a chain of dependent Kahan additions, and interleaving four independent chains lets
  // the CPU overlap them. Bit for bit the same values as SimpleMovingAverage and
  // RelativeStrengthIndex (the same operations in the same order per mean), which
  // indicators_test checks.
  constexpr size_t kFast = 20, kSlow = 50, kRsi = 14;
  const size_t n = close.size();
  auto gain = [&](size_t i) {  // NaN for the first row, which has no change
    if (i == 0) return kNaN;
    double d = close[i] - close[i - 1];
    return d < 0 ? 0.0 : d;
  };
  auto loss = [&](size_t i) {
    if (i == 0) return kNaN;
    double d = close[i] - close[i - 1];
    return -(d > 0 ? 0.0 : d);
  };
  RollingMean fast, slow, up, dn;
  double prev_fast = kNaN, prev_slow = kNaN;
  std::vector<size_t> hits;
  for (size_t i = 0; i < n; ++i) {
    if (i >= kFast) fast.Remove(close[i - kFast]);
    if (i >= kSlow) slow.Remove(close[i - kSlow]);
    if (i >= kRsi) {
      up.Remove(gain(i - kRsi));
      dn.Remove(loss(i - kRsi));
    }
    fast.Add(close[i]);
    slow.Add(close[i]);
    up.Add(gain(i));
    dn.Add(loss(i));
    double f = fast.Mean(kFast), sl = slow.Mean(kSlow);
    double rsi = 100.0 - 100.0 / (1.0 + up.Mean(kRsi) / dn.Mean(kRsi));
    // NaN makes each comparison false, as in pandas.
    if (f > sl && prev_fast <= prev_slow && rsi < 60) hits.push_back(i);
    prev_fast = f;
    prev_slow = sl;
  }
  return hits;
}

}  // namespace forklift::scan
