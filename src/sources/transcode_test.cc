#include "sources/transcode.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "sources/utf8.h"

namespace forklift::sources {
namespace {

using ::testing::HasSubstr;

TEST(TranscodeTest, ParseEncodingNamesAndAliases) {
  EXPECT_EQ(*ParseEncoding("utf-8"), Encoding::kUtf8);
  EXPECT_EQ(*ParseEncoding("UTF8"), Encoding::kUtf8);
  EXPECT_EQ(*ParseEncoding("latin1"), Encoding::kLatin1);
  EXPECT_EQ(*ParseEncoding("ISO-8859-1"), Encoding::kLatin1);
  EXPECT_EQ(*ParseEncoding("windows-1252"), Encoding::kWindows1252);
  EXPECT_EQ(*ParseEncoding("cp1252"), Encoding::kWindows1252);
  auto bad = ParseEncoding("ebcdic");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().message,
            "--encoding 'ebcdic': unknown; expected utf-8, latin1 or windows-1252");
  EXPECT_FALSE(ParseEncoding(""));
  EXPECT_EQ(EncodingName(Encoding::kWindows1252), "windows-1252");
}

TEST(TranscodeTest, Latin1EveryByteBecomesItsCodePoint) {
  auto t = Transcoder::Open(Encoding::kLatin1);
  ASSERT_TRUE(t) << t.error().message;
  std::string all;
  for (int b = 1; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string out;
  EXPECT_EQ(t->Append(all, &out), "");
  EXPECT_TRUE(IsValidUtf8(out));
  EXPECT_EQ(out.size(), 127u + 2 * 128u);
  out.clear();
  EXPECT_EQ(t->Append("caf\xe9,\xa0x", &out), "");
  EXPECT_EQ(out, "caf\xc3\xa9,\xc2\xa0x");
}

TEST(TranscodeTest, Windows1252EuroAndUndefinedBytes) {
  auto t = Transcoder::Open(Encoding::kWindows1252);
  ASSERT_TRUE(t) << t.error().message;
  std::string out = "kept:";
  EXPECT_EQ(t->Append("\x80 caf\xe9 \x93q\x94", &out), "");
  EXPECT_EQ(out, "kept:\xe2\x82\xac caf\xc3\xa9 \xe2\x80\x9cq\xe2\x80\x9d");
  for (char b : {'\x81', '\x8d', '\x8f', '\x90', '\x9d'}) {
    std::string text = std::string("ab\x80") + b + "z";
    std::string o;
    std::string why = t->Append(text, &o);
    EXPECT_THAT(why, HasSubstr("at offset 3 is not defined in windows-1252")) << why;
    EXPECT_THAT(why, HasSubstr(fmt::format("0x{:02x}", static_cast<unsigned char>(b))));
  }
  // The descriptor is reset per text: a failure does not leak into the next conversion.
  std::string again;
  EXPECT_EQ(t->Append("\xe9", &again), "");
  EXPECT_EQ(again, "\xc3\xa9");
}

TEST(TranscodeTest, Utf8AndAsciiPassThrough) {
  auto u = Transcoder::Open(Encoding::kUtf8);
  ASSERT_TRUE(u);
  std::string out;
  EXPECT_EQ(u->Append("\xff not checked here", &out), "");
  EXPECT_EQ(out, "\xff not checked here");
  auto t = Transcoder::Open(Encoding::kWindows1252);
  ASSERT_TRUE(t);
  std::string ascii;
  EXPECT_EQ(t->Append("plain,ascii\r\n", &ascii), "");
  EXPECT_EQ(ascii, "plain,ascii\r\n");
  Transcoder moved = std::move(*t);
  std::string m;
  EXPECT_EQ(moved.Append("\x80", &m), "");
  EXPECT_EQ(m, "\xe2\x82\xac");
}

}  // namespace
}  // namespace forklift::sources
