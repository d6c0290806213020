#include "journal/journal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>
#include <map>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.h"

namespace forklift::journal {
namespace {

using ::testing::HasSubstr;

// A raw SQLite connection, to look at the file the way another program (or a forklift from
// another version) would.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK) << path;
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  // The first column of the first row of `sql`, or "" when there is none.
  std::string Query(const std::string& sql) {
    std::string out;
    char* err = nullptr;
    int rc = sqlite3_exec(
        db_, sql.c_str(),
        [](void* o, int n, char** values, char**) {
          if (n > 0 && values[0]) *static_cast<std::string*>(o) = values[0];
          return 0;
        },
        &out, &err);
    EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (err ? err : "");
    sqlite3_free(err);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    dir_ = tmp_.path();
  }
  std::unique_ptr<Journal> OpenOk(const std::string& name = "j/journal.db",
                                  const JournalOptions& options = {}) {
    auto j = Journal::Open(dir_ + "/" + name, options);
    EXPECT_TRUE(j) << j.error().ToString();
    return j ? std::move(*j) : nullptr;
  }
  void ExpectRefused(const std::string& path) {
    auto j = Journal::Open(path);
    ASSERT_FALSE(j) << path << " was opened";
    EXPECT_EQ(j.error().code, ErrorCode::kInvalidArgument) << j.error().ToString();
    EXPECT_THAT(j.error().message, HasSubstr("journal: cannot open '" + path + "' for writing"));
  }
  test_support::TempDir tmp_{"forklift-journal"};
  std::string dir_;
};

ItemRecord Ok(std::string key) { return {.key = std::move(key), .ok = true, .attempts = 1}; }
ItemRecord Failed(std::string key, std::string message) {
  return {.key = std::move(key),
          .ok = false,
          .code = ErrorCode::kUnavailable,
          .message = std::move(message),
          .attempts = 3,
          .elapsed_us = 7};
}

TEST_F(JournalTest, OpenCreatesDirectoriesWalModeAndSchema) {
  auto j = OpenOk("a/b/c/journal.db");
  ASSERT_TRUE(j);
  EXPECT_EQ(j->path(), dir_ + "/a/b/c/journal.db");
  ASSERT_TRUE(std::filesystem::is_regular_file(dir_ + "/a/b/c/journal.db"));
  RawDb raw(dir_ + "/a/b/c/journal.db");
  EXPECT_EQ(raw.Query("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.Query("PRAGMA user_version"), "3");
  EXPECT_EQ(raw.Query("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                      "name IN ('runs', 'items', 'dead_letters')"),
            "3");
  // Opening again is a no-op on an up-to-date file.
  j.reset();
  EXPECT_TRUE(OpenOk("a/b/c/journal.db"));
}

TEST_F(JournalTest, AnUnwritablePathIsRefusedByName) {
  std::ofstream(dir_ + "/plainfile") << "x";
  ExpectRefused(dir_ + "/plainfile/journal.db");
  ExpectRefused(dir_ + "/plainfile/deeper/journal.db");
  ExpectRefused("/dev/null/journal.db");
  ExpectRefused(dir_);  // a directory
  auto empty = Journal::Open("");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(JournalTest, AFileThatIsNotADatabaseIsRefused) {
  std::ofstream(dir_ + "/notadb") << std::string(4096, 'x');
  ExpectRefused(dir_ + "/notadb");
}

TEST_F(JournalTest, AReadOnlyFileOrDirectoryIsRefusedAtOpen) {
  if (geteuid() == 0) GTEST_SKIP() << "root ignores file permissions";
  ASSERT_TRUE(OpenOk("ro.db"));
  std::filesystem::permissions(dir_ + "/ro.db", std::filesystem::perms::owner_read);
  ExpectRefused(dir_ + "/ro.db");

  ASSERT_TRUE(OpenOk("rodir/j.db"));
  std::filesystem::permissions(
      dir_ + "/rodir", std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  ExpectRefused(dir_ + "/rodir/j.db");  // no room for the -wal and -shm files
  ExpectRefused(dir_ + "/rodir/new.db");
}

TEST_F(JournalTest, AJournalFromANewerForkliftIsRefused) {
  ASSERT_TRUE(OpenOk("j.db"));
  RawDb(dir_ + "/j.db").Query("PRAGMA user_version=99");
  auto j = Journal::Open(dir_ + "/j.db");
  ASSERT_FALSE(j);
  EXPECT_EQ(j.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(j.error().message, HasSubstr("newer"));
}

TEST_F(JournalTest, RunsRoundTripCountInvocationsAndListNewestFirst) {
  auto j = OpenOk();
  ASSERT_TRUE(j->BeginRun("r1", "batch", "first"));
  ASSERT_TRUE(j->RecordItems("r1", std::vector<ItemRecord>{Ok("a"), Ok("b"), Failed("c", "x")}));
  ASSERT_TRUE(j->FinishRun("r1", RunStatus::kFailed, R"({"processed":3})"));
  auto r1 = j->GetRun("r1");
  ASSERT_TRUE(r1);
  ASSERT_TRUE(*r1);
  EXPECT_EQ((*r1)->kind, "batch");
  EXPECT_EQ((*r1)->name, "first");
  EXPECT_EQ((*r1)->status, "failed");
  EXPECT_EQ((*r1)->invocations, 1);
  EXPECT_EQ((*r1)->summary_json, R"({"processed":3})");
  ASSERT_TRUE((*r1)->finished_at);
  EXPECT_GE(*(*r1)->finished_at, (*r1)->started_at);
  EXPECT_GT((*r1)->started_at, 1.6e9) << "unix seconds";
  EXPECT_EQ((*r1)->items_succeeded, 2);
  EXPECT_EQ((*r1)->items_failed, 1);

  const double r1_start = (*r1)->started_at;
  ASSERT_TRUE(j->BeginRun("r2", "map", "second"));
  ASSERT_TRUE(j->BeginRun("r1", "batch", "first"));  // a resume
  auto runs = j->ListRuns("", 0);
  ASSERT_TRUE(runs);
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].run_id, "r2") << "a resume keeps its run's first start, so r2 is newest";
  EXPECT_EQ((*runs)[0].invocations, 1);
  EXPECT_EQ((*runs)[1].run_id, "r1");
  EXPECT_EQ((*runs)[1].started_at, r1_start);
  EXPECT_EQ((*runs)[1].invocations, 2);
  EXPECT_EQ((*runs)[1].status, "running");
  EXPECT_FALSE((*runs)[1].finished_at);
  EXPECT_EQ((*runs)[1].summary_json, "");
  EXPECT_EQ((*runs)[1].items_succeeded, 2) << "a restart keeps the items for resume";

  auto maps = j->ListRuns("map", 10);
  ASSERT_TRUE(maps);
  ASSERT_EQ(maps->size(), 1u);
  EXPECT_EQ((*maps)[0].name, "second");
  auto one = j->ListRuns("", 1);
  ASSERT_TRUE(one);
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].run_id, "r2");
  EXPECT_TRUE(j->ListRuns("flow", 0)->empty());

  auto none = j->GetRun("nope");
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  EXPECT_EQ(j->FinishRun("nope", RunStatus::kFailed, "{}").error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(j->FinishRun("r2", RunStatus::kCancelled, ""));
  ASSERT_TRUE(j->FinishRun("r1", RunStatus::kKilled, ""));
  EXPECT_EQ((*j->GetRun("r1"))->status, "killed");

  // By kind and name, newest first, statuses only.
  ASSERT_TRUE(j->BeginRun("r3", "map", "second"));
  auto states = j->ListRunStates("map", "second");
  ASSERT_TRUE(states) << states.error().ToString();
  ASSERT_EQ(states->size(), 2u);
  EXPECT_EQ((*states)[0].run_id, "r3");
  EXPECT_EQ((*states)[0].status, "running");
  EXPECT_EQ((*states)[1].run_id, "r2");
  EXPECT_EQ((*states)[1].status, "cancelled");
  EXPECT_TRUE(j->ListRunStates("batch", "second")->empty());
  EXPECT_TRUE(j->ListRunStates("map", "first")->empty());
  EXPECT_EQ((*j->GetRun("r2"))->status, "cancelled");
}

// An item interrupted by a stop (killed, or cancelled cooperatively) is recorded as
// cancelled: neither failed nor succeeded, so that a resume that skips every finished item
// still runs it; it never downgrades a success, and a later outcome replaces it.
TEST_F(JournalTest, CancelledItemsAreADistinctState) {
  auto j = OpenOk();
  ItemRecord killed = Failed("k", "killed");
  killed.code = ErrorCode::kCancelled;
  killed.cancelled = true;
  ItemRecord late = killed;
  late.key = "s";
  ASSERT_TRUE(j->RecordItems("r", std::vector<ItemRecord>{Ok("s"), killed, Failed("f", "x")}));
  ASSERT_TRUE(j->RecordItems("r", std::span<const ItemRecord>(&late, 1)));
  EXPECT_EQ(*j->GetItemState("r", "k"), ItemState::kCancelled);
  EXPECT_EQ(*j->GetItemState("r", "s"), ItemState::kSucceeded) << "never downgraded";
  EXPECT_EQ(*j->GetItemState("r", "f"), ItemState::kFailed);
  EXPECT_EQ(*j->CountItems("r", false), 1u) << "a cancelled item is not a failure";
  EXPECT_EQ(*j->CountItems("r", std::nullopt), 3u);
  ASSERT_TRUE(j->BeginRun("r", "map", "x"));
  EXPECT_EQ((*j->GetRun("r"))->items_failed, 1);
  ASSERT_TRUE(j->RecordItems("r", std::vector<ItemRecord>{Ok("k")}));
  EXPECT_EQ(*j->GetItemState("r", "k"), ItemState::kSucceeded);
}

TEST_F(JournalTest, ListItemsReturnsEachRecordedItemWithItsDetail) {
  auto j = OpenOk();
  ItemRecord a = Ok("a");
  a.detail = R"({"state":"up_to_date"})";
  ItemRecord c = Failed("c", "exit 3");
  c.detail = R"({"state":"failed","exit_code":3})";
  ASSERT_TRUE(j->RecordItems("r", std::vector<ItemRecord>{a, Ok("b"), c}));
  ASSERT_TRUE(j->RecordItems("other", std::vector<ItemRecord>{Ok("z")}));
  auto rows = j->ListItems("r");
  ASSERT_TRUE(rows) << rows.error().ToString();
  ASSERT_EQ(rows->size(), 3u);
  std::map<std::string, ItemRow> by_key;
  for (ItemRow& row : *rows) by_key[row.key] = row;
  EXPECT_EQ(by_key["a"].state, ItemState::kSucceeded);
  EXPECT_EQ(by_key["a"].detail, R"({"state":"up_to_date"})");
  EXPECT_EQ(by_key["b"].detail, "") << "no detail is stored as none";
  EXPECT_EQ(by_key["c"].state, ItemState::kFailed);
  EXPECT_EQ(by_key["c"].message, "exit 3");
  EXPECT_EQ(by_key["c"].detail, R"({"state":"failed","exit_code":3})");
  EXPECT_TRUE(j->ListItems("none")->empty());
}

TEST_F(JournalTest, ItemsRecordAndSucceededIsNeverDowngraded) {
  auto j = OpenOk();
  ASSERT_TRUE(j->RecordItems("r", std::vector<ItemRecord>{Ok("x"), Failed("y", "down")}));
  EXPECT_EQ(*j->GetItemState("r", "x"), ItemState::kSucceeded);
  EXPECT_EQ(*j->GetItemState("r", "y"), ItemState::kFailed);
  EXPECT_EQ(*j->GetItemState("r", "z"), ItemState::kUnknown);
  EXPECT_EQ(*j->GetItemState("other", "x"), ItemState::kUnknown) << "items are per run";
  EXPECT_EQ(*j->GetItemState("r", "x"), ItemState::kSucceeded);
  EXPECT_NE(*j->GetItemState("r", "y"), ItemState::kSucceeded);
  EXPECT_NE(*j->GetItemState("r", "z"), ItemState::kSucceeded);

  // A later failure of x (a duplicate key, a rerun) keeps x succeeded; y recovers.
  ASSERT_TRUE(j->RecordItems("r", std::vector<ItemRecord>{Failed("x", "late"), Ok("y")}));
  EXPECT_EQ(*j->GetItemState("r", "x"), ItemState::kSucceeded);
  EXPECT_EQ(*j->GetItemState("r", "y"), ItemState::kSucceeded);
  // Within one batch too.
  ASSERT_TRUE(j->RecordItems("r", std::vector<ItemRecord>{Ok("w"), Failed("w", "dup")}));
  EXPECT_EQ(*j->GetItemState("r", "w"), ItemState::kSucceeded);
  RawDb raw(j->path());
  EXPECT_EQ(raw.Query("SELECT error_message IS NULL FROM items WHERE key = CAST('x' AS BLOB)"),
            "1");

  // A failure replaces an earlier failure.
  ASSERT_TRUE(j->RecordItems("r", std::vector<ItemRecord>{Failed("v", "first")}));
  ItemRecord again = Failed("v", "second");
  again.code = ErrorCode::kDeadlineExceeded;
  ASSERT_TRUE(j->RecordItems("r", std::span<const ItemRecord>(&again, 1)));
  EXPECT_EQ(raw.Query("SELECT error_code || ':' || error_message || ':' || attempts "
                      "FROM items WHERE key = CAST('v' AS BLOB)"),
            "DeadlineExceeded:second:3");

  EXPECT_EQ(*j->CountItems("r", true), 3u);
  EXPECT_EQ(*j->CountItems("r", false), 1u);
  EXPECT_EQ(*j->CountItems("r", std::nullopt), 4u);
  EXPECT_EQ(*j->CountItems("other", std::nullopt), 0u);
  EXPECT_TRUE(j->RecordItems("r", {})) << "an empty batch is fine";
  ASSERT_TRUE(j->ClearItems("r"));
  EXPECT_EQ(*j->CountItems("r", std::nullopt), 0u);
  EXPECT_NE(*j->GetItemState("r", "x"), ItemState::kSucceeded);
}

TEST_F(JournalTest, KeysAreArbitraryBytes) {
  auto j = OpenOk();
  const std::vector<std::string> keys = {
      std::string("a\0b", 3),
      std::string("a\0c", 3),
      std::string("a"),
      std::string("a\0", 2),
      std::string("\xff\xfe\x00\x01", 4),
      std::string(),  // the empty key is a key, not NULL
  };
  std::vector<ItemRecord> recs;
  for (const std::string& k : keys) recs.push_back(Ok(k));
  recs[1].ok = false;
  ASSERT_TRUE(j->RecordItems("r", recs));
  EXPECT_EQ(*j->CountItems("r", std::nullopt), keys.size()) << "no two keys collapsed";
  EXPECT_EQ(*j->GetItemState("r", keys[0]), ItemState::kSucceeded);
  EXPECT_NE(*j->GetItemState("r", keys[1]), ItemState::kSucceeded) << "differs only after the NUL";
  EXPECT_EQ(*j->GetItemState("r", keys[1]), ItemState::kFailed);
  EXPECT_EQ(*j->GetItemState("r", keys[3]), ItemState::kSucceeded);
  EXPECT_EQ(*j->GetItemState("r", keys[4]), ItemState::kSucceeded);
  EXPECT_EQ(*j->GetItemState("r", std::string_view()), ItemState::kSucceeded);
  EXPECT_EQ(*j->GetItemState("r", std::string("a\0d", 3)), ItemState::kUnknown);
}

TEST_F(JournalTest, DeadLettersAddListAndRetry) {
  auto j = OpenOk();
  const std::string payload("1,\0,\xff", 5);
  std::vector<DeadLetter> letters = {
      {.run_id = "load1",
       .key = "k1",
       .source = "a.csv",
       .position = "line 3",
       .payload = "x,y",
       .reason = "wrong field count",
       .attempts = 1},
      {.run_id = "load1",
       .key = "k2",
       .source = "a.csv",
       .position = "line 9",
       .payload = payload,
       .reason = "23502 null value",
       .code = ErrorCode::kInvalidArgument,
       .attempts = 4},
      {.run_id = "load2", .key = "k3", .reason = "no source"},
  };
  auto ids = j->PutDeadLetters(letters);
  ASSERT_TRUE(ids);
  ASSERT_EQ(ids->size(), 3u);
  EXPECT_LT((*ids)[0], (*ids)[1]);
  EXPECT_LT((*ids)[1], (*ids)[2]);

  auto listed = j->ListDeadLetters("load1", false);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 2u);
  const DeadLetter& d = (*listed)[1];
  EXPECT_EQ(d.id, (*ids)[1]);
  EXPECT_EQ(d.run_id, "load1");
  EXPECT_EQ(d.key, "k2");
  EXPECT_EQ(d.source, "a.csv");
  EXPECT_EQ(d.position, "line 9");
  EXPECT_EQ(d.payload, payload);
  EXPECT_EQ(d.reason, "23502 null value");
  EXPECT_EQ(d.code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(d.attempts, 4);
  EXPECT_GT(d.created_at, 1.6e9);
  EXPECT_FALSE(d.retried_at);
  EXPECT_FALSE((*listed)[0].code);
  RawDb raw(j->path());
  EXPECT_EQ(raw.Query("SELECT source IS NULL AND position IS NULL AND payload IS NULL "
                      "FROM dead_letters WHERE run_id = 'load2'"),
            "1");

  EXPECT_EQ(j->ListDeadLetters("", false)->size(), 3u) << "\"\" lists every run";
  EXPECT_TRUE(j->ListDeadLetters("load3", true)->empty());

  std::vector<int64_t> retry = {(*ids)[0], 999999};  // an unknown id is ignored
  ASSERT_TRUE(j->MarkDeadLettersRetried(retry));
  auto pending = j->ListDeadLetters("load1", false);
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].id, (*ids)[1]);
  auto all = j->ListDeadLetters("load1", true);
  ASSERT_EQ(all->size(), 2u);
  ASSERT_TRUE((*all)[0].retried_at);
  EXPECT_GE(*(*all)[0].retried_at, (*all)[0].created_at);
  EXPECT_TRUE(j->PutDeadLetters({})->empty());
  EXPECT_TRUE(j->MarkDeadLettersRetried({}));
}

TEST_F(JournalTest, TwoJournalsOnOneFileSeeEachOthersCommits) {
  auto a = OpenOk();
  auto b = OpenOk();
  ASSERT_TRUE(a->BeginRun("r", "batch", "r"));
  ASSERT_TRUE(a->RecordItems("r", std::vector<ItemRecord>{Ok("k")}));
  EXPECT_EQ(*b->GetItemState("r", "k"), ItemState::kSucceeded);
  ASSERT_TRUE(b->RecordItems("r", std::vector<ItemRecord>{Ok("l")}));
  ASSERT_TRUE(b->FinishRun("r", RunStatus::kSucceeded, "{}"));
  EXPECT_EQ(*a->GetItemState("r", "l"), ItemState::kSucceeded);
  auto run = a->GetRun("r");
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->status, "succeeded");
  EXPECT_EQ((*run)->items_succeeded, 2);
}

TEST_F(JournalTest, ConcurrentWritersWaitForEachOther) {
  constexpr int kThreads = 3, kBatches = 20, kBatch = 50;
  ASSERT_TRUE(OpenOk());
  std::vector<std::thread> threads;
  std::vector<Status> results(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto j = Journal::Open(dir_ + "/j/journal.db");
      if (!j) {
        results[t] = tl::unexpected(j.error());
        return;
      }
      for (int b = 0; b < kBatches; ++b) {
        std::vector<ItemRecord> recs;
        for (int i = 0; i < kBatch; ++i) {
          recs.push_back(Ok(std::to_string(t) + "/" + std::to_string(b * kBatch + i)));
        }
        results[t] = (*j)->RecordItems("r", recs);
        if (!results[t]) return;
        auto seen = (*j)->GetItemState("r", recs.back().key);  // reads between writes
        if (!seen || *seen != ItemState::kSucceeded) {
          results[t] = InternalError("lost its own write");
          return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const Status& s : results) EXPECT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(*OpenOk()->CountItems("r", true), uint64_t{kThreads * kBatches * kBatch});
}

TEST_F(JournalTest, ABusyFileIsUnavailableAndTheFailedBatchLeavesNothing) {
  auto j = OpenOk("j/journal.db", {.busy_timeout_ms = 50});
  ASSERT_TRUE(j->RecordItems("r", std::vector<ItemRecord>{Ok("before")}));
  {
    RawDb holder(j->path());
    holder.Query("BEGIN IMMEDIATE");  // another process holds the write lock
    auto s = j->RecordItems("r", std::vector<ItemRecord>{Ok("a"), Ok("b")});
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, ErrorCode::kUnavailable) << s.error().ToString();
    EXPECT_THAT(s.error().message, HasSubstr(j->path()));
    EXPECT_THAT(s.error().message, HasSubstr("record items"));
    auto b = j->BeginRun("r", "batch", "r");
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error().code, ErrorCode::kUnavailable);
    EXPECT_THAT(b.error().message, HasSubstr("begin run"));
    EXPECT_EQ(*j->GetItemState("r", "before"), ItemState::kSucceeded)
        << "readers are not blocked in WAL mode";
    holder.Query("ROLLBACK");
  }
  EXPECT_EQ(*j->CountItems("r", std::nullopt), 1u);
  // No transaction was left open: the journal writes again, and others see it.
  ASSERT_TRUE(j->RecordItems("r", std::vector<ItemRecord>{Ok("a")}));
  EXPECT_EQ(*OpenOk()->GetItemState("r", "a"), ItemState::kSucceeded);
}

TEST_F(JournalTest, ACorruptFileIsDataLoss) {
  const std::string path = dir_ + "/corrupt.db";
  {
    auto j = OpenOk("corrupt.db");
    std::vector<ItemRecord> recs;
    for (int i = 0; i < 2000; ++i) recs.push_back(Ok("item-" + std::to_string(i)));
    ASSERT_TRUE(j->RecordItems("r", recs));
  }  // the last close checkpoints the WAL into the file and removes it
  ASSERT_FALSE(std::filesystem::exists(path + "-wal"));
  uintmax_t size = std::filesystem::file_size(path);
  ASSERT_GT(size, 8192u);
  {
    // Keep page 1 (header and schema), scribble over the tables' pages.
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);
    std::string junk(size - 4096, '\xa5');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  // Open reads only page 1, so it succeeds; the damage shows at the first lookup.
  auto j = Journal::Open(path);
  ASSERT_TRUE(j) << j.error().ToString();
  auto s = (*j)->GetItemState("r", "item-7");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kDataLoss) << s.error().ToString();
  EXPECT_THAT(s.error().message, HasSubstr("look up item"));
}

