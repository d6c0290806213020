#include "sinks/query_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "sqlite/sqlite.h"
#include "support/pg_server.h"
#include "support/temp_dir.h"

namespace forklift::sinks {
namespace {

using ::forklift::testing::SharedPgServer;
using ::testing::HasSubstr;

// Everything a stream yields up to its end or its error, 7 bytes at a time (pieces never
// line up with rows).
Result<std::string> TryReadAll(sources::ByteSource& source) {
  std::string out;
  char buf[7];  // NOLINT(modernize-avoid-c-arrays): a deliberately odd read size
  for (;;) {
    FORKLIFT_ASSIGN_OR_RETURN(size_t n, source.Read(buf, sizeof buf));
    if (n == 0) return out;
    out.append(buf, n);
  }
}

std::string ReadAll(sources::ByteSource& source) {
  std::string out;
  char buf[7];  // NOLINT(modernize-avoid-c-arrays): a deliberately odd read size
  for (;;) {
    auto n = source.Read(buf, sizeof buf);
    EXPECT_TRUE(n) << (n ? "" : n.error().message);
    if (!n || *n == 0) return out;
    out.append(buf, *n);
  }
}

QuerySpec Spec(const std::string& from, std::string query) {
  auto address = ParseTargetAddress(from);
  EXPECT_TRUE(address);
  return QuerySpec{.from = address ? *address : TargetAddress{}, .query = std::move(query)};
}

TEST(QuerySourceTest, NormalizeQueryDropsTrailingSemicolonsAndBlanks) {
  EXPECT_EQ(NormalizeQuery("select 1; \n;\t"), "select 1");
  EXPECT_EQ(NormalizeQuery("select ';'"), "select ';'");
}

TEST(QuerySourceTest, SqlWrapsTheQueryWithPartitionAndKey) {
  QuerySpec spec{
      .query = "select * from t;", .resume_key = {"a", "B"}, .partition_by = "p", .partitions = 4};
  const std::vector<QueryColumn> columns = {{"a", "bigint"}, {"B", "text"}, {"p", "text"}};
  EXPECT_EQ(PgQueryCopySql(spec, columns, 2, /*after=*/true),
            "COPY (SELECT * FROM (select * from t) AS forklift_q WHERE "
            "(mod(hashtextextended(coalesce(forklift_q.\"p\"::text, ''), 0), 4) + 4) % 4 = 2 "
            "AND (forklift_q.\"a\", forklift_q.\"B\") > "
            "(current_setting('forklift.after_1')::bigint, "
            "current_setting('forklift.after_2')::text) "
            "ORDER BY forklift_q.\"a\", forklift_q.\"B\") TO STDOUT (FORMAT csv, HEADER)");
  EXPECT_EQ(SqliteQuerySql(spec, 1, /*after=*/false),
            "SELECT * FROM (select * from t) AS forklift_q WHERE "
            "forklift_partition(forklift_q.\"p\", 4) = 1 ORDER BY forklift_q.\"a\", "
            "forklift_q.\"B\"");
  QuerySpec plain{.query = "select 1"};
  EXPECT_EQ(PgQueryCopySql(plain, {}, 0, false),
            "COPY (SELECT * FROM (select 1) AS forklift_q) TO STDOUT (FORMAT csv, HEADER)");
}

class SqliteQuerySourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.path() + "/src.db";
    auto db = sqlite::Db::Open(path_, {.flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE});
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->Exec(
        "CREATE TABLE s(id INTEGER PRIMARY KEY, name TEXT, x REAL, b BLOB);"
        "INSERT INTO s VALUES (1, 'plain', 0.1, NULL), (2, 'a,\"b\"', 2.5, x'00ff'),"
        "(3, '', NULL, NULL), (4, NULL, 1e300, NULL), (5, 'line' || char(10) || 'two', -2.25, "
        "NULL)"));
  }

  test_support::TempDir dir_;
  std::string path_;
};

TEST_F(SqliteQuerySourceTest, DescribeNamesTheResultsColumns) {
  auto cols = DescribeQuery(Spec("sqlite:" + path_, "select id, name as n from s"));
  ASSERT_TRUE(cols) << cols.error().message;
  ASSERT_EQ(cols->size(), 2u);
  EXPECT_EQ((*cols)[0].name, "id");
  EXPECT_EQ((*cols)[0].type, "INTEGER");
  EXPECT_EQ((*cols)[1].name, "n");
}

