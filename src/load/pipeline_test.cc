// The C++ pipeline (load/pipeline.h): a generator, files, row and batch transforms, dead
// letters and resume, through an in-memory target (4 writers) and a real SQLite file.
#include "load/pipeline.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "journal/journal.h"
#include "support/temp_dir.h"

namespace forklift::load {
namespace {

using test_support::TempDir;
using ::testing::HasSubstr;

// What the fake target holds: the rows written (as CSV records) and its ledger.
struct FakeDb {
  std::mutex mu;
  std::vector<std::string> rows;                 // guarded by mu
  std::map<int64_t, sinks::LedgerEntry> ledger;  // guarded by mu
  std::atomic<int> targets_opened{0};
};

class FakeSink : public sinks::Sink {
 public:
  explicit FakeSink(FakeDb* db) : db_(db) {}
  Result<sinks::ChunkWriteResult> WriteChunk(const sinks::Chunk& chunk,
                                             const sinks::BeforeCommit& before_commit) override {
    FORKLIFT_RETURN_IF_ERROR(before_commit({}));
    std::lock_guard lock(db_->mu);
    for (size_t i = 0; i < chunk.rows.size(); ++i) db_->rows.emplace_back(chunk.Row(i));
    db_->ledger[chunk.number] = {.chunk = chunk.number,
                                 .source = chunk.source,
                                 .first_line = static_cast<int64_t>(chunk.first_line),
                                 .last_line = static_cast<int64_t>(chunk.last_line),
                                 .rows = static_cast<int64_t>(chunk.rows.size()),
                                 .rejected = static_cast<int64_t>(chunk.parse_rejects.size()),
                                 .checksum = chunk.checksum};
    return sinks::ChunkWriteResult{.rows_written = static_cast<int64_t>(chunk.rows.size())};
  }
  Status Reconnect() override { return {}; }
  Result<std::optional<sinks::LedgerEntry>> FindChunk(int64_t chunk) override {
    std::lock_guard lock(db_->mu);
    auto it = db_->ledger.find(chunk);
    if (it == db_->ledger.end()) return std::optional<sinks::LedgerEntry>();
    return std::optional<sinks::LedgerEntry>(it->second);
  }

 private:
  FakeDb* db_;
};

class FakeTarget : public sinks::Target {
 public:
  FakeTarget(sinks::TargetAddress address, FakeDb* db) : address_(std::move(address)), db_(db) {}
  const sinks::TargetAddress& address() const override { return address_; }
  Result<int> MaxWorkers() override { return 50; }
  Status EnsureLedger() override { return {}; }
  Result<std::vector<sinks::LedgerEntry>> CommittedChunks() override {
    std::lock_guard lock(db_->mu);
    std::vector<sinks::LedgerEntry> out;
    for (const auto& [n, e] : db_->ledger) out.push_back(e);
    return out;
  }
  Result<std::unique_ptr<sinks::Sink>> OpenSink() override {
    return std::unique_ptr<sinks::Sink>(std::make_unique<FakeSink>(db_));
  }

