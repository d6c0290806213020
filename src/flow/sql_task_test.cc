#include "flow/sql_task.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "support/temp_dir.h"

namespace forklift::flow {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

TEST(SplitSqlStatementsTest, SplitsOutsideStringsCommentsAndDollarBodies) {
  auto s = SplitSqlStatements(
      "-- cleanup\n"
      "DELETE FROM t WHERE note = 'a;b''c';\n"
      "/* a; /* nested; */ still; */ UPDATE \"x;y\" SET v = 1;\n"
      "\n"
      "DO $body$ BEGIN PERFORM 1; END $body$;\n"
      "SELECT $$;$$, $1 ;;  -- trailing\n"
      "VACUUM ANALYZE t");
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s[0].line, 2);
  EXPECT_THAT(s[0].text, HasSubstr("DELETE FROM t WHERE note = 'a;b''c'"));
  EXPECT_EQ(s[1].line, 3);
  EXPECT_THAT(s[1].text, HasSubstr("UPDATE \"x;y\" SET v = 1"));
  EXPECT_EQ(s[2].line, 5);
  EXPECT_THAT(s[2].text, HasSubstr("DO $body$ BEGIN PERFORM 1; END $body$"));
  EXPECT_THAT(s[3].text, HasSubstr("SELECT $$;$$, $1"));
  EXPECT_EQ(s[4].line, 7);
  EXPECT_THAT(s[4].text, HasSubstr("VACUUM ANALYZE t"));
  EXPECT_TRUE(SplitSqlStatements("  -- only a comment\n/* and this */ ;").empty());
}

TEST(SplitSqlStatementsTest, UnterminatedQuotesRunToTheEnd) {
  auto s = SplitSqlStatements("SELECT 'never closed; SELECT 2");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].text, "SELECT 'never closed; SELECT 2");
}

TEST(NeedsOwnTransactionTest, KnowsWhatPostgresRefusesInATransaction) {
  EXPECT_TRUE(NeedsOwnTransaction("VACUUM ANALYZE public.prices"));
  EXPECT_TRUE(NeedsOwnTransaction("  -- x\n vacuum"));
  EXPECT_TRUE(NeedsOwnTransaction("CREATE INDEX CONCURRENTLY i ON t (a)"));
  EXPECT_TRUE(NeedsOwnTransaction("create unique index concurrently i on t (a)"));
  EXPECT_TRUE(NeedsOwnTransaction("DROP INDEX CONCURRENTLY i"));
  EXPECT_TRUE(NeedsOwnTransaction("REINDEX TABLE CONCURRENTLY t"));
  EXPECT_TRUE(NeedsOwnTransaction("CREATE DATABASE d"));
  EXPECT_TRUE(NeedsOwnTransaction("ALTER SYSTEM SET work_mem = '1MB'"));
  EXPECT_FALSE(NeedsOwnTransaction("CREATE INDEX i ON t (a)"));
  EXPECT_FALSE(NeedsOwnTransaction("DELETE FROM t"));
  EXPECT_FALSE(NeedsOwnTransaction("ANALYZE t"));
}

class SqliteTaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    dir_ = tmp_.path();
    path_ = dir_ + "/db.sqlite";
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                           "INSERT INTO t(v) VALUES ('a'), ('b'), ('c');",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  int64_t Count() {
    sqlite3* db = nullptr;
    sqlite3_open(path_.c_str(), &db);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, nullptr);
    sqlite3_step(st);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
  }

  SqlTaskOptions Options(std::string text) {
    SqlTaskOptions o;
    o.dsn = "sqlite:" + path_;
    o.text = std::move(text);
    o.source = "cleanup.sql";
    return o;
  }

  test_support::TempDir tmp_{"forklift-sql-task"};
  std::string dir_, path_;
};

TEST_F(SqliteTaskTest, RunsStatementsAndReportsRowsAffected) {
  std::vector<std::string> logged;
  SqlTaskOptions o = Options("DELETE FROM t WHERE v <> 'a';\nUPDATE t SET v = 'z';\nVACUUM;");
  o.log = [&](std::string_view line) { logged.emplace_back(line); };
  SqlTaskResult r = RunSqlTask(o);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_THAT(r.tags, ElementsAre("DELETE 2", "UPDATE 1", "VACUUM"));
  EXPECT_THAT(logged, ElementsAre("cleanup.sql:1: DELETE 2", "cleanup.sql:2: UPDATE 1",
                                  "cleanup.sql:3: VACUUM"));
  EXPECT_EQ(Count(), 1);
}

TEST_F(SqliteTaskTest, AFailedStatementNamesItsLineAndRollsTheTransactionBack) {
  SqlTaskResult r = RunSqlTask(Options("DELETE FROM t;\n\nINSERT INTO nope VALUES (1);"));
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr("cleanup.sql:3: no such table: nope"));
  EXPECT_EQ(Count(), 3) << "the DELETE before it rolled back with it";
  EXPECT_THAT(r.tags, ElementsAre("DELETE 3 (rolled back)")) << "a tag must not read as done";
}

TEST_F(SqliteTaskTest, TheTimeoutInterruptsTheStatement) {
  SqlTaskOptions o = Options(
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n;");
  o.timeout = std::chrono::milliseconds(200);
  auto t0 = std::chrono::steady_clock::now();
  SqlTaskResult r = RunSqlTask(o);
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.timed_out);
  EXPECT_THAT(r.error, HasSubstr("cleanup.sql:1: timed out after 200.00ms"));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
}

TEST_F(SqliteTaskTest, AMissingDatabaseIsAnErrorNotANewFile) {
  SqlTaskOptions o = Options("DELETE FROM t");
  o.dsn = "sqlite:" + dir_ + "/missing.sqlite";
  SqlTaskResult r = RunSqlTask(o);
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr("cannot open sqlite:"));
  EXPECT_FALSE(fs::exists(dir_ + "/missing.sqlite"));
}

}  // namespace
}  // namespace forklift::flow
