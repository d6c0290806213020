#include "map/duration_parse.h"

#include <charconv>
#include <cmath>
#include <string>

#include "core/duration_parse.h"

namespace forklift::map {

Result<Duration> ParseDuration(std::string_view text) {
  // Lower-casing maps GNU's "1H30M" onto core's grammar without changing meaning:
  // every unit letter means the same thing in either case ("M" is minutes in GNU too).
  std::string lower(text);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  auto parsed = core::ParseDuration(lower);
  if (!parsed && lower != text) {
    // Name the text as the user typed it, not the lower-cased copy.
    return InvalidArgumentError("bad duration '" + std::string(text) + "' (" +
                                parsed.error().message + ")");
  }
  return parsed;
}

Result<TimeoutSpec> ParseTimeout(std::string_view text) {
  if (!text.empty() && text.back() == '%') {
    std::string_view number = text.substr(0, text.size() - 1);
    double percent = 0;
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), percent);
    if (number.empty() || ec != std::errc() || end != number.data() + number.size() ||
        !std::isfinite(percent) || percent <= 0) {
      return InvalidArgumentError("bad timeout '" + std::string(text) +
                                  "': a percentage must be a number > 0 followed by %");
    }
    return TimeoutSpec{.percent = percent};
  }
  auto fixed = ParseDuration(text);
  if (!fixed) return InvalidArgumentError("bad timeout '" + std::string(text) + "'");
  return TimeoutSpec{.fixed = *fixed};
}

}  // namespace forklift::map
