// RunLoad end to end against the embedded target: real files, a real SQLite database.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>

#include "forklift/clock.h"
#include "journal/journal.h"
#include "load/chunker.h"
#include "load/dlq_retry.h"
#include "load/load_id.h"
#include "load/load_runner.h"
#include "support/temp_dir.h"

namespace forklift::load {
namespace {

using test_support::TempDir;
using ::testing::HasSubstr;

class Db {
 public:
  explicit Db(const std::string& path) { sqlite3_open(path.c_str(), &db_); }
  ~Db() { sqlite3_close(db_); }
  void Exec(const std::string& sql) {
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << (err ? err : "");
  }
  // The rows of a query as "a|b\n" lines.
  std::string Query(const std::string& sql) {
    std::string out;
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db_);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
      for (int i = 0; i < sqlite3_column_count(s); ++i) {
        if (i) out += "|";
        const unsigned char* t = sqlite3_column_text(s, i);
        out += t ? reinterpret_cast<const char*>(t) : "NULL";
      }
      out += "\n";
    }
    sqlite3_finalize(s);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

// A real sink, every call forwarded; the fault-injecting sinks below override WriteChunk.
class ForwardingSink : public sinks::Sink {
 public:
  explicit ForwardingSink(std::unique_ptr<sinks::Sink> real) : real_(std::move(real)) {}
  Result<sinks::ChunkWriteResult> WriteChunk(const sinks::Chunk& chunk,
                                             const sinks::BeforeCommit& before_commit) override {
    return real_->WriteChunk(chunk, before_commit);
  }
  Status Reconnect() override { return real_->Reconnect(); }
  Result<std::optional<sinks::LedgerEntry>> FindChunk(int64_t chunk) override {
    return real_->FindChunk(chunk);
  }
  void Cancel() override { real_->Cancel(); }

 protected:
  std::unique_ptr<sinks::Sink> real_;
};

// A real sink that throws from WriteChunk at chunk `throw_at`: how a writer's
// std::bad_alloc or std::stoll exception reaches the loader.
class ThrowingSink : public ForwardingSink {
 public:
  ThrowingSink(std::unique_ptr<sinks::Sink> real, int64_t throw_at)
      : ForwardingSink(std::move(real)), throw_at_(throw_at) {}
  Result<sinks::ChunkWriteResult> WriteChunk(const sinks::Chunk& chunk,
                                             const sinks::BeforeCommit& before_commit) override {
    if (chunk.number == throw_at_) throw std::runtime_error("injected fault");
    return real_->WriteChunk(chunk, before_commit);
  }

 private:
  int64_t throw_at_;
};

// The real target, each of whose sinks `wrap` wraps (the loader opens them through
// LoadIo::open_target).
using WrapSink = std::function<std::unique_ptr<sinks::Sink>(std::unique_ptr<sinks::Sink>)>;

class WrappedTarget : public sinks::Target {
 public:
  WrappedTarget(std::unique_ptr<sinks::Target> real, WrapSink wrap)
      : real_(std::move(real)), wrap_(std::move(wrap)) {}
  const sinks::TargetAddress& address() const override { return real_->address(); }
  Result<int> MaxWorkers() override { return real_->MaxWorkers(); }
  Status EnsureLedger() override { return real_->EnsureLedger(); }
  Result<std::vector<sinks::LedgerEntry>> CommittedChunks() override {
    return real_->CommittedChunks();
  }
  Result<std::unique_ptr<sinks::Sink>> OpenSink() override {
    FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<sinks::Sink> sink, real_->OpenSink());
    return wrap_(std::move(sink));
  }

 private:
  std::unique_ptr<sinks::Target> real_;
  WrapSink wrap_;
};

// Quiet LoadIo whose target's sinks are wrapped by `wrap`.
LoadIo WrappingSinks(WrapSink wrap) {
  return {.out = nullptr,
          .err = nullptr,
          .open_target = [wrap](const sinks::TargetAddress& a, const sinks::TableSpec& spec)
              -> Result<std::unique_ptr<sinks::Target>> {
            FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<sinks::Target> t,
                                      sinks::Target::Open(a, spec));
            return std::make_unique<WrappedTarget>(std::move(t), wrap);
          }};
}

