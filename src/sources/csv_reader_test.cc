#include "sources/csv_reader.h"

#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sources/test_files.h"

namespace forklift::sources {
namespace {

using ::forklift::sources::testing::Gzip;
using ::forklift::sources::testing::TempFile;
using ::testing::HasSubstr;

// A record with its views copied, to compare records read at different times.
struct Rec {
  std::string raw;
  std::string terminator;
  std::vector<std::string> values;
  std::vector<bool> quoted;
  uint64_t first_line = 0;
  uint64_t last_line = 0;
  uint64_t offset = 0;
  std::string error;

  friend bool operator==(const Rec&, const Rec&) = default;
  friend std::ostream& operator<<(std::ostream& os, const Rec& r) {
    os << "{raw=[" << r.raw << "] term=" << r.terminator.size() << " lines=" << r.first_line << "-"
       << r.last_line << " offset=" << r.offset << " error=[" << r.error << "] fields=";
    for (size_t i = 0; i < r.values.size(); ++i) {
      os << (r.quoted[i] ? "Q" : "") << "[" << r.values[i] << "]";
    }
    return os << "}";
  }
};

Rec Copy(const CsvRecord& r) {
  Rec out{std::string(r.raw),
          std::string(r.terminator),
          {},
          {},
          r.first_line,
          r.last_line,
          r.offset,
          r.error};
  for (const CsvField& f : r.fields) {
    out.values.emplace_back(f.value);
    out.quoted.push_back(f.quoted);
  }
  return out;
}

struct ReadResult {
  std::vector<Rec> records;
  std::optional<Error> error;
  uint64_t lines_read = 0;
};

ReadResult ReadFile(const std::string& path, CsvDialect dialect = {},
                    size_t buffer_size = CsvReader::kDefaultBufferSize) {
  ReadResult out;
  auto source = ByteSource::Open(path);
  if (!source) {
    out.error = source.error();
    return out;
  }
  CsvReader reader(std::move(*source), dialect, buffer_size);
  CsvRecord record;
  for (;;) {
    auto more = reader.Next(&record);
    if (!more) {
      out.error = more.error();
      break;
    }
    if (!*more) break;
    // raw and terminator are one contiguous span of the buffer.
    EXPECT_EQ(record.raw.data() + record.raw.size(), record.terminator.data());
    out.records.push_back(Copy(record));
  }
  out.lines_read = reader.lines_read();
  return out;
}

ReadResult ReadString(const std::string& data, CsvDialect dialect = {},
                      size_t buffer_size = CsvReader::kDefaultBufferSize) {
  TempFile file(data);
  return ReadFile(file.path(), dialect, buffer_size);
}

// A deliberately naive parser of a whole string with the reader's rules, byte by byte:
// the reference the buffered, table-driven reader is checked against.
std::vector<Rec> ReferenceParse(const std::string& s, char delim = ',') {
  std::vector<Rec> out;
  size_t n = s.size(), i = 0;
  uint64_t line = 1;
  if (s.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;
  auto is_crlf = [&](size_t k) { return k + 1 < n && s[k] == '\r' && s[k + 1] == '\n'; };
  while (i < n) {
    if (s[i] == '\n') {
      ++line;
      ++i;
      continue;
    }
    if (is_crlf(i)) {
      ++line;
      i += 2;
      continue;
    }
    Rec rec;
    rec.first_line = line;
    rec.offset = i;
    size_t start = i;
    uint64_t lfs = 0;
    bool done = false;
    auto fail = [&](const std::string& e) {
      if (rec.error.empty()) rec.error = e;
    };
    // Skips unquoted bytes to a delimiter, LF, CRLF or the end.
    auto skip_unquoted = [&](std::string* value, bool* saw_quote) {
      while (i < n && s[i] != delim && s[i] != '\n' && !is_crlf(i)) {
        if (s[i] == '"') *saw_quote = true;
        if (value) *value += s[i];
        ++i;
      }
    };
    while (!done) {
      std::string field_no = std::to_string(rec.values.size() + 1);
      std::string value;
      bool quoted = false;
      if (i < n && s[i] == '"') {
        quoted = true;
        ++i;
        bool closed = false;
        while (i < n) {
          if (s[i] == '"') {
            if (i + 1 < n && s[i + 1] == '"') {
              value += '"';
              i += 2;
              continue;
            }
            ++i;
            closed = true;
            break;
          }
          if (s[i] == '\n') ++lfs;
          value += s[i++];
        }
        if (!closed) fail("field " + field_no + ": unterminated quoted field");
        if (closed && i < n && s[i] != delim && s[i] != '\n' && !is_crlf(i)) {
          fail("field " + field_no + ": '" +
               (s[i] == '\r' ? std::string("\\r") : std::string(1, s[i])) +
               "' after closing quote");
          bool ignored;
          skip_unquoted(nullptr, &ignored);
        }
      } else {
        bool saw_quote = false;
        skip_unquoted(&value, &saw_quote);
        if (saw_quote) fail("field " + field_no + ": '\"' in unquoted field");
      }
      rec.values.push_back(value);
      rec.quoted.push_back(quoted);
      if (i < n && s[i] == delim) {
        ++i;
        continue;
      }
      rec.raw = s.substr(start, i - start);
      if (i < n && s[i] == '\n') rec.terminator = "\n";
      if (is_crlf(i)) rec.terminator = "\r\n";
      i += rec.terminator.size();
      done = true;
    }
    rec.last_line = line + lfs;
    line = rec.last_line + (rec.terminator.empty() ? 0 : 1);
    out.push_back(rec);
  }
  return out;
}

TEST(CsvReaderTest, SimpleRecordsWithPositions) {
  auto r = ReadString("a,b,c\n1,22,333\n");
  ASSERT_FALSE(r.error) << r.error->ToString();
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[0].raw, "a,b,c");
  EXPECT_EQ(r.records[0].terminator, "\n");
  EXPECT_EQ(r.records[0].values, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(r.records[0].offset, 0u);
  EXPECT_EQ(r.records[0].first_line, 1u);
  EXPECT_EQ(r.records[0].last_line, 1u);
  EXPECT_EQ(r.records[1].values, (std::vector<std::string>{"1", "22", "333"}));
  EXPECT_EQ(r.records[1].offset, 6u);
  EXPECT_EQ(r.records[1].first_line, 2u);
  EXPECT_TRUE(r.records[1].error.empty());
  EXPECT_EQ(r.lines_read, 2u);
}

TEST(CsvReaderTest, QuotedFieldsHoldDelimitersAndDoubledQuotes) {
  auto r = ReadString("\"a,b\",\"say \"\"hi\"\"\",\"\"\"\"\n");
  ASSERT_EQ(r.records.size(), 1u);
  const Rec& rec = r.records[0];
  EXPECT_EQ(rec.raw, "\"a,b\",\"say \"\"hi\"\"\",\"\"\"\"");
  EXPECT_EQ(rec.values, (std::vector<std::string>{"a,b", "say \"hi\"", "\""}));
  EXPECT_EQ(rec.quoted, (std::vector<bool>{true, true, true}));
  EXPECT_TRUE(rec.error.empty());
}

TEST(CsvReaderTest, NewlinesInsideQuotesSpanLines) {
  auto r = ReadString("id,note\n1,\"two\nlines\"\n2,\"crlf\r\ninside\r\nthree\"\r\n3,x\n");
  ASSERT_EQ(r.records.size(), 4u);
  EXPECT_EQ(r.records[1].values[1], "two\nlines");
  EXPECT_EQ(r.records[1].first_line, 2u);
  EXPECT_EQ(r.records[1].last_line, 3u);
  EXPECT_EQ(r.records[1].raw, "1,\"two\nlines\"");
  EXPECT_EQ(r.records[2].values[1], "crlf\r\ninside\r\nthree");
  EXPECT_EQ(r.records[2].first_line, 4u);
  EXPECT_EQ(r.records[2].last_line, 6u);
  EXPECT_EQ(r.records[2].terminator, "\r\n");
  EXPECT_EQ(r.records[3].first_line, 7u);
  EXPECT_EQ(r.records[3].values, (std::vector<std::string>{"3", "x"}));
  EXPECT_EQ(r.lines_read, 7u);
}

TEST(CsvReaderTest, CrlfRecordsAndLoneCrAsData) {
  auto r = ReadString("a,b\r\nc\rd,e\r\nf,g\r\r\n");
  ASSERT_EQ(r.records.size(), 3u);
  EXPECT_EQ(r.records[0].raw, "a,b");
  EXPECT_EQ(r.records[0].terminator, "\r\n");
  EXPECT_EQ(r.records[1].values, (std::vector<std::string>{"c\rd", "e"}));
  EXPECT_EQ(r.records[1].first_line, 2u);
  EXPECT_EQ(r.records[2].raw, "f,g\r");
  EXPECT_EQ(r.records[2].values[1], "g\r");
  EXPECT_EQ(r.records[2].terminator, "\r\n");
}

TEST(CsvReaderTest, LastRecordWithoutNewline) {
  for (std::string tail : {"x,y", "x,\"y\"", "x,y\r"}) {
    auto r = ReadString("a,b\n" + tail);
    ASSERT_EQ(r.records.size(), 2u) << tail;
    EXPECT_EQ(r.records[1].raw, tail);
    EXPECT_EQ(r.records[1].terminator, "");
    EXPECT_EQ(r.records[1].values.size(), 2u);
    EXPECT_TRUE(r.records[1].error.empty());
    EXPECT_EQ(r.lines_read, 2u);
  }
}

TEST(CsvReaderTest, EmptyFieldsQuotedVersusUnquoted) {
  auto r = ReadString(",\"\",,\"\"\n");
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].values, (std::vector<std::string>{"", "", "", ""}));
  EXPECT_EQ(r.records[0].quoted, (std::vector<bool>{false, true, false, true}));
  auto t = ReadString("a,\n");  // a trailing delimiter is one more empty field
  ASSERT_EQ(t.records.size(), 1u);
  EXPECT_EQ(t.records[0].values, (std::vector<std::string>{"a", ""}));
  EXPECT_EQ(t.records[0].quoted, (std::vector<bool>{false, false}));
}

TEST(CsvReaderTest, ByteOrderMarkIsSkippedOnlyAtTheStart) {
  auto r = ReadString(
      "\xEF\xBB\xBF"
      "a,b\n\xEF\xBB\xBF"
      "c\n");
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[0].raw, "a,b");
  EXPECT_EQ(r.records[0].values[0], "a");
  EXPECT_EQ(r.records[0].offset, 3u);
  EXPECT_EQ(r.records[1].values[0],
            "\xEF\xBB\xBF"
            "c");
  auto only = ReadString("\xEF\xBB\xBF");
  EXPECT_TRUE(only.records.empty());
  EXPECT_FALSE(only.error);
}