 private:
  sinks::TargetAddress address_;
  FakeDb* db_;
};

LoadIo FakeIo(FakeDb* db) {
  return {.out = nullptr,
          .err = nullptr,
          .open_target = [db](const sinks::TargetAddress& a,
                              const sinks::TableSpec&) -> Result<std::unique_ptr<sinks::Target>> {
            db->targets_opened.fetch_add(1);
            return std::unique_ptr<sinks::Target>(std::make_unique<FakeTarget>(a, db));
          }};
}

// Rows "k<i>", "<i>" for i in [0, n); `changed_at` >= 0 yields another value there.
PipelineSource Numbers(int n, int changed_at = -1) {
  auto i = std::make_shared<int>(0);
  return PipelineSource::Generate("numbers", {"k", "v"}, [i, n, changed_at](Row* row) {
    if (*i >= n) return Result<bool>(false);
    *row = {"k" + std::to_string(*i), std::to_string(*i == changed_at ? -1 : *i)};
    ++*i;
    return Result<bool>(true);
  });
}

class PipelineFakeTest : public ::testing::Test {
 protected:
  PipelineOptions Options() {
    PipelineOptions o;
    o.load.to = "postgres://fake@localhost/db";
    o.load.table = "t";
    o.load.upsert = true;
    o.load.key = {"k"};
    o.load.workers = 4;
    o.load.chunk_rows = 100;
    o.load.journal_path = dir_.Path("journal.db");
    o.load.display = ProgressDisplay::kNone;
    return o;
  }
  std::vector<journal::DeadLetter> Letters(const std::string& load_id) {
    auto j = journal::Journal::Open(dir_.Path("journal.db"));
    EXPECT_TRUE(j);
    auto l = (*j)->ListDeadLetters(load_id, false);
    EXPECT_TRUE(l);
    return l ? *l : std::vector<journal::DeadLetter>{};
  }
  TempDir dir_;
  FakeDb db_;
};

// A row transform on its own single thread, one call at a time; its failures and
// exceptions become dead letters of their rows; the rest is written by 4 writers.
TEST_F(PipelineFakeTest, RowTransformIsSequentialAndItsFailuresAreDeadLetters) {
  PipelineOptions o = Options();
  o.output_columns = {"k", "v", "twice"};
  o.transform_name = "twice";
  std::atomic<int> in_flight{0}, most{0}, calls{0};
  std::mutex ids_mu;
  std::vector<std::thread::id> ids;
  o.row_transform = [&](const Row& in) -> Result<std::vector<Row>> {
    const int now = ++in_flight;
    most.store(std::max(most.load(), now));
    ++calls;
    {
      std::lock_guard lock(ids_mu);
      if (std::find(ids.begin(), ids.end(), std::this_thread::get_id()) == ids.end()) {
        ids.push_back(std::this_thread::get_id());
      }
    }
    const int v = std::stoi(in.at(1));
    --in_flight;
    if (v % 100 == 7) return InvalidArgumentError("seven");
    if (v % 100 == 9) throw std::runtime_error("nine");
    if (v % 100 == 11) return std::vector<Row>{};  // dropped: neither loaded nor rejected
    return std::vector<Row>{{in[0], in[1], std::to_string(2 * v)}};
  };
  auto s = RunPipeline(Numbers(1000), o, {}, FakeIo(&db_));
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->status, "succeeded") << s->error;
  EXPECT_EQ(s->rows_read, 1000u);
  EXPECT_EQ(s->rows_loaded, 970u);
  EXPECT_EQ(s->rows_rejected, 20u);
  EXPECT_EQ(s->connections, 4);
  EXPECT_EQ(calls.load(), 1000);
  EXPECT_EQ(most.load(), 1);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_NE(ids[0], std::this_thread::get_id());
  std::vector<std::string> rows = db_.rows;
  std::sort(rows.begin(), rows.end());
  EXPECT_EQ(rows.size(), 970u);
  EXPECT_TRUE(std::binary_search(rows.begin(), rows.end(), "k500,500,1000"));
  EXPECT_FALSE(std::binary_search(rows.begin(), rows.end(), "k507,507,1014"));
  auto letters = Letters(s->load_id);
  ASSERT_EQ(letters.size(), 20u);
  int sevens = 0, nines = 0;
  for (const auto& l : letters) {
    EXPECT_EQ(l.source, "numbers");
    if (l.payload == "k7,7") {
      EXPECT_EQ(l.position, "line 9");  // the header is line 1
      EXPECT_THAT(l.reason, HasSubstr("transform twice: InvalidArgument: seven"));
    }
    sevens += l.reason.find("seven") != std::string::npos;
    nines += l.reason.find("threw nine") != std::string::npos;
  }
  EXPECT_EQ(sevens, 10);
  EXPECT_EQ(nines, 10);
}

// A rerun skips every committed chunk without transforming it; a generator that yields
// other rows under the same name fails as a changed source, writing nothing.
TEST_F(PipelineFakeTest, RerunSkipsCommittedChunksAndChangedRowsFail) {
  std::atomic<int> calls{0};
  PipelineOptions o = Options();
  o.output_columns = {"k", "v"};
  o.batch_transform = [&](std::span<const Row> in) -> Result<std::vector<Row>> {
    ++calls;
    return std::vector<Row>(in.begin(), in.end());
  };
  auto first = RunPipeline(Numbers(1000), o, {}, FakeIo(&db_));
  ASSERT_TRUE(first) << first.error().ToString();
  ASSERT_EQ(first->status, "succeeded") << first->error;
  const uint64_t chunks = first->chunks_committed;
  EXPECT_GE(chunks, 10u);
  EXPECT_EQ(static_cast<uint64_t>(calls.load()), chunks);

  calls = 0;
  auto again = RunPipeline(Numbers(1000), o, {}, FakeIo(&db_));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, "succeeded") << again->error;
  EXPECT_EQ(again->load_id, first->load_id);
  EXPECT_EQ(again->rows_loaded, 0u);
  EXPECT_EQ(again->chunks_skipped, chunks);
  EXPECT_EQ(again->rows_skipped, 1000u);
  EXPECT_EQ(calls.load(), 0);