LoadIo ThrowingAt(int64_t chunk) {
  return WrappingSinks([chunk](std::unique_ptr<sinks::Sink> sink) -> std::unique_ptr<sinks::Sink> {
    return std::make_unique<ThrowingSink>(std::move(sink), chunk);
  });
}

// A real sink whose chunk attempts call `after_letters` once the real before-commit hook has
// recorded its dead letters: an error there fails the attempt (the transaction rolls back), as a
// kill or a constraint refused at COMMIT would after the journal write; `after_rollback` then runs
// (to change the table between attempts).
struct Faults {
  std::function<Status(const sinks::Chunk&)> after_letters;
  std::function<void(const sinks::Chunk&)> after_rollback;
};

class FaultySink : public ForwardingSink {
 public:
  FaultySink(std::unique_ptr<sinks::Sink> real, std::shared_ptr<Faults> faults)
      : ForwardingSink(std::move(real)), faults_(std::move(faults)) {}
  Result<sinks::ChunkWriteResult> WriteChunk(const sinks::Chunk& chunk,
                                             const sinks::BeforeCommit& before_commit) override {
    auto r = real_->WriteChunk(chunk, [&](std::span<const sinks::RejectedRow> rejected) {
      Status st = before_commit(rejected);
      return st ? faults_->after_letters(chunk) : st;
    });
    if (!r && faults_->after_rollback) faults_->after_rollback(chunk);
    return r;
  }

 private:
  std::shared_ptr<Faults> faults_;
};

LoadIo WithFaults(std::shared_ptr<Faults> faults) {
  return WrappingSinks([faults](std::unique_ptr<sinks::Sink> sink) -> std::unique_ptr<sinks::Sink> {
    return std::make_unique<FaultySink>(std::move(sink), faults);
  });
}

// A real sink whose first `failures` chunk attempts (counted over every sink of the load)
// fail as a dropped connection would: Unavailable, nothing written.
class TransientSink : public ForwardingSink {
 public:
  TransientSink(std::unique_ptr<sinks::Sink> real, std::shared_ptr<std::atomic<int>> failures)
      : ForwardingSink(std::move(real)), failures_(std::move(failures)) {}
  Result<sinks::ChunkWriteResult> WriteChunk(const sinks::Chunk& chunk,
                                             const sinks::BeforeCommit& before_commit) override {
    if (failures_->fetch_sub(1) > 0) return UnavailableError("server closed the connection");
    return real_->WriteChunk(chunk, before_commit);
  }

 private:
  std::shared_ptr<std::atomic<int>> failures_;
};

LoadIo FailingTransiently(std::shared_ptr<std::atomic<int>> failures, Clock* clock) {
  LoadIo io =
      WrappingSinks([failures](std::unique_ptr<sinks::Sink> sink) -> std::unique_ptr<sinks::Sink> {
        return std::make_unique<TransientSink>(std::move(sink), failures);
      });
  io.clock = clock;
  return io;
}

std::string Rows(int n) {
  std::string data = "symbol,date,close\n";
  for (int i = 0; i < n; ++i) data += "S" + std::to_string(i) + ",d," + std::to_string(i) + "\n";
  return data;
}

class LoadSqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_path_ = dir_.Path("t.db");
    Db db(db_path_);
    db.Exec(
        "CREATE TABLE prices(symbol TEXT NOT NULL, date TEXT NOT NULL, close REAL "
        "CHECK (close >= 0), PRIMARY KEY(symbol, date))");
  }
  LoadOptions Options(std::vector<std::string> files) {
    LoadOptions o;
    o.sources = std::move(files);
    o.to = "sqlite:" + db_path_;
    o.table = "prices";
    o.chunk_rows = 3;
    o.journal_path = dir_.Path("journal.db");
    o.display = ProgressDisplay::kNone;
    return o;
  }
  LoadSummary Run(const LoadOptions& o) {
    auto s = RunLoad(o, {}, {.out = nullptr, .err = nullptr});
    EXPECT_TRUE(s) << (s ? "" : s.error().ToString());
    return s ? *s : LoadSummary{};
  }

  TempDir dir_;
  std::string db_path_;
};

