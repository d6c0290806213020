#include "journal/journal.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace forklift::journal {
namespace {

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "forklift-journal-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<Journal> OpenOk(const std::string& name = "j/journal.db") {
    auto j = Journal::Open(dir_ + "/" + name);
    EXPECT_TRUE(j) << j.error().ToString();
    return std::move(*j);
  }
  std::string dir_;
};

TEST_F(JournalTest, OpenCreatesDirectoriesInWalMode) {
  auto j = OpenOk("a/b/c/journal.db");
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/a/b/c/journal.db"));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/a/b/c/journal.db-wal"));
}

TEST_F(JournalTest, AnUnwritablePathIsRefusedByName) {
  std::ofstream(dir_ + "/plainfile") << "x";
  auto j = Journal::Open(dir_ + "/plainfile/journal.db");
  ASSERT_FALSE(j);
  EXPECT_EQ(j.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(j.error().message.find(dir_ + "/plainfile/journal.db"), std::string::npos);
  std::ofstream(dir_ + "/notadb") << "this is not a database, it is a text file.........";
  auto k = Journal::Open(dir_ + "/notadb");
  ASSERT_FALSE(k);
  EXPECT_EQ(k.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(JournalTest, AReadOnlyJournalIsRefusedAtOpen) {
  if (geteuid() == 0) GTEST_SKIP() << "root ignores file permissions";
  OpenOk("ro.db").reset();
  std::filesystem::permissions(dir_ + "/ro.db", std::filesystem::perms::owner_read);
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_read |
                                         std::filesystem::perms::owner_exec);
  auto j = Journal::Open(dir_ + "/ro.db");
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_all);
  ASSERT_FALSE(j);
}

TEST_F(JournalTest, RunsAreCountedAndListedNewestFirst) {
  auto j = OpenOk();
  ASSERT_TRUE(j->BeginRun("r1", "batch", "first"));
  ASSERT_TRUE(j->FinishRun("r1", "succeeded", R"({"processed":1})"));
  ASSERT_TRUE(j->BeginRun("r2", "map", "second"));
  ASSERT_TRUE(j->BeginRun("r1", "batch", "first"));
  auto runs = j->ListRuns("", 0);
  ASSERT_TRUE(runs);
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].run_id, "r1") << "restarted last, so newest";
  EXPECT_EQ((*runs)[0].invocations, 2);
  EXPECT_EQ((*runs)[0].status, "running");
  EXPECT_FALSE((*runs)[0].finished_at);
  auto maps = j->ListRuns("map", 10);
  ASSERT_TRUE(maps);
  ASSERT_EQ(maps->size(), 1u);
  EXPECT_EQ((*maps)[0].name, "second");
  auto r = j->GetRun("nope");
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  EXPECT_EQ(j->FinishRun("nope", "failed", "{}").error().code, ErrorCode::kNotFound);
}

TEST_F(JournalTest, ItemsRecordAndSucceededIsNeverDowngraded) {
  auto j = OpenOk();
  ASSERT_TRUE(j->BeginRun("r", "batch", "r"));
  std::string binary_key("a\0b", 3);
  std::vector<ItemRecord> recs = {
      {.key = "x", .ok = true, .attempts = 1, .elapsed_us = 5},
      {.key = binary_key, .ok = false, .code = ErrorCode::kUnavailable, .message = "down",
       .attempts = 3, .elapsed_us = 9},
  };
  ASSERT_TRUE(j->RecordItems("r", recs));
  EXPECT_EQ(*j->GetItemState("r", "x"), ItemState::kSucceeded);
  EXPECT_EQ(*j->GetItemState("r", binary_key), ItemState::kFailed);
  EXPECT_EQ(*j->GetItemState("r", std::string("a", 1)), ItemState::kUnknown);
  EXPECT_EQ(*j->GetItemState("other", "x"), ItemState::kUnknown);

  std::vector<ItemRecord> later = {
      {.key = "x", .ok = false, .code = ErrorCode::kInternal, .message = "late failure"},
      {.key = binary_key, .ok = true, .attempts = 1},
  };
  ASSERT_TRUE(j->RecordItems("r", later));
  EXPECT_TRUE(*j->IsSucceeded("r", "x"));
  EXPECT_TRUE(*j->IsSucceeded("r", binary_key));
  EXPECT_EQ(*j->CountItems("r", true), 2u);
  EXPECT_EQ(*j->CountItems("r", false), 0u);
  ASSERT_TRUE(j->ClearItems("r"));
  EXPECT_EQ(*j->CountItems("r", std::nullopt), 0u);
}

TEST_F(JournalTest, DeadLettersAddListAndRetry) {
  auto j = OpenOk();
  std::vector<DeadLetter> letters = {
      {.run_id = "load1", .key = "k1", .source = "a.csv", .position = "line 3",
       .payload = "x,y", .reason = "wrong field count", .attempts = 1},
      {.run_id = "load1", .key = "k2", .source = "a.csv", .position = "line 9",
       .payload = "1,,", .reason = "23502 null value", .code = ErrorCode::kInvalidArgument,
       .attempts = 1},
  };
  auto ids = j->AddDeadLetters(letters);
  ASSERT_TRUE(ids);
  ASSERT_EQ(ids->size(), 2u);
  auto listed = j->ListDeadLetters("load1", false);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[1].position, "line 9");
  EXPECT_EQ((*listed)[1].code, ErrorCode::kInvalidArgument);
  ASSERT_TRUE(j->MarkDeadLettersRetried(std::span<const int64_t>(ids->data(), 1)));
  EXPECT_EQ(j->ListDeadLetters("load1", false)->size(), 1u);
  EXPECT_EQ(j->ListDeadLetters("load1", true)->size(), 2u);
}

TEST_F(JournalTest, TwoConnectionsSeeEachOthersCommits) {
  auto a = OpenOk();
  auto b = OpenOk();
  ASSERT_TRUE(a->RecordItems("r", std::vector<ItemRecord>{{.key = "k", .ok = true}}));
  EXPECT_TRUE(*b->IsSucceeded("r", "k"));
}

TEST_F(JournalTest, CommittedRecordsSurviveSigkill) {
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  std::string path = dir_ + "/kill.db";
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipefd[0]);
    auto j = Journal::Open(path);
    if (!j) _exit(2);
    for (int batch = 0;; ++batch) {
      std::vector<ItemRecord> recs;
      for (int i = 0; i < 100; ++i) {
        recs.push_back({.key = std::to_string(batch * 100 + i), .ok = true, .attempts = 1});
      }
      if (!(*j)->RecordItems("r", recs)) _exit(3);
      int committed = (batch + 1) * 100;
      if (write(pipefd[1], &committed, sizeof committed) != sizeof committed) _exit(4);
    }
  }
  close(pipefd[1]);
  int committed = 0;
  for (int i = 0; i < 20; ++i) ASSERT_EQ(read(pipefd[0], &committed, sizeof committed), 4);
  kill(child, SIGKILL);
  int status;
  waitpid(child, &status, 0);
  close(pipefd[0]);
  ASSERT_TRUE(WIFSIGNALED(status));
  auto j = OpenOk("kill.db");
  auto n = j->CountItems("r", true);
  ASSERT_TRUE(n);
  EXPECT_GE(*n, static_cast<uint64_t>(committed));
  for (int k = 0; k < committed; ++k) ASSERT_TRUE(*j->IsSucceeded("r", std::to_string(k))) << k;
}

}  // namespace
}  // namespace forklift::journal
