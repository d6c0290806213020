#include "load/load_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace forklift::load {
namespace {

using ::testing::HasSubstr;

LoadOptions Valid() {
  LoadOptions o;
  o.sources = {"a.csv"};
  o.to = "sqlite:x.db";
  o.table = "t";
  return o;
}

TEST(LoadOptionsTest, ByteSizes) {
  EXPECT_EQ(*ParseByteSize("4MiB", "--chunk-bytes"), 4 << 20);
  EXPECT_EQ(*ParseByteSize("512kib", "--chunk-bytes"), 512 << 10);
  EXPECT_EQ(*ParseByteSize("1GB", "--chunk-bytes"), 1000 * 1000 * 1000);
  EXPECT_EQ(*ParseByteSize("1000", "--chunk-bytes"), 1000);
  for (const char* bad : {"", "0", "-1MiB", "4 MiB", "4XB", "MiB", "99999999999999999999"}) {
    auto r = ParseByteSize(bad, "--chunk-bytes");
    ASSERT_FALSE(r) << bad;
    EXPECT_THAT(r.error().message, HasSubstr("--chunk-bytes '" + std::string(bad) + "'"));
  }
  EXPECT_FALSE(ParseByteSize("9223372036854775807GiB", "--chunk-bytes")) << "overflow";
}

TEST(LoadOptionsTest, NameListsAndDelimiters) {
  EXPECT_EQ(*ParseNameList("symbol, date", "--key"), (std::vector<std::string>{"symbol", "date"}));
  auto bad = ParseNameList("a,,b", "--key");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("--key 'a,,b': empty column name"));
  EXPECT_EQ(*ParseDelimiter(";"), ';');
  EXPECT_EQ(*ParseDelimiter("\\t"), '\t');
  EXPECT_FALSE(ParseDelimiter(";;"));
  EXPECT_FALSE(ParseDelimiter(""));
}

TEST(LoadOptionsTest, ValidationNamesTheOption) {
  EXPECT_TRUE(ValidateLoadOptions(Valid()));
  struct Case {
    void (*mutate)(LoadOptions&);
    const char* expect;
  } cases[] = {
      {[](LoadOptions& o) { o.sources.clear(); }, "no input files"},
      {[](LoadOptions& o) {
         o.sources = {"a.csv", "-"};
       },
       "'-' (stdin) needs --load-id"},
      {[](LoadOptions& o) { o.to.clear(); }, "--to"},
      {[](LoadOptions& o) { o.table.clear(); }, "--table"},
      {[](LoadOptions& o) { o.upsert = true; }, "--mode upsert needs --key"},
      {[](LoadOptions& o) { o.chunk_rows = 0; }, "--chunk-rows 0"},
      {[](LoadOptions& o) { o.delimiter = '"'; }, "--delimiter"},
      {[](LoadOptions& o) { o.key = {"a"}; }, "--key is for --mode upsert"},
      {[](LoadOptions& o) {
         o.columns = {"a", "a"};
       },
       "'a' appears twice"},
      {[](LoadOptions& o) {
         o.columns = {"a", "b"};
         o.key = {"c"};
         o.upsert = true;
       },
       "--key c: not among --columns"},
      {[](LoadOptions& o) { o.max_errors = -1; }, "--max-errors -1"},
      {[](LoadOptions& o) { o.null_string = "a,b"; }, "--null"},
      {[](LoadOptions& o) { o.load_id = "id\xff"; }, "--load-id 'id\\xff': not valid UTF-8"},
      {[](LoadOptions& o) { o.table = "t\xc3"; }, "--table 't\\xc3': not valid UTF-8"},
  };
  for (const Case& c : cases) {
    LoadOptions o = Valid();
    c.mutate(o);
    auto st = ValidateLoadOptions(o);
    ASSERT_FALSE(st) << c.expect;
    EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
    EXPECT_THAT(st.error().message, HasSubstr(c.expect));
  }
}

// Bytes PostgreSQL's COPY refuses in its own options (22021) would otherwise dead-letter
// every row of a load that then exits 0.
TEST(LoadOptionsTest, RefusesANonAsciiDelimiterAndANullThatIsNotUtf8) {
  LoadOptions o = Valid();
  o.delimiter = static_cast<char>(0xE9);  // latin-1 e-acute
  auto st = ValidateLoadOptions(o);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(st.error().message, HasSubstr("--delimiter '\\xe9'"));
  EXPECT_THAT(st.error().message, HasSubstr("ASCII"));

  o = Valid();
  o.null_string =
      "N\xff"
      "A";
  st = ValidateLoadOptions(o);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(st.error().message, HasSubstr("--null 'N\\xffA'"));
  EXPECT_THAT(st.error().message, HasSubstr("UTF-8"));

  o = Valid();
  o.null_string = "\xc3\xa9";  // valid UTF-8 is fine
  o.delimiter = '|';
  EXPECT_TRUE(ValidateLoadOptions(o));
}

// Table lifecycle and dialect

TEST(LoadOptionsTest, MaxErrorsTakesRowsOrAPercentage) {
  std::optional<int64_t> count;
  std::optional<double> percent;
  ASSERT_TRUE(ParseMaxErrors("10", &count, &percent));
  EXPECT_EQ(count, 10);
  EXPECT_FALSE(percent);
  count.reset();
  ASSERT_TRUE(ParseMaxErrors("2.5%", &count, &percent));
  EXPECT_FALSE(count);
  EXPECT_EQ(percent, 2.5);
  ASSERT_TRUE(ParseMaxErrors("0%", &count, &percent));
  EXPECT_EQ(percent, 0.0);
  ASSERT_TRUE(ParseMaxErrors("100%", &count, &percent));
  for (const char* bad : {"", "%", "x", "1x", "5%%", "-1", "101%", "-1%", "nan%", " 5%"}) {
    Status st = ParseMaxErrors(bad, &count, &percent);
    ASSERT_FALSE(st) << bad;
    EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument) << bad;
    EXPECT_THAT(st.error().message, HasSubstr("--max-errors")) << bad;
  }
}