TEST_F(JournalTest, CommittedRecordsSurviveSigkill) {
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  const std::string path = dir_ + "/kill.db";
  constexpr int kBatch = 100;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipefd[0]);
    auto j = Journal::Open(path);
    if (!j) _exit(2);
    for (int batch = 0;; ++batch) {
      std::vector<ItemRecord> recs;
      for (int i = 0; i < kBatch; ++i) recs.push_back(Ok(std::to_string(batch * kBatch + i)));
      if (!(*j)->RecordItems("r", recs)) _exit(3);
      int committed = (batch + 1) * kBatch;
      // A parent that is gone closes the pipe, and SIGPIPE ends this loop.
      if (write(pipefd[1], &committed, sizeof committed) != sizeof committed) _exit(4);
    }
  }
  close(pipefd[1]);
  // Whatever happens below, the child does not outlive the test.
  struct Reaper {
    pid_t pid;
    int status = 0;
    ~Reaper() {
      if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
      }
    }
  } reaper{child};
  int committed = 0;
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(read(pipefd[0], &committed, sizeof committed), static_cast<ssize_t>(sizeof committed))
        << "the child died early";
  }
  kill(child, SIGKILL);  // while it is most likely inside a transaction
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  reaper.pid = 0;
  close(pipefd[0]);
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_EQ(WTERMSIG(status), SIGKILL);

  auto j = OpenOk("kill.db");
  ASSERT_TRUE(j);
  auto n = j->CountItems("r", true);
  ASSERT_TRUE(n) << n.error().ToString();
  EXPECT_GE(*n, static_cast<uint64_t>(committed));
  EXPECT_EQ(*n % kBatch, 0u) << "a batch is all or nothing";
  for (int k = 0; k < committed; ++k) {
    ASSERT_EQ(*j->GetItemState("r", std::to_string(k)), ItemState::kSucceeded) << k;
  }
}

