#include "forklift/result.h"

#include <array>

namespace forklift {
namespace {
constexpr std::array<std::pair<ErrorCode, std::string_view>, 9> kNames = {{
    {ErrorCode::kInvalidArgument, "InvalidArgument"},
    {ErrorCode::kNotFound, "NotFound"},
    {ErrorCode::kCancelled, "Cancelled"},
    {ErrorCode::kDeadlineExceeded, "DeadlineExceeded"},
    {ErrorCode::kUnavailable, "Unavailable"},
    {ErrorCode::kAborted, "Aborted"},
    {ErrorCode::kFailedPrecondition, "FailedPrecondition"},
    {ErrorCode::kInternal, "Internal"},
    {ErrorCode::kDataLoss, "DataLoss"},
}};
}  // namespace

std::string_view ErrorCodeName(ErrorCode code) {
  for (const auto& [c, name] : kNames) {
    if (c == code) return name;
  }
  return "Unknown";
}

std::optional<ErrorCode> ErrorCodeFromName(std::string_view name) {
  for (const auto& [c, n] : kNames) {
    if (n == name) return c;
  }
  return std::nullopt;
}

std::string Error::ToString() const {
  std::string s(ErrorCodeName(code));
  s += ": ";
  s += message;
  return s;
}

}  // namespace forklift
