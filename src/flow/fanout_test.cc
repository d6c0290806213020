#include "flow/fanout.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace forklift::flow {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

// What `sh -c CMD` prints on stdout.
std::string ShOutput(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return "<popen failed>";
  std::string out;
  char buf[256];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

TEST(ShellWordTest, ShSplitsItBackToTheSameWord) {
  for (std::string word : {"plain", "a b", "it's", "", "$HOME", "*", "a\"b", "x\ny", "'", "\\"}) {
    EXPECT_EQ(ShOutput("printf '%s|' " + ShellWord(word)), word + "|") << word;
  }
  EXPECT_EQ(ShellWord("run-1.x/y:z=@%+,"), "run-1.x/y:z=@%+,");  // safe: as is
}

TaskSpec FanoutTask() {
  TaskSpec t;
  t.name = "scrape";
  t.cmd = "sh scrape.sh {}";
  t.jobs = 8;
  t.timeout = std::chrono::milliseconds(1500);
  t.retries = 2;
  return t;
}

FanoutCall Call() {
  return {.forklift_exe = "/opt/forklift",
          .journal = "/j/journal.db",
          .run_id = "nightly-1.scrape",
          .joblog = "/logs/scrape.joblog",
          .flow_jobs = 4};
}

TEST(FanoutArgvTest, AForeachFileIsTheMapsInputFile) {
  TaskSpec t = FanoutTask();
  t.foreach = "symbols.txt";
  EXPECT_THAT(
      FanoutArgv(t, Call()),
      ElementsAre("/opt/forklift", "map", "-j", "4", "--journal", "/j/journal.db", "--run-id",
                  "nightly-1.scrape", "--joblog", "/logs/scrape.joblog", "--timeout", "1500ms",
                  "--retries", "3", "sh scrape.sh {}", "::::", "symbols.txt"));
  t.jobs = 2;  // a task's jobs lowers the flow's
  FanoutCall resume = Call();
  resume.resume = true;
  std::vector<std::string> argv = FanoutArgv(t, resume);
  EXPECT_EQ(argv[3], "2");
  EXPECT_EQ(argv[14], "--resume-failed");
}

TEST(FanoutArgvTest, AForeachCommandPipesIntoTheMapWithEveryWordIntact) {
  test_support::TempDir dir("forklift-fanout");
  // A stand-in forklift that prints its argv, a word a line.
  std::string fake = dir.Write("forklift", "#!/bin/sh\nfor a; do printf '%s\\n' \"$a\"; done\n");
  ::chmod(fake.c_str(), 0755);
  TaskSpec t = FanoutTask();
  t.timeout.reset();
  t.retries = 0;
  t.cmd = "echo 'it''s' {} \"$X\"";
  t.foreach_cmd = "printf 'a\\nb\\n'";
  FanoutCall call = Call();
  call.forklift_exe = fake;
  call.run_id = "night ly.scrape";
  std::vector<std::string> argv = FanoutArgv(t, call);
  ASSERT_EQ(argv.size(), 3U);
  EXPECT_EQ(argv[0], "/bin/sh");
  EXPECT_EQ(argv[1], "-c");
  EXPECT_EQ(ShOutput(argv[2]),
            "map\n-j\n4\n--journal\n/j/journal.db\n--run-id\nnight ly.scrape\n"
            "--joblog\n/logs/scrape.joblog\necho 'it''s' {} \"$X\"\n");
}

TEST(SlowestJobsTest, TheLastRowOfEachJobSlowestFirst) {
  test_support::TempDir dir("forklift-fanout");
  std::string joblog =
      dir.Write("j.log",
                "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"
                "1\t:\t1.0\t0.5\t0\t0\t0\t0\tsh a.sh 1\n"
                "2\t:\t1.0\t9.0\t0\t0\t1\t0\tsh a.sh 2\n"   // retried: its last row counts
                "3\t:\t1.0\t2.0\t0\t0\t0\t0\tsh a.sh\t3\n"  // a tab inside the command is kept
                "garbage line\n"
                "2\t:\t2.0\t0.25\t0\t0\t0\t0\tsh a.sh 2\n");
  EXPECT_THAT(SlowestJobs(joblog, 2), ElementsAre(Pair("sh a.sh\t3", 2.0), Pair("sh a.sh 1", 0.5)));
  EXPECT_THAT(SlowestJobs(dir.Path("missing.log"), 3), IsEmpty());
}

}  // namespace
}  // namespace forklift::flow
