// The SQLite Target and Sink on a temporary file: bad rows narrowed out one statement at a
// time, tables whose conflict clause or triggers roll the whole transaction back, and
// Cancel() racing Reconnect().
#include "sinks/sqlite_sink.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "sinks/sink_test_util.h"
#include "support/temp_dir.h"

namespace forklift::sinks {
namespace {

using ::testing::HasSubstr;

class SqliteSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    dir_ = tmp_.path();
    path_ = dir_ + "/t.db";
  }
  // Runs `sql` on its own connection (creating the file); the rows of the last statement
  // as "a|b" lines joined by ' '.
  std::string Sql(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    std::string out;
    char* err = nullptr;
    auto row = [](void* o, int n, char** v, char**) {
      auto* s = static_cast<std::string*>(o);
      if (!s->empty()) *s += ' ';
      for (int i = 0; i < n; ++i) *s += (i ? "|" : "") + std::string(v[i] ? v[i] : "NULL");
      return 0;
    };
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), row, &out, &err), SQLITE_OK)
        << sql << ": " << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
    return out;
  }

  // Opens the target (ledger included) and one sink on table t; the test fails when either
  // fails.
  std::unique_ptr<Sink> OpenSink(std::vector<std::string> columns,
                                 std::vector<std::string> key = {}) {
    auto address = ParseTargetAddress("sqlite:" + path_);
    EXPECT_TRUE(address);
    if (!address) return nullptr;
    TableSpec spec{.table = "t",
                   .columns = std::move(columns),
                   .key = key,
                   .upsert = !key.empty(),
                   .load_id = "L"};
    return SinkOf(Target::Open(*address, spec));
  }

  static Result<ChunkWriteResult> Write(Sink& sink, const Chunk& chunk) {
    return WriteNoLetters(sink, chunk);
  }

  test_support::TempDir tmp_{"forklift-sqlite-sink-test"};
  std::string dir_, path_;
};

TEST_F(SqliteSinkTest, AnAbortingConstraintRejectsTheRowAndTheRestCommits) {
  Sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'old')");
  auto sink = OpenSink({"id", "v"});
  ASSERT_NE(sink, nullptr);
  auto r = Write(*sink, MakeChunk(1, {"2,a", "1,dup", "3,c"}));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->rows_written, 2);
  ASSERT_EQ(r->rejected.size(), 1u);
  EXPECT_EQ(r->rejected[0].row, 1u);
  EXPECT_EQ(Sql("SELECT id, v FROM t ORDER BY id"), "1|old 2|a 3|c");
  EXPECT_EQ(Sql("SELECT chunk, rows, rejected FROM forklift_load_chunks"), "1|2|1");
}

TEST_F(SqliteSinkTest, AConflictClauseThatRollsBackFailsTheChunkAndCommitsNothing) {
  Sql("CREATE TABLE t(id INTEGER PRIMARY KEY ON CONFLICT ROLLBACK, v TEXT); "
      "INSERT INTO t VALUES (1, 'old')");
  auto sink = OpenSink({"id", "v"});
  ASSERT_NE(sink, nullptr);
  bool asked = false;
  auto r =
      sink->WriteChunk(MakeChunk(1, {"2,a", "1,dup", "3,c"}), [&](std::span<const RejectedRow>) {
        asked = true;
        return Status();
      });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);  // not a row, not retried
  EXPECT_THAT(r.error().message, HasSubstr("table t, line 2"));
  EXPECT_THAT(r.error().message, HasSubstr("ON CONFLICT ROLLBACK"));
  EXPECT_THAT(r.error().message, HasSubstr("nothing of this chunk was committed"));
  EXPECT_FALSE(asked);  // no dead letters for a chunk that does not commit
  EXPECT_EQ(Sql("SELECT id, v FROM t ORDER BY id"), "1|old");
  EXPECT_EQ(Sql("SELECT count(*) FROM forklift_load_chunks"), "0");
  // The sink is usable afterwards: a chunk of good rows commits.
  r = Write(*sink, MakeChunk(2, {"4,d"}));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(Sql("SELECT group_concat(id) FROM t"), "1,4");
}

