#include "load/key_resume.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace forklift::load {
namespace {

using sinks::LedgerEntry;
using ::testing::HasSubstr;

LedgerEntry Entry(int64_t chunk, int64_t first_line, int64_t last_line,
                  std::optional<std::string> last_key) {
  return LedgerEntry{.chunk = chunk,
                     .source = "query",
                     .first_line = first_line,
                     .last_line = last_line,
                     .rows = last_line - first_line + 1,
                     .rejected = 0,
                     .checksum = "c" + std::to_string(chunk),
                     .last_key = std::move(last_key)};
}

TEST(KeyResumeTest, KeysRoundTripWhateverTheyHold) {
  for (const std::vector<std::string>& key :
       {std::vector<std::string>{"1"}, {"a,b", "say \"hi\""}, {"", "line\nbreak"}}) {
    auto back = DecodeKey(EncodeKey(key));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(*back, key);
  }
  EXPECT_EQ(EncodeKey({"a", "b\"c"}), "\"a\",\"b\"\"c\"");
  auto bad = DecodeKey("\"open");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("not a key forklift wrote"));
}

TEST(KeyResumeTest, RowKeyReadsTheKeyFieldsAndRefusesNull) {
  sinks::Chunk chunk;
  chunk.source = "query";
  chunk.data = "1,\"x,y\",\"\"\n2,,z\n";
  chunk.rows = {{.offset = 0, .size = 10, .line = 2}, {.offset = 11, .size = 4, .line = 3}};
  auto k = RowKey(chunk, 0, {1, 0}, "b,a");
  ASSERT_TRUE(k) << k.error().message;
  EXPECT_EQ(*k, (std::vector<std::string>{"x,y", "1"}));
  auto empty_text = RowKey(chunk, 0, {2}, "c");  // "" is a value, not NULL
  ASSERT_TRUE(empty_text);
  EXPECT_EQ(*empty_text, std::vector<std::string>{""});
  auto null = RowKey(chunk, 1, {1}, "b");
  ASSERT_FALSE(null);
  EXPECT_THAT(null.error().message, HasSubstr("--resume-key b: NULL in the row at line 3"));
}

TEST(KeyResumeTest, AFreshLoadStartsEveryPartitionAtItsFirstNumber) {
  auto r = PlanKeyResume({}, 3);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 3u);
  for (int p = 0; p < 3; ++p) {
    EXPECT_TRUE((*r)[p].after.empty());
    EXPECT_EQ((*r)[p].next_number, p);
    EXPECT_EQ((*r)[p].line_offset, 0u);
    EXPECT_TRUE((*r)[p].beyond.empty());
  }
}

// Partition 0 of 2 committed chunks 0, 2 and 6 (4 was lost to the kill): it resumes after
// chunk 2's key, numbers on at 4, and meets 6 again to verify and skip it. Partition 1
// committed nothing but chunk 5 (1 and 3 lost): it starts over, with 5 to skip.
TEST(KeyResumeTest, AGapEndsThePrefixAndWhatCommittedAfterItIsReadAgain) {
  std::vector<LedgerEntry> ledger = {Entry(0, 2, 11, "\"10\""), Entry(2, 12, 21, "\"20\""),
                                     Entry(6, 32, 41, "\"40\""), Entry(5, 22, 31, "\"31\""),
                                     Entry(-1, 0, 0, std::nullopt)};  // another kind of row
  auto r = PlanKeyResume(ledger, 2);
  ASSERT_TRUE(r) << r.error().message;
  const PartitionResume& p0 = (*r)[0];
  EXPECT_EQ(p0.after, std::vector<std::string>{"20"});
  EXPECT_EQ(p0.next_number, 4);
  EXPECT_EQ(p0.line_offset, 20u);  // the re-read's first row (line 2) is line 22
  EXPECT_EQ(p0.prefix_chunks, 2);
  EXPECT_EQ(p0.prefix_rows, 20);
  ASSERT_EQ(p0.beyond.size(), 1u);
  EXPECT_EQ(p0.beyond.begin()->first, 6);
  const PartitionResume& p1 = (*r)[1];
  EXPECT_TRUE(p1.after.empty());
  EXPECT_EQ(p1.next_number, 1);
  EXPECT_EQ(p1.prefix_chunks, 0);
  ASSERT_EQ(p1.beyond.size(), 1u);
  EXPECT_EQ(p1.beyond.begin()->first, 5);
}

TEST(KeyResumeTest, ThePrefixEndsAtItsLastChunkWithAKey) {
  // Chunk 1 held only rejected rows and recorded no key: it is read (and skipped) again.
  auto r = PlanKeyResume({Entry(0, 2, 5, "\"4\""), Entry(1, 6, 7, std::nullopt)}, 1);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)[0].after, std::vector<std::string>{"4"});
  EXPECT_EQ((*r)[0].next_number, 1);
  EXPECT_EQ((*r)[0].beyond.count(1), 1u);
}

TEST(KeyResumeTest, StartingOverNumbersAfterTheLedgersLastChunk) {
  auto r = PlanStartOver({Entry(0, 2, 3, std::nullopt), Entry(4, 4, 5, std::nullopt)}, 3);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].next_number, 6);  // the first multiple of 3 after chunk 4
  EXPECT_EQ(r[1].next_number, 7);
  EXPECT_EQ(r[2].next_number, 8);
  EXPECT_TRUE(r[0].after.empty());
}

}  // namespace
}  // namespace forklift::load