TEST(LoadOptionsTest, LifecycleOptionsThatCannotGoTogetherAreRefused) {
  LoadOptions o = Valid();
  o.truncate = o.replace = true;
  EXPECT_THAT(ValidateLoadOptions(o).error().message, HasSubstr("--truncate and --replace"));
  o = Valid();
  o.insert_ignore = true;
  o.upsert = true;
  o.key = {"a"};
  EXPECT_THAT(ValidateLoadOptions(o).error().message, HasSubstr("insert-ignore"));
  o = Valid();
  o.max_errors = 3;
  o.max_errors_percent = 1;
  EXPECT_THAT(ValidateLoadOptions(o).error().message, HasSubstr("not both"));
  o = Valid();
  o.truncate = true;
  o.insert_ignore = true;
  o.max_errors_percent = 1;
  EXPECT_TRUE(ValidateLoadOptions(o));
}

TEST(LoadOptionsTest, StdinNeedsALoadIdAFormatAndNoHeaderForCsv) {
  LoadOptions o = Valid();
  o.sources = {"-"};
  o.format = "jsonl";
  EXPECT_THAT(ValidateLoadOptions(o).error().message, HasSubstr("needs --load-id"));
  o.load_id = "x";
  EXPECT_TRUE(ValidateLoadOptions(o));
  o.format = "";
  EXPECT_THAT(ValidateLoadOptions(o).error().message, HasSubstr("needs --format"));
  o.format = "csv";
  EXPECT_THAT(ValidateLoadOptions(o).error().message, HasSubstr("--no-header"));
  o.header = false;
  EXPECT_TRUE(ValidateLoadOptions(o));
  o.sources = {"-", "a.csv"};
  EXPECT_THAT(ValidateLoadOptions(o).error().message, HasSubstr("only input"));
  o = Valid();
  o.format = "xml";
  EXPECT_THAT(ValidateLoadOptions(o).error().message, HasSubstr("--format 'xml'"));
}

// Query sources: each option that cannot apply, or lacks its partner, is named.
TEST(LoadOptionsTest, QuerySourceOptions) {
  LoadOptions q = Valid();
  q.sources.clear();
  q.from = "sqlite:src.db";
  q.query = "select 1";
  EXPECT_TRUE(ValidateLoadOptions(q));
  auto refused = [](LoadOptions o, const std::string& needle) {
    Status st = ValidateLoadOptions(o);
    ASSERT_FALSE(st) << needle;
    EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
    EXPECT_THAT(st.error().message, HasSubstr(needle));
  };
  LoadOptions o = q;
  o.from.clear();
  refused(o, "--query needs --from");
  o = q;
  o.query.clear();
  refused(o, "--from needs --query");
  o = q;
  o.sources = {"a.csv"};
  refused(o, "load one or the other");
  o = q;
  o.partitions = 3;
  refused(o, "--partitions 3 needs --partition-by");
  o.partitions = 65;
  o.partition_by = "id";
  refused(o, "--partitions 65: must be 1 to 64");
  o = q;
  o.partition_by = "id";
  refused(o, "--partition-by id needs --partitions");
  o = q;
  o.resume_key = {"id", "id"};
  refused(o, "--resume-key: 'id' appears twice");
  o = q;
  o.header = false;
  refused(o, "--no-header");
  o = q;
  o.delimiter = ';';
  refused(o, "--delimiter");
  o = q;
  o.null_string = "NA";
  refused(o, "--null");
  o = q;
  o.upsert = true;
  o.key = {"sym"};
  o.resume_key = {"id"};
  refused(o, "--key must include every resume-key column");
  o.key = {"sym", "id"};
  EXPECT_TRUE(ValidateLoadOptions(o));
  LoadOptions files = Valid();
  files.resume_key = {"id"};
  refused(files, "--resume-key is for --query loads");
  files = Valid();
  files.partitions = 2;
  refused(files, "--partitions is for --query loads");
}

// Transforms: what would be ignored is refused, naming the option.
TEST(LoadOptionsTest, TransformOptions) {
  LoadOptions o = Valid();
  EXPECT_TRUE(ValidateLoadOptions(o));
  auto refused = [](const LoadOptions& bad, std::string_view what) {
    Status st = ValidateLoadOptions(bad);
    ASSERT_FALSE(st) << what;
    EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
    EXPECT_THAT(st.error().message, HasSubstr(std::string(what)));
  };
  o.cpu_workers = 2;
  refused(o, "--cpu-workers 2: runs transforms at once, and there is no --transform");
  o.cpu_workers = 1;
  o.transform_timeout = std::chrono::milliseconds(5);
  refused(o, "--transform-timeout: there is no --transform");
  o.transform = "cat";
  EXPECT_TRUE(ValidateLoadOptions(o));
  o.cpu_workers = 0;
  refused(o, "--cpu-workers 0: must be between 1 and 256");
  o.cpu_workers = 257;
  refused(o, "--cpu-workers 257");
  o.cpu_workers = 3;
  o.transform_timeout = std::chrono::milliseconds(-1);
  refused(o, "--transform-timeout: must not be negative");
  o.transform_timeout = std::chrono::milliseconds(0);
  o.transform = "  \t";
  refused(o, "--transform: an empty command");
  o.transform = "cat \xff";
  refused(o, "--transform 'cat \\xff': not valid UTF-8");
}

}  // namespace
}  // namespace forklift::load
