// Durations (flow files, map --timeout/--delay, load options). Properties:
//  - core::ParseDuration never crashes or overflows (UBSan) and gives no negative value;
//  - map::ParseDuration accepts whatever core does, with the same value, and is
//    case-insensitive in its units as GNU parallel is;
//  - map::ParseTimeout's fixed form equals map::ParseDuration, a percentage is > 0;
//  - FormatDuration's text parses back (core) to the value within the display's rounding.
#include <chrono>
#include <cstdint>
#include <string>

#include "core/duration_parse.h"
#include "core/format_duration.h"
#include "fuzz/fuzz_check.h"
#include "map/duration_parse.h"

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto core = forklift::core::ParseDuration(text);
  auto map = forklift::map::ParseDuration(text);
  if (core) {
    FUZZ_CHECK(core->count() >= 0);
    FUZZ_CHECK(map.has_value() && *map == *core);
    std::string shown = forklift::core::FormatDuration(*core);
    auto back = forklift::core::ParseDuration(shown);
    FUZZ_CHECK(back.has_value());
    using std::chrono::milliseconds;
    using std::chrono::seconds;
    const forklift::Duration d = *core;
    const forklift::Duration slack = d < milliseconds(1) ? forklift::Duration(100)
                                    : d < seconds(1)      ? forklift::Duration(milliseconds(1))
                                    : d < seconds(60)     ? forklift::Duration(milliseconds(10))
                                    : d < seconds(3600)   ? forklift::Duration(seconds(1))
                                                          : forklift::Duration(seconds(60));
    FUZZ_CHECK(*back - d <= slack && d - *back <= slack);
  }
  if (map) FUZZ_CHECK(map->count() >= 0);
  auto lower = forklift::map::ParseDuration(Lower(text));
  FUZZ_CHECK(map.has_value() == lower.has_value());
  if (map) FUZZ_CHECK(*map == *lower);

  auto timeout = forklift::map::ParseTimeout(text);
  if (timeout) {
    if (timeout->is_percent()) {
      FUZZ_CHECK(timeout->percent > 0);
    } else {
      FUZZ_CHECK(map.has_value() && *map == timeout->fixed);
    }
  } else {
    FUZZ_CHECK(!map.has_value());
  }
  return 0;
}