TEST(CsvReaderTest, BlankLinesAreSkippedButCounted) {
  auto r = ReadString("\n\r\na\n\n\nb\r\n\r\n\nc\n\n");
  ASSERT_EQ(r.records.size(), 3u);
  EXPECT_EQ(r.records[0].raw, "a");
  EXPECT_EQ(r.records[0].first_line, 3u);
  EXPECT_EQ(r.records[0].offset, 3u);
  EXPECT_EQ(r.records[1].first_line, 6u);
  EXPECT_EQ(r.records[2].first_line, 9u);
  EXPECT_EQ(r.lines_read, 10u);
  // A line of only spaces or a quoted empty field is a record, not a blank line.
  auto s = ReadString(" \n\"\"\n");
  ASSERT_EQ(s.records.size(), 2u);
  EXPECT_EQ(s.records[0].values, (std::vector<std::string>{" "}));
  EXPECT_EQ(s.records[1].quoted, (std::vector<bool>{true}));
}

TEST(CsvReaderTest, CharacterAfterClosingQuoteIsMalformedAndReadingGoesOn) {
  auto r = ReadString("a,\"b\"c,d\nnext,1\n");
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[0].error, "field 2: 'c' after closing quote");
  EXPECT_EQ(r.records[0].raw, "a,\"b\"c,d");
  EXPECT_TRUE(r.records[1].error.empty());
  EXPECT_EQ(r.records[1].values, (std::vector<std::string>{"next", "1"}));
  EXPECT_EQ(r.records[1].first_line, 2u);
  // A quote after the garbage does not open a quoted section: the line still ends there.
  auto q = ReadString("\"x\"y\"z\nok\n");
  ASSERT_EQ(q.records.size(), 2u);
  EXPECT_EQ(q.records[0].error, "field 1: 'y' after closing quote");
  EXPECT_EQ(q.records[1].raw, "ok");
  // A lone CR after the closing quote is data, hence garbage.
  auto cr = ReadString("\"x\"\ry\n");
  ASSERT_EQ(cr.records.size(), 1u);
  EXPECT_EQ(cr.records[0].error, "field 1: '\\r' after closing quote");
}