TEST_F(LoadSqliteTest, InsertsEveryRowWithALedgerRowPerChunk) {
  std::string f =
      dir_.Write("p.csv", "symbol,date,close\nA,d1,1\nA,d2,2\nB,d1,3\nB,d2,\"4\"\nC,d1,5\n");
  LoadSummary s = Run(Options({f}));
  EXPECT_EQ(s.status, "succeeded");
  EXPECT_EQ(s.rows_read, 5u);
  EXPECT_EQ(s.rows_loaded, 5u);
  EXPECT_EQ(s.chunks_committed, 2u);
  EXPECT_THAT(s.load_id, ::testing::StartsWith("load-"));
  Db db(db_path_);
  EXPECT_EQ(db.Query("SELECT symbol, date, close FROM prices ORDER BY 1, 2"),
            "A|d1|1.0\nA|d2|2.0\nB|d1|3.0\nB|d2|4.0\nC|d1|5.0\n");
  EXPECT_EQ(db.Query("SELECT chunk, first_line, last_line, rows, rejected FROM "
                     "forklift_load_chunks ORDER BY chunk"),
            "0|2|4|3|0\n1|5|6|2|0\n");
}

TEST_F(LoadSqliteTest, ARerunResumesAndLoadsNothingTwice) {
  std::string f = dir_.Write("p.csv", "symbol,date,close\nA,d1,1\nA,d2,2\nB,d1,3\nB,d2,4\n");
  EXPECT_EQ(Run(Options({f})).rows_loaded, 4u);
  LoadSummary again = Run(Options({f}));
  EXPECT_EQ(again.status, "succeeded");
  EXPECT_EQ(again.rows_loaded, 0u);
  EXPECT_EQ(again.rows_skipped, 4u);
  EXPECT_EQ(again.chunks_skipped, 2u);
  EXPECT_EQ(Db(db_path_).Query("SELECT count(*) FROM prices"), "4\n");
}

TEST_F(LoadSqliteTest, UpsertAppliesARepeatedKeyInInputOrderLastWins) {
  std::string f = dir_.Write(
      "p.csv", "symbol,date,close\nA,d1,1\nA,d1,2\nB,d1,3\nA,d1,4\nB,d1,5\nC,d1,6\nA,d1,7\n");
  LoadOptions o = Options({f});
  o.upsert = true;
  o.key = {"symbol", "date"};
  o.chunk_rows = 2;  // the repeats span chunks
  LoadSummary s = Run(o);
  EXPECT_EQ(s.status, "succeeded");
  EXPECT_EQ(s.rows_loaded, 7u);
  EXPECT_EQ(Db(db_path_).Query("SELECT symbol, close FROM prices ORDER BY 1"),
            "A|7.0\nB|5.0\nC|6.0\n");
}

TEST_F(LoadSqliteTest, BadRowsGoToTheDeadLettersAndTheRestLoads) {
  std::string f = dir_.Write("p.csv",
                             "symbol,date,close\n"
                             "A,d1,1\n"
                             "A,d2\n"         // wrong field count
                             "B,d1,-5\n"      // CHECK
                             ",d1,2\n"        // NOT NULL? no: '' is not NULL in SQLite...
                             "A,d1,9\n"       // duplicate key (insert mode)
                             "C,\"d1\"x,1\n"  // broken quoting
                             "D,d1,4\n");
  LoadOptions o = Options({f});
  o.null_string = "";  // unquoted empty = NULL: the symbol of line 5 is NULL
  o.dlq_path = dir_.Path("rejected.csv");
  LoadSummary s = Run(o);
  EXPECT_EQ(s.status, "succeeded");
  EXPECT_EQ(s.rows_read, 7u);
  EXPECT_EQ(s.rows_loaded, 2u);
  EXPECT_EQ(s.rows_rejected, 5u);
  EXPECT_EQ(Db(db_path_).Query("SELECT symbol, close FROM prices ORDER BY 1"), "A|1.0\nD|4.0\n");

  auto j = journal::Journal::Open(o.journal_path);
  ASSERT_TRUE(j);
  auto letters = (*j)->ListDeadLetters(s.load_id, false);
  ASSERT_TRUE(letters);
  ASSERT_EQ(letters->size(), 5u);
  std::map<std::string, std::string> by_line;
  for (const auto& d : *letters) by_line[d.position] = d.reason;
  EXPECT_THAT(by_line["line 3"], HasSubstr("expected 3 fields, found 2"));
  EXPECT_THAT(by_line["line 4"], HasSubstr("SQLITE_CONSTRAINT_CHECK"));
  EXPECT_THAT(by_line["line 5"], HasSubstr("SQLITE_CONSTRAINT_NOTNULL"));
  EXPECT_THAT(by_line["line 6"], HasSubstr("SQLITE_CONSTRAINT_PRIMARYKEY"));
  EXPECT_THAT(by_line["line 7"], HasSubstr("after closing quote"));
  std::ifstream dlq(o.dlq_path);
  std::string text((std::istreambuf_iterator<char>(dlq)), {});
  EXPECT_THAT(text, ::testing::StartsWith("load_id,source,line,reason,raw\n"));
  EXPECT_THAT(text, HasSubstr(",4,SQLITE_CONSTRAINT_CHECK: CHECK constraint failed"));
  EXPECT_THAT(text, HasSubstr(",\"C,\"\"d1\"\"x,1\"\n"));

  // A rerun records no letter twice.
  Run(o);
  EXPECT_EQ((*j)->ListDeadLetters(s.load_id, false)->size(), 5u);
}

