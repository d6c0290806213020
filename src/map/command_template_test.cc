#include "map/command_template.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "map/shell_quote.h"

namespace forklift::map {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;
using Args = std::vector<std::string>;

CommandTemplate Cmd(std::vector<std::string> words, bool quote = false) {
  auto t = CommandTemplate::ForCommand(words, quote);
  EXPECT_TRUE(t) << t.error().ToString();
  return *t;
}

// Every expectation below was printed by GNU parallel 20221122 with
// `parallel --will-cite --dry-run -k <words> ::: <args>` (one ::: per column).

TEST(CommandTemplateTest, ReplacementStrings) {
  auto t = Cmd({"echo {} {.} {/} {//} {/.} {#}"});
  EXPECT_EQ(t.Expand({"dir/sub/file.tar.gz"}, 1, 1),
            "echo dir/sub/file.tar.gz dir/sub/file.tar file.tar.gz dir/sub file.tar 1");
  EXPECT_EQ(t.Expand({"plain"}, 2, 1), "echo plain plain plain . plain 2");
  EXPECT_EQ(Cmd({"echo {#} {%}"}).Expand({"a"}, 2, 7), "echo 2 7");
}

TEST(CommandTemplateTest, InputIsAppendedQuotedWhenNoReplacementString) {
  auto t = Cmd({"echo"});
  EXPECT_FALSE(t.has_replacement_strings());
  EXPECT_EQ(t.Expand({"a b"}, 1, 1), "echo 'a b'");
  EXPECT_EQ(t.Expand({"it's"}, 1, 1), "echo 'it'\"'\"'s'");
  EXPECT_EQ(t.Expand({"$(touch pwned); rm x"}, 1, 1), "echo '$(touch pwned); rm x'");
  EXPECT_EQ(t.Expand({"a", "b c"}, 1, 1), "echo a 'b c'");
  EXPECT_EQ(t.Expand({""}, 1, 1), "echo ''");
  EXPECT_EQ(t.Expand({}, 1, 1), "echo ''");
  // Words are joined by one space and not re-quoted: the user quoted them for sh.
  EXPECT_EQ(Cmd({"echo", "a  b"}).Expand({"x"}, 1, 1), "echo a  b x");
  EXPECT_EQ(Cmd({"echo", "", "x"}).Expand({"a"}, 1, 1), "echo  x a");
}

TEST(CommandTemplateTest, NonPositionalStringsRepeatPerColumn) {
  EXPECT_EQ(Cmd({"echo", "{}"}).Expand({"a", "b c"}, 1, 1), "echo a 'b c'");
  EXPECT_EQ(Cmd({"echo", "{.}"}).Expand({"a.x", "b c.y"}, 1, 1), "echo a 'b c'");
  EXPECT_EQ(Cmd({"echo", "x{}y"}).Expand({"a", "b"}, 1, 1), "echo xa by");
  EXPECT_EQ(Cmd({"echo", "{0}"}).Expand({"a/b.c", "d/e.f"}, 1, 1), "echo a/b.c d/e.f");
}

TEST(CommandTemplateTest, PositionalColumns) {
  EXPECT_EQ(Cmd({"echo {2}-{1}"}).Expand({"a", "b"}, 1, 1), "echo b-a");
  EXPECT_EQ(Cmd({"echo", "{1.}", "{2/}", "{2//}", "{2/.}"}).Expand({"a/b.c", "d/e.f"}, 1, 1),
            "echo a/b e.f d e");
  EXPECT_EQ(Cmd({"echo", "{1 .}", "{-1/}", "{ }", "{1 }"}).Expand({"a.x", "d/b.y"}, 1, 1),
            "echo a b.y { } a.x");
  // Negative positions count from the end, with Perl's wrap-around.
  EXPECT_EQ(Cmd({"echo", "{-1}", "{-2}", "{-3}"}).Expand({"a", "b"}, 1, 1), "echo b a b");
  // A column that does not exist is nothing at all, not ''.
  EXPECT_EQ(Cmd({"echo", "{1}-{2}-{3}"}).Expand({"a", "b"}, 1, 1), "echo a-b-");
  EXPECT_EQ(Cmd({"echo", "x{3}x"}).Expand({"a", "b"}, 1, 1), "echo xx");
  EXPECT_EQ(Cmd({"echo", "{00}", "{-0}", "{+1}"}).Expand({"a", "b"}, 1, 1), "echo   {+1}");
  EXPECT_EQ(Cmd({"echo", "{1}", "{2}"}).Expand({"", "x"}, 1, 1), "echo '' x");
  // GNU parallel's {n#} glues n onto the 1 of {#}: {0#} is the seq, {2#} column 21.
  EXPECT_EQ(Cmd({"echo", "{2#}", "{1#}", "{0#}", "{1%}"}).Expand({"a", "b"}, 1, 1), "echo   1 ");
}

TEST(CommandTemplateTest, UnknownBracesStayLiteral) {
  EXPECT_EQ(Cmd({"echo", "{{}}", "{a}", "{1", "}"}).Expand({"q"}, 1, 1), "echo {q} {a} {1 }");
  EXPECT_EQ(Cmd({"echo", "{foo}"}).Expand({"a"}, 1, 1), "echo {foo} a");
}

// Parsing is linear in the template: a word of 1 MiB of '{' (each one a candidate whose
// search for its '}' used to scan the rest of the word) parses, stays literal, and a
// replacement string after it is still found. No timing here: bench or fuzz for that.
TEST(CommandTemplateTest, AMegabyteOfOpenBracesParses) {
  const std::string braces(size_t{1} << 20, '{');
  auto literal = CommandTemplate::ForCommand({"echo", braces}, false);
  ASSERT_TRUE(literal) << literal.error().ToString();
  EXPECT_EQ(literal->Expand({"a"}, 1, 1), "echo " + braces + " a");
  // The last '{' and the '}' make a {}: the others stay literal, and no input is appended.
  auto with_close = CommandTemplate::ForCommand({"echo", braces + "}"}, false);
  ASSERT_TRUE(with_close) << with_close.error().ToString();
  EXPECT_EQ(with_close->Expand({"a"}, 1, 1), "echo " + braces.substr(1) + "a");
}

TEST(CommandTemplateTest, ReplacementInTheFirstWordMeansTheInputIsTheCommand) {
  auto t = Cmd({"{}"});
  EXPECT_FALSE(t.quotes_values());
  EXPECT_EQ(t.Expand({"echo a; ls"}, 1, 1), "echo a; ls");
  EXPECT_EQ(Cmd({}).Expand({"echo a b"}, 1, 1), "echo a b");
  EXPECT_EQ(Cmd({"{1}", "x"}).Expand({"echo", "q r"}, 1, 1), "echo x");
  EXPECT_EQ(Cmd({"my_{}"}).Expand({"a b"}, 1, 1), "my_a b");
  EXPECT_EQ(Cmd({"{}", "x"}).Expand({"echo 'a"}, 1, 1), "echo 'a x");
  // An assignment is not the command word: its value is still quoted.
  EXPECT_TRUE(Cmd({"A={} echo"}).quotes_values());
  EXPECT_EQ(Cmd({"A={} echo"}).Expand({"x y"}, 1, 1), "A='x y' echo");
  // Quoting inside the user's own quotes is GNU parallel's behaviour too.
  EXPECT_EQ(Cmd({"echo", "'{}'"}).Expand({"a b"}, 1, 1), "echo ''a b''");
}

TEST(CommandTemplateTest, QuoteOptionQuotesEachWord) {
  EXPECT_EQ(Cmd({"echo", "a  b", "$HOME"}, true).Expand({"x y"}, 1, 1),
            "echo 'a  b' '$HOME' 'x y'");
  EXPECT_EQ(Cmd({"echo {}", "a{}b", "{1}"}, true).Expand({"x y"}, 1, 1),
            "'echo x y' 'ax yb' 'x y'");
  EXPECT_EQ(Cmd({"sh -c", "echo $0", "{}"}, true).Expand({"x y"}, 1, 1), "'sh -c' 'echo $0' 'x y'");
  EXPECT_EQ(Cmd({"echo"}, true).Expand({"it's"}, 1, 1), "echo 'it'\"'\"'s'");
  EXPECT_EQ(Cmd({"printf", "%s\\n"}, true).Expand({"x y"}, 1, 1), "printf '%s\\n' 'x y'");
  EXPECT_EQ(Cmd({"{}"}, true).Expand({"x y"}, 1, 1), "'x y'");
  EXPECT_EQ(Cmd({"echo", "x{}y"}, true).Expand({"a", "b"}, 1, 1), "echo xa by");
  EXPECT_EQ(Cmd({"echo", "{}"}, true).Expand({"a", "b c"}, 1, 1), "echo a 'b c'");
  EXPECT_EQ(Cmd({"echo", "{3}"}, true).Expand({"a"}, 1, 1), "echo ''");
  EXPECT_EQ(Cmd({"echo", "", "x"}, true).Expand({"a"}, 1, 1), "echo '' x a");
}

TEST(CommandTemplateTest, PerlExpressionsAreRejected) {
  auto t = CommandTemplate::ForCommand({"echo", "{= s/a/b/ =}"}, false);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(t.error().message, HasSubstr("'{= s/a/b/ =}'"));
  // Spread over words, as GNU parallel merges them.
  EXPECT_FALSE(CommandTemplate::ForCommand({"echo", "{=", "$_", "=}"}, false));
  // "{=" alone is literal text.
  EXPECT_EQ(Cmd({"echo", "{=}"}).Expand({"a"}, 1, 1), "echo {=} a");
}

TEST(CommandTemplateTest, TextTemplatesSubstituteRawAndAppendNothing) {
  auto t = CommandTemplate::ForText("<{2}|{#}|{}>");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->Expand({"it's", "c"}, 1, 1), "<c|1|it's c>");
  auto plain = CommandTemplate::ForText("tag");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->Expand({"a"}, 1, 1), "tag");
}

