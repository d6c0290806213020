// The scan's arithmetic, exactly as ../shared/anchors/README.md defines it and as pandas
// computes it in scan_ppe.py: SMA20/SMA50 of close, RSI14 from 14-row simple means of
// gains and losses, and the crossover rule. Undefined values are NaN, and every comparison
// with NaN is false, as in pandas.
#ifndef FORKLIFT_EXAMPLES_SCAN_INDICATORS_H_
#define FORKLIFT_EXAMPLES_SCAN_INDICATORS_H_

#include <cstddef>
#include <span>
#include <vector>

namespace forklift::scan {

// Simple moving average over `window` rows; NaN for the first window-1 rows.
std::vector<double> SimpleMovingAverage(std::span<const double> x, size_t window);

// RSI over `window` rows of close-to-close changes: 100 - 100 / (1 + U / D), with U and D
// the simple means of max(d, 0) and max(-d, 0). 100 where D = 0 < U, NaN where both are 0
// and for the first `window` rows (the first change is undefined).
std::vector<double> RelativeStrengthIndex(std::span<const double> close, size_t window);

// Row indices where SMA20 crosses above SMA50 (SMA20 > SMA50 now, SMA20 <= SMA50 on the
// previous row) while RSI14 < 60.
std::vector<size_t> CrossoverSignals(std::span<const double> close);

}  // namespace forklift::scan

#endif  // FORKLIFT_EXAMPLES_SCAN_INDICATORS_H_