TEST_F(JournalTest, LatestFinishedRunPicksTheNewestWithASummary) {
  auto j = OpenOk();
  ASSERT_TRUE(j->BeginRun("f1", "flow", "nightly"));
  ASSERT_TRUE(j->FinishRun("f1", RunStatus::kSucceeded, R"({"n":1})"));
  ASSERT_TRUE(j->BeginRun("other", "flow", "weekly"));
  ASSERT_TRUE(j->FinishRun("other", RunStatus::kSucceeded, R"({"n":9})"));
  ASSERT_TRUE(j->BeginRun("f2", "flow", "nightly"));  // still running: no summary
  auto r = j->LatestFinishedRun("flow", "nightly");
  ASSERT_TRUE(r);
  ASSERT_TRUE(*r);
  EXPECT_EQ((*r)->run_id, "f1");
  ASSERT_TRUE(j->FinishRun("f2", RunStatus::kFailed, R"({"n":2})"));
  EXPECT_EQ((*j->LatestFinishedRun("flow", "nightly"))->run_id, "f2");
  EXPECT_FALSE(*j->LatestFinishedRun("map", "nightly"));
}

TEST_F(JournalTest, PutDeadLettersIsIdempotentByKeyButKeepsRetriedLetters) {
  auto j = OpenOk();
  std::vector<DeadLetter> first = {
      {.run_id = "L",
       .key = "a.csv:3",
       .source = "a.csv",
       .position = "line 3",
       .payload = "x",
       .reason = "old reason"},
      {.run_id = "L",
       .key = "a.csv:9",
       .source = "a.csv",
       .position = "line 9",
       .payload = "y",
       .reason = "bad"},
  };
  // The same chunk redone after a lost commit: its letters replace the pending ones.
  auto ids = j->PutDeadLetters(first);
  ASSERT_TRUE(ids);
  first[0].reason = "new reason";
  first[0].attempts = 2;
  auto again = j->PutDeadLetters(first);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *ids) << "updated in place: the ids stay";
  auto listed = j->ListDeadLetters("L", true);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].reason, "new reason");
  EXPECT_EQ((*listed)[0].attempts, 2);
  EXPECT_EQ((*listed)[1].reason, "bad");

  // A letter already retried is history: a new failure with the same key is a new letter.
  ASSERT_TRUE(j->MarkDeadLettersRetried(*again));
  ASSERT_TRUE(j->PutDeadLetters(std::span(first).subspan(0, 1)));
  EXPECT_EQ(j->ListDeadLetters("L", true)->size(), 3u);
  EXPECT_EQ(j->ListDeadLetters("L", false)->size(), 1u);
  // Another run's letter with the same key is untouched.
  DeadLetter other = first[0];
  other.run_id = "M";
  ASSERT_TRUE(j->PutDeadLetters(std::span(&other, 1)));
  EXPECT_EQ(j->ListDeadLetters("L", true)->size(), 3u);
}