TEST(TransformTest, RemoveExtensionMatchesPerl) {
  EXPECT_EQ(RemoveExtension("a.b.c"), "a.b");
  EXPECT_EQ(RemoveExtension("a/.hidden"), "a/");
  EXPECT_EQ(RemoveExtension("x.y/z"), "x.y/z");
  EXPECT_EQ(RemoveExtension(".a"), "");
  EXPECT_EQ(RemoveExtension("a"), "a");
  EXPECT_EQ(RemoveExtension("a."), "a");
  EXPECT_EQ(RemoveExtension("p.q\n"), "p");
}

TEST(TransformTest, BasenameMatchesPerl) {
  EXPECT_EQ(Basename("dir/sub/f.c"), "f.c");
  EXPECT_EQ(Basename("a/b/"), "");
  EXPECT_EQ(Basename("/"), "");
  EXPECT_EQ(Basename("plain"), "plain");
  EXPECT_EQ(Basename("a//b"), "b");
  // Perl's '.' stops at newlines: only the first line holding a '/' is cut.
  EXPECT_EQ(Basename("p/q\nr/s/t"), "q\nr/s/t");
  EXPECT_EQ(Basename("x\nr/s/t"), "x\nt");
}

TEST(TransformTest, DirnameMatchesFileBasename) {
  EXPECT_EQ(Dirname("a"), ".");
  EXPECT_EQ(Dirname(""), ".");
  EXPECT_EQ(Dirname("a/b"), "a");
  EXPECT_EQ(Dirname("a/b/"), "a");
  EXPECT_EQ(Dirname("/"), "/");
  EXPECT_EQ(Dirname("/a"), "/");
  EXPECT_EQ(Dirname("a//b"), "a");
  EXPECT_EQ(Dirname("x.y/z"), "x.y");
  EXPECT_EQ(Dirname("dir/sub/file.tar.gz"), "dir/sub");
}

