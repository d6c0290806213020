// The PostgreSQL Target and Sink against a real server (tests/support): upsert semantics
// (NULL keys, INCLUDE and DEFERRABLE indexes, types without `=`) and exactly-once when an
// earlier attempt of a chunk commits behind the writer's back.
#include "sinks/pg_sink.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "sinks/pg_connection.h"
#include "sinks/sink_test_util.h"
#include "support/pg_server.h"

namespace forklift::sinks {
namespace {

using ::forklift::testing::PgServer;
using ::forklift::testing::SharedPgServer;
using ::testing::HasSubstr;

class PgSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = SharedPgServer();
    ASSERT_NE(pg_, nullptr);
    Sql("DROP SCHEMA IF EXISTS ps CASCADE; CREATE SCHEMA ps");
  }

  std::string Sql(const std::string& sql) {
    auto r = pg_->Sql(sql);
    EXPECT_TRUE(r) << sql << ": " << (r ? "" : r.error().message);
    return r ? *r : "";
  }

  static TableSpec Spec(std::vector<std::string> columns, std::vector<std::string> key = {}) {
    return TableSpec{.schema = "ps",
                     .table = "t",
                     .columns = std::move(columns),
                     .key = key,
                     .upsert = !key.empty(),
                     .load_id = "L"};
  }

  Result<std::unique_ptr<Target>> Open(const TableSpec& spec) {
    auto address = ParseTargetAddress(pg_->dsn());
    EXPECT_TRUE(address);
    if (!address) return tl::unexpected(address.error());
    return Target::Open(*address, spec);
  }

  // Opens the target (ledger included) and one sink; the test fails when either fails.
  std::unique_ptr<Sink> OpenSink(const TableSpec& spec) { return SinkOf(Open(spec)); }

  static Result<ChunkWriteResult> Write(Sink& sink, const Chunk& chunk) {
    return WriteNoLetters(sink, chunk);
  }

  // Records chunk `number` in the ledger as committed, as an earlier attempt would have.
  std::string LedgerInsert(int64_t number, int64_t rows, const std::string& checksum) {
    return "INSERT INTO ps.forklift_load_chunks (load_id, chunk, source, first_line, "
           "last_line, rows, rejected, checksum, target_table) VALUES ('L', " +
           std::to_string(number) + ", 'in.csv', 1, 2, " + std::to_string(rows) + ", 0, '" +
           checksum + "', 'ps.t')";
  }

