#include "map/input_source.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace forklift::map {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Tuple = std::vector<std::string>;
using Tuples = std::vector<Tuple>;

// A temporary file holding `data`; removed with the object.
class TempFile {
 public:
  explicit TempFile(const std::string& data) {
    char tmpl[] = "/tmp/forklift-input-test-XXXXXX";
    int fd = mkstemp(tmpl);
    path_ = tmpl;
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::write(fd, data.data() + off, data.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(fd);
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }
  // A fresh read-only descriptor, to stand in for stdin.
  int OpenFd() const { return ::open(path_.c_str(), O_RDONLY); }

 private:
  std::string path_;
};

InputSpec Args(std::vector<std::string> args) {
  return InputSpec{.kind = InputSpec::Kind::kArgs, .args = std::move(args)};
}
InputSpec File(const std::string& path) {
  return InputSpec{.kind = InputSpec::Kind::kFile, .path = path};
}

Tuples Drain(InputSource& source) {
  Tuples out;
  while (true) {
    auto next = source.Next();
    EXPECT_TRUE(next) << next.error().ToString();
    if (!next || !*next) break;
    out.push_back(std::move(**next));
  }
  return out;
}

Tuples ReadAll(const std::vector<InputSpec>& specs, InputOptions options = {}, int stdin_fd = -1) {
  auto source = InputSource::Open(specs, options, stdin_fd);
  EXPECT_TRUE(source) << source.error().ToString();
  if (!source) return {};
  return Drain(**source);
}

Tuples Stdin(const std::string& data, InputOptions options = {}) {
  TempFile f(data);
  int fd = f.OpenFd();
  Tuples out = ReadAll({}, options, fd);
  ::close(fd);
  return out;
}

// Expectations verified with GNU parallel 20221122 (`parallel -k echo ...`).

TEST(InputSourceTest, StdinLinesKeepCrEmptyLinesAndALastLineWithoutNewline) {
  EXPECT_EQ(Stdin("a\r\nb"), (Tuples{{"a\r"}, {"b"}}));
  EXPECT_EQ(Stdin("a\n\nb\n"), (Tuples{{"a"}, {""}, {"b"}}));
  EXPECT_EQ(Stdin(""), Tuples{});
  EXPECT_EQ(Stdin("\n"), Tuples{{""}});
}

TEST(InputSourceTest, NullSeparatedRecordsMayHoldNewlines) {
  InputOptions null{.null_separated = true};
  EXPECT_EQ(Stdin(std::string("a\nb\0c\0", 6), null), (Tuples{{"a\nb"}, {"c"}}));
  EXPECT_EQ(Stdin(std::string("p q\0r", 5), null), (Tuples{{"p q"}, {"r"}}));
}

TEST(InputSourceTest, BinaryAndLongRecordsPassThroughIntact) {
  std::string long_line(1 << 20, 'x');
  std::string data = std::string("\x01\x02\xff bin\n\n", 9) + long_line + "\nlast";
  Tuples got = Stdin(data);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0][0], "\x01\x02\xff bin");
  EXPECT_EQ(got[1][0], "");
  EXPECT_EQ(got[2][0], long_line);
  EXPECT_EQ(got[3][0], "last");
}

TEST(InputSourceTest, NulWithoutNullOptionBecomesBackslashZero) {
  TempFile f(std::string("x\0y\nz\n", 6));
  int fd = f.OpenFd();
  auto source = InputSource::Open({}, {}, fd);
  ASSERT_TRUE(source);
  EXPECT_EQ(Drain(**source), (Tuples{{"x\\0y"}, {"z"}}));
  EXPECT_TRUE((*source)->replaced_nul());
  ::close(fd);
}

TEST(InputSourceTest, TripleColonListsAndTheirCrossProduct) {
  EXPECT_EQ(ReadAll({Args({"a", "b", "c"})}), (Tuples{{"a"}, {"b"}, {"c"}}));
  EXPECT_EQ(ReadAll({Args({"a", "b"}), Args({"1", "2"})}),
            (Tuples{{"a", "1"}, {"a", "2"}, {"b", "1"}, {"b", "2"}}));
  EXPECT_EQ(ReadAll({Args({"a", "b"}), Args({"1", "2"}), Args({"X", "Y"})}),
            (Tuples{{"a", "1", "X"},
                    {"a", "1", "Y"},
                    {"a", "2", "X"},
                    {"a", "2", "Y"},
                    {"b", "1", "X"},
                    {"b", "1", "Y"},
                    {"b", "2", "X"},
                    {"b", "2", "Y"}}));
}

