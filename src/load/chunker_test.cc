#include "load/chunker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "support/temp_dir.h"

namespace forklift::load {
namespace {

using sinks::Chunk;
using test_support::TempDir;
using ::testing::HasSubstr;

std::string Rows(int n, int first = 0) {
  std::string s;
  for (int i = first; i < first + n; ++i)
    s += "k" + std::to_string(i % 7) + "," + std::to_string(i) + "\n";
  return s;
}

struct Collected {
  std::vector<Chunk> chunks;
  Chunker::Emit emit() {
    return [this](Chunk&& c) -> Status {
      chunks.push_back(std::move(c));
      return {};
    };
  }
};

ChunkerOptions Opts(int64_t rows = 5) {
  return ChunkerOptions{.partitions = 1, .chunk_rows = rows, .columns = 2};
}

TEST(ChunkerTest, ChunksByRowsWithLinesDataAndNumbers) {
  TempDir dir;
  std::string path = dir.Write("a.csv", "k,v\n" + Rows(12));
  ReadCounters counters;
  Chunker chunker(Opts(5), &counters);
  Collected out;
  ASSERT_TRUE(chunker.ReadFile(path, out.emit(), nullptr));
  ASSERT_EQ(out.chunks.size(), 3u);
  EXPECT_EQ(out.chunks[0].number, 0);
  EXPECT_EQ(out.chunks[2].number, 2);
  EXPECT_EQ(out.chunks[0].first_line, 2u);
  EXPECT_EQ(out.chunks[0].last_line, 6u);
  EXPECT_EQ(out.chunks[1].first_line, 7u);
  EXPECT_EQ(out.chunks[2].last_line, 13u);
  EXPECT_EQ(out.chunks[2].rows.size(), 2u);
  EXPECT_EQ(out.chunks[0].data, "k0,0\nk1,1\nk2,2\nk3,3\nk4,4\n");
  EXPECT_EQ(out.chunks[0].Row(1), "k1,1");
  EXPECT_EQ(out.chunks[0].rows[1].line, 3u);
  EXPECT_EQ(out.chunks[0].source, path);
  EXPECT_EQ(counters.rows.load(), 12u);
  EXPECT_EQ(counters.source_bytes.load(), 4u + Rows(12).size());
  EXPECT_EQ(chunker.chunks_emitted(), 3);
}

TEST(ChunkerTest, ChecksumsAreDeterministicAndLocalToTheChangedChunk) {
  TempDir dir;
  std::string a = dir.Write("a.csv", "k,v\n" + Rows(10));
  std::string changed = Rows(10);
  changed[changed.size() - 2] = '8';  // the last row's value: chunk 1 only
  std::string b = dir.Write("b.csv", "k,v\n" + changed);
  auto read = [&](const std::string& p) {
    ReadCounters c;
    Chunker chunker(Opts(5), &c);
    Collected out;
    EXPECT_TRUE(chunker.ReadFile(p, out.emit(), nullptr));
    return out.chunks;
  };
  auto x = read(a), y = read(a), z = read(b);
  ASSERT_EQ(x.size(), 2u);
  ASSERT_EQ(z.size(), 2u);
  EXPECT_EQ(x[0].checksum, y[0].checksum);
  EXPECT_EQ(x[1].checksum, y[1].checksum);
  EXPECT_EQ(x[0].checksum, z[0].checksum);
  EXPECT_NE(x[1].checksum, z[1].checksum);
  EXPECT_EQ(x[0].checksum.size(), 16u);
}

TEST(ChunkerTest, RoutesEachKeyToOnePartitionInInputOrder) {
  TempDir dir;
  std::string path = dir.Write("a.csv", "k,v\n" + Rows(200));
  ReadCounters counters;
  ChunkerOptions o = Opts(4);
  o.partitions = 3;
  o.key_fields = {0};
  Chunker chunker(o, &counters);
  Collected out;
  ASSERT_TRUE(chunker.ReadFile(path, out.emit(), nullptr));
  std::map<std::string, int> partition_of_key;
  std::map<int, int> last_value_in_partition;
  std::set<int> partitions_used;
  size_t rows = 0;
  for (const Chunk& c : out.chunks) {
    partitions_used.insert(c.partition);
    for (size_t i = 0; i < c.rows.size(); ++i) {
      std::string row(c.Row(i));
      std::string key = row.substr(0, row.find(','));
      int value = std::stoi(row.substr(row.find(',') + 1));
      auto [it, fresh] = partition_of_key.emplace(key, c.partition);
      EXPECT_EQ(it->second, c.partition) << "key " << key << " went to two partitions";
      auto last = last_value_in_partition.find(c.partition);
      if (last != last_value_in_partition.end()) {
        EXPECT_LT(last->second, value) << "rows of a partition out of input order";
      }
      last_value_in_partition[c.partition] = value;
      ++rows;
    }
    EXPECT_LE(c.rows.size(), 4u);
  }
  EXPECT_EQ(rows, 200u);
  EXPECT_GE(partitions_used.size(), 2u) << "7 keys over 3 partitions";
  std::set<int64_t> numbers;
  for (const Chunk& c : out.chunks) numbers.insert(c.number);
  EXPECT_EQ(numbers.size(), out.chunks.size()) << "chunk numbers are unique";
}

// The partition of each row's key, by the key's text.
std::map<std::string, std::set<int>> PartitionsOfKeys(const ChunkerOptions& o,
                                                      const std::string& csv) {
  TempDir dir;
  std::string path = dir.Write("a.csv", csv);
  ReadCounters counters;
  Chunker chunker(o, &counters);
  Collected out;
  EXPECT_TRUE(chunker.ReadFile(path, out.emit(), nullptr));
  std::map<std::string, std::set<int>> parts;
  for (const Chunk& c : out.chunks) {
    for (size_t i = 0; i < c.rows.size(); ++i) {
      std::string row(c.Row(i));
      parts[row.substr(0, row.find(','))].insert(c.partition);
    }
  }
  return parts;
}

TEST(ChunkerTest, RoutesByTheKeysCanonicalFormWhenGivenOne) {
  // 01, 001, ... 0000000001 and 1: ten spellings of one value.
  std::string csv = "k,v\n";
  std::string spelled = "1";
  for (int i = 0; i < 10; ++i) {
    csv += spelled + "," + std::to_string(i) + "\n";
    spelled = "0" + spelled;
  }
  ChunkerOptions o = Opts(1);
  o.partitions = 8;
  o.key_fields = {0};
  std::set<int> by_spelling;
  for (const auto& [key, parts] : PartitionsOfKeys(o, csv)) by_spelling.insert(*parts.begin());
  EXPECT_GE(by_spelling.size(), 2u) << "as spelled, they spread over partitions";

  std::vector<size_t> indexes;
  o.canonical_key = [&indexes](size_t key_index, std::string_view v, std::string* out) {
    indexes.push_back(key_index);
    while (v.size() > 1 && v.front() == '0') v.remove_prefix(1);
    out->append(v);
  };
  std::set<int> by_value;
  for (const auto& [key, parts] : PartitionsOfKeys(o, csv))
    by_value.insert(parts.begin(), parts.end());
  EXPECT_EQ(by_value.size(), 1u) << "by value, they take one partition";
  EXPECT_EQ(indexes, std::vector<size_t>(10, 0));
}

TEST(ChunkerTest, ClosesAChunkAtTheByteLimitWithoutSplittingARow) {
  TempDir dir;
  std::string path = dir.Write("a.csv", "k,v\n" + Rows(10));  // rows of 5 bytes + LF
  ReadCounters counters;
  ChunkerOptions o = Opts(1000);
  o.chunk_bytes = 13;  // two rows (12 bytes) then the third crosses it
  Chunker chunker(o, &counters);
  Collected out;
  ASSERT_TRUE(chunker.ReadFile(path, out.emit(), nullptr));
  ASSERT_EQ(out.chunks.size(), 4u);
  EXPECT_EQ(out.chunks[0].rows.size(), 3u);
  EXPECT_EQ(out.chunks[3].rows.size(), 1u);
}

TEST(ChunkerTest, BadRowsBecomeParseRejectsWithLineAndReason) {
  TempDir dir;
  std::string data =
      "k,v\n"
      "a,1\n"
      "b,2,extra\n"
      "c,\"3\"x\n"
      "d,\xff\xfe\n"
      "e,\"multi\nline\"\n"
      "f\n";
  std::string path = dir.Write("a.csv", data);
  ReadCounters counters;
  Chunker chunker(Opts(100), &counters);
  Collected out;
  ASSERT_TRUE(chunker.ReadFile(path, out.emit(), nullptr));
  ASSERT_EQ(out.chunks.size(), 1u);
  const Chunk& c = out.chunks[0];
  ASSERT_EQ(c.rows.size(), 2u);
  EXPECT_EQ(c.Row(0), "a,1");
  EXPECT_EQ(c.Row(1), "e,\"multi\nline\"");
  EXPECT_EQ(c.rows[1].line, 6u);
  ASSERT_EQ(c.parse_rejects.size(), 4u);
  EXPECT_EQ(c.parse_rejects[0].line, 3u);
  EXPECT_THAT(c.parse_rejects[0].reason, HasSubstr("expected 2 fields, found 3"));
  EXPECT_EQ(c.parse_rejects[0].raw, "b,2,extra");
  EXPECT_EQ(c.parse_rejects[1].line, 4u);
  EXPECT_THAT(c.parse_rejects[1].reason, HasSubstr("after closing quote"));
  EXPECT_EQ(c.parse_rejects[2].line, 5u);
  EXPECT_THAT(c.parse_rejects[2].reason, HasSubstr("UTF-8"));
  EXPECT_EQ(c.parse_rejects[3].line, 8u);
  EXPECT_THAT(c.parse_rejects[3].reason, HasSubstr("expected 2 fields, found 1"));
  EXPECT_EQ(c.first_line, 2u);
  EXPECT_EQ(c.last_line, 8u);
}

TEST(ChunkerTest, ALoneBackslashDotRowIsQuotedForCopy) {
  TempDir dir;
  std::string path = dir.Write("a.csv", "v\n\\.\nx\n");
  ReadCounters counters;
  ChunkerOptions o = Opts(10);
  o.columns = 1;
  Chunker chunker(o, &counters);
  Collected out;
  ASSERT_TRUE(chunker.ReadFile(path, out.emit(), nullptr));
  ASSERT_EQ(out.chunks.size(), 1u);
  EXPECT_EQ(out.chunks[0].data, "\"\\.\"\nx\n");
}

TEST(ChunkerTest, AHeaderThatDiffersFromTheFirstFilesIsRefused) {
  TempDir dir;
  std::string a = dir.Write("a.csv", "k,v\nx,1\n");
  std::string b = dir.Write("b.csv", "k,w\nx,1\n");
  ReadCounters counters;
  ChunkerOptions o = Opts(10);
  o.header_names = {"k", "v"};
  Chunker chunker(o, &counters);
  Collected out;
  ASSERT_TRUE(chunker.ReadFile(a, out.emit(), nullptr));
  auto st = chunker.ReadFile(b, out.emit(), nullptr);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message, HasSubstr(b + ":1: header"));
  EXPECT_EQ(out.chunks.size(), 1u);
  EXPECT_EQ(out.chunks[0].number, 0);
}

TEST(ChunkerTest, ChunksNumberOnAcrossFilesAndStopEndsTheRead) {
  TempDir dir;
  std::string a = dir.Write("a.csv", "k,v\n" + Rows(6));
  std::string b = dir.Write("b.csv", "k,v\n" + Rows(6));
  ReadCounters counters;
  Chunker chunker(Opts(5), &counters);
  Collected out;
  ASSERT_TRUE(chunker.ReadFile(a, out.emit(), nullptr));
  ASSERT_TRUE(chunker.ReadFile(b, out.emit(), [&] { return out.chunks.size() >= 3; }));
  ASSERT_EQ(out.chunks.size(), 3u);
  EXPECT_EQ(out.chunks[2].number, 2);
  EXPECT_EQ(out.chunks[2].source, b);
}

TEST(ChunkerTest, ReadHeaderNamesTheFileForEmptyOrDuplicateHeaders) {
  TempDir dir;
  auto ok = ReadHeader(dir.Write("a.csv", "symbol,\"da,te\"\n1,2\n"), ',', 1 << 20);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, (std::vector<std::string>{"symbol", "da,te"}));
  auto empty = ReadHeader(dir.Write("e.csv", ""), ',', 1 << 20);
  ASSERT_FALSE(empty);
  EXPECT_THAT(empty.error().message, HasSubstr("e.csv: empty file"));
  auto dup = ReadHeader(dir.Write("d.csv", "a,b,a\n"), ',', 1 << 20);
  ASSERT_FALSE(dup);
  EXPECT_THAT(dup.error().message, HasSubstr("d.csv:1: header: column 'a' appears twice"));
  auto missing = ReadHeader(dir.Path("nope.csv"), ',', 1 << 20);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

// Each reject keeps its raw text (up to max_reject_bytes) until its chunk commits, so rejects
// count toward chunk_bytes like rows: a wrong --delimiter on long rows must not hold
// chunk_rows x 1 MiB in one chunk.
TEST(ChunkerTest, RejectedRecordsCountTowardChunkBytes) {
  TempDir dir;
  const std::string bad(100, 'x');  // one field where two are expected
  std::string data = "k,v\n";
  for (int i = 0; i < 10; ++i) data += bad + "\n";
  std::string path = dir.Write("a.csv", data);
  ReadCounters counters;
  ChunkerOptions o = Opts(1000);
  o.chunk_bytes = 250;
  Chunker chunker(o, &counters);
  Collected out;
  ASSERT_TRUE(chunker.ReadFile(path, out.emit(), nullptr));
  ASSERT_EQ(out.chunks.size(), 4u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out.chunks[i].parse_rejects.size(), 3u) << i;
    EXPECT_TRUE(out.chunks[i].rows.empty());
  }
  EXPECT_EQ(out.chunks[3].parse_rejects.size(), 1u);
  EXPECT_EQ(out.chunks[1].first_line, 5u);

  // Rows and rejects of one chunk count together.
  data = "k,v\n";
  for (int i = 0; i < 4; ++i) data += bad + "\nk," + std::string(98, '1') + "\n";
  path = dir.Write("b.csv", data);
  Chunker mixed(o, &counters);
  Collected out2;
  ASSERT_TRUE(mixed.ReadFile(path, out2.emit(), nullptr));
  ASSERT_EQ(out2.chunks.size(), 3u);
  EXPECT_EQ(out2.chunks[0].parse_rejects.size() + out2.chunks[0].rows.size(), 3u);
}

}  // namespace
}  // namespace forklift::load