TEST_F(SqliteQuerySourceTest, DescribeRefusesBadQueriesAndDuplicateNames) {
  auto bad = DescribeQuery(Spec("sqlite:" + path_, "select nope from s"));
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("--query"));
  EXPECT_THAT(bad.error().message, HasSubstr("no such column: nope"));
  auto dup = DescribeQuery(Spec("sqlite:" + path_, "select id, id from s"));
  ASSERT_FALSE(dup);
  EXPECT_THAT(dup.error().message, HasSubstr("two columns named 'id'"));
}

TEST_F(SqliteQuerySourceTest, StreamWritesCsvThatKeepsNullEmptyQuotesAndNumbers) {
  QuerySpec spec = Spec("sqlite:" + path_, "select * from s");
  spec.resume_key = {"id"};
  auto source = OpenQueryStream(spec, {}, 0, {}, "query");
  ASSERT_TRUE(source) << source.error().message;
  EXPECT_EQ(ReadAll(**source),
            "id,name,x,b\n"
            "1,plain,0.1,\n"
            "2,\"a,\"\"b\"\"\",2.5,\\x00ff\n"
            "3,\"\",,\n"
            "4,,1e+300,\n"
            "5,\"line\ntwo\",-2.25,\n");
}

TEST_F(SqliteQuerySourceTest, IntegerRangesSplitMinToMaxAndResumeAfterAKey) {
  QuerySpec spec = Spec("sqlite:" + path_, "select id, name from s");
  spec.partition_by = "id";
  spec.partitions = 2;
  spec.resume_key = {"id"};
  auto cols = DescribeQuery(spec);
  ASSERT_TRUE(cols) << cols.error().message;
  ASSERT_TRUE(IsRangeColumn(spec, *cols));
  auto bounds = ComputeRangeBounds(spec, *cols);
  ASSERT_TRUE(bounds) << bounds.error().message;
  EXPECT_EQ(*bounds, (std::vector<std::string>{"3"}));  // 1..5 in widths of 2.5
  spec.range_bounds = *bounds;
  std::vector<std::string> parts;
  for (int p = 0; p < 2; ++p) {
    auto part = OpenQueryStream(spec, *cols, p, {}, "query");
    ASSERT_TRUE(part) << part.error().message;
    parts.push_back(ReadAll(**part));
  }
  EXPECT_EQ(parts[0], "id,name\n1,plain\n2,\"a,\"\"b\"\"\"\n");
  EXPECT_EQ(parts[1], "id,name\n3,\"\"\n4,\n5,\"line\ntwo\"\n");
  // Resumed after a key, the range and the key each bind their own values.
  auto after = OpenQueryStream(spec, *cols, 1, {"3"}, "query");
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(ReadAll(**after), "id,name\n4,\n5,\"line\ntwo\"\n");
  spec.partition_by = "name";  // TEXT: hashed
  EXPECT_FALSE(IsRangeColumn(spec, *cols));
  EXPECT_FALSE(ComputeRangeBounds(spec, *cols));
}

TEST_F(SqliteQuerySourceTest, StreamResumesAfterAKeyAndSplitsIntoDisjointPartitions) {
  QuerySpec spec = Spec("sqlite:" + path_, "select id from s");
  spec.resume_key = {"id"};
  auto after = OpenQueryStream(spec, {}, 0, {"3"}, "query");
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(ReadAll(**after), "id\n4\n5\n");
  spec.partition_by = "id";
  spec.partitions = 3;
  std::string all;
  for (int p = 0; p < 3; ++p) {
    auto part = OpenQueryStream(spec, {}, p, {}, "query");
    ASSERT_TRUE(part) << part.error().message;
    std::string text = ReadAll(**part);
    ASSERT_TRUE(text.starts_with("id\n")) << text;
    all += text.substr(3);
  }
  std::string sorted_lines;
  std::vector<std::string> lines;
  for (size_t pos = 0; pos < all.size();) {
    const size_t nl = all.find('\n', pos);
    lines.push_back(all.substr(pos, nl - pos));
    pos = nl + 1;
  }
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"1", "2", "3", "4", "5"}));
}

class PgQuerySourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = SharedPgServer();
    ASSERT_NE(pg_, nullptr);
    auto r = pg_->Sql(
        "DROP SCHEMA IF EXISTS qs CASCADE; CREATE SCHEMA qs; "
        "CREATE TABLE qs.s(id int, day date, note text); "
        "INSERT INTO qs.s SELECT i, date '2024-01-01' + i, CASE WHEN i = 2 THEN NULL WHEN i = 3 "
        "THEN '' ELSE 'n,' || i END FROM generate_series(1, 6) i");
    ASSERT_TRUE(r) << r.error().message;
  }

  forklift::testing::PgServer* pg_ = nullptr;
};

TEST_F(PgQuerySourceTest, DescribeGivesNamesAndTypesAndNamesTheServersError) {
  auto cols = DescribeQuery(Spec(pg_->dsn(), "select id, day, note as \"Note\" from qs.s;"));
  ASSERT_TRUE(cols) << cols.error().message;
  ASSERT_EQ(cols->size(), 3u);
  EXPECT_EQ((*cols)[1].type, "date");
  EXPECT_EQ((*cols)[2].name, "Note");
  auto bad = DescribeQuery(Spec(pg_->dsn(), "select id from qs.nope"));
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("--query: SQLSTATE 42P01"));
}

TEST_F(PgQuerySourceTest, StreamCopiesInKeyOrderAfterAKeyAndByPartition) {
  QuerySpec spec = Spec(pg_->dsn(), "select id, day, note from qs.s");
  spec.resume_key = {"day"};
  auto cols = DescribeQuery(spec);
  ASSERT_TRUE(cols);
  auto all = OpenQueryStream(spec, *cols, 0, {}, "query");
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(ReadAll(**all),
            "id,day,note\n1,2024-01-02,\"n,1\"\n2,2024-01-03,\n3,2024-01-04,\"\"\n"
            "4,2024-01-05,\"n,4\"\n5,2024-01-06,\"n,5\"\n6,2024-01-07,\"n,6\"\n");
  // The key's value travels as a parameter and is compared as the column's type.
  auto after = OpenQueryStream(spec, *cols, 0, {"2024-01-05"}, "query");
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(ReadAll(**after), "id,day,note\n5,2024-01-06,\"n,5\"\n6,2024-01-07,\"n,6\"\n");
  // A value that is no date fails as the server's cast does (at the COPY's start or its
  // first read), whatever it holds.
  auto injected = OpenQueryStream(spec, *cols, 0, {"x') --"}, "query");
  Result<std::string> read =
      injected ? TryReadAll(**injected) : Result<std::string>(tl::unexpected(injected.error()));
  ASSERT_FALSE(read) << *read;
  EXPECT_THAT(read.error().message, HasSubstr("SQLSTATE 22007"));
  spec.partition_by = "note";  // NULL and '' too
  spec.partitions = 2;
  size_t rows = 0;
  for (int p = 0; p < 2; ++p) {
    auto part = OpenQueryStream(spec, *cols, p, {}, "query");
    ASSERT_TRUE(part) << part.error().message;
    std::string text = ReadAll(**part);
    rows += static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) - 1;
  }
  EXPECT_EQ(rows, 6u);
}

TEST_F(PgQuerySourceTest, AnErrorMidStreamFailsTheReadWithSqlstate) {
  QuerySpec spec = Spec(pg_->dsn(), "select i, 1 / (50000 - i) from generate_series(1, 100000) i");
  auto cols = DescribeQuery(spec);
  ASSERT_TRUE(cols);
  auto s = OpenQueryStream(spec, *cols, 0, {}, "query");
  Result<std::string> read = s ? TryReadAll(**s) : Result<std::string>(tl::unexpected(s.error()));
  ASSERT_FALSE(read) << "the stream ended without the query's error";
  EXPECT_THAT(read.error().message, HasSubstr("SQLSTATE 22012"));
  EXPECT_THAT(read.error().message, HasSubstr("division by zero"));
}

