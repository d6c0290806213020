// RunLoad end to end against a real PostgreSQL that the fixture starts (tests/support).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <thread>

#include "journal/journal.h"
#include "load/load_runner.h"
#include "support/pg_server.h"
#include "support/temp_dir.h"

namespace forklift::load {
namespace {

using forklift::testing::PgServer;
using forklift::testing::SharedPgServer;
using test_support::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

class LoadPgTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = SharedPgServer();
    ASSERT_NE(pg_, nullptr);
    Sql("DROP SCHEMA IF EXISTS t CASCADE; CREATE SCHEMA t; "
        "DROP TABLE IF EXISTS forklift_load_chunks");
  }
  std::string Sql(const std::string& sql) {
    auto r = pg_->Sql(sql);
    EXPECT_TRUE(r) << sql << ": " << (r ? "" : r.error().message);
    return r ? *r : "";
  }
  LoadOptions Options(std::vector<std::string> files, std::string table) {
    LoadOptions o;
    o.sources = std::move(files);
    o.to = pg_->dsn();
    o.table = std::move(table);
    o.chunk_rows = 100;
    o.journal_path = dir_.Path("journal.db");
    o.display = ProgressDisplay::kNone;
    return o;
  }
  LoadSummary Run(const LoadOptions& o, const LoadStops& stops = {}) {
    auto s = RunLoad(o, stops, {.out = nullptr, .err = nullptr});
    EXPECT_TRUE(s) << (s ? "" : s.error().ToString());
    return s ? *s : LoadSummary{};
  }
  std::vector<journal::DeadLetter> Letters(const LoadOptions& o, const std::string& load_id) {
    auto j = journal::Journal::Open(o.journal_path);
    EXPECT_TRUE(j);
    auto l = (*j)->ListDeadLetters(load_id, false);
    EXPECT_TRUE(l);
    return l ? *l : std::vector<journal::DeadLetter>{};
  }

  PgServer* pg_ = nullptr;
  TempDir dir_;
};

// n rows "SYMk,2020-01-dd,close,volume" over `keys` symbols; close = row number.
std::string Prices(int n, int keys) {
  std::string s = "symbol,date,close,volume\n";
  for (int i = 0; i < n; ++i) {
    s += "S" + std::to_string(i % keys) + ",2020-01-" + (i / keys % 28 < 9 ? "0" : "") +
         std::to_string(i / keys % 28 + 1) + "," + std::to_string(i) + ".5," + std::to_string(i) +
         "\n";
  }
  return s;
}

TEST_F(LoadPgTest, InsertWithFourWorkersLoadsEveryRowOnce) {
  Sql("CREATE TABLE t.p(symbol text, date date, close float8, volume bigint)");
  std::string f = dir_.Write("p.csv", Prices(20000, 1000));
  LoadOptions o = Options({f}, "t.p");
  o.chunk_rows = 1000;
  LoadSummary s = Run(o);
  EXPECT_EQ(s.status, "succeeded");
  EXPECT_EQ(s.rows_loaded, 20000u);
  EXPECT_EQ(s.connections, 4);
  EXPECT_EQ(Sql("SELECT count(*), count(DISTINCT volume), sum(volume), sum(close) FROM t.p"),
            "20000\t20000\t199990000\t200000000");
  EXPECT_EQ(Sql("SELECT min(date), max(date) FROM t.p"), "2020-01-01\t2020-01-20");
  EXPECT_EQ(Sql("SELECT count(*), sum(rows) FROM t.forklift_load_chunks WHERE load_id = '" +
                s.load_id + "'"),
            "20\t20000");
}

TEST_F(LoadPgTest, UpsertAppliesRepeatedKeysInInputOrderAcrossChunksAndWorkers) {
  Sql("CREATE TABLE t.p(symbol text, date date, close float8, volume bigint, "
      "PRIMARY KEY(symbol, date))");
  // 50 keys, each repeated 40 times, spread over chunks of 7 rows and 4 workers.
  std::string data = "symbol,date,close,volume\n";
  std::map<std::string, int> last;
  for (int i = 0; i < 2000; ++i) {
    std::string sym = "K" + std::to_string((i * 7919) % 50);
    data += sym + ",2020-01-01," + std::to_string(i) + "," + std::to_string(i) + "\n";
    last[sym] = i;
  }
  std::string f = dir_.Write("p.csv", data);
  LoadOptions o = Options({f}, "t.p");
  o.upsert = true;
  o.key = {"symbol", "date"};
  o.chunk_rows = 7;
  LoadSummary s = Run(o);
  EXPECT_EQ(s.status, "succeeded") << s.error;
  EXPECT_EQ(s.rows_rejected, 0u);
  std::string expect;
  long sum = 0;
  for (auto& [k, v] : last) sum += v;
  EXPECT_EQ(Sql("SELECT count(*), sum(volume) FROM t.p"), "50\t" + std::to_string(sum));
  EXPECT_EQ(Sql("SELECT volume FROM t.p WHERE symbol = 'K0'"), std::to_string(last["K0"]));
}