  // The race itself: an earlier attempt's transaction holds the chunk's rows and ledger row,
  // uncommitted, while this attempt writes; it commits while this attempt waits on its locks.
  // Insert mode meets it as unique violations on the rows (which must not become dead
  // letters), upsert mode as a unique violation on the ledger row.
  void RaceAnEarlierAttempt(Sink& sink) {
    auto dsn = ParsePgDsn(pg_->dsn());
    ASSERT_TRUE(dsn);
    auto earlier = PgConnection::Connect(*dsn);
    ASSERT_TRUE(earlier) << earlier.error().ToString();
    ASSERT_TRUE(
        (*earlier)->Exec("BEGIN; INSERT INTO ps.t VALUES (1, 1), (2, 2); "
                         "INSERT INTO ps.forklift_load_chunks (load_id, chunk, source, "
                         "first_line, last_line, rows, rejected, checksum, target_table) "
                         "VALUES ('L', 1, 'in.csv', 1, 2, 2, 0, 'sum-1', 'ps.t')"));
    std::atomic<size_t> letters{0};
    auto done = std::async(std::launch::async, [&] {
      return sink.WriteChunk(MakeChunk(1, {"1,1", "2,2"}), [&](std::span<const RejectedRow> r) {
        letters += r.size();
        return Status();
      });
    });
    // Commit only once this attempt waits on the earlier one's locks.
    bool waiting = false;
    for (int i = 0; i < 1000 && !waiting; ++i) {
      waiting = pg_->Sql(
                       "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                       "AND application_name = 'forklift'")
                    .value_or("0") != "0";
      if (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(waiting);
    ASSERT_TRUE((*earlier)->Exec("COMMIT"));
    auto r = done.get();
    ASSERT_TRUE(r) << r.error().ToString();
    EXPECT_TRUE(r->already_committed);
    EXPECT_EQ(r->rows_written, 2);
    EXPECT_TRUE(r->rejected.empty());
    EXPECT_EQ(letters.load(), 0u);
    EXPECT_EQ(Sql("SELECT string_agg(k || ':' || v, ' ' ORDER BY k) FROM ps.t"), "1:1 2:2");
    EXPECT_EQ(Sql("SELECT count(*) FROM ps.forklift_load_chunks"), "1");
  }

  PgServer* pg_ = nullptr;
};

// The upsert tells new rows from changed ones, and leaves the unchanged and the rows a
// later one of their key replaced in neither; the fast path (distinct new keys) counts its
// rows as inserted; a row narrowed out counts in neither.
TEST_F(PgSinkTest, UpsertCountsInsertedAndUpdatedRows) {
  Sql("CREATE TABLE ps.t (id int PRIMARY KEY, v text CHECK (v <> 'bad'))");
  auto sink = OpenSink(Spec({"id", "v"}, {"id"}));
  ASSERT_NE(sink, nullptr);
  auto r = Write(*sink, MakeChunk(0, {"1,a", "2,b", "3,c"}));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->rows_inserted, 3);
  EXPECT_EQ(r->rows_updated, 0);
  // 1 unchanged, 2 changed, 3 given twice (the last row wins: one update), 4 new.
  r = Write(*sink, MakeChunk(1, {"1,a", "2,B", "3,x", "3,C", "4,d"}));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->rows_written, 5);
  EXPECT_EQ(r->rows_inserted, 1);
  EXPECT_EQ(r->rows_updated, 2);
  // Narrowed: 6 refused by the CHECK, the rest applied in pieces, each counted once.
  r = Write(*sink, MakeChunk(2, {"1,A", "5,e", "6,bad", "7,g"}));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->rows_written, 3);
  EXPECT_EQ(r->rows_inserted, 2);
  EXPECT_EQ(r->rows_updated, 1);
  EXPECT_EQ(Sql("SELECT string_agg(id || v, ' ' ORDER BY id) FROM ps.t"), "1A 2B 3C 4d 5e 7g");
}

TEST_F(PgSinkTest, UpsertKeepsEveryRowWithANullKeyUnderANullsDistinctIndex) {
  Sql("CREATE TABLE ps.t(k int UNIQUE, v int)");
  auto sink = OpenSink(Spec({"k", "v"}, {"k"}));
  ASSERT_NE(sink, nullptr);
  // A NULLS DISTINCT index lets each NULL-key row in; a repeated real key keeps its last row.
  auto r = Write(*sink, MakeChunk(1, {",1", ",2", "5,3", "5,4"}));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->rows_written, 4);
  EXPECT_EQ(Sql("SELECT count(*) FROM ps.t WHERE k IS NULL"), "2");
  EXPECT_EQ(Sql("SELECT string_agg(coalesce(k::text, 'N') || ':' || v, ' ' ORDER BY v) "
                "FROM ps.t"),
            "N:1 N:2 5:4");
  // Keys that are distinct values take the optimistic plain INSERT: one NULL among them.
  r = Write(*sink, MakeChunk(2, {",7", "6,8"}));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(Sql("SELECT count(*), count(*) FILTER (WHERE k IS NULL) FROM ps.t"), "5\t3");
}

TEST_F(PgSinkTest, UpsertKeepsRowsWithANullInACompositeKey) {
  Sql("CREATE TABLE ps.t(a int, b text, v text, UNIQUE (a, b))");
  auto sink = OpenSink(Spec({"a", "b", "v"}, {"a", "b"}));
  ASSERT_NE(sink, nullptr);
  auto r = Write(*sink, MakeChunk(1, {"1,,x", "1,,y", "1,q,z", "1,q,w", ",q,u"}));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->rows_written, 5);
  EXPECT_EQ(Sql("SELECT string_agg(v, ' ' ORDER BY v) FROM ps.t"), "u w x y");
}

