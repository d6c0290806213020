#include "process/output_buffer.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "support/temp_dir.h"

namespace forklift::process {
namespace {

// Bytes that catch reordering and dropped chunks, NULs included.
std::string Pattern(size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>((i * 31 + i / 4096) % 251);
  return s;
}

std::string ReadFd(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

using test_support::TempDir;

// Entries of `dir` other than . and ..
int Entries(const std::string& dir) {
  int n = 0;
  DIR* d = opendir(dir.c_str());
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

TEST(OutputBufferTest, SmallStaysInMemoryAndIsBinarySafe) {
  OutputBuffer buf;
  std::string bytes("a\0b\nno newline at the end\0", 27);
  ASSERT_TRUE(buf.Append(bytes));
  ASSERT_TRUE(buf.Append(""));
  EXPECT_EQ(buf.size(), bytes.size());
  EXPECT_FALSE(buf.spilled());
  EXPECT_EQ(buf.ReadAll().value(), bytes);
}

TEST(OutputBufferTest, SpillsPastTheLimitAndRamStaysBounded) {
  TempDir dir;
  constexpr size_t kLimit = 64 * 1024;
  OutputBuffer buf(kLimit, dir.path());
  std::string data = Pattern(3 * 1024 * 1024 + 17);
  // Uneven chunk sizes, so appends straddle the limit in odd places.
  size_t chunk = 1000;
  for (size_t off = 0; off < data.size(); off += chunk, chunk = chunk * 7 % 70001 + 1) {
    ASSERT_TRUE(buf.Append(std::string_view(data).substr(off, chunk)));
    ASSERT_LE(buf.memory_used(), kLimit) << "at offset " << off;
  }
  EXPECT_TRUE(buf.spilled());
  EXPECT_EQ(buf.memory_used(), 0u);
  EXPECT_EQ(buf.size(), data.size());
  EXPECT_EQ(buf.ReadAll().value(), data);
  // The file is anonymous: nothing shows in the directory.
  EXPECT_EQ(Entries(dir.path()), 0);

  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::string piped;
  std::thread reader([&] { piped = ReadFd(fds[0]); });
  ASSERT_TRUE(buf.WriteTo(fds[1]));
  close(fds[1]);
  reader.join();
  close(fds[0]);
  EXPECT_EQ(piped, data);

  buf.Clear();
  EXPECT_EQ(buf.size(), 0u);
  EXPECT_FALSE(buf.spilled());
  ASSERT_TRUE(buf.Append("again"));
  EXPECT_EQ(buf.ReadAll().value(), "again");
}

TEST(OutputBufferTest, OneHugeLineSpillsInOneAppend) {
  OutputBuffer buf(1024);
  std::string line(2 * 1024 * 1024, 'x');
  ASSERT_TRUE(buf.Append("head "));
  ASSERT_TRUE(buf.Append(line));
  EXPECT_TRUE(buf.spilled());
  EXPECT_EQ(buf.ReadAll().value(), "head " + line);
}

TEST(OutputBufferTest, ExactlyAtTheLimitStaysInMemory) {
  OutputBuffer buf(10);
  ASSERT_TRUE(buf.Append("0123456789"));
  EXPECT_FALSE(buf.spilled());
  EXPECT_LE(buf.memory_used(), 10u);
  ASSERT_TRUE(buf.Append("a"));
  EXPECT_TRUE(buf.spilled());
  EXPECT_EQ(buf.ReadAll().value(), "0123456789a");
}

TEST(OutputBufferTest, ZeroLimitSpillsAtOnce) {
  OutputBuffer buf(0);
  ASSERT_TRUE(buf.Append("x"));
  EXPECT_TRUE(buf.spilled());
  EXPECT_EQ(buf.ReadAll().value(), "x");
}

TEST(OutputBufferTest, MovesKeepTheContents) {
  OutputBuffer a(4);
  ASSERT_TRUE(a.Append("spilled bytes"));
  OutputBuffer b(std::move(a));
  EXPECT_EQ(b.ReadAll().value(), "spilled bytes");
  OutputBuffer c;
  c = std::move(b);
  EXPECT_EQ(c.ReadAll().value(), "spilled bytes");
  EXPECT_TRUE(c.spilled());
}

TEST(OutputBufferTest, UsesTmpdirAndNamesAMissingDirectory) {
  OutputBuffer buf(0, "/nonexistent/forklift-spill");
  auto s = buf.Append("x");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kInternal);
  EXPECT_NE(s.error().message.find("/nonexistent/forklift-spill"), std::string::npos)
      << s.error().message;
  EXPECT_EQ(buf.size(), 0u);
}

TEST(OutputBufferTest, WriteToAFile) {
  OutputBuffer buf(8);
  std::string data = Pattern(100000);
  ASSERT_TRUE(buf.Append(data));
  FILE* f = tmpfile();
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(buf.WriteTo(fileno(f)));
  ASSERT_EQ(lseek(fileno(f), 0, SEEK_SET), 0);
  EXPECT_EQ(ReadFd(fileno(f)), data);
  fclose(f);
}

}  // namespace
}  // namespace forklift::process