// `7`, `007`, ` 7` and `+7` are one int4 key: they must go through one connection, or the
// last row's value would win only by chance (and the connections could deadlock). Without
// routing by value this fails for a good part of the keys.
TEST_F(LoadPgTest, UpsertRoutesEverySpellingOfAKeyValueAlike) {
  Sql("CREATE TABLE t.k(id int4 PRIMARY KEY, flag bool, v int)");
  const int kKeys = 400;
  std::string data = "id,flag,v\n";
  // One busy key first backs up its connection's queue: a spelling routed behind it would
  // apply after the later spellings routed elsewhere.
  for (int i = 0; i < 20000; ++i) data += "1000000,f," + std::to_string(i) + "\n";
  const std::string spell[] = {"{}", "00{}", " {}", "+0{} "};
  for (int pass = 0; pass < 4; ++pass) {
    for (int k = 0; k < kKeys; ++k) {
      std::string id = spell[pass];
      id.replace(id.find("{}"), 2, std::to_string(k));
      data += id + "," + (pass % 2 ? "t" : "FALSE") + "," + std::to_string(pass * kKeys + k) + "\n";
    }
  }
  std::string f = dir_.Write("k.csv", data);
  LoadOptions o = Options({f}, "t.k");
  o.upsert = true;
  o.key = {"id"};
  o.workers = 4;
  o.chunk_rows = 100;
  LoadSummary s = Run(o);
  EXPECT_EQ(s.status, "succeeded") << s.error;
  EXPECT_EQ(s.rows_rejected, 0u);
  EXPECT_EQ(Sql("SELECT count(*), count(*) FILTER (WHERE v = 3 * " + std::to_string(kKeys) +
                " + id AND flag) FROM t.k WHERE id < " + std::to_string(kKeys)),
            std::to_string(kKeys) + "\t" + std::to_string(kKeys))
      << "the last spelling of every key wins";
}

TEST_F(LoadPgTest, AnUpsertRerunRewritesOnlyTheRowsThatChange) {
  Sql("CREATE TABLE t.p(symbol text, date date, close float8, volume bigint, "
      "PRIMARY KEY(symbol, date))");
  std::string f = dir_.Write("p.csv", Prices(100, 10));
  LoadOptions o = Options({f}, "t.p");
  o.upsert = true;
  o.key = {"symbol", "date"};
  ASSERT_EQ(Run(o).rows_loaded, 100u);
  const std::string before =
      Sql("SELECT string_agg(xmin::text, ',' ORDER BY symbol, date) FROM t.p");
  // The same rows again, but one changed: only that one gets a new row version.
  std::string data = Prices(100, 10);
  data.replace(data.find("S3,2020-01-01,3.5,3"), 19, "S3,2020-01-01,9.5,3");
  dir_.Write("p.csv", data);
  o.load_id = "rerun";
  LoadSummary s = Run(o);
  EXPECT_EQ(s.rows_loaded, 100u);
  EXPECT_EQ(Sql("SELECT close FROM t.p WHERE symbol = 'S3' AND date = '2020-01-01'"), "9.5");
  EXPECT_EQ(
      Sql("SELECT count(*) FROM t.p WHERE xmin::text NOT IN (SELECT unnest(string_to_array('" +
          before + "', ',')))"),
      "1");
}

TEST_F(LoadPgTest, AnUpsertNeedsAUniqueIndexOnExactlyTheKey) {
  Sql("CREATE TABLE t.p(symbol text, date date, close float8, volume bigint, "
      "UNIQUE (symbol))");
  std::string f = dir_.Write("p.csv", Prices(10, 5));
  LoadOptions o = Options({f}, "t.p");
  o.upsert = true;
  o.key = {"symbol", "date"};
  auto r = RunLoad(o, {}, {.out = nullptr, .err = nullptr});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_THAT(r.error().message, HasSubstr("--key symbol,date: table t.p has no unique index"));
  o.key = {"symbol"};  // exactly the unique columns: fine
  o.load_id = "by-symbol";
  EXPECT_EQ(Run(o).status, "succeeded");
  EXPECT_EQ(Sql("SELECT count(*), max(volume) FROM t.p"), "5\t9");
}