TEST_F(SqliteSinkTest, ATriggerRaisingRollbackFailsTheUpsertChunkAndCommitsNothing) {
  Sql("CREATE TABLE t(k TEXT PRIMARY KEY, v INTEGER); "
      "CREATE TRIGGER no_negatives BEFORE INSERT ON t WHEN NEW.v < 0 "
      "BEGIN SELECT RAISE(ROLLBACK, 'no negatives'); END");
  auto sink = OpenSink({"k", "v"}, {"k"});
  ASSERT_NE(sink, nullptr);
  auto r = Write(*sink, MakeChunk(1, {"a,1", "b,-1", "c,3"}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_THAT(r.error().message, HasSubstr("no negatives"));
  EXPECT_THAT(r.error().message, HasSubstr("RAISE(ROLLBACK"));
  EXPECT_EQ(Sql("SELECT count(*) FROM t"), "0");
  EXPECT_EQ(Sql("SELECT count(*) FROM forklift_load_chunks"), "0");
}

// Cancel() from another thread while Reconnect() closes the handle it interrupts: guarded,
// so no use after free (a build with -fsanitize=thread reports the race without the guard).
TEST_F(SqliteSinkTest, CancelRacingReconnectIsSafe) {
  Sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  auto sink = OpenSink({"id", "v"});
  ASSERT_NE(sink, nullptr);
  std::atomic<bool> stop{false};
  std::atomic<int> cancels{0};
  std::thread canceller([&] {
    while (!stop.load()) {
      sink->Cancel();
      ++cancels;
    }
  });
  // An interrupt may fail a reconnect's own statements (SQLITE_INTERRUPT): that is what
  // cancelling asks for. What matters is that none touches a closed handle.
  for (int i = 0; i < 200; ++i) (void)sink->Reconnect();
  stop = true;
  canceller.join();
  EXPECT_GT(cancels.load(), 0);
  ASSERT_TRUE(sink->Reconnect());
  auto r = Write(*sink, MakeChunk(1, {"1,a"}));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(Sql("SELECT id, v FROM t"), "1|a");
}

// Two loads into one file at once: the second is refused (its counts would be wrong), and
// the file is free again once the first target is gone.
TEST_F(SqliteSinkTest, ClaimLoadTakesTheFileForOneLoadAtATime) {
  Sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  auto address = ParseTargetAddress("sqlite:" + path_);
  ASSERT_TRUE(address);
  TableSpec spec{.table = "t", .columns = {"id", "v"}, .load_id = "L"};
  auto first = Target::Open(*address, spec);
  ASSERT_TRUE(first) << first.error().ToString();
  ASSERT_TRUE((*first)->ClaimLoad());
  EXPECT_TRUE((*first)->ClaimLoad()) << "claiming again is harmless";
  auto second = Target::Open(*address, spec);
  ASSERT_TRUE(second) << second.error().ToString();
  auto refused = (*second)->ClaimLoad();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kAborted);
  EXPECT_THAT(refused.error().message, HasSubstr("another load with load id L"));
  first->reset();
  EXPECT_TRUE((*second)->ClaimLoad());
}

// --ledger-schema is a PostgreSQL option; --no-header reads the table's columns.
TEST_F(SqliteSinkTest, LedgerSchemaIsRefusedAndTableColumnsAreRead) {
  Sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, w REAL)");
  auto address = ParseTargetAddress("sqlite:" + path_);
  ASSERT_TRUE(address);
  TableSpec spec{.table = "t", .columns = {"id"}, .load_id = "L", .ledger_schema = "x"};
  auto t = Target::Open(*address, spec);
  ASSERT_FALSE(t);
  EXPECT_THAT(t.error().message, HasSubstr("--ledger-schema"));
  auto cols = ReadTableColumns(*address, "", "t");
  ASSERT_TRUE(cols) << cols.error().ToString();
  EXPECT_EQ(*cols, (std::vector<std::string>{"id", "v", "w"}));
  auto none = ReadTableColumns(*address, "", "nope");
  ASSERT_FALSE(none);
  EXPECT_THAT(none.error().message, HasSubstr("no such table"));
}

}  // namespace
}  // namespace forklift::sinks