TEST_F(PgSinkTest, UpsertTakesNullKeysAsEqualUnderANullsNotDistinctIndex) {
  auto version = Sql("SHOW server_version_num");
  if (std::stoi(version) < 150000) GTEST_SKIP() << "NULLS NOT DISTINCT needs PostgreSQL 15";
  Sql("CREATE TABLE ps.t(k int, v int, UNIQUE NULLS NOT DISTINCT (k))");
  auto sink = OpenSink(Spec({"k", "v"}, {"k"}));
  ASSERT_NE(sink, nullptr);
  auto r = Write(*sink, MakeChunk(1, {",1", ",2", "5,3"}));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(Sql("SELECT string_agg(coalesce(k::text, 'N') || ':' || v, ' ' ORDER BY v) "
                "FROM ps.t"),
            "N:2 5:3");
  // A single NULL key goes through the plain INSERT first, conflicts, and updates.
  r = Write(*sink, MakeChunk(2, {",9"}));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(Sql("SELECT count(*), max(v) FILTER (WHERE k IS NULL) FROM ps.t"), "2\t9");
}

TEST_F(PgSinkTest, UpsertUsesAUniqueIndexWithIncludeColumns) {
  Sql("CREATE TABLE ps.t(k int, v int, w int); CREATE UNIQUE INDEX t_k ON ps.t (k) INCLUDE (v)");
  auto sink = OpenSink(Spec({"k", "v", "w"}, {"k"}));
  ASSERT_NE(sink, nullptr);
  ASSERT_TRUE(Write(*sink, MakeChunk(1, {"1,1,1", "2,2,2"})));
  ASSERT_TRUE(Write(*sink, MakeChunk(2, {"1,5,5"})));
  EXPECT_EQ(Sql("SELECT string_agg(k || ':' || v || ':' || w, ' ' ORDER BY k) FROM ps.t"),
            "1:5:5 2:2:2");
  // The INCLUDE column is not a key: an index on (k) INCLUDE (v) does not serve (k, v).
  auto wrong = Open(Spec({"k", "v", "w"}, {"k", "v"}));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_THAT(wrong.error().message, HasSubstr("no unique index or constraint on exactly"));
}

