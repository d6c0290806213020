#include "core/format_duration.h"

#include <fmt/format.h>

namespace forklift::core {

std::string FormatDuration(Duration d) {
  using std::chrono::duration;
  int64_t ns = d.count();
  if (ns < 0) return "-" + FormatDuration(-d);
  if (ns < 1000) return fmt::format("{}ns", ns);
  if (ns < 1000000) return fmt::format("{:.1f}us", ns / 1e3);
  if (ns < 1000000000) return fmt::format("{:.2f}ms", ns / 1e6);
  double s = ns / 1e9;
  if (s < 60) return fmt::format("{:.2f}s", s);
  auto total = static_cast<int64_t>(s);
  if (total < 3600) return fmt::format("{}m{:02}s", total / 60, total % 60);
  return fmt::format("{}h{:02}m", total / 3600, (total % 3600) / 60);
}

std::string FormatCount(double n) {
  if (n < 1000) return fmt::format("{:.0f}", n);
  if (n < 1e6) return fmt::format("{:.1f}k", n / 1e3);
  if (n < 1e9) return fmt::format("{:.2f}M", n / 1e6);
  return fmt::format("{:.2f}G", n / 1e9);
}

}  // namespace forklift::core
