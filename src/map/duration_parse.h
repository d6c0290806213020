// Durations as `forklift map` options take them (--timeout, --delay, --retry-delay).
//
// GNU parallel writes durations as seconds ("30", "1.5") or with the case-insensitive
// postfixes s, m, h, d ("1h30m", "2H"); forklift adds ms, us and ns. The grammar itself
// lives in core/duration_parse.h so every front door agrees; this file adds GNU
// parallel's upper-case units and --timeout's "N%" form.
#ifndef FORKLIFT_MAP_DURATION_PARSE_H_
#define FORKLIFT_MAP_DURATION_PARSE_H_

#include <string_view>

#include "forklift/clock.h"
#include "forklift/result.h"

namespace forklift::map {

// "30", "1.5", "200ms", "30s", "15m", "2h", "1d", "1h30m", and the same with upper-case
// units ("1H30M": GNU parallel accepts them). On failure returns InvalidArgument naming
// the text. Thread-safe.
Result<Duration> ParseDuration(std::string_view text);

// --timeout: either a fixed duration or a percentage of the median runtime of the jobs
// that succeeded so far (GNU parallel's "--timeout 200%").
struct TimeoutSpec {
  Duration fixed{0};     // used when percent == 0
  double percent = 0;    // > 0: timeout = median successful runtime * percent / 100

  bool is_percent() const { return percent > 0; }
  friend bool operator==(const TimeoutSpec&, const TimeoutSpec&) = default;
};

// "30", "1h", "150%", "12.5%". A percentage must be a number > 0 followed by '%'.
// On failure returns InvalidArgument naming the text. Thread-safe.
Result<TimeoutSpec> ParseTimeout(std::string_view text);

}  // namespace forklift::map

#endif  // FORKLIFT_MAP_DURATION_PARSE_H_