// A journal written by a forklift of schema version 1 (no dead_letters.chunk) is upgraded
// in place at Open: its letters keep everything and have no chunk.
TEST_F(JournalTest, AVersion1JournalIsUpgradedInPlaceAndKeepsItsLetters) {
  const std::string path = dir_ + "/old.db";
  {
    RawDb raw(path);
    raw.Query(R"sql(
PRAGMA journal_mode=WAL;
CREATE TABLE runs(run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
  started_at REAL NOT NULL, finished_at REAL, status TEXT NOT NULL,
  invocations INTEGER NOT NULL DEFAULT 1, summary TEXT);
CREATE INDEX runs_by_start ON runs(started_at, run_id);
CREATE TABLE items(run_id TEXT NOT NULL, key BLOB NOT NULL, status TEXT NOT NULL,
  attempts INTEGER NOT NULL, error_code TEXT, error_message TEXT, elapsed_us INTEGER NOT NULL,
  finished_at REAL NOT NULL, PRIMARY KEY(run_id, key)) WITHOUT ROWID;
CREATE TABLE dead_letters(id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, key BLOB, source TEXT,
  position TEXT, payload BLOB, reason TEXT NOT NULL, error_code TEXT, attempts INTEGER NOT NULL,
  created_at REAL NOT NULL, retried_at REAL);
CREATE INDEX dead_letters_by_run ON dead_letters(run_id);
CREATE INDEX dead_letters_by_key ON dead_letters(run_id, key);
INSERT INTO dead_letters(run_id, key, source, position, payload, reason, attempts, created_at)
  VALUES('L', 'a.csv:3', 'a.csv', 'line 3', 'x,y', 'old letter', 1, 1700000000);
PRAGMA user_version=1;
)sql");
  }
  auto j = Journal::Open(path);
  ASSERT_TRUE(j) << j.error().ToString();
  {
    RawDb raw(path);
    EXPECT_EQ(raw.Query("PRAGMA user_version"), "3");
    EXPECT_EQ(raw.Query("SELECT count(*) FROM pragma_table_info('dead_letters') "
                        "WHERE name = 'chunk'"),
              "1");
    EXPECT_EQ(raw.Query("SELECT count(*) FROM pragma_table_info('items') "
                        "WHERE name = 'detail'"),
              "1");
    EXPECT_EQ(raw.Query("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                        "name = 'dead_letters_by_chunk'"),
              "1");
  }
  auto old = (*j)->ListDeadLetters("L", false);
  ASSERT_TRUE(old) << old.error().ToString();
  ASSERT_EQ(old->size(), 1u);
  EXPECT_EQ((*old)[0].reason, "old letter");
  EXPECT_EQ((*old)[0].payload, "x,y");
  EXPECT_FALSE((*old)[0].chunk) << "a letter from before the column has no chunk";
  // The upgraded file takes chunked letters, and a chunk's replacement leaves the old
  // letter (no chunk) alone.
  DeadLetter d{.run_id = "L", .key = "a.csv:9", .reason = "new", .attempts = 1};
  ASSERT_TRUE((*j)->PutChunkDeadLetters("L", 0, std::span(&d, 1)));
  ASSERT_TRUE((*j)->PutChunkDeadLetters("L", 0, {}));
  auto now = (*j)->ListDeadLetters("L", false);
  ASSERT_EQ(now->size(), 1u);
  EXPECT_EQ((*now)[0].reason, "old letter");
  // Opening the upgraded file again is a no-op.
  j->reset();
  EXPECT_TRUE(Journal::Open(path));
}

TEST_F(JournalTest, PutChunkDeadLettersKeepsOnlyTheLatestAttemptsPendingLetters) {
  auto j = OpenOk();
  auto letter = [](std::string run, int line, std::string reason) {
    return DeadLetter{.run_id = std::move(run),
                      .key = "a.csv:" + std::to_string(line),
                      .source = "a.csv",
                      .position = "line " + std::to_string(line),
                      .payload = "p" + std::to_string(line),
                      .reason = std::move(reason),
                      .attempts = 1};
  };
  // Attempt 1 of chunk 5 rejects lines 3 and 9 and never commits; chunk 6 and another run's
  // chunk 5 have letters too.
  std::vector<DeadLetter> first = {letter("L", 3, "a"), letter("L", 9, "b")};
  auto ids = j->PutChunkDeadLetters("L", 5, first);
  ASSERT_TRUE(ids) << ids.error().ToString();
  ASSERT_EQ(ids->size(), 2u);
  std::vector<DeadLetter> six = {letter("L", 20, "c")};
  ASSERT_TRUE(j->PutChunkDeadLetters("L", 6, six));
  std::vector<DeadLetter> other = {letter("M", 9, "d")};
  ASSERT_TRUE(j->PutChunkDeadLetters("M", 5, other));
  auto l = j->ListDeadLetters("L", false);
  ASSERT_EQ(l->size(), 3u);
  EXPECT_EQ((*l)[0].chunk, 5);
  EXPECT_EQ((*l)[2].chunk, 6);

  // Attempt 2 rejects only line 3: line 9's letter goes, line 3's is updated in place.
  std::vector<DeadLetter> second = {letter("L", 3, "a again")};
  auto ids2 = j->PutChunkDeadLetters("L", 5, second);
  ASSERT_TRUE(ids2);
  EXPECT_EQ(*ids2, std::vector<int64_t>{(*ids)[0]}) << "the surviving letter keeps its id";
  l = j->ListDeadLetters("L", true);
  ASSERT_EQ(l->size(), 2u);
  EXPECT_EQ((*l)[0].position, "line 3");
  EXPECT_EQ((*l)[0].reason, "a again");
  EXPECT_EQ((*l)[0].chunk, 5);
  EXPECT_EQ((*l)[1].position, "line 20") << "another chunk's letter stays";
  EXPECT_EQ(j->ListDeadLetters("M", false)->size(), 1u) << "another run's chunk 5 stays";

  // A retried letter is history: an attempt without it leaves it alone.
  ASSERT_TRUE(j->MarkDeadLettersRetried(*ids2));
  // An attempt that rejects nothing clears the chunk's pending letters.
  std::vector<DeadLetter> third = {letter("L", 4, "e")};
  ASSERT_TRUE(j->PutChunkDeadLetters("L", 5, third));
  ASSERT_TRUE(j->PutChunkDeadLetters("L", 5, {}));
  l = j->ListDeadLetters("L", true);
  ASSERT_EQ(l->size(), 2u);
  EXPECT_EQ((*l)[0].position, "line 3");
  EXPECT_TRUE((*l)[0].retried_at);
  EXPECT_EQ((*l)[1].position, "line 20");
  // A letter moved to the chunk by key (a chunking that changed under a fixed load id)
  // takes the chunk's number.
  std::vector<DeadLetter> moved = {letter("L", 20, "f")};
  ASSERT_TRUE(j->PutChunkDeadLetters("L", 7, moved));
  l = j->ListDeadLetters("L", false);
  ASSERT_EQ(l->size(), 1u);
  EXPECT_EQ((*l)[0].chunk, 7);

  // A letter of another run is refused, and nothing is written.
  std::vector<DeadLetter> mixed = {letter("L", 30, "g"), letter("M", 31, "h")};
  auto bad = j->PutChunkDeadLetters("L", 8, mixed);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(bad.error().message, HasSubstr("run 'M'"));
  EXPECT_EQ(j->ListDeadLetters("L", false)->size(), 1u);

  // PutDeadLetters stores the chunk as given (none here), as before.
  std::vector<DeadLetter> plain = {letter("N", 1, "i")};
  ASSERT_TRUE(j->PutDeadLetters(plain));
  EXPECT_FALSE((*j->ListDeadLetters("N", false))[0].chunk);
}

// `forklift dlq discard`: pending letters of one run go, one by id or all; retried letters
// (history) and other runs' letters stay.
TEST_F(JournalTest, DiscardDeadLettersDeletesOneRunsPendingLetters) {
  auto j = OpenOk();
  auto letter = [](std::string run, std::string key) {
    return DeadLetter{.run_id = std::move(run), .key = std::move(key), .reason = "bad"};
  };
  std::vector<DeadLetter> letters = {letter("L", "a"), letter("L", "b"), letter("L", "c"),
                                     letter("M", "d")};
  auto ids = j->PutDeadLetters(letters);
  ASSERT_TRUE(ids);
  std::vector<int64_t> retried = {(*ids)[2]};
  ASSERT_TRUE(j->MarkDeadLettersRetried(retried));

  EXPECT_EQ(*j->DiscardDeadLetters("L", (*ids)[3]), 0) << "another run's letter";
  EXPECT_EQ(*j->DiscardDeadLetters("L", (*ids)[2]), 0) << "a retried letter";
  EXPECT_EQ(*j->DiscardDeadLetters("L", (*ids)[0]), 1);
  auto left = j->ListDeadLetters("L", false);
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].key, "b");
  EXPECT_EQ(*j->DiscardDeadLetters("L", std::nullopt), 1);
  EXPECT_TRUE(j->ListDeadLetters("L", false)->empty());
  EXPECT_EQ(j->ListDeadLetters("L", true)->size(), 1u) << "the retried letter stays";
  EXPECT_EQ(j->ListDeadLetters("M", false)->size(), 1u);
  EXPECT_EQ(*j->DiscardDeadLetters("nope", std::nullopt), 0);
}

