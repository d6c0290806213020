#include "load/load_id.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "support/temp_dir.h"

namespace forklift::load {
namespace {

using test_support::TempDir;

TEST(LoadIdTest, ASourceIsItsNormalisedAbsolutePath) {
  const std::string cwd = std::filesystem::current_path().string();
  EXPECT_EQ(SourceIdentity("a.csv"), cwd + "/a.csv");
  EXPECT_EQ(SourceIdentity("./a.csv"), cwd + "/a.csv");
  EXPECT_EQ(SourceIdentity("d/../a.csv"), cwd + "/a.csv");
  EXPECT_EQ(SourceIdentity("/x//y/./z.csv"), "/x/y/z.csv");
}

TEST(LoadIdTest, TablesAreCanonicalised) {
  EXPECT_EQ(*TableIdentity("prices"), "prices");
  EXPECT_EQ(*TableIdentity("\"prices\""), "prices");
  EXPECT_EQ(*TableIdentity("PRICES"), "prices");
  EXPECT_EQ(*TableIdentity("Public.\"prices\""), "public.prices");
  EXPECT_EQ(*TableIdentity("\"Prices\""), "\"Prices\"");
  EXPECT_EQ(*TableIdentity("\"a.b\".\"x\"\"y z\""), "\"a.b\".\"x\"\"y z\"");
  auto bad = TableIdentity("a.b.c");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

TEST(LoadIdTest, OneSourceAndOneTableSpelledDifferentlyAreOneLoad) {
  TempDir dir;
  const std::string f = dir.Write("a.csv", "k,v\n1,2\n");
  LoadOptions o;
  o.sources = {f};
  o.table = "prices";
  const std::string id = *ComputeLoadId(o, "sqlite:/x.db", {"k", "v"}, 1);
  EXPECT_THAT(id, ::testing::StartsWith("load-"));

  LoadOptions spelled = o;
  spelled.sources = {dir.path() + "/./a.csv"};
  spelled.table = "\"prices\"";
  EXPECT_EQ(*ComputeLoadId(spelled, "sqlite:/x.db", {"k", "v"}, 1), id);
  spelled.table = "PRICES";
  EXPECT_EQ(*ComputeLoadId(spelled, "sqlite:/x.db", {"k", "v"}, 1), id);

  LoadOptions other = o;
  other.table = "\"Prices\"";  // a different table
  EXPECT_NE(*ComputeLoadId(other, "sqlite:/x.db", {"k", "v"}, 1), id);
  other = o;
  other.table = "public.prices";  // may be another table (search_path)
  EXPECT_NE(*ComputeLoadId(other, "sqlite:/x.db", {"k", "v"}, 1), id);
}

}  // namespace
}  // namespace forklift::load