TEST(CsvReaderTest, BareQuoteInUnquotedFieldIsMalformed) {
  auto r = ReadString("ab\"c,d\ne,f\n");
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[0].error, "field 1: '\"' in unquoted field");
  EXPECT_EQ(r.records[0].raw, "ab\"c,d");
  EXPECT_EQ(r.records[1].values, (std::vector<std::string>{"e", "f"}));
  EXPECT_TRUE(r.records[1].error.empty());
}

TEST(CsvReaderTest, UnterminatedQuoteAtEndOfInput) {
  auto r = ReadString("1,2,3\na,b,\"c\nd,e\n");
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[1].error, "field 3: unterminated quoted field");
  EXPECT_EQ(r.records[1].raw, "a,b,\"c\nd,e\n");
  EXPECT_EQ(r.records[1].terminator, "");
  EXPECT_EQ(r.records[1].first_line, 2u);
  EXPECT_FALSE(r.error);
}

TEST(CsvReaderTest, OtherDelimiters) {
  CsvDialect tab{.delimiter = '\t'};
  auto r = ReadString("a\tb,c\t\"d\te\"\n", tab);
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].values, (std::vector<std::string>{"a", "b,c", "d\te"}));
  CsvDialect semi{.delimiter = ';'};
  auto s = ReadString("1;2\n", semi);
  ASSERT_EQ(s.records.size(), 1u);
  EXPECT_EQ(s.records[0].values, (std::vector<std::string>{"1", "2"}));
}

