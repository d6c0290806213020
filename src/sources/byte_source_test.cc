#include "sources/byte_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sources/test_files.h"

namespace forklift::sources {
namespace {

using ::forklift::sources::testing::Gzip;
using ::forklift::sources::testing::TempFile;
using ::testing::HasSubstr;

// Everything the source yields, read `chunk` bytes at a time.
Result<std::string> ReadAll(ByteSource& source, size_t chunk = 4096) {
  std::string out;
  std::string buf(chunk, '\0');
  for (;;) {
    FORKLIFT_ASSIGN_OR_RETURN(size_t n, source.Read(buf.data(), buf.size()));
    if (n == 0) return out;
    out.append(buf.data(), n);
  }
}

std::string Sample(size_t size) {
  std::string s;
  for (size_t i = 0; s.size() < size; ++i) s += "row " + std::to_string(i * 7919 % 100003) + "\n";
  s.resize(size);
  return s;
}

TEST(ByteSourceTest, PlainFileIsReadAsIs) {
  std::string data = Sample(300000);
  TempFile file(data);
  auto source = ByteSource::Open(file.path());
  ASSERT_TRUE(source.has_value()) << source.error().ToString();
  EXPECT_FALSE((*source)->compressed());
  EXPECT_EQ((*source)->file_size(), data.size());
  EXPECT_EQ((*source)->path(), file.path());
  auto all = ReadAll(**source, 1000);
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(*all, data);
  EXPECT_EQ((*source)->source_bytes_read(), data.size());
  // The end stays the end.
  char c;
  EXPECT_EQ((*source)->Read(&c, 1).value_or(99), 0u);
}

TEST(ByteSourceTest, TinyAndEmptyPlainFiles) {
  for (std::string data : {std::string(), std::string("x"), std::string("\x1f"),
                           std::string("\x1f"
                                       "a")}) {
    TempFile file(data);
    auto source = ByteSource::Open(file.path());
    ASSERT_TRUE(source.has_value()) << source.error().ToString();
    EXPECT_FALSE((*source)->compressed());
    auto all = ReadAll(**source, 1);
    ASSERT_TRUE(all.has_value());
    EXPECT_EQ(*all, data);
  }
}

TEST(ByteSourceTest, GzipIsDetectedByContentAndInflated) {
  std::string data = Sample(500000);
  std::string gz = Gzip(data);
  TempFile file(gz);  // no .gz suffix: detection is by the magic bytes
  auto source = ByteSource::Open(file.path());
  ASSERT_TRUE(source.has_value()) << source.error().ToString();
  EXPECT_TRUE((*source)->compressed());
  EXPECT_EQ((*source)->file_size(), gz.size());
  std::string first(100, '\0');
  auto n = (*source)->Read(first.data(), first.size());
  ASSERT_TRUE(n.has_value());
  ASSERT_EQ(*n, 100u);
  EXPECT_LE((*source)->source_bytes_read(), gz.size());
  auto rest = ReadAll(**source, 777);
  ASSERT_TRUE(rest.has_value()) << rest.error().ToString();
  EXPECT_EQ(first + *rest, data);
  EXPECT_EQ((*source)->source_bytes_read(), gz.size());
}

TEST(ByteSourceTest, ConcatenatedGzipMembersReadAsOneStream) {
  std::string a = Sample(70000), b = "second member\n", c = Sample(1000);
  TempFile file(Gzip(a) + Gzip(b, 1) + Gzip(c, 9));
  auto source = ByteSource::Open(file.path());
  ASSERT_TRUE(source.has_value());
  auto all = ReadAll(**source, 513);
  ASSERT_TRUE(all.has_value()) << all.error().ToString();
  EXPECT_EQ(*all, a + b + c);
}

TEST(ByteSourceTest, GzipMadeByGzipToolIsRead) {
  if (::access("/bin/gzip", X_OK) != 0) GTEST_SKIP() << "no /bin/gzip";
  std::string data = Sample(200000);
  TempFile plain(data);
  std::string gz_path = plain.path() + ".gz";
  ASSERT_EQ(std::system(("/bin/gzip -c " + plain.path() + " > " + gz_path + " && /bin/gzip -c " +
                         plain.path() + " >> " + gz_path)
                            .c_str()),
            0);
  auto source = ByteSource::Open(gz_path);
  ASSERT_TRUE(source.has_value());
  EXPECT_TRUE((*source)->compressed());
  auto all = ReadAll(**source);
  ::unlink(gz_path.c_str());
  ASSERT_TRUE(all.has_value()) << all.error().ToString();
  EXPECT_EQ(*all, data + data);
}

TEST(ByteSourceTest, CorruptGzipIsDataLossNamingThePath) {
  std::string gz = Gzip(Sample(100000));
  for (size_t i = 20; i < 60; ++i) gz[i] = static_cast<char>(gz[i] ^ 0x5a);
  TempFile file(gz);
  auto source = ByteSource::Open(file.path());
  ASSERT_TRUE(source.has_value());
  auto all = ReadAll(**source);
  ASSERT_FALSE(all.has_value());
  EXPECT_EQ(all.error().code, ErrorCode::kDataLoss);
  EXPECT_THAT(all.error().message, HasSubstr(file.path()));
  EXPECT_THAT(all.error().message, HasSubstr("corrupt gzip"));
  // Sticky.
  char c;
  EXPECT_FALSE((*source)->Read(&c, 1).has_value());
}

TEST(ByteSourceTest, TruncatedGzipIsDataLoss) {
  std::string gz = Gzip(Sample(100000));
  TempFile file(gz.substr(0, gz.size() / 2));
  auto source = ByteSource::Open(file.path());
  ASSERT_TRUE(source.has_value());
  auto all = ReadAll(**source);
  ASSERT_FALSE(all.has_value());
  EXPECT_EQ(all.error().code, ErrorCode::kDataLoss);
  EXPECT_THAT(all.error().message, HasSubstr("truncated"));
  EXPECT_THAT(all.error().message, HasSubstr(file.path()));
}

TEST(ByteSourceTest, GzipMissingOnlyItsTrailerIsDataLoss) {
  std::string gz = Gzip("a,b\n");
  TempFile file(gz.substr(0, gz.size() - 4));  // no ISIZE
  auto source = ByteSource::Open(file.path());
  ASSERT_TRUE(source.has_value());
  auto all = ReadAll(**source);
  ASSERT_FALSE(all.has_value());
  EXPECT_EQ(all.error().code, ErrorCode::kDataLoss);
}

TEST(ByteSourceTest, GarbageAfterAGzipMemberIsDataLoss) {
  TempFile file(Gzip("a,b\n") + "not gzip");
  auto source = ByteSource::Open(file.path());
  ASSERT_TRUE(source.has_value());
  auto all = ReadAll(**source);
  ASSERT_FALSE(all.has_value());
  EXPECT_EQ(all.error().code, ErrorCode::kDataLoss);
}

TEST(ByteSourceTest, MissingFileIsNotFoundNamingThePath) {
  auto source = ByteSource::Open("/tmp/forklift-no-such-dir/none.csv");
  ASSERT_FALSE(source.has_value());
  EXPECT_EQ(source.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(source.error().message, HasSubstr("/tmp/forklift-no-such-dir/none.csv"));
  EXPECT_THAT(source.error().message, HasSubstr("No such file"));
}

TEST(ByteSourceTest, DirectoryIsInvalidArgument) {
  auto source = ByteSource::Open("/tmp");
  ASSERT_FALSE(source.has_value());
  EXPECT_EQ(source.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(source.error().message, HasSubstr("'/tmp'"));
  EXPECT_THAT(source.error().message, HasSubstr("directory"));
}

TEST(ByteSourceTest, UnreadableFileIsInvalidArgument) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads any file";
  TempFile file("secret\n");
  ASSERT_EQ(::chmod(file.path().c_str(), 0), 0);
  auto source = ByteSource::Open(file.path());
  ASSERT_FALSE(source.has_value());
  EXPECT_EQ(source.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(source.error().message, HasSubstr(file.path()));
}

// Runs `body` with fd 0 reading `path`, then puts the real stdin back.
template <class F>
void WithStdinFrom(const std::string& path, F body) {
  int saved = ::dup(STDIN_FILENO);
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ::dup2(fd, STDIN_FILENO);
  ::close(fd);
  body();
  ::dup2(saved, STDIN_FILENO);
  ::close(saved);
}

TEST(ByteSourceTest, DashIsStdinPlainOrGzip) {
  std::string data = Sample(50000);
  TempFile plain(data);
  TempFile gz(Gzip(data));
  for (const TempFile* file : {&plain, &gz}) {
    WithStdinFrom(file->path(), [&] {
      auto source = ByteSource::Open("-");
      ASSERT_TRUE(source.has_value()) << source.error().ToString();
      EXPECT_EQ((*source)->path(), "-");
      EXPECT_EQ((*source)->compressed(), file == &gz);
      auto all = ReadAll(**source);
      ASSERT_TRUE(all.has_value());
      EXPECT_EQ(*all, data);
    });
    // The source's own descriptor was a duplicate: fd 0 is still open.
    EXPECT_NE(::fcntl(STDIN_FILENO, F_GETFD), -1);
  }
}

TEST(ByteSourceTest, PipeIsReadWithUnknownSize) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  // The magic bytes arrive in two writes: detection must wait for both.
  std::string gz = Gzip("x,y\n");
  ASSERT_EQ(::write(fds[1], gz.data(), 1), 1);
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ssize_t ignored = ::write(fds[1], gz.data() + 1, gz.size() - 1);
    (void)ignored;
    ::close(fds[1]);
  });
  int saved = ::dup(STDIN_FILENO);
  ::dup2(fds[0], STDIN_FILENO);
  ::close(fds[0]);
  auto source = ByteSource::Open("-");
  ::dup2(saved, STDIN_FILENO);
  ::close(saved);
  ASSERT_TRUE(source.has_value());
  EXPECT_EQ((*source)->file_size(), 0u);
  EXPECT_EQ((*source)->source_bytes_read(), 0u);
  EXPECT_TRUE((*source)->compressed());
  auto all = ReadAll(**source);
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(*all, "x,y\n");
  writer.join();
}

// A pull source yields the producer's bytes as they come, whatever the reader's size,
// ends at the producer's 0 (never calling it again), and keeps its error's code.
TEST(ByteSourceTest, PullSourceYieldsTheProducersBytesAndEndsOnce) {
  const std::string text = "id,name\n1,\"a,b\"\n2,c\n";
  size_t pos = 0;
  int calls_after_end = 0;
  auto source = ByteSource::FromPull("query", [&](char* buf, size_t n) -> Result<size_t> {
    if (pos == text.size()) {
      ++calls_after_end;
      return size_t{0};
    }
    const size_t k = std::min<size_t>({n, 3, text.size() - pos});  // pieces of 3 bytes
    std::copy_n(text.data() + pos, k, buf);
    pos += k;
    return k;
  });
  EXPECT_EQ(source->path(), "query");
  EXPECT_EQ(source->file_size(), 0u);
  EXPECT_FALSE(source->compressed());
  auto all = ReadAll(*source, 5);
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(*all, text);
  EXPECT_EQ(source->source_bytes_read(), text.size());
  std::string buf(4, ' ');
  auto again = source->Read(buf.data(), buf.size());
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0u);
  EXPECT_EQ(calls_after_end, 1);
}

TEST(ByteSourceTest, PullSourceErrorKeepsItsCodeAndSticks) {
  int calls = 0;
  auto source = ByteSource::FromPull("q", [&](char*, size_t) -> Result<size_t> {
    ++calls;
    return FailedPreconditionError("SQLSTATE 42P01: relation \"nope\" does not exist");
  });
  std::string buf(8, ' ');
  auto r = source->Read(buf.data(), buf.size());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_THAT(r.error().message, HasSubstr("q: SQLSTATE 42P01"));
  auto r2 = source->Read(buf.data(), buf.size());
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().message, r.error().message);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace forklift::sources
