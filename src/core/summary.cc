#include "forklift/summary.h"

#include <fmt/format.h>

#include "core/format_duration.h"

namespace forklift {

std::string Summary::ToString() const {
  return fmt::format(
      "processed={} succeeded={} failed={} timed_out={} retried={} skipped={}{} wall={} "
      "rate={:.1f}/s p50={} p95={} max={}",
      processed, succeeded, failed, timed_out, retried, skipped,
      cancelled ? fmt::format(" cancelled (interrupted={} not_run={})", interrupted, not_run)
                : std::string(),
      core::FormatDuration(wall), items_per_second, core::FormatDuration(latency_p50),
      core::FormatDuration(latency_p95), core::FormatDuration(latency_max));
}

std::string Summary::ToJson() const {
  auto secs = [](Duration d) { return std::chrono::duration<double>(d).count(); };
  return fmt::format(
      R"({{"processed":{},"succeeded":{},"failed":{},"timed_out":{},"retried":{},)"
      R"("skipped":{},"cancelled":{},"interrupted":{},"not_run":{},"wall_s":{:.6f},"items_per_s":{:.3f},)"
      R"("latency_p50_s":{:.6f},"latency_p95_s":{:.6f},"latency_max_s":{:.6f}}})",
      processed, succeeded, failed, timed_out, retried, skipped, cancelled ? "true" : "false",
      interrupted, not_run, secs(wall), items_per_second, secs(latency_p50), secs(latency_p95),
      secs(latency_max));
}

}  // namespace forklift