TEST_F(PgSinkTest, UpsertRefusesADeferrableUniqueConstraintAndSaysWhy) {
  Sql("CREATE TABLE ps.t(k int CONSTRAINT t_k_deferred PRIMARY KEY DEFERRABLE, v int)");
  auto target = Open(Spec({"k", "v"}, {"k"}));
  ASSERT_FALSE(target);
  EXPECT_EQ(target.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_THAT(target.error().message, HasSubstr("t_k_deferred"));
  EXPECT_THAT(target.error().message, HasSubstr("DEFERRABLE"));
  EXPECT_THAT(target.error().message, HasSubstr("--key k"));
  // An immediate index beside it does not help: PostgreSQL takes both as arbiters.
  Sql("CREATE UNIQUE INDEX t_k_now ON ps.t (k)");
  target = Open(Spec({"k", "v"}, {"k"}));
  ASSERT_FALSE(target);
  EXPECT_THAT(target.error().message, HasSubstr("t_k_deferred"));
  // Insert mode needs no arbiter.
  EXPECT_TRUE(Open(Spec({"k", "v"})));
}

TEST_F(PgSinkTest, UpsertComparesTypesWithoutEqualityAsText) {
  Sql("CREATE DOMAIN ps.doc AS json; "
      "CREATE TABLE ps.t(k int PRIMARY KEY, j json, b box, p point, ja json[], d ps.doc)");
  auto sink = OpenSink(Spec({"k", "j", "b", "p", "ja", "d"}, {"k"}));
  ASSERT_NE(sink, nullptr);
  const std::string row1 = R"x(1,"{""a"": 1}","(1,1),(0,0)","(1,2)","{""1"",""[2]""}",3)x";
  const std::string row2 = R"x(2,"[1, 2]","(2,2),(0,0)","(0,0)",,"""d""")x";
  ASSERT_TRUE(Write(*sink, MakeChunk(1, {row1, row2})));
  const std::string before = Sql("SELECT string_agg(xmin::text, ',' ORDER BY k) FROM ps.t");
  // The same values again: nothing changes, no new row versions.
  auto r = Write(*sink, MakeChunk(2, {row1, row2}));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(Sql("SELECT string_agg(xmin::text, ',' ORDER BY k) FROM ps.t"), before);
  // A changed json, and a box moved to where its area is the same (box `=` compares areas).
  r = Write(*sink, MakeChunk(3, {R"x(1,"{""a"": 2}","(1,1),(0,0)","(1,2)","{""1"",""[2]""}",3)x",
                                 R"x(2,"[1, 2]","(3,3),(1,1)","(0,0)",,"""d""")x"}));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(Sql("SELECT string_agg(k || ' ' || j::text || ' ' || b::text, '; ' ORDER BY k) "
                "FROM ps.t"),
            R"x(1 {"a": 2} (1,1),(0,0); 2 [1, 2] (3,3),(1,1))x");
  // And the array and the domain.
  r = Write(*sink, MakeChunk(4, {R"x(1,"{""a"": 2}","(1,1),(0,0)","(1,2)","{""1"",""[3]""}",4)x"}));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(Sql("SELECT ja::text, d::text FROM ps.t WHERE k = 1"), "{1,[3]}\t4");
}

TEST_F(PgSinkTest, ALedgerRowCommittedByAnEarlierAttemptMeansAlreadyCommitted) {
  Sql("CREATE TABLE ps.t(k int, v int)");
  auto sink = OpenSink(Spec({"k", "v"}));
  ASSERT_NE(sink, nullptr);
  // An earlier attempt's transaction became visible after this attempt's FindChunk.
  Sql(LedgerInsert(1, 2, "sum-1"));
  auto r = Write(*sink, MakeChunk(1, {"1,1", "2,2"}));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r->already_committed);
  EXPECT_EQ(r->rows_written, 2);
  EXPECT_TRUE(r->rejected.empty());
  EXPECT_EQ(Sql("SELECT count(*) FROM ps.t"), "0");  // this attempt rolled back
  // The sink goes on with the next chunk.
  r = Write(*sink, MakeChunk(2, {"3,3"}));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_FALSE(r->already_committed);
  EXPECT_EQ(Sql("SELECT count(*) FROM ps.t"), "1");
}

TEST_F(PgSinkTest, ALedgerRowOfOtherSourceBytesIsAChangedSource) {
  Sql("CREATE TABLE ps.t(k int, v int)");
  auto sink = OpenSink(Spec({"k", "v"}));
  ASSERT_NE(sink, nullptr);
  Sql(LedgerInsert(1, 2, "another-sum"));
  auto r = Write(*sink, MakeChunk(1, {"1,1", "2,2"}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_THAT(r.error().message, HasSubstr("source changed"));
  EXPECT_THAT(r.error().message, HasSubstr("chunk 1"));
  EXPECT_EQ(Sql("SELECT count(*) FROM ps.t"), "0");
}

TEST_F(PgSinkTest, InsertRacingAnEarlierCommitOfTheChunkEndsAlreadyCommitted) {
  Sql("CREATE TABLE ps.t(k int PRIMARY KEY, v int)");
  auto sink = OpenSink(Spec({"k", "v"}));
  ASSERT_NE(sink, nullptr);
  RaceAnEarlierAttempt(*sink);
}

TEST_F(PgSinkTest, UpsertRacingAnEarlierCommitOfTheChunkEndsAlreadyCommitted) {
  Sql("CREATE TABLE ps.t(k int PRIMARY KEY, v int)");
  auto sink = OpenSink(Spec({"k", "v"}, {"k"}));
  ASSERT_NE(sink, nullptr);
  RaceAnEarlierAttempt(*sink);
}

}  // namespace
}  // namespace forklift::sinks
