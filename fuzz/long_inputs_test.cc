// Every parser of untrusted input on 1 MB inputs (issue 16: std::regex crashed at 30 KB,
// and brace expansion was exponential). Each test checks the result, not only that the
// parser returned; the parsers whose own tests already hold 1 MB cases (CsvReader,
// InputSource's records and --colsep, the joblog's malformed lines) are not repeated.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/duration_parse.h"
#include "flow/brace_expansion.h"
#include "flow/flow_file.h"
#include "fuzz/sh_words.h"
#include "map/command_template.h"
#include "map/joblog.h"
#include "map/map_options.h"
#include "map/shell_quote.h"
#include "sinks/pg_dsn.h"
#include "sources/csv_reader.h"

namespace forklift {
namespace {

constexpr size_t kMB = size_t{1} << 20;

TEST(LongInputs, SplitCsvRecordOfAMegabyteQuotedFieldWithQuotes) {
  std::string value;
  for (size_t i = 0; value.size() < kMB; ++i) value += i % 7 ? 'v' : '"';
  std::string raw = "a,\"";
  for (char c : value) raw += c == '"' ? std::string("\"\"") : std::string(1, c);
  raw += "\",z";
  std::vector<sources::CsvField> fields;
  std::string scratch;
  EXPECT_EQ(sources::SplitCsvRecord(raw, ',', &fields, &scratch), "");
  ASSERT_EQ(fields.size(), 3u);
  EXPECT_EQ(fields[1].value, value);
  EXPECT_TRUE(fields[1].quoted);
  EXPECT_EQ(fields[2].value, "z");
}

TEST(LongInputs, SplitCsvRecordOfAMegabyteOfDelimiters) {
  std::string raw(kMB, ',');
  std::vector<sources::CsvField> fields;
  std::string scratch;
  EXPECT_EQ(sources::SplitCsvRecord(raw, ',', &fields, &scratch), "");
  EXPECT_EQ(fields.size(), kMB + 1);
}

TEST(LongInputs, ShellQuoteOfAMegabyteOfQuotesSplitsBack) {
  std::string s;
  for (size_t i = 0; s.size() < kMB; ++i) s += "'a b\"$(x)"[i % 9];
  auto words = fuzz::ShWords(map::ShellQuote(s));
  ASSERT_TRUE(words.has_value());
  ASSERT_EQ(words->size(), 1u);
  EXPECT_EQ((*words)[0], s);
}

TEST(LongInputs, IsSimpleCommandOfAMegabyteLine) {
  std::string line = "gzip";
  while (line.size() < kMB) line += " file.txt";
  auto words = map::IsSimpleCommand(line);
  ASSERT_TRUE(words.has_value());
  EXPECT_EQ(words->size(), 1 + (line.size() - 4) / 9);
  EXPECT_FALSE(map::IsSimpleCommand(line + " $HOME").has_value());
}

// A command word is one argv string, which Linux caps at MAX_ARG_STRLEN (128 KiB): the
// template's words are tested at that size (ParseWord looks for each '{''s '}' afresh, so
// many '{' cost O(n^2), bounded there), its values (from the input) at 1 MB.
TEST(LongInputs, CommandTemplateWithALongWordAndAMegabyteValue) {
  constexpr size_t kMaxArgStrlen = 128 << 10;
  std::string word(kMaxArgStrlen - 5, '{');
  word += "}{.}";
  auto t = map::CommandTemplate::ForCommand({"echo", word}, false);
  ASSERT_TRUE(t.has_value());
  std::string value(kMB, 'x');
  value += ".csv";
  std::string line = t->Expand({value}, 1, 1);
  // The '{'s are the template's own text, the values (bare-safe bytes) are not quoted.
  EXPECT_EQ(line, "echo " + std::string(kMaxArgStrlen - 6, '{') + value + value.substr(0, kMB));
  auto quoted = t->Expand({value + " 'q'"}, 1, 1);
  EXPECT_NE(quoted.find(map::ShellQuote(value + " 'q'")), std::string::npos);
  // A {= without =} is literal.
  EXPECT_TRUE(map::CommandTemplate::ForText(std::string(kMaxArgStrlen, '{') + "=").has_value());
}

TEST(LongInputs, JoblogRowWithAMegabyteCommandReadsBack) {
  map::JoblogEntry e;
  e.seq = 7;
  e.exit_value = 1;
  e.command = std::string(kMB / 2, 'c') + "\n" + std::string(kMB / 2, 'd');
  std::string log = std::string(map::JoblogHeader()) + map::FormatJoblogRow(e);
  auto h = map::JoblogHistory::Parse(log, "jl");
  ASSERT_TRUE(h.has_value()) << h.error().message;
  EXPECT_TRUE(h->Ran(7));
  EXPECT_FALSE(h->Succeeded(7));
  auto failed = h->FailedCommands();
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].second, e.command);
}