  auto changed = RunPipeline(Numbers(1000, 500), o, {}, FakeIo(&db_));
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed->status, "failed");
  EXPECT_THAT(changed->error, HasSubstr("numbers: source changed"));
  EXPECT_EQ(db_.rows.size(), 1000u);
}

// A batch transform's failure, or an output row of the wrong width, dead-letters the
// chunk's rows; the chunk is still recorded, so the load goes on.
TEST_F(PipelineFakeTest, BatchFailuresDeadLetterTheirChunk) {
  PipelineOptions o = Options();
  o.load.upsert = false;
  o.load.key.clear();
  o.load.workers = 2;
  o.output_columns = {"k", "v"};
  o.batch_transform = [](std::span<const Row> in) -> Result<std::vector<Row>> {
    if (in.front()[1] == "0") return UnavailableError("first batch refused");
    if (in.front()[1] == "100") return std::vector<Row>{{"only-one-field"}};
    if (in.front()[1] == "200") throw std::logic_error("boom");
    return std::vector<Row>(in.begin(), in.end());
  };
  auto s = RunPipeline(Numbers(500), o, {}, FakeIo(&db_));
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->status, "succeeded") << s->error;
  EXPECT_EQ(s->rows_loaded, 200u);
  EXPECT_EQ(s->rows_rejected, 300u);
  EXPECT_EQ(db_.ledger.size(), 5u);
  auto letters = Letters(s->load_id);
  ASSERT_EQ(letters.size(), 300u);
  std::map<std::string, int> reasons;
  for (const auto& l : letters) ++reasons[l.reason];
  EXPECT_EQ(reasons["transform transform: Unavailable: first batch refused"], 100);
  EXPECT_EQ(reasons["transform transform: output row 1 has 1 fields for the 2 output columns"],
            100);
  EXPECT_EQ(reasons["transform transform: Internal: threw boom"], 100);
}

// Mistakes in the options fail before the target is opened.
TEST_F(PipelineFakeTest, BadOptionsFailBeforeAnythingIsOpened) {
  auto fails = [&](PipelineSource src, const PipelineOptions& o, const std::string& what) {
    auto s = RunPipeline(std::move(src), o, {}, FakeIo(&db_));
    ASSERT_FALSE(s) << what;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument) << what;
    EXPECT_THAT(s.error().message, HasSubstr(what));
  };
  auto identity = [](const Row& r) { return Result<std::vector<Row>>(std::vector<Row>{r}); };
  PipelineOptions o = Options();
  o.row_transform = identity;
  fails(Numbers(3), o, "a transform needs its output_columns");
  o.output_columns = {"v"};
  fails(Numbers(3), o, "--key k: not among the transform's output columns (v)");
  o.output_columns = {"k", "v"};
  o.batch_transform = [](std::span<const Row> in) {
    return Result<std::vector<Row>>(std::vector<Row>(in.begin(), in.end()));
  };
  fails(Numbers(3), o, "not both");
  o.batch_transform = nullptr;
  o.load.key = {"x"};
  fails(Numbers(3), o, "--key x: not among the source's columns (k,v)");
  o.load.key = {"k"};
  o.load.sources = {"a.csv"};
  fails(Numbers(3), o, "sources, from and query must be empty");
  o.load.sources.clear();
  fails(PipelineSource::Generate("", {"k"}, [](Row*) { return Result<bool>(false); }), o,
        "a name and the columns are required");
  fails(PipelineSource{}, o, "one of files, a query or a generator");
  o.load.chunk_rows = 0;
  fails(Numbers(3), o, "--chunk-rows");
  EXPECT_EQ(db_.targets_opened.load(), 0);
}

// ---- A real SQLite file --------------------------------------------------------------

std::string Query(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  std::string out;
  sqlite3_stmt* s = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  while (s && sqlite3_step(s) == SQLITE_ROW) {
    for (int i = 0; i < sqlite3_column_count(s); ++i) {
      if (i) out += "|";
      const unsigned char* t = sqlite3_column_text(s, i);
      out += t ? reinterpret_cast<const char*>(t) : "NULL";
    }
    out += "\n";
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

class PipelineSqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = dir_.Path("t.db");
    Query(db_, "CREATE TABLE t(k TEXT PRIMARY KEY, v TEXT, n INTEGER)");
  }
  PipelineOptions Options() {
    PipelineOptions o;
    o.load.to = "sqlite:" + db_;
    o.load.table = "t";
    o.load.upsert = true;
    o.load.key = {"k"};
    o.load.chunk_rows = 2;
    o.load.journal_path = dir_.Path("journal.db");
    o.load.display = ProgressDisplay::kNone;
    return o;
  }
  TempDir dir_;
  std::string db_;
};

