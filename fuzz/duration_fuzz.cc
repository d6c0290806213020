// Durations (flow files, map --timeout/--delay, run --wait). Properties:
//  - core::ParseDuration never crashes or overflows (UBSan) and gives no negative value;
//  - its units are case-insensitive: the text and its lower-cased copy parse alike;
//  - BareNumber::kRefused accepts a subset of what kSeconds does, with the same value;
//  - map::ParseTimeout's fixed form equals ParseDuration with bare seconds, a percentage
//    is > 0;
//  - FormatDuration's text (always with units) parses back, even where units are
//    required, to the value within the display's rounding.
#include <chrono>
#include <cstdint>
#include <string>

#include "core/duration_parse.h"
#include "core/format_duration.h"
#include "fuzz/fuzz_check.h"
#include "map/map_options.h"

namespace {

using forklift::core::BareNumber;
using forklift::core::ParseDuration;

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
  auto with_bare = ParseDuration(text, BareNumber::kSeconds);
  auto refused = ParseDuration(text, BareNumber::kRefused);
  if (refused) FUZZ_CHECK(with_bare.has_value() && *with_bare == *refused);
  if (with_bare) {
    FUZZ_CHECK(with_bare->count() >= 0);
    std::string shown = forklift::core::FormatDuration(*with_bare);
    auto back = ParseDuration(shown, BareNumber::kRefused);
    FUZZ_CHECK(back.has_value());
    using std::chrono::milliseconds;
    using std::chrono::seconds;
    const forklift::Duration d = *with_bare;
    const forklift::Duration slack = d < milliseconds(1) ? forklift::Duration(100)
                                     : d < seconds(1)    ? forklift::Duration(milliseconds(1))
                                     : d < seconds(60)   ? forklift::Duration(milliseconds(10))
                                     : d < seconds(3600) ? forklift::Duration(seconds(1))
                                                         : forklift::Duration(seconds(60));
    FUZZ_CHECK(*back - d <= slack && d - *back <= slack);
  }
  auto lower = ParseDuration(Lower(text), BareNumber::kSeconds);
  FUZZ_CHECK(with_bare.has_value() == lower.has_value());
  if (with_bare) FUZZ_CHECK(*with_bare == *lower);

  auto timeout = forklift::map::ParseTimeout(text);
  if (timeout) {
    if (timeout->is_percent()) {
      FUZZ_CHECK(timeout->percent > 0);
    } else {
      FUZZ_CHECK(with_bare.has_value() && *with_bare == timeout->fixed);
    }
  } else {
    FUZZ_CHECK(!with_bare.has_value());
  }
  return 0;
}
