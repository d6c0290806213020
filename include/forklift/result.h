// Errors as values. Every fallible forklift function returns Result<T> (or Status,
// Result<void>); no exception crosses the public API. Exceptions thrown by user code are
// caught at the boundary that runs it and become kInternal errors.
//
// Thread safety: Error and Result are plain values; share them like any value type.
#ifndef FORKLIFT_RESULT_H_
#define FORKLIFT_RESULT_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace forklift {

// The abseil subset DESIGN.md names. Only kUnavailable (and kDeadlineExceeded, when a
// retry policy asks for it) is retried by default.
enum class ErrorCode {
  kInvalidArgument = 1,
  kNotFound,
  kCancelled,
  kDeadlineExceeded,
  kUnavailable,
  kAborted,
  kFailedPrecondition,
  kInternal,
  kDataLoss,
};

// "InvalidArgument", "DeadlineExceeded", ...: stable names, used in the journal and JSON.
std::string_view ErrorCodeName(ErrorCode code);
// Inverse of ErrorCodeName; nullopt for an unknown name.
std::optional<ErrorCode> ErrorCodeFromName(std::string_view name);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  // "DeadlineExceeded: item 17 ran past its 60s deadline"
  std::string ToString() const;
  friend bool operator==(const Error&, const Error&) = default;
};

template <class T>
using Result = tl::expected<T, Error>;
using Status = Result<void>;

inline tl::unexpected<Error> MakeError(ErrorCode code, std::string message) {
  return tl::unexpected<Error>(Error{code, std::move(message)});
}
inline tl::unexpected<Error> InvalidArgumentError(std::string m) {
  return MakeError(ErrorCode::kInvalidArgument, std::move(m));
}
inline tl::unexpected<Error> NotFoundError(std::string m) {
  return MakeError(ErrorCode::kNotFound, std::move(m));
}
inline tl::unexpected<Error> CancelledError(std::string m) {
  return MakeError(ErrorCode::kCancelled, std::move(m));
}
inline tl::unexpected<Error> DeadlineExceededError(std::string m) {
  return MakeError(ErrorCode::kDeadlineExceeded, std::move(m));
}
inline tl::unexpected<Error> UnavailableError(std::string m) {
  return MakeError(ErrorCode::kUnavailable, std::move(m));
}
inline tl::unexpected<Error> AbortedError(std::string m) {
  return MakeError(ErrorCode::kAborted, std::move(m));
}
inline tl::unexpected<Error> FailedPreconditionError(std::string m) {
  return MakeError(ErrorCode::kFailedPrecondition, std::move(m));
}
inline tl::unexpected<Error> InternalError(std::string m) {
  return MakeError(ErrorCode::kInternal, std::move(m));
}
inline tl::unexpected<Error> DataLossError(std::string m) {
  return MakeError(ErrorCode::kDataLoss, std::move(m));
}

inline Status OkStatus() { return {}; }

}  // namespace forklift

#define FORKLIFT_CONCAT_INNER_(a, b) a##b
#define FORKLIFT_CONCAT_(a, b) FORKLIFT_CONCAT_INNER_(a, b)

// Returns the error of a failed Result/Status expression from the enclosing function.
#define FORKLIFT_RETURN_IF_ERROR(expr)                              \
  do {                                                              \
    auto&& forklift_status_ = (expr);                               \
    if (!forklift_status_) {                                        \
      return ::tl::unexpected(std::move(forklift_status_).error()); \
    }                                                               \
  } while (0)

// `FORKLIFT_ASSIGN_OR_RETURN(auto x, F());` declares x from F()'s value, or returns F()'s
// error from the enclosing function.
#define FORKLIFT_ASSIGN_OR_RETURN(lhs, expr) \
  FORKLIFT_ASSIGN_OR_RETURN_IMPL_(FORKLIFT_CONCAT_(forklift_result_, __LINE__), lhs, expr)
#define FORKLIFT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)      \
  auto tmp = (expr);                                         \
  if (!tmp) return ::tl::unexpected(std::move(tmp).error()); \
  lhs = std::move(*tmp)

#endif  // FORKLIFT_RESULT_H_
