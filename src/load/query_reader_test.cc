#include "load/query_reader.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace forklift::load {
namespace {

TEST(QueryReaderTest, SourceNamesCarryRangeBoundsBackToTheRerun) {
  EXPECT_EQ(QuerySourceName(0, 1), "query");
  EXPECT_EQ(QuerySourceName(1, 4), "query partition 2/4");
  sinks::QuerySpec spec{
      .partition_by = "day", .partitions = 3, .range_bounds = {"2024-01-04", "2024-01-06"}};
  const std::string name = QuerySourceName(2, 3) + RangeSourceSuffix(spec);
  EXPECT_EQ(name, "query partition 3/3 of day at 2024-01-04,2024-01-06");
  auto bounds = RangeBoundsOf(name);
  ASSERT_TRUE(bounds);
  EXPECT_EQ(*bounds, spec.range_bounds);
  EXPECT_FALSE(RangeBoundsOf("query partition 1/3"));  // hash partitions
  EXPECT_FALSE(RangeBoundsOf("/data/a at b.csv"));
  spec.range_bounds.clear();
  EXPECT_EQ(RangeSourceSuffix(spec), "");
}

}  // namespace
}  // namespace forklift::load
