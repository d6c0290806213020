#include "core/format_duration.h"

#include <gtest/gtest.h>

namespace forklift::core {
namespace {

using namespace std::chrono_literals;

TEST(FormatDurationTest, PicksAReadableUnit) {
  EXPECT_EQ(FormatDuration(850ns), "850ns");
  EXPECT_EQ(FormatDuration(12300ns), "12.3us");
  EXPECT_EQ(FormatDuration(4560us), "4.56ms");
  EXPECT_EQ(FormatDuration(1200ms), "1.20s");
  EXPECT_EQ(FormatDuration(185s), "3m05s");
  EXPECT_EQ(FormatDuration(7260s), "2h01m");
}

TEST(FormatDurationTest, CountsUseSiSuffixes) {
  EXPECT_EQ(FormatCount(950), "950");
  EXPECT_EQ(FormatCount(12345), "12.3k");
  EXPECT_EQ(FormatCount(4560000), "4.56M");
}

}  // namespace
}  // namespace forklift::core