TEST_F(LoadSqliteTest, DlqRetryLoadsTheLettersOnceTheTableAcceptsThem) {
  std::string f = dir_.Write("p.csv", "symbol,date,close\nA,d1,1\nB,d1,-2\nC,d1,-3\n");
  LoadOptions o = Options({f});
  LoadSummary s = Run(o);
  EXPECT_EQ(s.rows_rejected, 2u);
  {
    Db db(db_path_);
    db.Exec(
        "ALTER TABLE prices RENAME TO old; CREATE TABLE prices(symbol TEXT NOT NULL, "
        "date TEXT NOT NULL, close REAL, PRIMARY KEY(symbol, date)); "
        "INSERT INTO prices SELECT * FROM old; DROP TABLE old");
  }
  auto r = RetryDeadLetters(o.journal_path, s.load_id, "");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->pending, 2u);
  EXPECT_EQ(r->loaded, 2u);
  EXPECT_EQ(Db(db_path_).Query("SELECT symbol, close FROM prices ORDER BY 1"),
            "A|1.0\nB|-2.0\nC|-3.0\n");
  auto again = RetryDeadLetters(o.journal_path, s.load_id, "");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->pending, 0u) << "retried letters are not pending any more";
  auto unknown = RetryDeadLetters(o.journal_path, "load-nope", "");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
}

TEST_F(LoadSqliteTest, AChangedSourceUnderTheSameLoadIdStopsWithFailedPrecondition) {
  std::string f = dir_.Write("p.csv", "symbol,date,close\nA,d1,1\nA,d2,2\nB,d1,3\nB,d2,4\n");
  LoadOptions o = Options({f});
  o.load_id = "fixed";
  EXPECT_EQ(Run(o).status, "succeeded");
  dir_.Write("p.csv", "symbol,date,close\nA,d1,1\nA,d2,2\nB,d1,3\nB,d2,5\n");
  LoadSummary s = Run(o);
  EXPECT_EQ(s.status, "failed");
  EXPECT_THAT(s.error, HasSubstr("FailedPrecondition"));
  EXPECT_THAT(s.error, HasSubstr(f + ": source changed since load fixed committed chunk 1"));
  EXPECT_EQ(Db(db_path_).Query("SELECT close FROM prices WHERE symbol='B' AND date='d2'"), "4.0\n");
}

TEST_F(LoadSqliteTest, MaxErrorsStopsTheLoadAndKeepsCommittedChunks) {
  std::string data = "symbol,date,close\n";
  for (int i = 0; i < 30; ++i)
    data += "S" + std::to_string(i) + ",d," + (i % 3 ? "1" : "-1") + "\n";
  std::string f = dir_.Write("p.csv", data);
  LoadOptions o = Options({f});
  o.max_errors = 2;
  LoadSummary s = Run(o);
  EXPECT_EQ(s.status, "failed");
  EXPECT_THAT(s.error, HasSubstr("--max-errors 2"));
  EXPECT_EQ(s.rows_rejected, 3u);
  EXPECT_LT(s.rows_loaded, 20u);
  EXPECT_EQ(Db(db_path_).Query("SELECT count(*) FROM prices"),
            std::to_string(s.rows_loaded) + "\n");
}

