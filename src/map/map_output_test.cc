#include "map/map_output.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace forklift::map {
namespace {

// Reads everything written to the write ends of two pipes.
class Capture {
 public:
  Capture() {
    EXPECT_EQ(pipe(out_), 0);
    EXPECT_EQ(pipe(err_), 0);
  }
  ~Capture() {
    for (int fd : {out_[0], out_[1], err_[0], err_[1]}) {
      if (fd >= 0) close(fd);
    }
  }
  OutputWriter Writer() { return OutputWriter(out_[1], err_[1]); }
  std::string Out() { return Drain(out_); }
  // What stdout holds right now, without waiting for the writer to finish.
  std::string OutSoFar() {
    fcntl(out_[0], F_SETFL, O_NONBLOCK);
    std::string s;
    char buf[256];
    ssize_t n;
    while ((n = read(out_[0], buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
    fcntl(out_[0], F_SETFL, 0);
    return s;
  }
  std::string Err() { return Drain(err_); }

 private:
  static std::string Drain(int (&p)[2]) {
    close(p[1]);
    p[1] = -1;
    std::string s;
    char buf[256];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
    return s;
  }
  int out_[2];
  int err_[2];
};

TEST(JobOutputTest, GroupedWithoutTagLetsTheSubprocessCapture) {
  Capture c;
  OutputWriter writer = c.Writer();
  JobOutput out(OutputGrouping::kGroup, "", &writer, 1024);
  EXPECT_EQ(out.SubprocessMode(), process::OutputMode::kCapture);
  process::Completion done;
  ASSERT_TRUE(done.stdout_output.Append("a\nb"));
  ASSERT_TRUE(done.stderr_output.Append("warn\n"));
  ASSERT_TRUE(out.Finish(&done));
  EXPECT_EQ(c.Out(), "a\nb");
  EXPECT_EQ(c.Err(), "warn\n");
}

TEST(JobOutputTest, GroupedWithTagPrefixesEveryLineAcrossChunks) {
  Capture c;
  OutputWriter writer = c.Writer();
  JobOutput out(OutputGrouping::kGroup, "job1", &writer, 1024);
  EXPECT_EQ(out.SubprocessMode(), process::OutputMode::kCallback);
  ASSERT_TRUE(out.OnChunk(process::Stream::kStdout, "first li"));
  ASSERT_TRUE(out.OnChunk(process::Stream::kStdout, "ne\nsecond\nlast"));
  ASSERT_TRUE(out.OnChunk(process::Stream::kStderr, "oops\n"));
  ASSERT_TRUE(out.Finish(nullptr));
  EXPECT_EQ(c.Out(), "job1\tfirst line\njob1\tsecond\njob1\tlast");
  EXPECT_EQ(c.Err(), "job1\toops\n");
}

TEST(JobOutputTest, LineBufferedWritesWholeLinesAsTheyComplete) {
  Capture c;
  OutputWriter writer = c.Writer();
  JobOutput out(OutputGrouping::kLineBuffer, "", &writer, 1024);
  ASSERT_TRUE(out.OnChunk(process::Stream::kStdout, "one\ntw"));
  EXPECT_EQ(c.OutSoFar(), "one\n") << "a whole line goes out at once";
  ASSERT_TRUE(out.OnChunk(process::Stream::kStdout, "o\nthree"));
  EXPECT_EQ(c.OutSoFar(), "two\n");
  // Only the unterminated "three" is still held; Finish writes it.
  ASSERT_TRUE(out.Finish(nullptr));
  EXPECT_EQ(c.Out(), "three");
}

TEST(JobOutputTest, UngroupedIsInherited) {
  Capture c;
  OutputWriter writer = c.Writer();
  JobOutput out(OutputGrouping::kUngroup, "", &writer, 1024);
  EXPECT_EQ(out.SubprocessMode(), process::OutputMode::kInherit);
  ASSERT_TRUE(out.Finish(nullptr));
  EXPECT_EQ(c.Out(), "");
}

}  // namespace
}  // namespace forklift::map
