#include "sources/checksum.h"

#include <xxhash.h>

#include <string>
#include <utility>

#include <gtest/gtest.h>

namespace forklift::sources {
namespace {

TEST(ChecksumTest, EmptyInputHasTheKnownXxh3Value) {
  Checksum sum;
  EXPECT_EQ(sum.Value(), 0x2d06800538d394c2ULL);
  EXPECT_EQ(sum.Hex(), "2d06800538d394c2");
}

TEST(ChecksumTest, StreamingEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 5000; ++i) data += "row " + std::to_string(i) + ",value\n";
  uint64_t expected = XXH3_64bits(data.data(), data.size());
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{240}, size_t{4096}, data.size()}) {
    Checksum sum;
    for (size_t i = 0; i < data.size(); i += chunk) {
      sum.Add(std::string_view(data).substr(i, chunk));
    }
    EXPECT_EQ(sum.Value(), expected) << "chunk " << chunk;
  }
}

TEST(ChecksumTest, HexIsSixteenLowercaseDigits) {
  Checksum sum;
  sum.Add("a");
  std::string hex = sum.Hex();
  ASSERT_EQ(hex.size(), 16u);
  EXPECT_EQ(hex.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(std::stoull(hex, nullptr, 16), sum.Value());
  EXPECT_EQ(sum.Value(), XXH3_64bits("a", 1));
}

TEST(ChecksumTest, ValueDoesNotEndTheStreamAndResetStartsOver) {
  Checksum sum;
  sum.Add("abc");
  uint64_t abc = sum.Value();
  sum.Add("def");
  EXPECT_EQ(sum.Value(), XXH3_64bits("abcdef", 6));
  EXPECT_NE(sum.Value(), abc);
  sum.Reset();
  EXPECT_EQ(sum.Hex(), "2d06800538d394c2");
  sum.Add("abc");
  EXPECT_EQ(sum.Value(), abc);
}

TEST(ChecksumTest, MovesCarryTheState) {
  Checksum a;
  a.Add("hello");
  Checksum b(std::move(a));
  EXPECT_EQ(b.Value(), XXH3_64bits("hello", 5));
  Checksum c;
  c = std::move(b);
  c.Add(" world");
  EXPECT_EQ(c.Value(), XXH3_64bits("hello world", 11));
}

}  // namespace
}  // namespace forklift::sources
