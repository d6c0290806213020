// Durations as users write them on command lines and in flow files: one grammar for every
// front door.
#ifndef FORKLIFT_CORE_DURATION_PARSE_H_
#define FORKLIFT_CORE_DURATION_PARSE_H_

#include <string_view>

#include "forklift/clock.h"
#include "forklift/result.h"

namespace forklift::core {

// What a number without a unit means: the one place where front doors differ.
enum class BareNumber {
  // "30" and "0.5" are seconds: GNU parallel's form, which `forklift map`'s --timeout,
  // --delay and --retry-delay (and `forklift run --wait`) keep.
  kSeconds,
  // "30" is refused: in a flow file it could mean seconds or minutes (docs/flow.md).
  kRefused,
};

// One or more "<number><unit>" parts, added up: "200ms", "30s", "15m", "2h", "1d",
// "1h30m", "1d2h3m4s", "1.5s", "10us", "5ns". Units are case-insensitive, as GNU
// parallel's are ("1H30M", "250MS"); "m" is minutes, "ms" milliseconds. A lone number
// with no unit is read as `bare` says; a number without a unit after another part
// ("1h30") is an error either way. Returns InvalidArgument "bad duration '<text>': why"
// for anything else (empty, negative, unknown unit, trailing garbage, too long).
// Thread-safe.
Result<Duration> ParseDuration(std::string_view text, BareNumber bare);

}  // namespace forklift::core

#endif  // FORKLIFT_CORE_DURATION_PARSE_H_
