#include "core/duration_parse.h"

#include <charconv>
#include <cmath>
#include <string>

#include <fmt/format.h>

namespace forklift::core {
namespace {

// Nanoseconds per unit; longest suffixes first so "ms" wins over "m".
struct Unit {
  std::string_view suffix;
  double ns;
};
constexpr Unit kUnits[] = {
    {"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}, {"d", 86400e9},
};

// Whether `text` starts with the (lower-case) `suffix`, in any case.
bool StartsWithFolded(std::string_view text, std::string_view suffix) {
  if (text.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != suffix[i]) return false;
  }
  return true;
}

}  // namespace

Result<Duration> ParseDuration(std::string_view text, BareNumber bare) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError("bad duration '" + std::string(text) + "': " + std::string(why));
  };
  if (text.empty()) return bad("empty");
  std::string_view rest = text;
  double total_ns = 0;
  int parts = 0;
  while (!rest.empty()) {
    double value = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
    if (ec != std::errc() || end == rest.data()) return bad("expected a number");
    if (value < 0 || !std::isfinite(value)) return bad("must be a finite number >= 0");
    const std::string_view number = rest.substr(0, static_cast<size_t>(end - rest.data()));
    rest.remove_prefix(number.size());
    ++parts;
    if (rest.empty()) {
      if (parts > 1) return bad("a unit is needed after every number");
      if (bare == BareNumber::kRefused) {
        return bad(
            fmt::format("a duration needs a unit: write \"{0}s\" for seconds (or "
                        "\"{0}m\", \"{0}h\", \"{0}ms\")",
                        number));
      }
      total_ns += value * 1e9;
      break;
    }
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (StartsWithFolded(rest, u.suffix)) {
        unit = &u;
        break;
      }
    }
    if (!unit) return bad("unknown unit (use ns, us, ms, s, m, h or d)");
    rest.remove_prefix(unit->suffix.size());
    total_ns += value * unit->ns;
  }
  if (total_ns > 9.2e18) return bad("too long");
  return Duration(static_cast<Duration::rep>(std::llround(total_ns)));
}

}  // namespace forklift::core
