#include "map/duration_parse.h"

#include <gtest/gtest.h>

namespace forklift::map {
namespace {

using namespace std::chrono_literals;

TEST(MapParseDurationTest, AcceptsGnuAndForkliftForms) {
  EXPECT_EQ(ParseDuration("30").value(), 30s);
  EXPECT_EQ(ParseDuration("1.5").value(), 1500ms);
  EXPECT_EQ(ParseDuration("200ms").value(), 200ms);
  EXPECT_EQ(ParseDuration("30s").value(), 30s);
  EXPECT_EQ(ParseDuration("15m").value(), 15min);
  EXPECT_EQ(ParseDuration("2h").value(), 2h);
  EXPECT_EQ(ParseDuration("1d").value(), 24h);
  EXPECT_EQ(ParseDuration("1h30m").value(), 90min);
  EXPECT_EQ(ParseDuration("1d2h3m4s").value(), 24h + 2h + 3min + 4s);
}

TEST(MapParseDurationTest, UnitsAreCaseInsensitiveAsInGnuParallel) {
  EXPECT_EQ(ParseDuration("1H30M").value(), 90min);
  EXPECT_EQ(ParseDuration("2S").value(), 2s);
  EXPECT_EQ(ParseDuration("250MS").value(), 250ms);
}

TEST(MapParseDurationTest, RejectsNamingTheOriginalText) {
  for (const char* bad : {"", "-1", "5x", "1H30", "abc", "s", "1.2.3"}) {
    auto r = ParseDuration(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find(std::string("'") + bad + "'"), std::string::npos)
        << r.error().message;
  }
}

TEST(ParseTimeoutTest, FixedAndPercent) {
  EXPECT_EQ(ParseTimeout("0.5").value(), TimeoutSpec{.fixed = 500ms});
  EXPECT_EQ(ParseTimeout("1m").value(), TimeoutSpec{.fixed = 1min});
  auto pct = ParseTimeout("150%").value();
  EXPECT_TRUE(pct.is_percent());
  EXPECT_DOUBLE_EQ(pct.percent, 150);
  EXPECT_DOUBLE_EQ(ParseTimeout("12.5%").value().percent, 12.5);
  EXPECT_FALSE(ParseTimeout("1m").value().is_percent());
}

TEST(ParseTimeoutTest, RejectsBadPercentages) {
  for (const char* bad : {"%", "0%", "-5%", "x%", "5%%", "1h%", ""}) {
    auto r = ParseTimeout(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find(std::string("'") + bad + "'"), std::string::npos)
        << r.error().message;
  }
}

}  // namespace
}  // namespace forklift::map