TEST(CsvReaderTest, InvalidDialectIsInvalidArgument) {
  for (char bad : {'"', '\n', '\r'}) {
    auto r = ReadString("a\n", CsvDialect{.delimiter = bad});
    ASSERT_TRUE(r.error);
    EXPECT_EQ(r.error->code, ErrorCode::kInvalidArgument);
  }
  EXPECT_FALSE(ValidateCsvDialect(CsvDialect{.max_record_bytes = 0}).has_value());
  EXPECT_TRUE(ValidateCsvDialect(CsvDialect{.delimiter = '|'}).has_value());
}

TEST(CsvReaderTest, OneMebibyteField) {
  std::string big(1 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 1000) big[i] = 'y';
  std::string quoted_big = big;
  quoted_big[500] = '\n';
  std::string data = "a," + big + ",b\n\"" + quoted_big + "\"\nend\n";
  // A buffer smaller than the field: it has to grow.
  auto r = ReadString(data, {}, 4096);
  ASSERT_FALSE(r.error) << r.error->ToString();
  ASSERT_EQ(r.records.size(), 3u);
  EXPECT_EQ(r.records[0].values[1], big);
  EXPECT_EQ(r.records[0].values[2], "b");
  EXPECT_EQ(r.records[1].values[0], quoted_big);
  EXPECT_EQ(r.records[1].last_line, 3u);
  EXPECT_EQ(r.records[2].first_line, 4u);
  EXPECT_EQ(r.records[2].offset, data.size() - 4);
}

TEST(CsvReaderTest, RecordOverMaxRecordBytesIsDataLossNamingPathAndLine) {
  CsvDialect dialect{.max_record_bytes = 100};
  std::string ok(100, 'a');
  // An unterminated quote swallowing the rest of a long input.
  std::string data = ok + "\n" + ok + "\n\"" + std::string(10000, 'z') + "\n" + ok + "\n";
  TempFile file(data);
  for (size_t buffer_size : {size_t{16}, size_t{1} << 20}) {
    auto r = ReadFile(file.path(), dialect, buffer_size);
    ASSERT_TRUE(r.error);
    EXPECT_EQ(r.error->code, ErrorCode::kDataLoss);
    EXPECT_THAT(r.error->message, HasSubstr(file.path() + ":3:"));
    EXPECT_THAT(r.error->message, HasSubstr("unterminated quote?"));
    ASSERT_EQ(r.records.size(), 2u);  // exactly 100 bytes is allowed
    EXPECT_EQ(r.records[1].raw, ok);
  }
  // A complete record one byte too long fails too, whatever the buffer.
  auto one_over = ReadString("x\n" + std::string(101, 'b') + "\r\n", dialect, 8);
  ASSERT_TRUE(one_over.error);
  EXPECT_THAT(one_over.error->message, HasSubstr(":2: record longer than 100 bytes"));
}

TEST(CsvReaderTest, UnterminatedQuoteStopsReadingAtTheLimit) {
  // The reader must give up once the open record passes the limit, not read (and hold)
  // the rest of the input first.
  TempFile file("a\n\"" + std::string(4 << 20, 'x'));
  auto source = ByteSource::Open(file.path());
  ASSERT_TRUE(source.has_value());
  CsvReader reader(std::move(*source), CsvDialect{.max_record_bytes = 1000}, 64);
  CsvRecord record;
  ASSERT_TRUE(reader.Next(&record).value_or(false));
  auto next = reader.Next(&record);
  ASSERT_FALSE(next.has_value());
  EXPECT_THAT(next.error().message, HasSubstr(":2: record longer than 1000 bytes"));
  EXPECT_LT(reader.source().source_bytes_read(), 4000u);
}