TEST_F(LoadSqliteTest, RefusesMoreThanOneWriterAndNamesMissingTablesAndColumns) {
  std::string f = dir_.Write("p.csv", "symbol,date,close\nA,d1,1\n");
  LoadOptions o = Options({f});
  o.workers = 2;
  auto r = RunLoad(o, {}, {.out = nullptr, .err = nullptr});
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("--workers 2: an SQLite target takes one writer"));

  o = Options({f});
  o.table = "nope";
  r = RunLoad(o, {}, {.out = nullptr, .err = nullptr});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_THAT(r.error().message, HasSubstr("--table nope: no such table"));

  std::string g = dir_.Write("q.csv", "symbol,when,close\nA,d1,1\n");
  r = RunLoad(Options({g}), {}, {.out = nullptr, .err = nullptr});
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("column 'when' is not in table prices"));

  o = Options({dir_.Path("missing.csv")});
  r = RunLoad(o, {}, {.out = nullptr, .err = nullptr});
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("missing.csv"));
}

TEST_F(LoadSqliteTest, AnExceptionInAWriterFailsTheLoadAndARerunLoadsTheRest) {
  std::string f = dir_.Write("p.csv", Rows(9));
  LoadOptions o = Options({f});
  auto r = RunLoad(o, {}, ThrowingAt(1));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status, "failed");
  EXPECT_THAT(r->error, HasSubstr("Internal"));
  EXPECT_THAT(r->error, HasSubstr("chunk 1 (" + f +
                                  " lines 5-7): writer stopped by an "
                                  "exception: injected fault"));
  EXPECT_LT(r->rows_loaded, 9u);
  LoadSummary again = Run(o);
  EXPECT_EQ(again.status, "succeeded");
  EXPECT_EQ(again.rows_loaded + again.rows_skipped, 9u);
  EXPECT_EQ(Db(db_path_).Query("SELECT count(*), sum(close) FROM prices"), "9|36.0\n");
}

// Upsert routes chunks to their writer's own queue: a dead writer must not leave the reader
// blocked on it (the load used to hang here).
TEST_F(LoadSqliteTest, AnExceptionInAnUpsertWriterFailsTheLoadWithoutHanging) {
  std::string f = dir_.Write("p.csv", Rows(20));
  LoadOptions o = Options({f});
  o.upsert = true;
  o.key = {"symbol", "date"};
  o.chunk_rows = 1;  // more chunks than the queue holds
  auto r = RunLoad(o, {}, ThrowingAt(0));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status, "failed");
  EXPECT_THAT(r->error, HasSubstr("injected fault"));
  EXPECT_EQ(r->rows_loaded, 0u);
}

// An exception on the reading side (here from the chunk_read seam) fails the load and the
// writers end (they used to wait in Pop on queues nobody closed).
TEST_F(LoadSqliteTest, AnExceptionWhileReadingFailsTheLoadWithoutHanging) {
  std::string f = dir_.Write("p.csv", Rows(20));
  LoadOptions o = Options({f});
  LoadIo io{.out = nullptr, .err = nullptr};
  io.chunk_read = [](const sinks::Chunk& c) {
    if (c.number == 2) throw std::length_error("injected read fault");
  };
  auto r = RunLoad(o, {}, io);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status, "failed");
  EXPECT_THAT(r->error,
              HasSubstr("reading " + f + ": stopped by an exception: injected read fault"));
  EXPECT_LE(r->rows_loaded, 6u);
  EXPECT_EQ(Run(o).status, "succeeded");
  EXPECT_EQ(Db(db_path_).Query("SELECT count(*) FROM prices"), "20\n");
}

// A source cut exactly at a chunk boundary has no chunk whose checksum could differ: the
// ledger's chunks past its end must still stop the resume.
TEST_F(LoadSqliteTest, ASourceCutAtAChunkBoundaryUnderTheSameLoadIdFails) {
  std::string f = dir_.Write("p.csv", Rows(9));
  LoadOptions o = Options({f});
  o.load_id = "fixed";
  EXPECT_EQ(Run(o).status, "succeeded");
  dir_.Write("p.csv", Rows(6));  // chunks 0 and 1 as before; chunk 2 is gone
  LoadSummary s = Run(o);
  EXPECT_EQ(s.status, "failed");
  EXPECT_THAT(s.error, HasSubstr("FailedPrecondition"));
  EXPECT_THAT(s.error, HasSubstr(f + ": source changed since load fixed committed chunk 2 "
                                     "(lines 8-10, 3 rows): the sources now end before it"));
  EXPECT_EQ(s.chunks_skipped, 2u);
  // Loading it all again (the same sources) is still fine.
  dir_.Write("p.csv", Rows(9));
  EXPECT_EQ(Run(o).status, "succeeded");
}

