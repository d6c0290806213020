#include "forklift/result.h"

#include <gtest/gtest.h>

namespace forklift {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  FORKLIFT_ASSIGN_OR_RETURN(int h, Half(x));
  FORKLIFT_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int x) {
  FORKLIFT_RETURN_IF_ERROR(Half(x));
  return OkStatus();
}

TEST(ResultTest, AssignOrReturnPropagatesTheFirstError) {
  EXPECT_EQ(Quarter(8).value(), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message, "odd: 3");
}

TEST(ResultTest, ReturnIfErrorPassesOkAndReturnsError) {
  EXPECT_TRUE(CheckEven(4));
  EXPECT_EQ(CheckEven(5).error().ToString(), "InvalidArgument: odd: 5");
}

TEST(ResultTest, ErrorCodeNamesRoundTrip) {
  for (int i = 1; i <= 9; ++i) {
    auto code = static_cast<ErrorCode>(i);
    EXPECT_EQ(ErrorCodeFromName(ErrorCodeName(code)), code);
  }
  EXPECT_EQ(ErrorCodeFromName("Nope"), std::nullopt);
}

}  // namespace
}  // namespace forklift
