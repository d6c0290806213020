#include "sources/jsonl_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sources/csv_reader.h"
#include "sources/test_files.h"

namespace forklift::sources {
namespace {

using ::forklift::sources::testing::Gzip;
using ::forklift::sources::testing::TempFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Row {
  std::string csv;   // the record made (empty for an error)
  std::string line;  // the JSON line
  uint64_t line_no = 0;
  std::string error;
  std::vector<std::string> values;  // Q prefix: quoted
};

struct Read {
  std::vector<Row> rows;
  std::map<std::string, uint64_t> unknown;
};

Read ReadAll(const std::string& data, std::vector<std::string> columns, JsonLinesOptions o = {}) {
  TempFile f(data);
  auto src = ByteSource::Open(f.path());
  EXPECT_TRUE(src);
  o.columns = std::move(columns);
  JsonLinesReader r(std::move(*src), o);
  Read out;
  CsvRecord rec;
  for (;;) {
    auto got = r.Next(&rec);
    EXPECT_TRUE(got) << got.error().ToString();
    if (!got || !*got) break;
    Row row{std::string(rec.raw), std::string(r.line()), rec.first_line, rec.error, {}};
    for (const CsvField& fld : rec.fields) {
      row.values.push_back((fld.quoted ? "Q" : "") + std::string(fld.value));
    }
    out.rows.push_back(std::move(row));
  }
  out.unknown = r.unknown_fields();
  return out;
}

TEST(JsonLinesPathTest, KnowsJsonLinesByName) {
  EXPECT_TRUE(IsJsonLinesPath("a.jsonl"));
  EXPECT_TRUE(IsJsonLinesPath("dir/a.ndjson.gz"));
  EXPECT_TRUE(IsJsonLinesPath("a.jsonl.gz"));
  EXPECT_FALSE(IsJsonLinesPath("a.json"));
  EXPECT_FALSE(IsJsonLinesPath("a.csv"));
  EXPECT_FALSE(IsJsonLinesPath("-"));
}

TEST(JsonLinesReaderTest, MapsFieldsToColumnsByNameAsCsvRecords) {
  Read r = ReadAll(
      "{\"close\": 1.50, \"symbol\": \"A,\\\"B\\\"\", \"vol\": 123456789012345678901}\n"
      "{\"symbol\": \"\", \"close\": null, \"ok\": true}\n",
      {"symbol", "close", "vol", "ok"});
  ASSERT_EQ(r.rows.size(), 2u);
  // Numbers as written (1.50 stays 1.50; a 21-digit integer is not a double), strings
  // quoted and unescaped, missing and null fields as NULL (the empty null string).
  EXPECT_EQ(r.rows[0].csv, "\"A,\"\"B\"\"\",1.50,123456789012345678901,");
  EXPECT_THAT(r.rows[0].values, ElementsAre("QA,\"B\"", "1.50", "123456789012345678901", ""));
  EXPECT_EQ(r.rows[1].csv, "\"\",,,true");
  EXPECT_THAT(r.rows[1].values, ElementsAre("Q", "", "", "true"));
  EXPECT_EQ(r.rows[1].line_no, 2u);
  EXPECT_TRUE(r.unknown.empty());
}

TEST(JsonLinesReaderTest, NestedValuesBecomeTheirJsonTextAndNullsTheNullString) {
  JsonLinesOptions o;
  o.null_string = "\\N";
  o.delimiter = '\t';
  Read r = ReadAll(
      "{\"id\": 7, \"tags\": [\"a\", {\"b\": 1}], \"meta\": {\"k\": \"v\"}, "
      "\"gone\": null}\n",
      {"id", "tags", "meta", "gone"}, o);
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].csv, "7\t\"[\"\"a\"\", {\"\"b\"\": 1}]\"\t\"{\"\"k\"\": \"\"v\"\"}\"\t\\N");
  EXPECT_THAT(r.rows[0].values, ElementsAre("7", "Q[\"a\", {\"b\": 1}]", "Q{\"k\": \"v\"}", "\\N"));
}