TEST(CsvReaderTest, FailuresAreFinal) {
  TempFile file(std::string(50, 'x') + "\n");
  auto source = ByteSource::Open(file.path());
  ASSERT_TRUE(source.has_value());
  CsvReader reader(std::move(*source), CsvDialect{.max_record_bytes = 10});
  CsvRecord record;
  auto first = reader.Next(&record);
  ASSERT_FALSE(first.has_value());
  auto second = reader.Next(&record);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(first.error(), second.error());
}

TEST(CsvReaderTest, GzipIsTransparentIncludingConcatenatedMembers) {
  std::string part1 = "h1,h2\n1,\"a\nb\"\n", part2 = "2,c\n3,d";
  TempFile file(Gzip(part1) + Gzip(part2));
  auto r = ReadFile(file.path());
  ASSERT_FALSE(r.error) << r.error->ToString();
  EXPECT_EQ(r.records, ReferenceParse(part1 + part2));
  ASSERT_EQ(r.records.size(), 4u);
  EXPECT_EQ(r.records[3].first_line, 5u);
  EXPECT_EQ(r.records[3].offset, part1.size() + 4);
}

TEST(CsvReaderTest, CorruptGzipIsDataLossWithPathAndLine) {
  std::string csv;
  for (int i = 0; i < 50000; ++i) csv += std::to_string(i) + ",value" + std::to_string(i) + "\n";
  std::string gz = Gzip(csv);
  for (size_t i = gz.size() / 2; i < gz.size() / 2 + 64; ++i) gz[i] = static_cast<char>(~gz[i]);
  TempFile file(gz);
  auto r = ReadFile(file.path(), {}, 4096);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, ErrorCode::kDataLoss);
  EXPECT_THAT(r.error->message, HasSubstr(file.path() + ":"));
  EXPECT_THAT(r.error->message, HasSubstr("gzip"));
  // Records before the damage came through intact.
  ASSERT_FALSE(r.records.empty());
  EXPECT_EQ(r.records[0].values, (std::vector<std::string>{"0", "value0"}));
  EXPECT_THAT(r.error->message,
              HasSubstr(":" + std::to_string(r.records.back().last_line + 1) + ": "));
}

TEST(CsvReaderTest, MissingFileIsNotFound) {
  auto r = ReadFile("/tmp/forklift-definitely-missing.csv");
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, ErrorCode::kNotFound);
  EXPECT_THAT(r.error->message, HasSubstr("/tmp/forklift-definitely-missing.csv"));
}

// Inputs that exercise every rule, boundary cases included.
std::vector<std::string> Corpus() {
  return {
      "a,b,c\n1,2,3\n",
      "\xEF\xBB\xBF"
      "h1,h2\r\n\"q,1\",\"x\"\"y\"\r\n\r\n,\"\"\r\nlast",
      "\"multi\nline\r\nfield\",2\n\n\nx,\"\"\"\"\n",
      "bad\"quote,1\n\"closed\"junk,2\nfine,3\n\"open,4\nrest\n",
      "lone\rcr,\"q\"\r\n\r\r\n\"a\"\rb\n",
      "\"\"\"\",\"\"\"\"\"\",\"a\"\"\"\n",
      "\"ends with quote\"",
      "x\r",
      "\"\"",
      "\n\n\n",
      ",,,\n,,\n",
  };
}

TEST(CsvReaderTest, ReaderMatchesReferenceOnCorpus) {
  for (const std::string& input : Corpus()) {
    auto r = ReadString(input);
    ASSERT_FALSE(r.error) << r.error->ToString();
    EXPECT_EQ(r.records, ReferenceParse(input)) << "input: " << input;
  }
}

// Every buffer size from 1 to 64 makes records straddle the buffer's end at many
// positions; the result must be the same as with one big buffer.
TEST(CsvReaderTest, EveryBufferSizeGivesTheSameRecords) {
  std::string input;
  for (const std::string& c : Corpus()) input += c + "\n";
  input = "\xEF\xBB\xBF" + input + "tail,\"with \"\"quotes\"\"\",\"and\r\nbreaks\"";
  auto expected = ReferenceParse(input);
  TempFile file(input);
  TempFile gz(Gzip(input));
  for (size_t size = 1; size <= 64; ++size) {
    for (const TempFile* f : {&file, &gz}) {
      auto r = ReadFile(f->path(), {}, size);
      ASSERT_FALSE(r.error) << r.error->ToString();
      ASSERT_EQ(r.records, expected) << "buffer size " << size;
    }
  }
}