TEST_F(LoadPgTest, AnotherUniqueIndexFailingTheFastUpsertFallsBackAndDeadLettersTheRow) {
  // Distinct keys take the fast path (UPDATE, then INSERT .. WHERE NOT EXISTS); a 23505 from
  // another unique index sends the chunk through ON CONFLICT, which narrows the row out.
  Sql("CREATE TABLE t.p(symbol text, date date, close float8, volume bigint UNIQUE, "
      "PRIMARY KEY(symbol, date))");
  std::string f = dir_.Write("p.csv",
                             "symbol,date,close,volume\nA,2020-01-01,1,1\nB,2020-01-01,2,2\n"
                             "C,2020-01-01,3,1\nD,2020-01-01,4,4\n");
  LoadOptions o = Options({f}, "t.p");
  o.upsert = true;
  o.key = {"symbol", "date"};
  LoadSummary s = Run(o);
  EXPECT_EQ(s.status, "succeeded") << s.error;
  EXPECT_EQ(s.rows_loaded, 3u);
  auto letters = Letters(o, s.load_id);
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].position, "line 4");
  EXPECT_THAT(letters[0].reason, HasSubstr("23505"));
  EXPECT_EQ(Sql("SELECT string_agg(symbol, ',' ORDER BY symbol) FROM t.p"), "A,B,D");
}

TEST_F(LoadPgTest, TypeErrorsAreNarrowedOutByTheirCopyLine) {
  Sql("CREATE TABLE t.p(symbol text, date date, close float8, volume bigint)");
  std::string f = dir_.Write("p.csv",
                             "symbol,date,close,volume\n"
                             "A,2020-01-01,1,1\n"
                             "B,2020-01-01,1,lots\n"   // line 3: bigint
                             "C,2020-02-30,1,1\n"      // line 4: no such date
                             "D,2020-01-01,1e999,1\n"  // line 5: out of range
                             "E,2020-01-01,2,2\n");
  LoadOptions o = Options({f}, "t.p");
  LoadSummary s = Run(o);
  EXPECT_EQ(s.status, "succeeded");
  EXPECT_EQ(s.rows_loaded, 2u);
  EXPECT_EQ(s.rows_rejected, 3u);
  EXPECT_EQ(Sql("SELECT string_agg(symbol, ',' ORDER BY symbol) FROM t.p"), "A,E");
  auto letters = Letters(o, s.load_id);
  ASSERT_EQ(letters.size(), 3u);
  std::map<std::string, std::string> by_line;
  for (const auto& d : letters) by_line[d.position] = d.reason;
  EXPECT_THAT(by_line["line 3"], HasSubstr("22P02"));
  EXPECT_THAT(by_line["line 3"], HasSubstr("lots"));
  EXPECT_THAT(by_line["line 4"], HasSubstr("22008"));
  EXPECT_THAT(by_line["line 5"], HasSubstr("22003"));
}

TEST_F(LoadPgTest, CsvCopyLinesCountTheNewlinesInsideQuotedFields) {
  // numeric has no binary form here, so this table goes through CSV COPY, whose error
  // lines are physical lines: the bad row must still be the one dead-lettered.
  Sql("CREATE TABLE t.n(note text, amount numeric)");
  std::string f = dir_.Write("n.csv",
                             "note,amount\n"
                             "\"two\nlines\",1\n"
                             "\"three\nmore\nlines\",2\n"
                             "ok,oops\n"
                             "\"fine\",3\n");
  for (bool upsert : {false, true}) {
    Sql("TRUNCATE t.n; ALTER TABLE t.n DROP CONSTRAINT IF EXISTS n_pk; "
        "ALTER TABLE t.n ADD CONSTRAINT n_pk PRIMARY KEY (note)");
    LoadOptions o = Options({f}, "t.n");
    o.upsert = upsert;
    if (upsert) o.key = {"note"};  // --key is for upserts only
    o.load_id = upsert ? "lines-upsert" : "lines-insert";
    LoadSummary s = Run(o);
    EXPECT_EQ(s.rows_loaded, 3u);
    auto letters = Letters(o, s.load_id);
    ASSERT_EQ(letters.size(), 1u);
    EXPECT_EQ(letters[0].position, "line 7");
    EXPECT_EQ(letters[0].payload, "ok,oops");
    EXPECT_EQ(Sql("SELECT sum(amount) FROM t.n"), "6");
  }
}