// One spelling per state, read both ways; what FinishRun accepts is what ParseRunStatus
// reads, and ListItems reads back what RecordItems wrote.
TEST_F(JournalTest, StatesHaveOneSpellingEach) {
  for (RunStatus st : {RunStatus::kRunning, RunStatus::kSucceeded, RunStatus::kFailed,
                       RunStatus::kCancelled, RunStatus::kKilled}) {
    EXPECT_EQ(ParseRunStatus(ToString(st)), st) << ToString(st);
  }
  EXPECT_EQ(ToString(RunStatus::kCancelled), "cancelled");
  EXPECT_FALSE(ParseRunStatus("interrupted"));
  for (ItemState st : {ItemState::kSucceeded, ItemState::kFailed, ItemState::kCancelled}) {
    EXPECT_EQ(ParseItemState(ToString(st)), st) << ToString(st);
  }
  EXPECT_EQ(ToString(ItemState::kUnknown), "unknown");
  EXPECT_FALSE(ParseItemState("unknown")) << "never stored";

  auto j = OpenOk();
  ASSERT_TRUE(j->BeginRun("r", "batch", "r"));
  ASSERT_TRUE(j->FinishRun("r", RunStatus::kKilled, ""));
  EXPECT_EQ(ParseRunStatus((*j->GetRun("r"))->status), RunStatus::kKilled);
  ItemRecord cancelled = Failed("c", "stopped");
  cancelled.cancelled = true;
  ASSERT_TRUE(j->RecordItems("r", std::vector<ItemRecord>{Ok("a"), Failed("b", "x"), cancelled}));
  auto rows = j->ListItems("r");
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].state, ItemState::kSucceeded);
  EXPECT_EQ((*rows)[1].state, ItemState::kFailed);
  EXPECT_EQ((*rows)[2].state, ItemState::kCancelled);
  RawDb raw(j->path());
  EXPECT_EQ(raw.Query("SELECT group_concat(status, ',') FROM (SELECT status FROM items "
                      "ORDER BY key)"),
            "succeeded,failed,cancelled");
}

}  // namespace
}  // namespace forklift::journal