// Random inputs over the bytes that matter, against the reference.
TEST(CsvReaderTest, RandomInputsMatchReference) {
  std::mt19937 rng(12345);
  const std::string alphabet = "ab,,\"\"\n\r;";
  for (int round = 0; round < 300; ++round) {
    std::string input;
    size_t len = rng() % 200;
    for (size_t i = 0; i < len; ++i) input += alphabet[rng() % alphabet.size()];
    auto expected = ReferenceParse(input);
    for (size_t size : {size_t{1}, size_t{5}, size_t{1} << 16}) {
      auto r = ReadString(input, {}, size);
      ASSERT_FALSE(r.error) << r.error->ToString();
      ASSERT_EQ(r.records, expected) << "input: [" << input << "] buffer " << size;
    }
    auto semi = ReadString(input, CsvDialect{.delimiter = ';'}, 3);
    ASSERT_EQ(semi.records, ReferenceParse(input, ';')) << "input: [" << input << "]";
  }
}

TEST(CsvReaderTest, SplitCsvRecordAgreesWithTheReader) {
  std::string input;
  for (const std::string& c : Corpus()) input += c + "\n";
  auto r = ReadString(input);
  ASSERT_FALSE(r.error);
  ASSERT_GE(r.records.size(), 15u);
  std::vector<CsvField> fields;
  std::string scratch;
  for (const Rec& rec : r.records) {
    std::string error = SplitCsvRecord(rec.raw, ',', &fields, &scratch);
    EXPECT_EQ(error, rec.error) << rec;
    ASSERT_EQ(fields.size(), rec.values.size()) << rec;
    for (size_t i = 0; i < fields.size(); ++i) {
      EXPECT_EQ(fields[i].value, rec.values[i]) << rec;
      EXPECT_EQ(fields[i].quoted, rec.quoted[i]) << rec;
    }
  }
}

TEST(CsvReaderTest, SplitCsvRecordReportsUnquotedLineBreaks) {
  std::vector<CsvField> fields;
  std::string scratch;
  EXPECT_EQ(SplitCsvRecord("a,b\nc", ',', &fields, &scratch), "unquoted line break at byte 3");
  EXPECT_EQ(SplitCsvRecord("a,\"b\nc\"", ',', &fields, &scratch), "");
  ASSERT_EQ(fields.size(), 2u);
  EXPECT_EQ(fields[1].value, "b\nc");
  // Many unquoted values in scratch at once stay valid together.
  EXPECT_EQ(SplitCsvRecord("\"a\"\"\",\"b\"\"\"\"\",\"\"\"c\"", ',', &fields, &scratch), "");
  ASSERT_EQ(fields.size(), 3u);
  EXPECT_EQ(fields[0].value, "a\"");
  EXPECT_EQ(fields[1].value, "b\"\"");
  EXPECT_EQ(fields[2].value, "\"c");
  EXPECT_EQ(SplitCsvRecord("", ',', &fields, &scratch), "");
  EXPECT_EQ(fields.size(), 1u);
}

TEST(CsvReaderTest, RecordStorageIsReusedInSteadyState) {
  std::string input;
  for (int i = 0; i < 1000; ++i) input += "s" + std::to_string(i) + ",2020-01-01,1.5,\"x\"\n";
  TempFile file(input);
  auto source = ByteSource::Open(file.path());
  ASSERT_TRUE(source.has_value());
  CsvReader reader(std::move(*source), {});
  CsvRecord record;
  ASSERT_TRUE(reader.Next(&record).value_or(false));
  const CsvField* storage = record.fields.data();
  int n = 1;
  while (reader.Next(&record).value_or(false)) {
    ASSERT_EQ(record.fields.data(), storage);
    ++n;
  }
  EXPECT_EQ(n, 1000);
  EXPECT_EQ(reader.lines_read(), 1000u);
  EXPECT_EQ(reader.source().source_bytes_read(), input.size());
}

// ---- Dialects: quote, escape, skip_lines -------------------------------------------

std::string Swap(std::string s, char a, char b) {
  for (char& c : s) {
    if (c == a) {
      c = b;
    } else if (c == b) {
      c = a;
    }
  }
  return s;
}