// A record over the reject size limit is kept cut; if the cut falls inside its last field,
// it still has the right number of fields, and a retry would load the shortened value.
TEST_F(LoadSqliteTest, DlqRetryRefusesARecordCutToTheRejectSizeLimit) {
  Db(db_path_).Exec("CREATE TABLE notes(symbol TEXT PRIMARY KEY, date TEXT, note TEXT)");
  const std::string long_note(1200 * 1024, 'n');  // over the 1 MiB kept of a reject
  std::string f =
      dir_.Write("n.csv", "symbol,date,note\nA,d1,ok\nB,d1," + long_note + ",extra\nC,d1,ok\n");
  LoadOptions o = Options({f});
  o.table = "notes";
  LoadSummary s = Run(o);
  EXPECT_EQ(s.status, "succeeded");
  EXPECT_EQ(s.rows_rejected, 1u);
  auto j = journal::Journal::Open(o.journal_path);
  ASSERT_TRUE(j);
  auto letters = (*j)->ListDeadLetters(s.load_id, false);
  ASSERT_TRUE(letters);
  ASSERT_EQ(letters->size(), 1u);
  EXPECT_EQ((*letters)[0].payload.size(), size_t{1} << 20);
  EXPECT_THAT((*letters)[0].reason, HasSubstr("expected 3 fields, found 4"));
  EXPECT_THAT((*letters)[0].reason, HasSubstr("kept: not retryable)"));
  EXPECT_EQ((*letters)[0].code, ErrorCode::kDataLoss);

  auto r = RetryDeadLetters(o.journal_path, s.load_id, "");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->pending, 1u);
  EXPECT_EQ(r->loaded, 0u);
  EXPECT_EQ(r->truncated, 1u);
  EXPECT_EQ(Db(db_path_).Query("SELECT symbol FROM notes ORDER BY 1"), "A\nC\n");
  EXPECT_EQ((*j)->ListDeadLetters(s.load_id, false)->size(), 1u) << "still pending";
}

// A chunk attempt whose letters were recorded but which did not commit, then a second
// attempt that rejects fewer rows: only the second attempt's letters stay pending (the
// first's used to stay too, and `dlq retry` could load them).
TEST_F(LoadSqliteTest, AChunkRetriedWithFewerRejectsLeavesOnlyTheLastAttemptsLetters) {
  Db(db_path_).Exec("INSERT INTO prices VALUES('A', 'd1', 10), ('B', 'd1', 20)");
  std::string f = dir_.Write("p.csv", "symbol,date,close\nA,d1,1\nB,d1,2\nC,d1,3\n");
  LoadOptions o = Options({f});
  auto faults = std::make_shared<Faults>();
  int attempts = 0;
  faults->after_letters = [&](const sinks::Chunk&) -> Status {
    if (++attempts == 1) return UnavailableError("injected: the connection dropped before COMMIT");
    return {};
  };
  // Between the attempts, B's old row goes: the retry rejects only A.
  faults->after_rollback = [&](const sinks::Chunk&) {
    Db(db_path_).Exec("DELETE FROM prices WHERE symbol = 'B'");
  };
  auto s = RunLoad(o, {}, WithFaults(faults));
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->status, "succeeded") << s->error;
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(s->retries, 1u);
  EXPECT_EQ(s->rows_rejected, 1u);
  EXPECT_EQ(Db(db_path_).Query("SELECT symbol, close FROM prices ORDER BY 1"),
            "A|10.0\nB|2.0\nC|3.0\n");
  auto j = journal::Journal::Open(o.journal_path);
  ASSERT_TRUE(j);
  auto letters = (*j)->ListDeadLetters(s->load_id, false);
  ASSERT_TRUE(letters);
  ASSERT_EQ(letters->size(), 1u) << "the first attempt's letter for line 3 is stale";
  EXPECT_EQ((*letters)[0].position, "line 2");
  EXPECT_EQ((*letters)[0].chunk, 0);
}

