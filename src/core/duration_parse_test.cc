#include "core/duration_parse.h"

#include <gtest/gtest.h>

namespace forklift::core {
namespace {

using namespace std::chrono_literals;

Duration Seconds(std::string_view text) {
  return ParseDuration(text, BareNumber::kSeconds).value();
}

TEST(ParseDurationTest, AcceptsUnitsAndTheirSums) {
  for (BareNumber bare : {BareNumber::kSeconds, BareNumber::kRefused}) {
    EXPECT_EQ(ParseDuration("200ms", bare).value(), 200ms);
    EXPECT_EQ(ParseDuration("30s", bare).value(), 30s);
    EXPECT_EQ(ParseDuration("15m", bare).value(), 15min);
    EXPECT_EQ(ParseDuration("2h", bare).value(), 2h);
    EXPECT_EQ(ParseDuration("1d", bare).value(), 24h);
    EXPECT_EQ(ParseDuration("1h30m", bare).value(), 90min);
    EXPECT_EQ(ParseDuration("1d2h3m4s", bare).value(), 24h + 2h + 3min + 4s);
    EXPECT_EQ(ParseDuration("1.5s", bare).value(), 1500ms);
    EXPECT_EQ(ParseDuration("10us", bare).value(), 10us);
    EXPECT_EQ(ParseDuration("5ns", bare).value(), 5ns);
  }
}

// GNU parallel's units are case-insensitive; so are forklift's, in every front door.
TEST(ParseDurationTest, UnitsAreCaseInsensitive) {
  for (BareNumber bare : {BareNumber::kSeconds, BareNumber::kRefused}) {
    EXPECT_EQ(ParseDuration("1H30M", bare).value(), 90min);
    EXPECT_EQ(ParseDuration("2S", bare).value(), 2s);
    EXPECT_EQ(ParseDuration("250MS", bare).value(), 250ms);
    EXPECT_EQ(ParseDuration("250Ms", bare).value(), 250ms);
    EXPECT_EQ(ParseDuration("1D", bare).value(), 24h);
  }
}

TEST(ParseDurationTest, BareNumbersAreSecondsOnlyWhenAsked) {
  EXPECT_EQ(Seconds("30"), 30s);
  EXPECT_EQ(Seconds("1.5"), 1500ms);
  EXPECT_EQ(Seconds("0.5"), 500ms);
  EXPECT_EQ(Seconds("0"), Duration::zero());
  auto refused = ParseDuration("30", BareNumber::kRefused);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(refused.error().message,
            "bad duration '30': a duration needs a unit: write \"30s\" for seconds (or "
            "\"30m\", \"30h\", \"30ms\")");
}

TEST(ParseDurationTest, RejectsNamingTheTextAsWritten) {
  for (const char* bad : {"", "-1", "5x", "1h30", "1H30", "abc", "1..5s", "s", "1.2.3", "1sx"}) {
    for (BareNumber bare : {BareNumber::kSeconds, BareNumber::kRefused}) {
      auto r = ParseDuration(bad, bare);
      ASSERT_FALSE(r) << bad;
      EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
      EXPECT_NE(r.error().message.find(std::string("'") + bad + "'"), std::string::npos)
          << r.error().message;
    }
  }
}

}  // namespace
}  // namespace forklift::core