TEST(CsvReaderDialectTest, OtherQuoteReadsLikeTheDefaultWithTheBytesSwapped) {
  std::mt19937 rng(777);
  const std::string alphabet = "ab,,''\"\n\r;";
  const CsvDialect single{.quote = '\'', .escape = '\''};
  for (int round = 0; round < 300; ++round) {
    std::string input;
    size_t len = rng() % 200;
    for (size_t i = 0; i < len; ++i) input += alphabet[rng() % alphabet.size()];
    auto expected = ReferenceParse(Swap(input, '"', '\''));
    for (size_t size : {size_t{1}, size_t{7}, size_t{1} << 16}) {
      auto r = ReadString(input, single, size);
      ASSERT_FALSE(r.error) << r.error->ToString();
      ASSERT_EQ(r.records.size(), expected.size()) << "input: [" << input << "]";
      for (size_t i = 0; i < expected.size(); ++i) {
        const Rec& got = r.records[i];
        const Rec& want = expected[i];
        EXPECT_EQ(got.raw, Swap(want.raw, '"', '\'')) << input;
        ASSERT_EQ(got.values.size(), want.values.size()) << input;
        for (size_t f = 0; f < want.values.size(); ++f) {
          EXPECT_EQ(got.values[f], Swap(want.values[f], '"', '\'')) << input;
        }
        EXPECT_EQ(got.quoted, want.quoted) << input;
        EXPECT_EQ(got.first_line, want.first_line) << input;
        EXPECT_EQ(got.last_line, want.last_line) << input;
        EXPECT_EQ(got.error.empty(), want.error.empty()) << input;
      }
    }
  }
}

TEST(CsvReaderDialectTest, SingleQuoteFieldsAndDoubleQuotesAsData) {
  auto r = ReadString("'a,b','it''s',say \"hi\"\n", CsvDialect{.quote = '\'', .escape = '\''});
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].values, (std::vector<std::string>{"a,b", "it's", "say \"hi\""}));
  EXPECT_EQ(r.records[0].quoted, (std::vector<bool>{true, true, false}));
  EXPECT_TRUE(r.records[0].error.empty());
  auto bad = ReadString("ab'c,d\n", CsvDialect{.quote = '\'', .escape = '\''});
  ASSERT_EQ(bad.records.size(), 1u);
  EXPECT_EQ(bad.records[0].error, "field 1: '\\'' in unquoted field");
}

TEST(CsvReaderDialectTest, EscapeEqualToQuoteIsRfc4180Doubling) {
  const std::string input = "\"say \"\"hi\"\"\",\"\"\"\"\n\"a\\\"\n";
  auto def = ReadString(input);
  auto same = ReadString(input, CsvDialect{.quote = '"', .escape = '"'});
  ASSERT_FALSE(def.error);
  EXPECT_EQ(same.records, def.records);
  ASSERT_EQ(def.records.size(), 2u);
  EXPECT_EQ(def.records[0].values, (std::vector<std::string>{"say \"hi\"", "\""}));
  EXPECT_EQ(def.records[1].values, (std::vector<std::string>{"a\\"}));  // backslash is data
}

TEST(CsvReaderDialectTest, BackslashEscape) {
  const CsvDialect bs{.quote = '"', .escape = '\\'};
  auto r = ReadString(
      "\"a\\\"b\",\"c\\\\d\",\"e\\f\",g\\\"h\n"  // \" -> ", \\ -> \, \f is data, unquoted: data?
      "\"x\"\"y\"\n",
      bs);
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[0].values[0], "a\"b");
  EXPECT_EQ(r.records[0].values[1], "c\\d");
  EXPECT_EQ(r.records[0].values[2], "e\\f");
  // Outside quotes the escape means nothing; the quote there is the usual malformation.
  EXPECT_EQ(r.records[0].error, "field 4: '\"' in unquoted field");
  // With a separate escape a doubled quote is not a quote: it closes the field.
  EXPECT_EQ(r.records[1].error, "field 1: '\"' after closing quote");
  auto ok = ReadString("1,\"a\\\"\",\"\\\\\"\n", bs);
  ASSERT_EQ(ok.records.size(), 1u);
  EXPECT_TRUE(ok.records[0].error.empty()) << ok.records[0].error;
  EXPECT_EQ(ok.records[0].values, (std::vector<std::string>{"1", "a\"", "\\"}));
}

TEST(CsvReaderDialectTest, LineBreaksInsideQuotesAreKeptByteForByte) {
  for (const CsvDialect& d : {CsvDialect{}, CsvDialect{.quote = '\'', .escape = '\''},
                              CsvDialect{.quote = '"', .escape = '\\'}}) {
    std::string q(1, d.quote);
    std::string input = "1," + q + "lf\nand\r\ncrlf\rcr" + q + "\r\n2,x\n";
    auto r = ReadString(input, d);
    ASSERT_EQ(r.records.size(), 2u);
    EXPECT_EQ(r.records[0].values[1], "lf\nand\r\ncrlf\rcr");
    EXPECT_EQ(r.records[0].first_line, 1u);
    EXPECT_EQ(r.records[0].last_line, 3u);
    EXPECT_EQ(r.records[0].terminator, "\r\n");
    EXPECT_EQ(r.records[1].first_line, 4u);
  }
}