TEST(InputSourceTest, EmptySourcesActAsOneEmptyArgument) {
  EXPECT_EQ(ReadAll({Args({"a"}), Args({})}), (Tuples{{"a", ""}}));
  EXPECT_EQ(ReadAll({Args({}), Args({"a"})}), (Tuples{{"", "a"}}));
  EXPECT_EQ(ReadAll({Args({"a", "b"}), Args({})}), (Tuples{{"a", ""}, {"b", ""}}));
  EXPECT_EQ(ReadAll({Args({})}), Tuples{});
  EXPECT_EQ(ReadAll({Args({}), Args({})}), Tuples{});
}

TEST(InputSourceTest, ListArgumentsHoldingTheSeparatorSplit) {
  EXPECT_EQ(ReadAll({Args({"a\nb", "c"})}), (Tuples{{"a"}, {"b"}, {"c"}}));
  EXPECT_EQ(ReadAll({Args({"a\n"})}), (Tuples{{"a"}, {""}}));
  EXPECT_EQ(ReadAll({Args({"a\nb", "c"})}, {.null_separated = true}), (Tuples{{"a\nb"}, {"c"}}));
}

TEST(InputSourceTest, FilesStdinAndListsMix) {
  TempFile f("s1\ns2\n");
  EXPECT_EQ(ReadAll({File(f.path()), Args({"1", "2"})}),
            (Tuples{{"s1", "1"}, {"s1", "2"}, {"s2", "1"}, {"s2", "2"}}));
  EXPECT_EQ(ReadAll({Args({"a"}), File(f.path()), Args({"b"})}),
            (Tuples{{"a", "s1", "b"}, {"a", "s2", "b"}}));
  EXPECT_EQ(ReadAll({File(f.path()), File(f.path())}),
            (Tuples{{"s1", "s1"}, {"s1", "s2"}, {"s2", "s1"}, {"s2", "s2"}}));
  TempFile in("in\n");
  int fd = in.OpenFd();
  EXPECT_EQ(ReadAll({File("-"), Args({"z"})}, {}, fd), (Tuples{{"in", "z"}}));
  ::close(fd);
}

TEST(InputSourceTest, StdinAsFirstSourceStreams) {
  // A pipe whose writer stays open: the first tuple must come before stdin ends.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ASSERT_EQ(::write(fds[1], "a\nb\n", 4), 4);
  auto source = InputSource::Open({File("-"), Args({"1", "2"})}, {}, fds[0]);
  ASSERT_TRUE(source);
  auto first = (*source)->Next();
  ASSERT_TRUE(first && *first);
  EXPECT_THAT(**first, ElementsAre("a", "1"));
  ::close(fds[1]);
  EXPECT_EQ(Drain(**source), (Tuples{{"a", "2"}, {"b", "1"}, {"b", "2"}}));
  EXPECT_EQ((*source)->count(), 4u);
  ::close(fds[0]);
}

TEST(InputSourceTest, UnreadableFilesFailAtOpenNamingTheFile) {
  auto missing = InputSource::Open({File("/nonexistent/args.txt")}, {}, -1);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(missing.error().message,
            "forklift map: cannot open input file '/nonexistent/args.txt': No such file or "
            "directory");
  auto dir = InputSource::Open({Args({"a"}), File("/tmp")}, {}, -1);
  ASSERT_FALSE(dir);
  EXPECT_THAT(dir.error().message, HasSubstr("'/tmp'"));
}

TEST(InputSourceTest, ExhaustedSourceKeepsReturningNullopt) {
  auto source = InputSource::Open({Args({"a"})}, {}, -1);
  ASSERT_TRUE(source);
  EXPECT_EQ(Drain(**source).size(), 1u);
  auto again = (*source)->Next();
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
}

