#include "load/command_transform.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stop_token>
#include <thread>

namespace forklift::load {
namespace {

using sinks::Chunk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

Chunk ThreeRows() {
  Chunk c;
  c.number = 7;
  c.source = "in.csv";
  c.first_line = 2;
  c.last_line = 4;
  c.checksum = "abc";
  for (std::string row : {"1,x", "2,\"y,z\"", "3,w"}) {
    c.rows.push_back({.offset = static_cast<uint32_t>(c.data.size()),
                      .size = static_cast<uint32_t>(row.size()),
                      .line = c.rows.size() + 2});
    c.data += row + "\n";
  }
  return c;
}

CommandTransformOptions Opts(std::string command) {
  return {.command = std::move(command), .input_columns = {"a", "b"}};
}

TEST(ParseTransformOutputTest, HeaderRowsCrlfQuotedLineBreaksAndBlankLines) {
  auto out = ParseTransformOutput("x,y\r\n1,\"a\nb\"\r\n\n2,c", ',', false, {});
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_THAT(out->columns, ElementsAre("x", "y"));
  ASSERT_EQ(out->rows.size(), 2u);
  EXPECT_EQ(out->data, "1,\"a\nb\"\n2,c\n");
  EXPECT_EQ(out->data.substr(out->rows[1].offset, out->rows[1].size), "2,c");
}

TEST(ParseTransformOutputTest, FoldsTheHeaderLikeTheInputs) {
  auto out = ParseTransformOutput("ID,\"Name\"\n", ',', true, {});
  ASSERT_TRUE(out);
  EXPECT_THAT(out->columns, ElementsAre("id", "Name"));
}

TEST(ParseTransformOutputTest, RefusesWhatIsNotCsvWithTheHeader) {
  struct Case {
    std::string text;
    std::vector<std::string> expected;
    std::string why;
  };
  for (const Case& c : std::vector<Case>{
           {"", {}, "no header"},
           {"\n\n", {}, "no header"},
           {"x,y\n1,2,3\n", {}, "line 2: expected 2 fields, found 3"},
           {"x,y\n1\n", {}, "line 2: expected 2 fields, found 1"},
           {"x,x\n", {}, "column 'x' named twice"},
           {"x,\n", {}, "an empty column name"},
           {"x,y\n1,\"2\"3\n", {}, "line 2: field 2"},
           {"x,y\n1,\"unterminated\n", {}, "line 2:"},
           {"x,y\n1,\xff\n", {}, "line 2: invalid UTF-8"},
           {"x,z\n1,2\n",
            {"x", "y"},
            "header (x,z) differs from the one it gave for a header "
            "alone (x,y)"},
       }) {
    auto out = ParseTransformOutput(c.text, ',', false, c.expected);
    ASSERT_FALSE(out) << c.text;
    EXPECT_EQ(out.error().code, ErrorCode::kInvalidArgument);
    EXPECT_THAT(out.error().message, HasSubstr(c.why)) << c.text;
  }
}

TEST(CommandTransformTest, ProbeLearnsTheOutputColumns) {
  auto t = CommandTransform::Probe(Opts("sed '1s/.*/a,c,d/'"), {});
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_THAT(t->output_columns(), ElementsAre("a", "c", "d"));
}

TEST(CommandTransformTest, ProbeRefusesACommandThatCannotRun) {
  auto missing = CommandTransform::Probe(Opts("./no-such-transform --x"), {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(missing.error().message, HasSubstr("--transform './no-such-transform --x'"));
  EXPECT_THAT(missing.error().message, HasSubstr("status 127 (not found or not executable)"));
  EXPECT_THAT(missing.error().message, HasSubstr("nothing loaded"));

  auto failing = CommandTransform::Probe(Opts("echo no good >&2; exit 4"), {});
  ASSERT_FALSE(failing);
  EXPECT_THAT(failing.error().message, HasSubstr("exited with status 4"));
  EXPECT_THAT(failing.error().message, HasSubstr("stderr: no good"));

  auto silent = CommandTransform::Probe(Opts("cat >/dev/null"), {});
  ASSERT_FALSE(silent);
  EXPECT_THAT(silent.error().message, HasSubstr("no header"));

  auto rows = CommandTransform::Probe(Opts("cat; echo 1,2"), {});
  ASSERT_FALSE(rows);
  EXPECT_THAT(rows.error().message, HasSubstr("it wrote 1 rows"));
}

TEST(CommandTransformTest, ApplyReplacesRowsAndKeepsTheChunksIdentity) {
  auto t = CommandTransform::Probe(
      Opts("awk -F, 'NR==1 {print \"a,n\"; next} {print $1 \",\" length($0)}'"), {});
  ASSERT_TRUE(t) << t.error().message;
  auto c = t->Apply(ThreeRows(), {});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->number, 7);
  EXPECT_EQ(c->checksum, "abc");
  EXPECT_EQ(c->first_line, 2u);
  EXPECT_EQ(c->last_line, 4u);
  EXPECT_TRUE(c->parse_rejects.empty());
  EXPECT_EQ(c->data, "1,3\n2,7\n3,3\n");
  ASSERT_EQ(c->rows.size(), 3u);
  EXPECT_EQ(c->rows[2].line, 4u);  // one output row per input row: the input's lines
  EXPECT_EQ(c->Row(1), "2,7");
}

TEST(CommandTransformTest, AFilterGivesTheChunksFirstLine) {
  auto t = CommandTransform::Probe(Opts("grep -v '^2'"), {});
  ASSERT_TRUE(t);
  auto c = t->Apply(ThreeRows(), {});
  ASSERT_TRUE(c);
  ASSERT_EQ(c->rows.size(), 2u);
  EXPECT_EQ(c->Row(1), "3,w");
  EXPECT_EQ(c->rows[1].line, 2u);
}

TEST(CommandTransformTest, AFailingCommandDeadLettersEveryRowWithItsStderrTail) {
  // The probe (header alone) passes; data makes it fail.
  auto t = CommandTransform::Probe(
      Opts("read -r h; echo \"$h\"; if read -r x; then echo \"bad input: $x\" >&2; exit 3; fi"),
      {});
  ASSERT_TRUE(t) << t.error().message;
  Chunk in = ThreeRows();
  in.parse_rejects.push_back({.line = 9, .raw = "q", .reason = "expected 2 fields, found 1"});
  auto c = t->Apply(std::move(in), {});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->number, 7);
  EXPECT_TRUE(c->rows.empty());
  EXPECT_TRUE(c->data.empty());
  ASSERT_EQ(c->parse_rejects.size(), 4u);
  EXPECT_EQ(c->parse_rejects[0].reason, "expected 2 fields, found 1");
  EXPECT_EQ(c->parse_rejects[2].line, 3u);
  EXPECT_EQ(c->parse_rejects[2].raw, "2,\"y,z\"");
  EXPECT_EQ(c->parse_rejects[1].reason, "transform exited with status 3; stderr: bad input: 1,x");
}

TEST(CommandTransformTest, MalformedOutputDeadLettersTheChunk) {
  auto t = CommandTransform::Probe(Opts("awk 'NR==1{print; next} {print \"1,2,3\"}'"), {});
  ASSERT_TRUE(t);
  auto c = t->Apply(ThreeRows(), {});
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->rows.empty());
  ASSERT_EQ(c->parse_rejects.size(), 3u);
  EXPECT_EQ(c->parse_rejects[0].reason,
            "transform wrote malformed CSV: output line 2: expected 2 fields, found 3");
}

TEST(CommandTransformTest, ATimeoutKillsTheGroupAndDeadLettersTheChunk) {
  CommandTransformOptions o = Opts("read -r h; echo \"$h\"; if read -r x; then sleep 30; fi");
  o.timeout = std::chrono::milliseconds(200);
  auto t = CommandTransform::Probe(o, {});
  ASSERT_TRUE(t) << t.error().message;
  auto c = t->Apply(ThreeRows(), {});
  ASSERT_TRUE(c);
  ASSERT_EQ(c->parse_rejects.size(), 3u);
  EXPECT_THAT(c->parse_rejects[0].reason, HasSubstr("timed out after 200"));
}

TEST(CommandTransformTest, OutputOverTheLimitDeadLettersTheChunk) {
  CommandTransformOptions o = Opts("read -r h; echo \"$h\"; if read -r x; then yes 1,2; fi");
  o.max_output_bytes = 1 << 16;
  auto t = CommandTransform::Probe(o, {});
  ASSERT_TRUE(t) << t.error().message;
  auto c = t->Apply(ThreeRows(), {});
  ASSERT_TRUE(c);
  ASSERT_EQ(c->parse_rejects.size(), 3u);
  EXPECT_THAT(c->parse_rejects[0].reason, HasSubstr("wrote more than 65536 bytes"));
}

TEST(CommandTransformTest, AStopDropsTheChunk) {
  auto t =
      CommandTransform::Probe(Opts("read -r h; echo \"$h\"; if read -r x; then sleep 30; fi"), {});
  ASSERT_TRUE(t);
  std::stop_source stop;
  std::jthread stopper([&] {
    // The stop comes while the command runs or before it starts: either way it is dropped.
    stop.request_stop();
  });
  stopper.join();
  EXPECT_FALSE(t->Apply(ThreeRows(), stop.get_token()));
}

TEST(CommandTransformTest, AChunkOfOnlyParseRejectsIsPassedOn) {
  auto t = CommandTransform::Probe(Opts("exit 0; cat"), {});
  ASSERT_FALSE(t);  // no header for the probe
  auto cat = CommandTransform::Probe(Opts("cat"), {});
  ASSERT_TRUE(cat);
  Chunk in;
  in.number = 3;
  in.parse_rejects.push_back({.line = 5, .raw = "x", .reason = "r"});
  auto c = cat->Apply(std::move(in), {});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->parse_rejects.size(), 1u);
  EXPECT_EQ(c->number, 3);
}

}  // namespace
}  // namespace forklift::load
