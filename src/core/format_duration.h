// Human-readable durations and counts for progress lines and summaries.
#ifndef FORKLIFT_CORE_FORMAT_DURATION_H_
#define FORKLIFT_CORE_FORMAT_DURATION_H_

#include <string>

#include "forklift/clock.h"

namespace forklift::core {

// "850ns", "12.3µs" as "12.3us", "4.56ms", "1.20s", "3m05s", "2h01m".
std::string FormatDuration(Duration d);
// "950", "12.3k", "4.56M".
std::string FormatCount(double n);

}  // namespace forklift::core

#endif  // FORKLIFT_CORE_FORMAT_DURATION_H_