TEST(QuerySourceTest, RangePartitionsSplitAtTheirBounds) {
  QuerySpec spec{.query = "select * from t",
                 .partition_by = "d",
                 .partitions = 3,
                 .range_bounds = {"2024-01-01", "2024-06-01"}};
  const std::vector<QueryColumn> columns = {{"d", "date"}};
  auto where = [&](int p) {
    const std::string sql = PgQueryCopySql(spec, columns, p, false);
    const size_t at = sql.find(" WHERE ");
    return at == std::string::npos ? sql : sql.substr(at + 7, sql.find(") TO STDOUT") - at - 7);
  };
  EXPECT_EQ(where(0),
            "(forklift_q.\"d\" < current_setting('forklift.bound_1')::date OR forklift_q.\"d\" "
            "IS NULL)");
  EXPECT_EQ(where(1),
            "forklift_q.\"d\" >= current_setting('forklift.bound_1')::date AND forklift_q.\"d\" < "
            "current_setting('forklift.bound_2')::date");
  EXPECT_EQ(where(2), "forklift_q.\"d\" >= current_setting('forklift.bound_2')::date");
  EXPECT_TRUE(IsRangeType("bigint"));
  EXPECT_TRUE(IsRangeType("date"));
  EXPECT_TRUE(IsRangeType("timestamp with time zone"));
  EXPECT_TRUE(IsRangeType("timestamp(3) without time zone"));
  EXPECT_FALSE(IsRangeType("text"));
  EXPECT_FALSE(IsRangeType("numeric"));
  EXPECT_FALSE(IsRangeType("time without time zone"));
  EXPECT_TRUE(IsSqliteRangeType("INTEGER"));
  EXPECT_TRUE(IsSqliteRangeType("bigint"));
  EXPECT_FALSE(IsSqliteRangeType("TEXT"));
  EXPECT_FALSE(IsSqliteRangeType(""));
}

// SQLite: the bounds are numbered after the resume key's values, so the two never share a
// parameter (a named one would take number 1 when the range comes first).
TEST(QuerySourceTest, SqliteRangeBoundsAreNumberedAfterTheKey) {
  QuerySpec spec{.query = "select * from t",
                 .resume_key = {"id"},
                 .partition_by = "id",
                 .partitions = 3,
                 .range_bounds = {"10", "20"}};
  EXPECT_EQ(SqliteQuerySql(spec, 1, /*after=*/true),
            "SELECT * FROM (select * from t) AS forklift_q WHERE forklift_q.\"id\" >= ?2 AND "
            "forklift_q.\"id\" < ?3 AND (forklift_q.\"id\") > (?1) ORDER BY forklift_q.\"id\"");
}

// Bounds of equal width from min and max; the ranges together read every row once, NULL
// included (in partition 0).
TEST_F(PgQuerySourceTest, RangeBoundsSplitIntegersAndDatesAndCoverEveryRow) {
  QuerySpec spec =
      Spec(pg_->dsn(), "select id, day, note from qs.s union all select null, null, 'x'");
  spec.partition_by = "id";
  spec.partitions = 3;
  auto cols = DescribeQuery(spec);
  ASSERT_TRUE(cols) << cols.error().message;
  auto bounds = ComputeRangeBounds(spec, *cols);
  ASSERT_TRUE(bounds) << bounds.error().message;
  EXPECT_EQ(*bounds, (std::vector<std::string>{"3", "5"}));  // 1..6 in widths of 2
  spec.range_bounds = *bounds;
  std::vector<std::string> parts;
  for (int p = 0; p < 3; ++p) {
    auto part = OpenQueryStream(spec, *cols, p, {}, "query");
    ASSERT_TRUE(part) << part.error().message;
    parts.push_back(ReadAll(**part));
  }
  EXPECT_EQ(parts[0], "id,day,note\n1,2024-01-02,\"n,1\"\n2,2024-01-03,\n,,x\n");
  EXPECT_EQ(parts[1], "id,day,note\n3,2024-01-04,\"\"\n4,2024-01-05,\"n,4\"\n");
  EXPECT_EQ(parts[2], "id,day,note\n5,2024-01-06,\"n,5\"\n6,2024-01-07,\"n,6\"\n");
  spec.partition_by = "day";
  auto days = ComputeRangeBounds(spec, *cols);
  ASSERT_TRUE(days) << days.error().message;
  EXPECT_EQ(*days, (std::vector<std::string>{"2024-01-04", "2024-01-06"}));
  spec.partition_by = "note";
  EXPECT_FALSE(ComputeRangeBounds(spec, *cols));
}

}  // namespace
}  // namespace forklift::sinks