// Fields that need quoting, an empty string and NULL reach SQLite as the program made
// them; a rerun writes nothing.
TEST_F(PipelineSqliteTest, GeneratedRowsRoundTripAndRerunLoadsNothing) {
  const std::vector<Row> made = {{"a", "x,y", "1"},
                                 {"b", "say \"hi\"", "2"},
                                 {"c", "two\nlines", "3"},
                                 {"d", "", ""},
                                 {"e", "\"\"", "5"}};
  auto source = [&] {
    auto i = std::make_shared<size_t>(0);
    return PipelineSource::Generate("made", {"k", "v", "n"}, [i, &made](Row* row) {
      if (*i == made.size()) return Result<bool>(false);
      *row = made[(*i)++];
      return Result<bool>(true);
    });
  };
  PipelineOptions o = Options();
  o.output_columns = {"k", "v", "n"};
  o.row_transform = [](const Row& in) -> Result<std::vector<Row>> {
    Row out = in;
    if (out[0] == "d") out[1] = "";  // NULL: the null string
    return std::vector<Row>{out};
  };
  auto s = RunPipeline(source(), o, {}, {.out = nullptr, .err = nullptr});
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->status, "succeeded") << s->error;
  EXPECT_EQ(s->rows_loaded, 5u);
  EXPECT_EQ(Query(db_, "SELECT k, v, typeof(v), n FROM t ORDER BY k"),
            "a|x,y|text|1\nb|say \"hi\"|text|2\nc|two\nlines|text|3\nd|NULL|null|NULL\n"
            "e|\"\"|text|5\n");
  auto again = RunPipeline(source(), o, {}, {.out = nullptr, .err = nullptr});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->rows_loaded, 0u);
  EXPECT_EQ(again->chunks_skipped, 3u);
}

// Files through a C++ transform, into SQLite; a generator's error fails the load naming
// the source, keeping what committed.
TEST_F(PipelineSqliteTest, FilesThroughATransformAndAGeneratorError) {
  const std::string csv = dir_.Path("in.csv");
  std::ofstream(csv) << "k,v\na,1\nb,2\nc,3\n";
  PipelineOptions o = Options();
  o.output_columns = {"k", "v", "n"};
  o.row_transform = [](const Row& in) {
    return Result<std::vector<Row>>(std::vector<Row>{{in[0], in[1], in[1] + "0"}});
  };
  auto s = RunPipeline(PipelineSource::Files({csv}), o, {}, {.out = nullptr, .err = nullptr});
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->status, "succeeded") << s->error;
  EXPECT_EQ(Query(db_, "SELECT k, v, n FROM t ORDER BY k"), "a|1|10\nb|2|20\nc|3|30\n");

  // The reader reads ahead of the chunks, so the error may come before any commits; what
  // did commit stays, and a rerun that reads to the end loads the rest.
  auto feed = [](int fail_at) {
    auto i = std::make_shared<int>(0);
    return PipelineSource::Generate("feed", {"k", "v", "n"}, [i, fail_at](Row* row) {
      if (*i == fail_at) return Result<bool>(UnavailableError("feed went away"));
      if (*i == 10) return Result<bool>(false);
      *row = {"g" + std::to_string(*i), "v", std::to_string(*i)};
      ++*i;
      return Result<bool>(true);
    });
  };
  PipelineOptions g = Options();
  auto f = RunPipeline(feed(5), g, {}, {.out = nullptr, .err = nullptr});
  ASSERT_TRUE(f) << f.error().ToString();
  EXPECT_EQ(f->status, "failed");
  EXPECT_THAT(f->error, HasSubstr("feed:1: feed went away"));
  auto rerun = RunPipeline(feed(-1), g, {}, {.out = nullptr, .err = nullptr});
  ASSERT_TRUE(rerun) << rerun.error().ToString();
  EXPECT_EQ(rerun->status, "succeeded") << rerun->error;
  EXPECT_EQ(rerun->load_id, f->load_id);
  EXPECT_EQ(Query(db_, "SELECT count(*), sum(n) FROM t WHERE k LIKE 'g%'"), "10|45\n");
}

}  // namespace
}  // namespace forklift::load