TEST(CommandTemplateTest, ExpandArgvSkipsTheShellOnlyWhenEquivalent) {
  EXPECT_THAT(Cmd({"echo"}).ExpandArgv({"a b", "$(x)"}, 1, 1),
              Optional(ElementsAre("echo", "a b", "$(x)")));
  // x{}y over two columns is x'it'"'"'s' ''y for sh: the words xit's and y.
  EXPECT_THAT(Cmd({"gzip -9 x{}y"}).ExpandArgv({"it's", ""}, 1, 1),
              Optional(ElementsAre("gzip", "-9", "xit's", "y")));
  EXPECT_THAT(Cmd({"cp {} {.}.bak {#}"}).ExpandArgv({"d/f.txt"}, 4, 1),
              Optional(ElementsAre("cp", "d/f.txt", "d/f.bak", "4")));
  // A missing column vanishes (unquoted empty), an empty one stays ('').
  EXPECT_THAT(Cmd({"touch {3} {1}"}).ExpandArgv({""}, 1, 1), Optional(ElementsAre("touch", "")));
  EXPECT_THAT(Cmd({"sh -c", "echo $0", "{}"}, true).ExpandArgv({"x y"}, 1, 1),
              Optional(ElementsAre("sh -c", "echo $0", "x y")));
  EXPECT_EQ(Cmd({"echo $HOME"}).ExpandArgv({"a"}, 1, 1), std::nullopt);
  EXPECT_EQ(Cmd({"{}"}).ExpandArgv({"ls"}, 1, 1), std::nullopt);
  EXPECT_EQ(Cmd({"cd {}"}).ExpandArgv({"a"}, 1, 1), std::nullopt);
  EXPECT_EQ(Cmd({"echo"}).ExpandArgv({"-n"}, 1, 1), std::nullopt);
  EXPECT_EQ(Cmd({"sleep 1; echo"}).ExpandArgv({"a"}, 1, 1), std::nullopt);
}