TEST_F(LoadPgTest, ConstraintAndForeignKeyViolationsAreBisectedOut) {
  Sql("CREATE TABLE t.sym(symbol text PRIMARY KEY); INSERT INTO t.sym SELECT 'S' || g FROM "
      "generate_series(0, 9) g; "
      "CREATE TABLE t.p(symbol text REFERENCES t.sym, date date, close float8 CHECK (close >= 0), "
      "volume bigint, PRIMARY KEY(symbol, date))");
  std::string data = "symbol,date,close,volume\n";
  std::vector<int> bad_lines;
  for (int i = 0; i < 300; ++i) {
    std::string sym = i % 97 == 5 ? "NOPE" : "S" + std::to_string(i % 10);
    std::string close = i % 61 == 7 ? "-1" : "1";
    if (sym == "NOPE" || close == "-1") bad_lines.push_back(i + 2);
    data += sym + ",2020-01-" + (i / 10 < 9 ? "0" : "") + std::to_string(i / 10 + 1) + "," + close +
            ",1\n";
  }
  std::string f = dir_.Write("p.csv", data);
  for (bool upsert : {false, true}) {
    Sql("TRUNCATE t.p");
    LoadOptions o = Options({f}, "t.p");
    o.upsert = upsert;
    if (upsert) o.key = {"symbol", "date"};  // --key is for upserts only
    o.load_id = upsert ? "bisect-upsert" : "bisect-insert";
    LoadSummary s = Run(o);
    EXPECT_EQ(s.status, "succeeded") << s.error;
    EXPECT_EQ(s.rows_rejected, bad_lines.size());
    EXPECT_EQ(s.rows_loaded, 300u - bad_lines.size());
    EXPECT_EQ(Sql("SELECT count(*) FROM t.p"), std::to_string(300 - bad_lines.size()));
    std::vector<int> got;
    for (const auto& d : Letters(o, s.load_id)) {
      got.push_back(std::stoi(d.position.substr(5)));
      EXPECT_THAT(d.reason, ::testing::AnyOf(HasSubstr("23503"), HasSubstr("23514")));
    }
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, bad_lines) << (upsert ? "upsert" : "insert");
  }
}

TEST_F(LoadPgTest, ADuplicateKeyInInsertModeIsRejectedAlone) {
  Sql("CREATE TABLE t.p(symbol text, date date, close float8, volume bigint, "
      "PRIMARY KEY(symbol, date))");
  std::string f = dir_.Write("p.csv",
                             "symbol,date,close,volume\nA,2020-01-01,1,1\n"
                             "B,2020-01-01,1,1\nA,2020-01-01,2,2\nC,2020-01-01,1,1\n");
  LoadOptions o = Options({f}, "t.p");
  LoadSummary s = Run(o);
  EXPECT_EQ(s.rows_loaded, 3u);
  auto letters = Letters(o, s.load_id);
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].position, "line 4");
  EXPECT_THAT(letters[0].reason, HasSubstr("23505"));
  EXPECT_EQ(letters[0].payload, "A,2020-01-01,2,2");
}

TEST_F(LoadPgTest, IdentifiersAreAlwaysQuoted) {
  Sql("CREATE SCHEMA IF NOT EXISTS \"My Schema\"; CREATE TABLE IF NOT EXISTS y(v int); "
      "DROP TABLE IF EXISTS \"My Schema\".\"x\"\"; drop table y; --\"; "
      "CREATE TABLE \"My Schema\".\"x\"\"; drop table y; --\"(\"a\"\"b\" text, \"select\" int)");
  std::string f = dir_.Write("p.csv", "\"a\"\"b\",select\nhello,1\nworld,2\n");
  LoadOptions o = Options({f}, "\"My Schema\".\"x\"\"; drop table y; --\"");
  LoadSummary s = Run(o);
  EXPECT_EQ(s.status, "succeeded") << s.error;
  EXPECT_EQ(Sql("SELECT string_agg(\"a\"\"b\", ',' ORDER BY \"select\") FROM "
                "\"My Schema\".\"x\"\"; drop table y; --\""),
            "hello,world");
  EXPECT_EQ(Sql("SELECT to_regclass('y') IS NOT NULL"), "t") << "table y survived";
  Sql("DROP SCHEMA \"My Schema\" CASCADE; DROP TABLE y");
}