TEST(CsvReaderDialectTest, RecordsSplitAcrossBuffersReadTheSame) {
  const CsvDialect bs{.quote = '\'', .escape = '\\'};
  std::string input =
      "id,'v'\n1,'a\\'b\\\\c\\d'\r\n2,'multi\nline\\'\r\nend'\n3,'trailing\\\\'\n4,'x\\";
  auto expected = ReadString(input, bs);
  ASSERT_FALSE(expected.error);
  ASSERT_EQ(expected.records.size(), 5u);
  EXPECT_EQ(expected.records[1].values[1], "a'b\\c\\d");
  EXPECT_EQ(expected.records[2].values[1], "multi\nline'\r\nend");
  EXPECT_EQ(expected.records[3].values[1], "trailing\\");
  EXPECT_EQ(expected.records[4].error, "field 2: unterminated quoted field");
  for (size_t size = 1; size <= 64; ++size) {
    auto r = ReadString(input, bs, size);
    ASSERT_FALSE(r.error) << r.error->ToString();
    ASSERT_EQ(r.records, expected.records) << "buffer size " << size;
  }
}

TEST(CsvReaderDialectTest, SkipLinesDropsPhysicalLinesAndKeepsLineNumbers) {
  // The skipped lines hold an unbalanced quote and a blank line: they are not parsed.
  std::string input =
      "\xEF\xBB\xBF"
      "exported by \"x\n\nid,v\n1,a\n2,\"b\nc\"\n";
  for (size_t size : {size_t{1}, size_t{4}, size_t{1} << 16}) {
    auto r = ReadString(input, CsvDialect{.skip_lines = 2}, size);
    ASSERT_FALSE(r.error) << r.error->ToString();
    ASSERT_EQ(r.records.size(), 3u) << size;
    EXPECT_EQ(r.records[0].raw, "id,v");
    EXPECT_EQ(r.records[0].first_line, 3u);
    EXPECT_EQ(r.records[1].first_line, 4u);
    EXPECT_EQ(r.records[2].first_line, 5u);
    EXPECT_EQ(r.records[2].last_line, 6u);
    EXPECT_EQ(r.lines_read, 6u);
  }
  auto all = ReadString("a\nb\n", CsvDialect{.skip_lines = 5});
  EXPECT_FALSE(all.error);
  EXPECT_TRUE(all.records.empty());
  EXPECT_EQ(all.lines_read, 2u);
  // A skipped line longer than the buffer (and than max_record_bytes) costs nothing.
  auto long_line = ReadString(std::string(5000, 'x') + "\nid\n",
                              CsvDialect{.max_record_bytes = 100, .skip_lines = 1}, 16);
  ASSERT_FALSE(long_line.error) << long_line.error->ToString();
  ASSERT_EQ(long_line.records.size(), 1u);
  EXPECT_EQ(long_line.records[0].first_line, 2u);
}

TEST(CsvReaderDialectTest, InvalidQuoteOrEscapeIsInvalidArgument) {
  EXPECT_THAT(ValidateCsvDialect({.quote = ','}).error().message, HasSubstr("quote"));
  EXPECT_THAT(ValidateCsvDialect({.quote = '\n'}).error().message, HasSubstr("quote"));
  EXPECT_THAT(ValidateCsvDialect({.escape = '\r'}).error().message, HasSubstr("escape"));
  EXPECT_THAT(ValidateCsvDialect({.delimiter = ';', .escape = ';'}).error().message,
              HasSubstr("escape"));
  EXPECT_TRUE(ValidateCsvDialect({.delimiter = ';', .quote = '\'', .escape = '\\'}));
  auto r = ReadString("a\n", CsvDialect{.quote = ','});
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, ErrorCode::kInvalidArgument);
}

TEST(CsvReaderDialectTest, SplitCsvRecordWithADialectAgreesWithTheReader) {
  const CsvDialect d{.delimiter = ';', .quote = '\'', .escape = '\\'};
  auto r = ReadString("'a\\'b';c;'d\ne'\n'x''y';z\n", d);
  ASSERT_EQ(r.records.size(), 2u);
  std::vector<CsvField> fields;
  std::string scratch;
  for (const Rec& rec : r.records) {
    EXPECT_EQ(SplitCsvRecord(rec.raw, d, &fields, &scratch), rec.error);
    ASSERT_EQ(fields.size(), rec.values.size());
    for (size_t i = 0; i < fields.size(); ++i) EXPECT_EQ(fields[i].value, rec.values[i]);
  }
}

}  // namespace
}  // namespace forklift::sources
