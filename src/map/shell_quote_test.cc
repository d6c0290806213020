#include "map/shell_quote.h"

#include <cstdio>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace forklift::map {
namespace {

using ::testing::ElementsAre;
using ::testing::Optional;

// Expected strings below were printed by GNU parallel 20221122:
//   parallel --will-cite --shell-quote ::: ...   and   parallel --dry-run echo ::: ...
TEST(ShellQuoteTest, MatchesGnuParallelByteForByte) {
  EXPECT_EQ(ShellQuote("plain"), "plain");
  EXPECT_EQ(ShellQuote("-_.+/Az09"), "-_.+/Az09");
  EXPECT_EQ(ShellQuote(""), "''");
  EXPECT_EQ(ShellQuote("a b"), "'a b'");
  EXPECT_EQ(ShellQuote("it's"), "'it'\"'\"'s'");
  EXPECT_EQ(ShellQuote("$x"), "'$x'");
  EXPECT_EQ(ShellQuote("a\"b"), "'a\"b'");
  EXPECT_EQ(ShellQuote("~x"), "'~x'");
  EXPECT_EQ(ShellQuote("a=b"), "'a=b'");
  EXPECT_EQ(ShellQuote("*"), "'*'");
  EXPECT_EQ(ShellQuote("a,b"), "'a,b'");
  EXPECT_EQ(ShellQuote("a:b"), "'a:b'");
  EXPECT_EQ(ShellQuote("%"), "'%'");
  EXPECT_EQ(ShellQuote("tab\tx"), "'tab\tx'");
  EXPECT_EQ(ShellQuote("\xc3\xa9"), "'\xc3\xa9'");
  EXPECT_EQ(ShellQuote("\x01"), "'\x01'");
}

TEST(ShellQuoteTest, QuotesAtTheEndsAreTrimmedAsGnuParallelDoes) {
  EXPECT_EQ(ShellQuote("'"), "\"'\"");
  EXPECT_EQ(ShellQuote("'a"), "\"'\"'a'");
  EXPECT_EQ(ShellQuote("a'"), "'a'\"'\"");
  EXPECT_EQ(ShellQuote("''"), "\"'\"''\"'\"");
  EXPECT_EQ(ShellQuote("x'y'z"), "'x'\"'\"'y'\"'\"'z'");
}

TEST(ShellQuoteTest, ShellQuoteOptionIsQuotingTheCommandLine) {
  // parallel --shell-quote echo ::: 'a b'      (and with --shell-quote twice)
  EXPECT_EQ(ShellQuote("echo 'a b'"), "'echo '\"'\"'a b'\"'\"");
  EXPECT_EQ(ShellQuote(ShellQuote("echo 'a b'")),
            "\"'\"'echo '\"'\"'\"'\"'\"'\"'\"'\"'a b'\"'\"'\"'\"'\"'\"'");
}

TEST(ShellQuoteTest, AppendReusesTheBuffer) {
  std::string out = "echo ";
  AppendShellQuoted(&out, "a b");
  out += ' ';
  AppendShellQuoted(&out, "c");
  EXPECT_EQ(out, "echo 'a b' c");
}

// The property that matters: sh reads every quoted word back as the original bytes.
std::string ShellEcho(const std::string& quoted) {
  std::string cmd = "printf '%s' " + quoted;
  // popen runs /bin/sh -c; the command itself is what we test, so quote it once more.
  std::string outer = "sh -c " + ShellQuote(cmd);
  FILE* p = popen(outer.c_str(), "r");
  if (!p) return "<popen failed>";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

TEST(ShellQuoteTest, ShReadsBackTheExactBytes) {
  const std::vector<std::string> nasty = {
      "$(touch pwned); rm x",
      "it's",
      "a\"b",
      "`id`",
      "back\\slash",
      "new\nline",
      "  lead and trail  ",
      "*?[a]",
      "~root",
      "#hash",
      "{a,b}",
      "a&&b||c;d",
      "<>|",
      "''",
      "'",
      "\t",
      "\xff\xfe bytes",
      "!event",
      "$HOME ${x:-y}",
  };
  for (const std::string& s : nasty) {
    EXPECT_EQ(ShellEcho(ShellQuote(s)), s) << ShellQuote(s);
  }
}

TEST(IsSimpleCommandTest, PlainWordsAreSplit) {
  EXPECT_THAT(IsSimpleCommand("gzip -9 --keep data/file.csv"),
              Optional(ElementsAre("gzip", "-9", "--keep", "data/file.csv")));
  EXPECT_THAT(IsSimpleCommand("  sleep   0.1 "), Optional(ElementsAre("sleep", "0.1")));
  EXPECT_THAT(IsSimpleCommand("dd if=a of=b bs=1M"),
              Optional(ElementsAre("dd", "if=a", "of=b", "bs=1M")));
  EXPECT_THAT(IsSimpleCommand("curl -u user:pw@host a,b 50%"),
              Optional(ElementsAre("curl", "-u", "user:pw@host", "a,b", "50%")));
  EXPECT_THAT(IsSimpleCommand("echo hello"), Optional(ElementsAre("echo", "hello")));
}

TEST(IsSimpleCommandTest, AnythingTheShellWouldInterpretNeedsTheShell) {
  for (const char* cmd : {"",           "   ",        "echo 'a b'",
                          "echo \"a\"", "echo $HOME", "echo `id`",
                          "echo a\\ b", "ls *.c",     "ls a?",
                          "ls [ab]",    "cd ~",       "echo a # comment",
                          "echo {a,b}", "a | b",      "a && b",
                          "a; b",       "a > f",      "a < f",
                          "(a)",        "a\tb",       "a\nb",
                          "A=1 env",    "exit 3",     "cd /tmp",
                          "export X",   "pwd",        "time sleep 1",
                          "if",         ". ./x",      ": x",
                          "echo -n x",  "echo -e x",  "echo caf\xc3\xa9",
                          "! true",     "sleep 1 &"}) {
    EXPECT_EQ(IsSimpleCommand(cmd), std::nullopt) << cmd;
  }
}

TEST(ArgvNeedsShellTest, BuiltinsAssignmentsAndEchoOptions) {
  EXPECT_TRUE(ArgvNeedsShell({}));
  EXPECT_TRUE(ArgvNeedsShell({""}));
  EXPECT_TRUE(ArgvNeedsShell({"X=1", "env"}));
  EXPECT_TRUE(ArgvNeedsShell({"cd", "/"}));
  EXPECT_TRUE(ArgvNeedsShell({"echo", "-n", "x"}));
  EXPECT_TRUE(ArgvNeedsShell({"echo", "a\\nb"}));
  EXPECT_FALSE(ArgvNeedsShell({"echo", "a b", "it's"}));
  EXPECT_FALSE(ArgvNeedsShell({"/bin/echo", "-n"}));
  EXPECT_FALSE(ArgvNeedsShell({"printf", "%s\\n", "x"}));
  EXPECT_FALSE(ArgvNeedsShell({"true"}));
}

}  // namespace
}  // namespace forklift::map