// A no-key table whose CHECK refuses negative closes.
void CreateNoKeyTable(const std::string& db_path) {
  Db(db_path).Exec("CREATE TABLE nokey(symbol TEXT, date TEXT, close REAL CHECK (close >= 0))");
}
void DropNoKeyCheck(const std::string& db_path) {
  Db(db_path).Exec(
      "ALTER TABLE nokey RENAME TO old; CREATE TABLE nokey(symbol TEXT, date TEXT, "
      "close REAL); INSERT INTO nokey SELECT * FROM old; DROP TABLE old");
}
// Runs `o` with chunk `number` failing after its dead letters were recorded, before its
// COMMIT (as a SIGKILL there, or a constraint refused at COMMIT, would).
Result<LoadSummary> RunDyingBeforeCommitOf(int64_t number, const LoadOptions& o) {
  auto faults = std::make_shared<Faults>();
  faults->after_letters = [number](const sinks::Chunk& c) -> Status {
    if (c.number == number) return InternalError("injected: killed before COMMIT");
    return {};
  };
  return RunLoad(o, {}, WithFaults(faults));
}
constexpr const char* kTwoChunksOneBadRowEach =
    "symbol,date,close\nA,d,1\nB,d,-2\nC,d,3\nD,d,4\nE,d,-5\nF,d,6\n";

// Chunk 1 records its letter and dies before COMMIT. `dlq retry` must leave that letter
// alone: the resumed load loads E itself once the table takes it, and a retry of the letter
// would load E twice (the table has no key to refuse the second).
TEST_F(LoadSqliteTest, DlqRetrySkipsLettersOfAChunkThatNeverCommitted) {
  CreateNoKeyTable(db_path_);
  std::string f = dir_.Write("p.csv", kTwoChunksOneBadRowEach);
  LoadOptions o = Options({f});
  o.table = "nokey";
  auto s = RunDyingBeforeCommitOf(1, o);
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->status, "failed");
  EXPECT_THAT(s->error, HasSubstr("injected: killed before COMMIT"));
  auto j = journal::Journal::Open(o.journal_path);
  ASSERT_TRUE(j);
  ASSERT_EQ((*j)->ListDeadLetters(s->load_id, false)->size(), 2u);

  DropNoKeyCheck(db_path_);
  auto r = RetryDeadLetters(o.journal_path, s->load_id, "");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->pending, 2u);
  EXPECT_EQ(r->loaded, 1u) << "B's letter: its chunk committed";
  EXPECT_EQ(r->uncommitted, 1u) << "E's letter: its chunk never committed";
  EXPECT_EQ(Db(db_path_).Query("SELECT symbol FROM nokey ORDER BY 1"), "A\nB\nC\n");

  LoadSummary again = Run(o);  // the resume: chunk 1 now commits, E with it
  EXPECT_EQ(again.status, "succeeded") << again.error;
  EXPECT_EQ(again.rows_rejected, 0u);
  EXPECT_EQ(Db(db_path_).Query("SELECT symbol, count(*) FROM nokey GROUP BY 1 ORDER BY 1"),
            "A|1\nB|1\nC|1\nD|1\nE|1\nF|1\n");
  EXPECT_TRUE((*j)->ListDeadLetters(s->load_id, false)->empty())
      << "the chunk's stale letter went when it committed without rejects";
  auto none = RetryDeadLetters(o.journal_path, s->load_id, "");
  ASSERT_TRUE(none) << none.error().ToString();
  EXPECT_EQ(none->pending, 0u);
  EXPECT_EQ(Db(db_path_).Query("SELECT count(*) FROM nokey WHERE symbol = 'E'"), "1\n");
}

