#include "sqlite/sqlite.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "support/temp_dir.h"

namespace forklift::sqlite {
namespace {

using ::testing::HasSubstr;

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    dir_ = tmp_.path();
    path_ = dir_ + "/t.db";
  }

  Db OpenOk(OpenOptions options = {.flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                            SQLITE_OPEN_NOMUTEX}) {
    auto db = Db::Open(path_, options);
    EXPECT_TRUE(db) << db.error().ToString();
    return std::move(*db);
  }

  test_support::TempDir tmp_{"forklift-sqlite"};
  std::string dir_, path_;
};

TEST_F(SqliteTest, OpenWithoutCreateRefusesAMissingFileWithSqlitesReason) {
  auto db = Db::Open(path_);
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().message, "unable to open database file");
  EXPECT_FALSE(std::filesystem::exists(path_)) << "no empty database made";
}

TEST_F(SqliteTest, TypedBindsAndColumnsRoundTripBytesNullsAndNumbers) {
  Db db = OpenOk();
  ASSERT_TRUE(db.Exec("CREATE TABLE t(a BLOB, b TEXT, c INTEGER, d REAL)"));
  auto insert = db.Prepare("INSERT INTO t VALUES(?1, ?2, ?3, ?4)", /*persistent=*/true);
  ASSERT_TRUE(insert) << insert.error().ToString();
  const std::string bytes("a\0\xff", 3);
  {
    StatementUse s(*insert);
    s.BindBlob(1, bytes);
    s.BindText(2, "");  // an empty text is a value, not NULL
    s.BindInt64(3, -7);
    s.BindDouble(4, 1.5);
    ASSERT_EQ(s.Step(), SQLITE_DONE);
  }
  {
    // The previous use reset the statement and cleared its bindings.
    StatementUse s(*insert);
    s.BindBlobOrNull(1, "");
    s.BindTextOrNull(2, "");
    s.BindOptInt64(3, std::nullopt);
    ASSERT_EQ(s.Step(), SQLITE_DONE);
  }
  EXPECT_EQ(db.LastInsertRowid(), 2);
  auto select = db.Prepare("SELECT a, b, c, d FROM t ORDER BY rowid");
  ASSERT_TRUE(select);
  StatementUse s(*select);
  ASSERT_EQ(s.Step(), SQLITE_ROW);
  EXPECT_EQ(s.ColumnString(0), bytes);
  EXPECT_FALSE(s.ColumnIsNull(1));
  EXPECT_EQ(s.ColumnInt64(2), -7);
  EXPECT_EQ(s.ColumnOptDouble(3), 1.5);
  std::string a, b;
  int64_t c = 0;
  std::optional<double> d;
  s.Read(0, a, b, c, d);
  EXPECT_EQ(a, bytes);
  EXPECT_EQ(b, "");
  EXPECT_EQ(c, -7);
  EXPECT_EQ(d, 1.5);
  ASSERT_EQ(s.Step(), SQLITE_ROW);
  std::optional<int64_t> none = 5;
  int zero = 1;
  s.Read(2, none);
  s.Read(3, zero);
  EXPECT_EQ(none, std::nullopt);
  EXPECT_EQ(zero, 0) << "NULL reads as 0";
  EXPECT_TRUE(s.ColumnIsNull(0));
  EXPECT_TRUE(s.ColumnIsNull(1));
  EXPECT_EQ(s.ColumnOptInt64(2), std::nullopt);
  EXPECT_EQ(s.ColumnOptDouble(3), std::nullopt);
  EXPECT_EQ(s.Step(), SQLITE_DONE);
}

TEST_F(SqliteTest, ErrorsNameTheLabelAndTheSql) {
  Db db = OpenOk({.flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, .label = "sqlite:t.db"});
  auto bad = db.Exec("SELEKT 1");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInternal);
  EXPECT_THAT(bad.error().message, HasSubstr("sqlite:t.db: SELEKT 1: "));
  EXPECT_THAT(bad.error().message, HasSubstr("syntax error"));
  auto prep = db.Prepare("SELECT * FROM missing");
  ASSERT_FALSE(prep);
  EXPECT_THAT(prep.error().message,
              HasSubstr("sqlite:t.db: prepare SELECT * FROM missing: no such table: missing"));
}

TEST_F(SqliteTest, QueriesReadOneValue) {
  Db db = OpenOk();
  EXPECT_EQ(db.QueryInt64("SELECT 42").value(), 42);
  EXPECT_EQ(db.QueryText("SELECT 'x'").value(), "x");
  ASSERT_TRUE(db.Exec("CREATE TABLE e(x)"));
  EXPECT_EQ(db.QueryText("SELECT x FROM e").value(), std::nullopt);
  EXPECT_EQ(db.EnableWal().value(), "wal");
}

TEST_F(SqliteTest, EnableWalSaysTheModeWhereWalIsImpossible) {
  auto db = Db::Open(":memory:", {.flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX});
  ASSERT_TRUE(db);
  EXPECT_EQ(db->EnableWal().value(), "memory");
}

TEST_F(SqliteTest, TransactionRollsBackUnlessCommitted) {
  Db db = OpenOk();
  ASSERT_TRUE(db.Exec("CREATE TABLE t(x)"));
  {
    Transaction txn(db, "fill");
    ASSERT_TRUE(txn.Begin());
    EXPECT_FALSE(db.Autocommit());
    ASSERT_TRUE(db.Exec("INSERT INTO t VALUES(1)"));
  }
  EXPECT_TRUE(db.Autocommit());
  EXPECT_EQ(db.QueryInt64("SELECT count(*) FROM t").value(), 0);
  {
    Transaction txn(db, "fill", Transaction::Mode::kDeferred);
    ASSERT_TRUE(txn.Begin());
    ASSERT_TRUE(db.Exec("INSERT INTO t VALUES(1), (2)"));
    EXPECT_EQ(db.Changes(), 2);
    ASSERT_TRUE(txn.Commit());
  }
  EXPECT_EQ(db.QueryInt64("SELECT count(*) FROM t").value(), 2);
}

TEST_F(SqliteTest, BusyPastTheTimeoutIsUnavailable) {
  Db holder = OpenOk();
  ASSERT_TRUE(holder.EnableWal());
  ASSERT_TRUE(holder.Exec("CREATE TABLE t(x)"));
  Transaction held(holder, "hold");
  ASSERT_TRUE(held.Begin());
  Db other = OpenOk({.flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                     .busy_timeout_ms = 20,
                     .label = "other"});
  Transaction txn(other, "write");
  auto begun = txn.Begin();
  ASSERT_FALSE(begun);
  EXPECT_EQ(begun.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(begun.error().message, HasSubstr("other: write: begin: database is locked"));
  EXPECT_TRUE(IsBusy(SQLITE_BUSY_SNAPSHOT));
  EXPECT_EQ(CodeOf(SQLITE_NOTADB), ErrorCode::kDataLoss);
}

TEST_F(SqliteTest, AFailedBindIsReportedByStep) {
  Db db = OpenOk();
  sqlite3_limit(db.get(), SQLITE_LIMIT_LENGTH, 10);
  auto stmt = db.Prepare("SELECT ?1");
  ASSERT_TRUE(stmt);
  StatementUse s(*stmt);
  s.BindText(1, std::string(100, 'x'));
  EXPECT_EQ(s.Step(), SQLITE_TOOBIG);
}

}  // namespace
}  // namespace forklift::sqlite