TEST(LongInputs, FlowFileWithAMegabyteCommand) {
  std::string cmd(kMB, 'x');
  auto spec = flow::ParseFlow("[tasks.a]\ncmd = \"" + cmd + "\"\n", "f.toml");
  ASSERT_TRUE(spec.has_value()) << spec.error().message;
  EXPECT_EQ(spec->tasks.at(0).cmd, cmd);
}

TEST(LongInputs, FlowFileWithAMegabyteKeyOrNestingIsOneError) {
  auto key = flow::ParseFlow("[tasks." + std::string(kMB, 'k') + "]\ncmd = \"x\"\n", "f.toml");
  // A long task name is allowed; what matters is one answer, quickly.
  if (!key) {
    EXPECT_EQ(key.error().message.rfind("f.toml", 0), 0u);
  }
  auto nested = flow::ParseFlow("a = " + std::string(kMB, '['), "f.toml");
  ASSERT_FALSE(nested.has_value());
  EXPECT_EQ(nested.error().message.rfind("f.toml:1", 0), 0u)
      << nested.error().message.substr(0, 200);
  auto inline_tables = flow::ParseFlow("a = " + std::string(kMB / 4, '{'), "f.toml");
  ASSERT_FALSE(inline_tables.has_value());
  EXPECT_LT(inline_tables.error().message.size(), 1000u);
}

TEST(LongInputs, BraceExpansionOfAMegabyteGlob) {
  // No group: the glob is its own pattern.
  std::string plain(kMB, 'a');
  auto one = flow::ExpandBraces(plain);
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(*one, std::vector<std::string>{plain});
  // Braces that never close (or close without a comma) are literal, found in linear time
  // (each '{' used to scan to the end: 13 minutes for this megabyte).
  std::string open(kMB, '{');
  auto literal = flow::ExpandBraces(open);
  ASSERT_TRUE(literal.has_value());
  EXPECT_EQ(*literal, std::vector<std::string>{open});
  std::string closed;
  while (closed.size() < kMB) closed += "{a}";
  auto literal2 = flow::ExpandBraces(closed);
  ASSERT_TRUE(literal2.has_value());
  EXPECT_EQ(literal2->size(), 1u);
  // Deeply nested groups: refused by the byte bound before memory (limit x length) or the
  // stack (one frame per level) run out.
  std::string nested = std::string(kMB / 4, '{') + "a";
  for (size_t i = 0; i < kMB / 4; ++i) nested += ",a}";
  auto deep = flow::ExpandBraces(nested);
  ASSERT_FALSE(deep.has_value());
  EXPECT_NE(deep.error().message.find("MiB of patterns"), std::string::npos);
  // Many groups: refused at the limit, whatever their number.
  std::string groups;
  while (groups.size() < kMB) groups += "{a,b}";
  auto refused = flow::ExpandBraces(groups);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message.find("expands to more than"), std::string::npos);
}

TEST(LongInputs, DsnWithAMegabytePasswordIsMasked) {
  std::string pw(kMB, 's');
  auto dsn = sinks::ParsePgDsn("postgresql://u:" + pw + "@h/d");
  ASSERT_TRUE(dsn.has_value()) << dsn.error().message.substr(0, 200);
  EXPECT_EQ(dsn->password, pw);
  EXPECT_EQ(dsn->Masked(), "postgresql://u:***@h/d");
  auto bad = sinks::ParsePgDsn("postgresql://h/d?password=" + pw + "%zz");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message.find(pw.substr(0, 64)), std::string::npos);
}

TEST(LongInputs, DurationOfAMegabyteIsRefusedNamingIt) {
  std::string digits(kMB, '9');
  auto d = core::ParseDuration(digits + "s", core::BareNumber::kRefused);
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(core::ParseDuration(digits, core::BareNumber::kSeconds).has_value());
  EXPECT_FALSE(map::ParseTimeout(digits + "%").has_value() &&
               map::ParseTimeout(digits + "%")->percent <= 0);
  std::string many;
  while (many.size() < kMB) many += "1h";
  auto long_sum = core::ParseDuration(many, core::BareNumber::kRefused);
  EXPECT_FALSE(long_sum.has_value() && long_sum->count() < 0);
}

}  // namespace
}  // namespace forklift
