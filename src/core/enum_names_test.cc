#include "core/enum_names.h"

#include <gtest/gtest.h>

namespace forklift::core {
namespace {

enum class Color { kRed, kGreen, kBlue };
constexpr EnumNames<Color, 2> kColors{{{Color::kRed, "red"}, {Color::kGreen, "green"}}};

TEST(EnumNamesTest, ReadsBothWays) {
  static_assert(NameOf(kColors, Color::kGreen) == "green");
  EXPECT_EQ(NameOf(kColors, Color::kRed), "red");
  EXPECT_EQ(NameOf(kColors, Color::kBlue), "unknown") << "a value the table lacks";
  EXPECT_EQ(ValueOf(kColors, "green"), Color::kGreen);
  EXPECT_EQ(ValueOf(kColors, "Green"), std::nullopt) << "exact spelling only";
  EXPECT_EQ(ValueOf(kColors, "unknown"), std::nullopt);
}

}  // namespace
}  // namespace forklift::core