// ExpandArgv must agree with what sh makes of Expand's line. Run both through sh.
std::string RunSh(const std::string& line) {
  FILE* p = popen(("sh -c " + ShellQuote(line)).c_str(), "r");
  if (!p) return "<popen failed>";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

TEST(CommandTemplateTest, ExpandArgvAgreesWithSh) {
  const std::vector<std::pair<std::vector<std::string>, bool>> templates = {
      {{"printf %s,"}, false},
      {{"printf %s, x{}y {3} {2/} {//}"}, false},
      {{"printf", "%s,", "a b", "{}"}, true},
      {{"printf", "%s,", "{2}"}, true},
  };
  const std::vector<Args> inputs = {
      {"plain"}, {"a b", "it's"}, {"", "$(id)"}, {"x/y.z", "`q`", "*"}};
  for (const auto& [words, quote] : templates) {
    auto t = Cmd(words, quote);
    for (const Args& args : inputs) {
      auto argv = t.ExpandArgv(args, 1, 1);
      ASSERT_TRUE(argv) << t.Expand(args, 1, 1);
      std::string direct;
      // printf %s, a b ... prints "arg," for each argument after the format.
      for (size_t i = 2; i < argv->size(); ++i) direct += (*argv)[i] + ",";
      if (argv->size() == 2) direct = ",";
      EXPECT_EQ(RunSh(t.Expand(args, 1, 1)), direct) << t.Expand(args, 1, 1);
    }
  }
}

bool HaveParallel() { return std::system("parallel --version >/dev/null 2>&1") == 0; }

// A few live comparisons against GNU parallel's --dry-run, where it is installed.
TEST(CommandTemplateTest, AgreesWithGnuParallelDryRun) {
  if (!HaveParallel()) GTEST_SKIP() << "GNU parallel is not installed";
  struct Case {
    std::vector<std::string> words;
    bool quote;
    Args args;
  };
  const std::vector<Case> cases = {
      {{"echo {} {.} {/} {//} {/.}"}, false, {"d i r/s.u b/f i'le.tar.gz"}},
      {{"echo", "{2}", "{1/.}", "{}"}, false, {"a/b.c d", "$x"}},
      {{"echo", "x{}y"}, true, {"a b", "c"}},
      {{"{}", "z"}, false, {"echo 'hi'"}},
  };
  for (const Case& c : cases) {
    std::string cmd = "parallel --will-cite --dry-run";
    if (c.quote) cmd += " -q";
    for (const auto& w : c.words) cmd += " " + ShellQuote(w);
    for (const auto& a : c.args) cmd += " ::: " + ShellQuote(a);
    std::string gnu = RunSh(cmd);
    EXPECT_EQ(Cmd(c.words, c.quote).Expand(c.args, 1, 1) + "\n", gnu) << cmd;
  }
}

}  // namespace
}  // namespace forklift::map
