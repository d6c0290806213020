// Durations as users write them on command lines and in flow files.
#ifndef FORKLIFT_CORE_DURATION_PARSE_H_
#define FORKLIFT_CORE_DURATION_PARSE_H_

#include <string_view>

#include "forklift/clock.h"
#include "forklift/result.h"

namespace forklift::core {

// "30" and "1.5" (seconds, GNU parallel's form), "200ms", "30s", "15m", "2h", "1d", "1h30m",
// "1.5s", "10us". Returns InvalidArgument naming the text for anything else (empty,
// negative, unknown unit, trailing garbage). Thread-safe.
Result<Duration> ParseDuration(std::string_view text);

}  // namespace forklift::core

#endif  // FORKLIFT_CORE_DURATION_PARSE_H_
