#include "map/joblog.h"

#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/temp_dir.h"

namespace forklift::map {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

using test_support::TempDir;

JoblogEntry Entry(uint64_t seq, int exit_value, int signal, std::string command) {
  JoblogEntry e;
  e.seq = seq;
  e.start_time = std::chrono::system_clock::time_point(1795423652276ms);
  e.runtime = 102'900us;
  e.receive = 2;
  e.exit_value = exit_value;
  e.signal = signal;
  e.command = std::move(command);
  return e;
}

// Rows as GNU parallel 20221122 wrote them for
//   parallel --joblog jl -j2 'sleep 0.1; echo {}' ::: a b
TEST(JoblogFormatTest, MatchesGnuParallel) {
  EXPECT_EQ(JoblogHeader(),
            "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n");
  EXPECT_EQ(FormatJoblogRow(Entry(1, 0, 0, "sleep 0.1; echo a")),
            "1\t:\t1795423652.276\t     0.102\t0\t2\t0\t0\tsleep 0.1; echo a\n");
}

TEST(JoblogFormatTest, NumberFormats) {
  JoblogEntry e = Entry(12, -1, 15, "sleep 2");
  e.start_time = std::chrono::system_clock::time_point(1795424341997'600us);  // rounds up
  e.runtime = 1'072'999us;                                                    // truncates
  EXPECT_EQ(FormatJoblogRow(e), "12\t:\t1795424341.998\t     1.072\t0\t2\t-1\t15\tsleep 2\n");
  e.runtime = 12345678'900ms;  // wider than 10 columns: not cut
  EXPECT_THAT(FormatJoblogRow(e), HasSubstr("\t12345678.900\t"));
  e.runtime = 0ms;
  EXPECT_THAT(FormatJoblogRow(e), HasSubstr("\t     0.000\t"));
}

TEST(JoblogFormatTest, NewlinesInCommandsBecomeNul) {
  std::string row = FormatJoblogRow(Entry(1, 0, 15, "echo \"a\nb\"; kill -TERM $$"));
  EXPECT_EQ(row.find('\n'), row.size() - 1);
  EXPECT_THAT(row, HasSubstr(std::string("echo \"a\0b\"", 10)));
}

TEST(JoblogWriterTest, TruncateResumeAndAppendModes) {
  TempDir dir;
  std::string path = dir.Path("jl");
  {
    auto w = JoblogWriter::Open(path, JoblogMode::kTruncate);
    ASSERT_TRUE(w) << w.error().ToString();
    ASSERT_TRUE((*w)->Append(Entry(1, 0, 0, "a")));
    // Each row is in the file as soon as Append returns: nothing is buffered.
    EXPECT_EQ(Slurp(path), std::string(JoblogHeader()) + FormatJoblogRow(Entry(1, 0, 0, "a")));
  }
  {
    auto w = JoblogWriter::Open(path, JoblogMode::kResume);  // appends, no second header
    ASSERT_TRUE(w);
    ASSERT_TRUE((*w)->Append(Entry(2, 1, 0, "b")));
  }
  EXPECT_EQ(Slurp(path), std::string(JoblogHeader()) + FormatJoblogRow(Entry(1, 0, 0, "a")) +
                             FormatJoblogRow(Entry(2, 1, 0, "b")));
  {
    auto w = JoblogWriter::Open(path, JoblogMode::kTruncate);
    ASSERT_TRUE(w);
  }
  EXPECT_EQ(Slurp(path), JoblogHeader());

  std::string fresh = dir.Path("fresh");
  ASSERT_TRUE(JoblogWriter::Open(fresh, JoblogMode::kResume));  // new file: header
  EXPECT_EQ(Slurp(fresh), JoblogHeader());

  std::string plus = dir.Path("plus");
  {
    auto w = JoblogWriter::Open(plus, JoblogMode::kAppend);  // --joblog +FILE: no header
    ASSERT_TRUE(w);
    ASSERT_TRUE((*w)->Append(Entry(3, 0, 0, "c")));
  }
  EXPECT_EQ(Slurp(plus), FormatJoblogRow(Entry(3, 0, 0, "c")));
}

TEST(JoblogWriterTest, UnwritablePathFailsNamingIt) {
  auto w = JoblogWriter::Open("/nonexistent/dir/jl", JoblogMode::kTruncate);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(w.error().message, HasSubstr("'/nonexistent/dir/jl'"));
}

const char kLog[] =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"
    "1\t:\t1.000\t     0.001\t0\t0\t1\t0\techo 1\n"
    "2\t:\t1.000\t     0.001\t0\t2\t0\t0\techo 2\n"
    "3\t:\t1.000\t     0.001\t0\t0\t-1\t15\tsleep 9\n"
    "1\t:\t2.000\t     0.001\t0\t2\t0\t0\techo 1\n"
    "5\t:\t1.000\t     0.001\t0\t0\t2\t0\tprintf 'x\0y'\n"
    "7\t:\t1.000\t  ";  // torn last row

TEST(JoblogHistoryTest, SeqsThatRanAndSucceeded) {
  auto h = JoblogHistory::Parse(std::string_view(kLog, sizeof kLog - 1), "jl");
  ASSERT_TRUE(h) << h.error().ToString();
  EXPECT_EQ(h->rows(), 6u);
  // --resume skips every seq with a row, the torn one included (GNU: /^(\d+)/).
  for (uint64_t seq : {1, 2, 3, 5, 7}) EXPECT_TRUE(h->Ran(seq)) << seq;
  for (uint64_t seq : {0, 4, 6, 8, 1000}) EXPECT_FALSE(h->Ran(seq)) << seq;
  // --resume-failed skips only successes; a later success of a failed seq counts.
  EXPECT_TRUE(h->Succeeded(1));
  EXPECT_TRUE(h->Succeeded(2));
  EXPECT_FALSE(h->Succeeded(3));
  EXPECT_FALSE(h->Succeeded(5));
  EXPECT_FALSE(h->Succeeded(7));
  // --retry-failed reruns the stored commands of failed full rows, newlines restored.
  EXPECT_THAT(h->FailedCommands(), ElementsAre(Pair(3u, "sleep 9"), Pair(5u, "printf 'x\ny'")));
}

// Bytes in use: small chunks plus mmap()ed blocks (large vectors live there).
size_t HeapInUse() {
  struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

// Memory follows the rows read, not the largest seq: a 3-row log that names seq 10^8
// used to cost a 100 MB flag vector. Measured on the heap itself (glibc's mallinfo2), so
// the test skips where an allocator that it does not see (a sanitizer's) is in place.
TEST(JoblogHistoryTest, MemoryIsBoundedByTheLogNotByItsLargestSeq) {
  {
    size_t before = HeapInUse();
    std::vector<uint8_t> probe(size_t{8} << 20, 1);
    if (HeapInUse() < before + (size_t{8} << 20)) {
      GTEST_SKIP() << "mallinfo2 does not see this heap";
    }
  }
  const std::string log =
      "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"
      "100000000\t:\t1.000\t0.001\t0\t0\t0\t0\techo a\n"
      "2\t:\t1.000\t0.001\t0\t0\t1\t0\techo b\n"
      "99999999\t:\t1.000\t0.001\t0\t0\t1\t0\techo c\n";
  size_t before = HeapInUse();
  auto h = JoblogHistory::Parse(log, "jl");
  ASSERT_TRUE(h) << h.error().ToString();
  EXPECT_LT(HeapInUse(), before + (size_t{1} << 20));
  EXPECT_TRUE(h->Succeeded(100000000));
  EXPECT_TRUE(h->Ran(2));
  EXPECT_FALSE(h->Succeeded(2));
  EXPECT_TRUE(h->Ran(99999999));
  EXPECT_FALSE(h->Ran(99999998));
  EXPECT_FALSE(h->Ran(3));
  EXPECT_THAT(h->FailedCommands(), ElementsAre(Pair(2u, "echo b"), Pair(99999999u, "echo c")));
}

// A seq first seen beyond the dense part and then reached by it keeps its flags.
TEST(JoblogHistoryTest, SeqsMovingIntoTheDensePartKeepTheirFlags) {
  std::string log;
  log += "6000\t:\t1.0\t0.1\t0\t0\t0\t0\tlate\n";
  for (int seq = 1; seq <= 6001; ++seq) {
    log += std::to_string(seq) + "\t:\t1.0\t0.1\t0\t0\t1\t0\tx\n";
  }
  auto h = JoblogHistory::Parse(log, "jl");
  ASSERT_TRUE(h) << h.error().ToString();
  EXPECT_TRUE(h->Succeeded(6000));  // its later failure does not undo the success
  EXPECT_TRUE(h->Ran(6001));
  EXPECT_FALSE(h->Succeeded(5999));
  EXPECT_EQ(h->FailedCommands().size(), 6000u);
}

TEST(JoblogHistoryTest, SuccessNeedsBothColumnsWrittenExactlyZero) {
  auto h = JoblogHistory::Parse(
      "1\t:\t1.0\t0.1\t0\t0\t00\t0\tx\n"  // no header: the first row still counts
      "2\t:\t1.0\t0.1\t0\t0\t0\t0\t\n",
      "jl");
  ASSERT_TRUE(h) << h.error().ToString();
  EXPECT_TRUE(h->Ran(1));
  EXPECT_FALSE(h->Succeeded(1));
  EXPECT_TRUE(h->Succeeded(2));  // an empty command is still a row
}

TEST(JoblogHistoryTest, GarbageIsAnErrorNamingFileAndLine) {
  auto h = JoblogHistory::Parse("Seq\tHost\nhello world\n", "my.log");
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(h.error().message, "forklift map: format of --joblog 'my.log' is wrong: hello world");
  EXPECT_FALSE(JoblogHistory::Parse("Seq\n\n", "jl"));             // an empty row
  EXPECT_FALSE(JoblogHistory::Parse("Seq\n99999999999\n", "jl"));  // absurd seq
}

// GNU parallel ignores a line its loose pattern /\d+\s+[^\s]+\s+([-0-9.]+\s+){6}/ finds
// anywhere in it; anything else that is not a row is an error.
TEST(JoblogHistoryTest, LinesTheLoosePatternFindsAreIgnored) {
  for (const char* line : {"x1 : 1 2 3 4 5 6 cmd", "abc12\thost\t1.5\t-2\t.\t3\t4\t5\t",
                           "zz z 9 h 1 2 3 4 5 6\t", "x 7 : -1 0 0 0 0 0 "}) {
    auto h = JoblogHistory::Parse(std::string("Seq\n") + line + "\n", "jl");
    EXPECT_TRUE(h) << line << ": " << h.error().ToString();
    if (h) {
      EXPECT_EQ(h->rows(), 0u) << line;
    }
  }
  for (const char* line : {"x1 : 1 2 3 4 5 6", "x1 : 1 2 3 4 5 a ", "x : 1 2 3 4 5 6 7 ",
                           "xa1 : 1 2 3 4 5", "x1: 1 2 3 4 5 6 7 "}) {
    EXPECT_FALSE(JoblogHistory::Parse(std::string("Seq\n") + line + "\n", "jl")) << line;
  }
}

// issue 16: the loose pattern ran on std::regex, whose recursion per character overflowed
// the stack on a 30,000-letter line. A 1 MB line is the documented error, and the error
// quotes the line's start, not all of it.
TEST(JoblogHistoryTest, AOneMegabyteMalformedLineIsAnErrorNotACrash) {
  std::string line = "x1 " + std::string(1 << 20, 'a');
  auto h = JoblogHistory::Parse("Seq\n" + line + "\n", "jl");
  ASSERT_FALSE(h);
  EXPECT_THAT(h.error().message, HasSubstr("format of --joblog 'jl' is wrong: x1 aaa"));
  EXPECT_LT(h.error().message.size(), 400u);
  std::string spaced = "x1 :";
  for (int i = 0; i < 200000; ++i) spaced += " 1.5";
  EXPECT_TRUE(JoblogHistory::Parse("Seq\n" + spaced + " \n", "jl"));  // the loose form
  TempDir dir;
  std::string path = dir.Path("long");
  {
    std::ofstream f(path);
    f << "Seq\n" << line << "\n";
  }
  auto read = JoblogHistory::Read(path);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, ErrorCode::kInvalidArgument);
}

TEST(JoblogHistoryTest, ReadMissingFileIsEmptyAndReadsWhatTheWriterWrote) {
  TempDir dir;
  auto missing = JoblogHistory::Read(dir.Path("none"));
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->rows(), 0u);
  std::string path = dir.Path("jl");
  {
    auto w = JoblogWriter::Open(path, JoblogMode::kTruncate);
    ASSERT_TRUE(w);
    ASSERT_TRUE((*w)->Append(Entry(1, 0, 0, "echo \"a\nb\"")));
    ASSERT_TRUE((*w)->Append(Entry(2, 3, 0, "echo \"c\nd\"")));
  }
  auto h = JoblogHistory::Read(path);
  ASSERT_TRUE(h) << h.error().ToString();
  EXPECT_TRUE(h->Succeeded(1));
  EXPECT_THAT(h->FailedCommands(), ElementsAre(Pair(2u, "echo \"c\nd\"")));
}

bool HaveParallel() { return std::system("parallel --version >/dev/null 2>&1") == 0; }

TEST(JoblogHistoryTest, ReadsGnuParallelsOwnJoblog) {
  if (!HaveParallel()) GTEST_SKIP() << "GNU parallel is not installed";
  TempDir dir;
  std::string path = dir.Path("gnu.log");
  std::string cmd =
      "parallel --will-cite -j1 --joblog '" + path + "' 'exit {}' ::: 0 3 0 >/dev/null 2>&1";
  ASSERT_NE(std::system(cmd.c_str()), -1);
  std::string contents = Slurp(path);
  EXPECT_EQ(contents.substr(0, JoblogHeader().size()), JoblogHeader());
  auto h = JoblogHistory::Read(path);
  ASSERT_TRUE(h) << h.error().ToString();
  EXPECT_TRUE(h->Succeeded(1));
  EXPECT_TRUE(h->Succeeded(3));
  EXPECT_THAT(h->FailedCommands(), ElementsAre(Pair(2u, "exit 3")));
}

}  // namespace
}  // namespace forklift::map