// The letter of a chunk that never committed waits for the resume; once the chunk commits
// (rejecting the row again) the letter is retryable like any other.
TEST_F(LoadSqliteTest, LettersOfAChunkBecomeRetryableOnceTheResumedLoadCommitsIt) {
  CreateNoKeyTable(db_path_);
  std::string f = dir_.Write("p.csv", kTwoChunksOneBadRowEach);
  LoadOptions o = Options({f});
  o.table = "nokey";
  auto s = RunDyingBeforeCommitOf(1, o);
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->status, "failed");
  auto r = RetryDeadLetters(o.journal_path, s->load_id, "");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->pending, 2u);
  EXPECT_EQ(r->rejected, 1u) << "B, refused by the CHECK again";
  EXPECT_EQ(r->uncommitted, 1u);

  LoadSummary again = Run(o);
  EXPECT_EQ(again.status, "succeeded") << again.error;
  EXPECT_EQ(again.rows_rejected, 1u) << "E, refused again by the resumed chunk";
  auto j = journal::Journal::Open(o.journal_path);
  ASSERT_TRUE(j);
  auto letters = (*j)->ListDeadLetters(s->load_id, false);
  ASSERT_EQ(letters->size(), 2u);
  EXPECT_EQ((*letters)[0].chunk, 0);
  EXPECT_EQ((*letters)[1].chunk, 1);

  DropNoKeyCheck(db_path_);
  auto r2 = RetryDeadLetters(o.journal_path, s->load_id, "");
  ASSERT_TRUE(r2) << r2.error().ToString();
  EXPECT_EQ(r2->pending, 2u);
  EXPECT_EQ(r2->loaded, 2u);
  EXPECT_EQ(r2->uncommitted, 0u);
  EXPECT_EQ(Db(db_path_).Query("SELECT symbol, count(*) FROM nokey GROUP BY 1 ORDER BY 1"),
            "A|1\nB|1\nC|1\nD|1\nE|1\nF|1\n");
}

// Letters of earlier versions carry "(record of N bytes, first M kept)" and InvalidArgument.
TEST(TruncatedRejectTest, RecognisesThisAndEarlierVersionsNotes) {
  EXPECT_TRUE(IsTruncatedReject("bad" + TruncatedRejectNote(5000, 100), 100));
  EXPECT_FALSE(IsTruncatedReject("bad" + TruncatedRejectNote(5000, 100), 99));
  EXPECT_TRUE(
      IsTruncatedReject("expected 3 fields, found 4 (record of 5000 bytes, first 100 kept)", 100));
  EXPECT_FALSE(IsTruncatedReject("expected 3 fields, found 4", 100));
  EXPECT_FALSE(IsTruncatedReject("23514: check failed", 100));
}

TEST_F(LoadSqliteTest, TransientFailuresBackOffOnTheLoadsClockAndThenCommit) {
  std::string f = dir_.Write("p.csv", Rows(5));
  FakeClock clock;
  auto failures = std::make_shared<std::atomic<int>>(2);
  Result<LoadSummary> s = InvalidArgumentError("not run");
  std::thread load([&] { s = RunLoad(Options({f}), {}, FailingTransiently(failures, &clock)); });
  // Each failure waits out its backoff on the fake clock: nothing sleeps for real.
  for (int i = 1; i <= 2; ++i) {
    clock.WaitForSleepCalls(i);
    clock.Advance(std::chrono::seconds(5));  // more than kTransientRetry's max_delay
  }
  load.join();
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->status, "succeeded") << s->error;
  EXPECT_EQ(s->retries, 2u);
  EXPECT_EQ(s->rows_loaded, 5u);
  EXPECT_EQ(Db(db_path_).Query("SELECT count(*) FROM prices"), "5\n");
}

TEST_F(LoadSqliteTest, AForcedStopEndsATransientBackoffAtOnceAndKeepsNothingHalfDone) {
  std::string f = dir_.Write("p.csv", Rows(5));
  FakeClock clock;  // never advanced: only the stop can end the wait
  auto failures = std::make_shared<std::atomic<int>>(1000);
  std::stop_source force;
  Result<LoadSummary> s = InvalidArgumentError("not run");
  std::thread load([&] {
    s = RunLoad(Options({f}), {.force = force.get_token()}, FailingTransiently(failures, &clock));
  });
  clock.WaitForSleepers(1);
  force.request_stop();
  load.join();
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->status, "cancelled");
  EXPECT_EQ(s->rows_loaded, 0u);
  EXPECT_EQ(Db(db_path_).Query("SELECT count(*) FROM forklift_load_chunks"), "0\n");
}

}  // namespace
}  // namespace forklift::load