TEST_F(LoadPgTest, ThePasswordNeverAppearsInOutputErrorsOrTheJournal) {
  Sql("CREATE TABLE t.p(symbol text, date date, close float8, volume bigint)");
  std::string f = dir_.Write("p.csv", Prices(10, 5));
  const std::string password(PgServer::kPassword);
  LoadOptions o = Options({f}, "t.nope");
  o.to = pg_->password_dsn();
  auto missing = RunLoad(o, {}, {.out = nullptr, .err = nullptr});
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message, HasSubstr("no such table"));
  EXPECT_THAT(missing.error().message, Not(HasSubstr(password)));
  EXPECT_THAT(missing.error().message, HasSubstr("***"));

  o.table = "t.p";
  LoadSummary s = Run(o);
  EXPECT_EQ(s.status, "succeeded") << s.error;
  EXPECT_THAT(s.ToJson(), Not(HasSubstr(password)));
  EXPECT_THAT(s.ToText(), Not(HasSubstr(password)));
  std::ifstream j(o.journal_path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(j)), {});
  std::ifstream wal(o.journal_path + "-wal", std::ios::binary);
  bytes.append((std::istreambuf_iterator<char>(wal)), {});
  EXPECT_THAT(bytes, HasSubstr(s.load_id)) << "the journal holds the run";
  EXPECT_EQ(bytes.find(password), std::string::npos) << "the journal holds the password";

  LoadOptions wrong = o;
  std::string dsn = pg_->password_dsn();
  wrong.to = dsn.replace(dsn.find(password), password.size(), "wrong-pw");
  auto denied = RunLoad(wrong, {}, {.out = nullptr, .err = nullptr});
  ASSERT_FALSE(denied);
  EXPECT_THAT(denied.error().message, Not(HasSubstr("wrong-pw")));
}

TEST_F(LoadPgTest, WorkersAboveHalfOfMaxConnectionsAreRefusedNamingBoth) {
  Sql("CREATE TABLE t.p(symbol text, date date, close float8, volume bigint)");
  std::string f = dir_.Write("p.csv", Prices(10, 5));
  LoadOptions o = Options({f}, "t.p");
  o.workers = 21;
  auto r = RunLoad(o, {}, {.out = nullptr, .err = nullptr});
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message,
              HasSubstr("--workers 21 is more than half of the server's max_connections (40)"));
  EXPECT_EQ(Sql("SELECT count(*) FROM t.p"), "0");
}

TEST_F(LoadPgTest, AStoppedLoadResumesExactlyOnce) {
  Sql("CREATE TABLE t.p(symbol text, date date, close float8, volume bigint)");  // no key:
  std::string f = dir_.Write("p.csv", Prices(30000, 1000));  // duplicates would show
  LoadOptions o = Options({f}, "t.p");
  std::stop_source graceful;
  std::thread stopper([&] {
    for (int i = 0; i < 2000; ++i) {
      auto n = pg_->Sql("SELECT count(*) FROM t.forklift_load_chunks");
      if (n && std::stoi(*n) >= 20) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    graceful.request_stop();
  });
  LoadSummary first = Run(o, {.graceful = graceful.get_token()});
  stopper.join();
  EXPECT_EQ(first.status, "cancelled");
  EXPECT_LT(first.rows_loaded, 30000u);
  EXPECT_GT(first.rows_loaded, 0u);
  LoadSummary second = Run(o);
  EXPECT_EQ(second.status, "succeeded");
  EXPECT_EQ(second.rows_skipped, first.rows_loaded);
  EXPECT_EQ(first.rows_loaded + second.rows_loaded, 30000u);
  EXPECT_EQ(Sql("SELECT count(*), count(DISTINCT volume) FROM t.p"), "30000\t30000");
}

TEST_F(LoadPgTest, AServerRestartMidLoadEndsWithEveryRowLoadedOnce) {
  Sql("CREATE TABLE t.p(symbol text, date date, close float8, volume bigint)");
  std::string f = dir_.Write("p.csv", Prices(60000, 1000));
  LoadOptions o = Options({f}, "t.p");
  o.chunk_rows = 200;
  std::atomic<bool> restarted{false};
  std::thread restarter([&] {
    for (int i = 0; i < 5000; ++i) {
      auto n = pg_->Sql("SELECT count(*) FROM t.forklift_load_chunks");
      if (n && std::stoi(*n) >= 30) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    restarted = pg_->Restart("fast").has_value();
  });
  LoadSummary s = Run(o);
  restarter.join();
  ASSERT_TRUE(restarted);
  EXPECT_EQ(s.status, "succeeded") << s.error;
  EXPECT_GT(s.retries, 0u) << "the restart hit the load";
  EXPECT_EQ(Sql("SELECT count(*), count(DISTINCT volume) FROM t.p"), "60000\t60000");
  EXPECT_EQ(Sql("SELECT count(*) FROM t.forklift_load_chunks"), "300");
}

}  // namespace
}  // namespace forklift::load