TEST(InputSourceTest, ColsepSplitsAndTrimsEverySource) {
  InputOptions comma{.colsep = ","};
  EXPECT_EQ(Stdin("a,b\n\n c , d ,\n", comma), (Tuples{{"a", "b"}, {""}, {"c", "d", ""}}));
  EXPECT_EQ(ReadAll({Args({"a,b"}), Args({"c,d"})}, comma), (Tuples{{"a", "b", "c", "d"}}));
  EXPECT_EQ(ReadAll({Args({"a,b,,"})}, comma), (Tuples{{"a", "b", "", ""}}));
}

std::vector<std::string> Split(const std::string& pattern, const std::string& record) {
  auto splitter = ColumnSplitter::Create(pattern);
  EXPECT_TRUE(splitter) << splitter.error().ToString();
  std::vector<std::string> out;
  if (splitter) {
    auto st = splitter->Split(record, &out);
    EXPECT_TRUE(st) << st.error().ToString();
  }
  return out;
}

TEST(ColumnSplitterTest, BehavesLikePerlSplitWithTrim) {
  // Perl: split(/$re/, $s, -1), then GNU parallel's --trim lr.
  EXPECT_THAT(Split("\\t", "a\tb"), ElementsAre("a", "b"));
  EXPECT_THAT(Split(",+", "a,,b,"), ElementsAre("a", "b", ""));
  EXPECT_THAT(Split(",+", ",x"), ElementsAre("", "x"));
  EXPECT_THAT(Split(" ", "  a  b "), ElementsAre("", "", "a", "", "b", ""));
  EXPECT_THAT(Split("(;)", "x;y"), ElementsAre("x", ";", "y"));
  EXPECT_THAT(Split("a|", "xaby"), ElementsAre("x", "b", "y", ""));
  EXPECT_THAT(Split("", "ab"), ElementsAre("a", "b", ""));
  EXPECT_THAT(Split("\\s+", " a,b  c,,"), ElementsAre("", "a,b", "c,,"));
  EXPECT_THAT(Split("^", "abc"), ElementsAre("abc"));
  EXPECT_THAT(Split("b", "abc"), ElementsAre("a", "c"));
  EXPECT_THAT(Split(",", ""), ElementsAre(""));
}

// issue 16: a backtracking engine that recurses per character (libstdc++'s std::regex)
// overflowed the stack on a 30,000-byte run of blanks; the line's length must not set
// the stack depth.
TEST(ColumnSplitterTest, OneMegabyteLinesSplitWithoutRecursion) {
  const std::string blanks(1 << 20, ' ');
  EXPECT_THAT(Split("\\s+", "a" + blanks + "b"), ElementsAre("a", "b"));
  EXPECT_THAT(Split("(\\s)+", "a" + blanks + "b"), ElementsAre("a", "", "b"));
  EXPECT_THAT(Split(" *; *", "x" + blanks + ";" + blanks + "y"), ElementsAre("x", "y"));
  std::string many;
  for (int i = 0; i < 100000; ++i) many += "ab, ";
  auto columns = Split(",\\s*", many);
  EXPECT_EQ(columns.size(), 100001u);
  auto source = InputSource::Open({Args({"a" + blanks + "b"})}, {.colsep = "\\s+"}, -1);
  ASSERT_TRUE(source);
  auto tuple = (*source)->Next();
  ASSERT_TRUE(tuple && *tuple);
  EXPECT_THAT(**tuple, ElementsAre("a", "b"));
}

// GNU parallel's --colsep is a Perl regex: Perl's syntax, not ECMAScript's.
TEST(ColumnSplitterTest, PatternsArePerlRegexes) {
  EXPECT_THAT(Split("(?i)x", "aXbxc"), ElementsAre("a", "b", "c"));
  EXPECT_THAT(Split("\\h+", "a \tb"), ElementsAre("a", "b"));
  EXPECT_THAT(Split("(?<=a)b", "abcbab"), ElementsAre("a", "cba", ""));
}

TEST(ColumnSplitterTest, BadRegexNamesThePattern) {
  auto s = ColumnSplitter::Create("(");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(s.error().message, HasSubstr("'('"));
  auto source = InputSource::Open({Args({"a"})}, {.colsep = "[a"}, -1);
  ASSERT_FALSE(source);
}

}  // namespace
}  // namespace forklift::map
