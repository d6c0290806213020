#include "map/map_options.h"

#include <limits>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace forklift::map {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

MapOptions Parse(std::vector<std::string> args) {
  auto o = ParseMapArgs(args);
  EXPECT_TRUE(o) << o.error().ToString();
  return o ? *o : MapOptions{};
}

std::string ParseError(std::vector<std::string> args) {
  auto o = ParseMapArgs(args);
  EXPECT_FALSE(o);
  if (o) return "";
  EXPECT_EQ(o.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(o.error().message.find('\n'), std::string::npos) << "one line";
  return o.error().message;
}

InputSpec ArgsSpec(std::vector<std::string> args) {
  return InputSpec{.kind = InputSpec::Kind::kArgs, .args = std::move(args)};
}
InputSpec FileSpec(std::string path) {
  return InputSpec{.kind = InputSpec::Kind::kFile, .path = std::move(path)};
}

TEST(ParseMapArgsTest, DefaultsAreGnuParallels) {
  MapOptions o = Parse({"echo"});
  EXPECT_EQ(o.jobs, (JobsSpec{.kind = JobsSpec::Kind::kPercent, .value = 100}));
  EXPECT_FALSE(o.keep_order);
  EXPECT_FALSE(o.joblog);
  EXPECT_EQ(o.MaxAttempts(), 1u);
  EXPECT_EQ(o.termseq, "TERM,200,TERM,100,TERM,50,KILL,25");
  EXPECT_EQ(o.halt, HaltPolicy{});
  EXPECT_EQ(o.delay, 0ns);
  EXPECT_FALSE(o.timeout);
  EXPECT_THAT(o.command, ElementsAre("echo"));
  EXPECT_TRUE(o.inputs.empty());  // stdin
}

TEST(ParseMapArgsTest, CommandAndSources) {
  MapOptions o = Parse({"-k", "echo {} {.}", ":::", "a", "b", ":::", "1", "2"});
  EXPECT_TRUE(o.keep_order);
  EXPECT_THAT(o.command, ElementsAre("echo {} {.}"));
  EXPECT_THAT(o.inputs, ElementsAre(ArgsSpec({"a", "b"}), ArgsSpec({"1", "2"})));

  // Options after the command belong to it; words after ::: are data.
  o = Parse({"grep", "-v", "x", ":::", "-k", "--bogus"});
  EXPECT_FALSE(o.keep_order);
  EXPECT_THAT(o.command, ElementsAre("grep", "-v", "x"));
  EXPECT_THAT(o.inputs, ElementsAre(ArgsSpec({"-k", "--bogus"})));

  // -a files come first, then ::: and :::: in order; :::: takes several files.
  o = Parse({"-a", "f0", "echo", ":::", "x", "::::", "f1", "f2", ":::", "y"});
  EXPECT_THAT(o.inputs, ElementsAre(FileSpec("f0"), ArgsSpec({"x"}), FileSpec("f1"), FileSpec("f2"),
                                    ArgsSpec({"y"})));

  // No command: the input is the command.
  o = Parse({":::", "echo a"});
  EXPECT_TRUE(o.command.empty());
  EXPECT_THAT(o.inputs, ElementsAre(ArgsSpec({"echo a"})));

  // A trailing ::: is an empty source (GNU parallel would read stdin instead).
  o = Parse({"echo", ":::"});
  EXPECT_THAT(o.inputs, ElementsAre(ArgsSpec({})));

  // "--" ends the options.
  o = Parse({"-k", "--", "-weird-command", "x"});
  EXPECT_THAT(o.command, ElementsAre("-weird-command", "x"));
}

TEST(ParseMapArgsTest, ValueForms) {
  EXPECT_EQ(Parse({"-j2", "echo"}).jobs, (JobsSpec{.kind = JobsSpec::Kind::kCount, .value = 2}));
  EXPECT_EQ(Parse({"-j", "2", "echo"}).jobs, Parse({"-j2", "echo"}).jobs);
  EXPECT_EQ(Parse({"--jobs=2", "echo"}).jobs, Parse({"-j2", "echo"}).jobs);
  EXPECT_EQ(Parse({"--jobs", "2", "echo"}).jobs, Parse({"-j2", "echo"}).jobs);
  EXPECT_EQ(Parse({"-P", "2", "echo"}).jobs, Parse({"-j2", "echo"}).jobs);
  EXPECT_EQ(Parse({"-j", "-1", "echo"}).jobs,
            (JobsSpec{.kind = JobsSpec::Kind::kMinus, .value = 1}));
  MapOptions o = Parse({"-kqj", "3", "-0u", "echo"});
  EXPECT_TRUE(o.keep_order);
  EXPECT_TRUE(o.quote);
  EXPECT_TRUE(o.null_separated);
  EXPECT_TRUE(o.ungroup);
  EXPECT_EQ(o.jobs.value, 3);
  EXPECT_EQ(Parse({"--halt", "-2", "echo"}).halt, *ParseHaltPolicy("now,success=1"));
  EXPECT_EQ(Parse({"--halt=now,fail=1", "echo"}).halt, *ParseHaltPolicy("now,fail=1"));
}

TEST(ParseMapArgsTest, EveryOption) {
  MapOptions o = Parse({"-j",
                        "50%",
                        "-k",
                        "--line-buffer",
                        "-u",
                        "--tag",
                        "--tagstring",
                        "<{}>\\t",
                        "--joblog",
                        "jl",
                        "--resume",
                        "--resume-failed",
                        "--retry-failed",
                        "--retries",
                        "3",
                        "--retry-delay",
                        "200ms",
                        "--timeout",
                        "150%",
                        "--termseq",
                        "INT,100,KILL,25",
                        "--halt",
                        "soon,fail=2",
                        "--bar",
                        "--eta",
                        "--progress",
                        "--dry-run",
                        "--delay",
                        "1.5",
                        "--results",
                        "out",
                        "--colsep",
                        ",",
                        "-0",
                        "-q",
                        "--shell-quote",
                        "--shell-quote",
                        "--journal",
                        "j.db",
                        "--run-id",
                        "r1",
                        "--will-cite",
                        "--arg-file",
                        "f",
                        "cmd"});
  EXPECT_EQ(o.jobs, (JobsSpec{.kind = JobsSpec::Kind::kPercent, .value = 50}));
  EXPECT_TRUE(o.keep_order && o.line_buffer && o.ungroup && o.tag);
  EXPECT_EQ(o.tagstring, "<{}>\t");
  EXPECT_EQ(o.joblog, "jl");
  EXPECT_FALSE(o.joblog_append);
  EXPECT_TRUE(o.resume && o.resume_failed && o.retry_failed);
  EXPECT_EQ(o.MaxAttempts(), 3u);
  EXPECT_EQ(o.retry_delay, 200ms);
  ASSERT_TRUE(o.timeout);
  EXPECT_DOUBLE_EQ(o.timeout->percent, 150);
  EXPECT_EQ(o.termseq, "INT,100,KILL,25");
  EXPECT_EQ(o.halt, *ParseHaltPolicy("soon,fail=2"));
  EXPECT_TRUE(o.bar && o.eta && o.progress && o.dry_run);
  EXPECT_EQ(o.delay, 1500ms);
  EXPECT_EQ(o.results, "out");
  EXPECT_EQ(o.colsep, ",");
  EXPECT_TRUE(o.null_separated && o.quote);
  EXPECT_EQ(o.shell_quote, 2);
  EXPECT_EQ(o.journal, "j.db");
  EXPECT_EQ(o.run_id, "r1");
  EXPECT_THAT(o.inputs, ElementsAre(FileSpec("f")));
  EXPECT_THAT(o.command, ElementsAre("cmd"));
  EXPECT_EQ(o.input_options().colsep, ",");
  EXPECT_TRUE(o.input_options().null_separated);
}

TEST(ParseMapArgsTest, GnuSpellings) {
  EXPECT_TRUE(Parse({"--keeporder", "x"}).keep_order);
  EXPECT_FALSE(Parse({"-k", "--nok", "x"}).keep_order);
  EXPECT_TRUE(Parse({"--lb", "x"}).line_buffer);
  EXPECT_TRUE(Parse({"--dryrun", "x"}).dry_run);
  EXPECT_TRUE(Parse({"--dr", "x"}).dry_run);
  EXPECT_EQ(Parse({"--col-sep", "\\t", "x"}).colsep, "\\t");
  EXPECT_EQ(Parse({"-C", ";", "x"}).colsep, ";");
  EXPECT_EQ(Parse({"--res", "d", "x"}).results, "d");
  EXPECT_EQ(Parse({"--term-seq", "KILL,1", "x"}).termseq, "KILL,1");
  EXPECT_EQ(Parse({"--halt-on-error", "2", "x"}).halt, *ParseHaltPolicy("now,fail=1"));
  EXPECT_EQ(Parse({"--jl", "f", "x"}).joblog, "f");
  EXPECT_EQ(Parse({"--shellquote", "x"}).shell_quote, 1);
  EXPECT_EQ(Parse({"--tag", "x"}).tagstring, "{}");  // --tag alone tags with the input
}

TEST(ParseMapArgsTest, JoblogPlusMeansAppend) {
  MapOptions o = Parse({"--joblog", "+jl", "x"});
  EXPECT_EQ(o.joblog, "jl");
  EXPECT_TRUE(o.joblog_append);
}

TEST(ParseMapArgsTest, RetriesZeroMeansForever) {
  EXPECT_EQ(Parse({"--retries", "0", "x"}).MaxAttempts(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(Parse({"--retries", "1", "x"}).MaxAttempts(), 1u);
}

TEST(ParseMapArgsTest, ErrorsAreOneLineAndNameTheCulprit) {
  EXPECT_EQ(ParseError({"--no-such-option", "echo"}),
            "forklift map: unknown option '--no-such-option' (see forklift map --help)");
  EXPECT_EQ(ParseError({"--foo=bar", "echo"}),
            "forklift map: unknown option '--foo' (see forklift map --help)");
  EXPECT_EQ(ParseError({"-kz", "echo"}),
            "forklift map: unknown option '-z' (see forklift map --help)");
  EXPECT_EQ(ParseError({"--joblog"}), "forklift map: option '--joblog' needs a value");
  EXPECT_EQ(ParseError({"-j"}), "forklift map: option '-j' needs a value");
  EXPECT_EQ(ParseError({"--keep-order=1", "x"}),
            "forklift map: option '--keep-order' takes no value");
  EXPECT_THAT(ParseError({"--halt", "sometimes", "echo", ":::", "a"}), HasSubstr("sometimes"));
  EXPECT_THAT(ParseError({"-j", "abc", "x"}), HasSubstr("'abc'"));
  EXPECT_THAT(ParseError({"-j", "0.5", "x"}), HasSubstr("'0.5'"));
  EXPECT_THAT(ParseError({"--timeout", "soon", "x"}), HasSubstr("'soon'"));
  EXPECT_THAT(ParseError({"--delay", "5x", "x"}), HasSubstr("'5x'"));
  EXPECT_THAT(ParseError({"--retry-delay", "-1s", "x"}), HasSubstr("'-1s'"));
  EXPECT_THAT(ParseError({"--retries", "three", "x"}), HasSubstr("'three'"));
  EXPECT_THAT(ParseError({"--colsep", "(", "x"}), HasSubstr("'('"));
  EXPECT_THAT(ParseError({"echo", "{= s/a/b/ =}"}), HasSubstr("{= s/a/b/ =}"));
  EXPECT_THAT(ParseError({"--tagstring", "{= 1 =}", "x"}), HasSubstr("{= 1 =}"));
  EXPECT_THAT(ParseError({"echo", ":::+", "a"}), HasSubstr("':::+'"));
  EXPECT_EQ(ParseError({"--resume", "echo"}),
            "forklift map: --resume and --resume-failed require --joblog or --results");
  EXPECT_TRUE(ParseMapArgs({"--resume", "--results", "d", "echo"}));
}

// issue 10: GNU parallel's options forklift lacks are refused as such, typos get a
// suggestion, and -h/--help end the parsing.
TEST(ParseMapArgsTest, GnuOptionsWeLackAreNamedAndTyposGetASuggestion) {
  EXPECT_EQ(ParseError({"--pipe", "wc"}),
            "forklift map: '--pipe' is not supported by forklift map (GNU parallel option)");
  EXPECT_EQ(ParseError({"--sshlogin=host", "wc"}),
            "forklift map: '--sshlogin' is not supported by forklift map (GNU parallel option)");
  EXPECT_EQ(ParseError({"-kX", "echo"}),
            "forklift map: '-X' is not supported by forklift map (GNU parallel option)");
  EXPECT_EQ(ParseError({"--jbos", "2", "echo"}),
            "forklift map: unknown option '--jbos' (did you mean '--jobs'?)");
  EXPECT_EQ(ParseError({"--resum", "echo"}),
            "forklift map: unknown option '--resum' (did you mean '--resume'?)");
  EXPECT_TRUE(Parse({"--help"}).help);
  EXPECT_TRUE(Parse({"-kh", "--no-such-option"}).help);
  EXPECT_FALSE(Parse({"echo", "-h"}).help) << "after the command, -h is the command's";
  std::string help = MapHelpText();
  EXPECT_THAT(help, HasSubstr("usage: forklift map"));
  for (const char* option : {"--jobs", "--joblog", "--resume", "--halt", "--colsep", "--bar",
                             "--results", "--timeout", "--delay", "--journal"}) {
    EXPECT_THAT(help, HasSubstr(option));
  }
}

TEST(JobsTest, ParseAndResolveLikeGnuParallel) {
  auto resolve = [](std::string_view text, int cores) -> int {
    auto spec = ParseJobs(text);
    EXPECT_TRUE(spec) << text;
    auto jobs = ResolveJobs(*spec, cores);
    return jobs ? *jobs : -1;
  };
  EXPECT_EQ(resolve("4", 2), 4);
  EXPECT_EQ(resolve("100%", 8), 8);
  EXPECT_EQ(resolve("50%", 3), 2);  // 1.5 rounds up
  EXPECT_EQ(resolve("1%", 2), 1);   // 0.02 rounds up
  EXPECT_EQ(resolve("12.5%", 16), 2);
  EXPECT_EQ(resolve("+2", 4), 6);
  EXPECT_EQ(resolve("-1", 4), 3);
  EXPECT_EQ(resolve("0", 4), kUnlimitedJobs);
  EXPECT_EQ(resolve("-10", 2), -1);  // GNU parallel: "Cannot run any jobs."
  EXPECT_EQ(resolve("0%", 2), -1);
  for (const char* bad : {"", "x", "1.5", "%", "+", "-", "+1.5", "1e3", "5%%", ".5%"}) {
    EXPECT_FALSE(ParseJobs(bad)) << bad;
  }
}

TEST(UnquotePrintfTest, AsGnuParallelsTagstring) {
  // parallel --tagstring 'a\tb\101\7|\\t' echo ::: x | od -c
  EXPECT_EQ(UnquotePrintf("a\\tb\\101\\7|\\\\t"),
            "a\tb"
            "A"
            "\a|\\\t");
  EXPECT_EQ(UnquotePrintf("\\n\\r\\0"), std::string("\n\r\0", 3));
  EXPECT_EQ(UnquotePrintf("plain {}"), "plain {}");
  EXPECT_EQ(UnquotePrintf("\\9"), "9");
  EXPECT_EQ(UnquotePrintf("\\x"), "\\x");
}

// GNU parallel's durations: bare seconds and upper-case units, through core::ParseDuration.
TEST(ParseMapArgsTest, DurationsTakeBareSecondsAndUpperCaseUnits) {
  MapOptions o = Parse({"--delay", "0.5", "--retry-delay", "1H30M", "--timeout", "2M", "x"});
  EXPECT_EQ(o.delay, 500ms);
  EXPECT_EQ(o.retry_delay, 90min);
  ASSERT_TRUE(o.timeout);
  EXPECT_EQ(*o.timeout, TimeoutSpec{.fixed = 2min});
  EXPECT_THAT(ParseError({"--delay", "1H30", "x"}), HasSubstr("'1H30'"));
}

TEST(ParseTimeoutTest, FixedAndPercent) {
  EXPECT_EQ(ParseTimeout("0.5").value(), TimeoutSpec{.fixed = 500ms});
  EXPECT_EQ(ParseTimeout("1m").value(), TimeoutSpec{.fixed = 1min});
  EXPECT_EQ(ParseTimeout("1H").value(), TimeoutSpec{.fixed = 1h});
  auto pct = ParseTimeout("150%").value();
  EXPECT_TRUE(pct.is_percent());
  EXPECT_DOUBLE_EQ(pct.percent, 150);
  EXPECT_DOUBLE_EQ(ParseTimeout("12.5%").value().percent, 12.5);
  EXPECT_FALSE(ParseTimeout("1m").value().is_percent());
}

TEST(ParseTimeoutTest, RejectsBadPercentages) {
  for (const char* bad : {"%", "0%", "-5%", "x%", "5%%", "1h%", ""}) {
    auto r = ParseTimeout(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find(std::string("'") + bad + "'"), std::string::npos)
        << r.error().message;
  }
}

}  // namespace
}  // namespace forklift::map
