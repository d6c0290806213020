#include "flow/task_log.h"

#include <fmt/format.h>

#include <chrono>
#include <ctime>

namespace forklift::flow {

std::string LocalStamp(const char* format) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

// "2026-11-23T09:10:01.123"
std::string LogStamp() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  return fmt::format("{}.{:03d}", LocalStamp("%Y-%m-%dT%H:%M:%S"), static_cast<int>(ms.count()));
}

}  // namespace forklift::flow