TEST(JsonLinesReaderTest, BadLinesAreErrorRecordsWithTheirLineAndTheRestReads) {
  Read r = ReadAll(
      "{\"a\": 1}\n"
      "{\"a\": 2,}\n"  // invalid JSON
      "[1, 2]\n"       // not an object
      "\n"             // blank: skipped, still counted as a line
      "{\"a\": 3, \"a\": 4}\n"
      "{\"a\": 01}\n"  // no JSON number
      "{\"a\": 5} x\n"
      "{\"a\": \"\xff\"}\n"  // invalid UTF-8
      "{\"a\": 6}",          // no final newline
      {"a"});
  ASSERT_EQ(r.rows.size(), 8u);
  EXPECT_EQ(r.rows[0].csv, "1");
  EXPECT_THAT(r.rows[1].error, HasSubstr("invalid JSON"));
  EXPECT_EQ(r.rows[1].line, "{\"a\": 2,}");
  EXPECT_EQ(r.rows[1].line_no, 2u);
  EXPECT_EQ(r.rows[2].error, "expected a JSON object, got an array");
  EXPECT_EQ(r.rows[3].error, "field 'a' appears twice");
  EXPECT_EQ(r.rows[3].line_no, 5u);
  EXPECT_THAT(r.rows[4].error, HasSubstr("invalid JSON"));
  EXPECT_THAT(r.rows[5].error, HasSubstr("invalid JSON"));
  EXPECT_THAT(r.rows[6].error, HasSubstr("invalid JSON"));
  EXPECT_EQ(r.rows[7].csv, "6");
  EXPECT_EQ(r.rows[7].line_no, 9u);
}

TEST(JsonLinesReaderTest, CountsFieldsNoColumnTakes) {
  Read r = ReadAll("{\"a\": 1, \"x\": 2}\n{\"a\": 1, \"x\": 3, \"y\": {}}\n", {"a"});
  EXPECT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.unknown, (std::map<std::string, uint64_t>{{"x", 2}, {"y", 1}}));
}

TEST(JsonLinesReaderTest, ReadsGzipAndCrLfAndLinesAcrossBlocks) {
  // A 3 MiB line spans the reader's 1 MiB blocks; \r\n endings are not part of the line.
  std::string big(3 << 20, 'z');
  std::string data = "{\"a\": \"" + big + "\"}\r\n{\"a\": \"b\"}\r\n";
  Read plain = ReadAll(data, {"a"});
  ASSERT_EQ(plain.rows.size(), 2u);
  EXPECT_EQ(plain.rows[0].csv, "\"" + big + "\"");
  EXPECT_EQ(plain.rows[1].csv, "\"b\"");
  EXPECT_EQ(plain.rows[1].line, "{\"a\": \"b\"}");
  Read gz = ReadAll(Gzip(data), {"a"});
  ASSERT_EQ(gz.rows.size(), 2u);
  EXPECT_EQ(gz.rows[0].csv, plain.rows[0].csv);
}

TEST(JsonLinesReaderTest, ALineOverTheLimitIsAnErrorRecordKeepingItsStart) {
  JsonLinesOptions o;
  o.max_record_bytes = 16;
  Read r = ReadAll("{\"a\": \"0123456789abcdef\"}\n{\"a\": 1}\n", {"a"}, o);
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_THAT(r.rows[0].error, HasSubstr("more than 16 bytes"));
  EXPECT_EQ(r.rows[0].line.size(), 16u);
  EXPECT_EQ(r.rows[1].csv, "1");
  EXPECT_EQ(r.rows[1].line_no, 2u);
}

TEST(JsonLinesReaderTest, AOneMegabyteLineOfNestingIsAnErrorNotACrash) {
  std::string deep(1 << 20, '[');
  Read r = ReadAll("{\"a\": " + deep + "\n{\"a\": 1}\n", {"a"});
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_THAT(r.rows[0].error, HasSubstr("invalid JSON"));
  EXPECT_EQ(r.rows[1].csv, "1");
}

}  // namespace
}  // namespace forklift::sources
