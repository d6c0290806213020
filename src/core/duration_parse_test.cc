#include "core/duration_parse.h"

#include <gtest/gtest.h>

namespace forklift::core {
namespace {

using namespace std::chrono_literals;

TEST(ParseDurationTest, AcceptsSecondsAndUnits) {
  EXPECT_EQ(ParseDuration("30").value(), 30s);
  EXPECT_EQ(ParseDuration("1.5").value(), 1500ms);
  EXPECT_EQ(ParseDuration("200ms").value(), 200ms);
  EXPECT_EQ(ParseDuration("15m").value(), 15min);
  EXPECT_EQ(ParseDuration("2h").value(), 2h);
  EXPECT_EQ(ParseDuration("1d").value(), 24h);
  EXPECT_EQ(ParseDuration("1h30m").value(), 90min);
  EXPECT_EQ(ParseDuration("10us").value(), 10us);
  EXPECT_EQ(ParseDuration("0").value(), Duration::zero());
}

TEST(ParseDurationTest, RejectsWithTheText) {
  for (const char* bad : {"", "-1", "5x", "1h30", "abc", "1..5s", "s"}) {
    auto r = ParseDuration(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find(std::string("'") + bad + "'"), std::string::npos)
        << r.error().message;
  }
}

}  // namespace
}  // namespace forklift::core
