#include "sources/utf8.h"

#include <string>

#include <gtest/gtest.h>

namespace forklift::sources {
namespace {

TEST(Utf8Test, AcceptsWellFormedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii, longer than eight bytes"));
  EXPECT_TRUE(IsValidUtf8(std::string("nul\0inside", 10)));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9"));       // U+00E9
  EXPECT_TRUE(IsValidUtf8("\xC2\x80"));          // U+0080, smallest 2-byte
  EXPECT_TRUE(IsValidUtf8("\xE0\xA0\x80"));      // U+0800, smallest 3-byte
  EXPECT_TRUE(IsValidUtf8("\xED\x9F\xBF"));      // U+D7FF, below surrogates
  EXPECT_TRUE(IsValidUtf8("\xEE\x80\x80"));      // U+E000, above surrogates
  EXPECT_TRUE(IsValidUtf8("\xEF\xBB\xBF"));      // BOM
  EXPECT_TRUE(IsValidUtf8("\xF0\x90\x80\x80"));  // U+10000
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF
  EXPECT_TRUE(
      IsValidUtf8("12345678\xE2\x82\xAC"
                  "abcdefghij"));  // after the fast path
}

TEST(Utf8Test, RejectsMalformedText) {
  EXPECT_FALSE(IsValidUtf8("\x80"));              // stray continuation
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xC1\xBF"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xE0\x9F\xBF"));      // overlong 3-byte
  EXPECT_FALSE(IsValidUtf8("\xF0\x8F\xBF\xBF"));  // overlong 4-byte
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // U+D800 surrogate
  EXPECT_FALSE(IsValidUtf8("\xED\xBF\xBF"));      // U+DFFF surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(IsValidUtf8("\xF5\x80\x80\x80"));  // F5 never valid
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_FALSE(IsValidUtf8("ab\xC3"));            // truncated at the end
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));          // truncated 3-byte
  EXPECT_FALSE(IsValidUtf8("\xF0\x90\x80"));      // truncated 4-byte
  EXPECT_FALSE(IsValidUtf8("\xE2\x28\xA1"));      // bad second byte
  EXPECT_FALSE(IsValidUtf8("\xE2\x82\x28"));      // bad third byte
  EXPECT_FALSE(IsValidUtf8("\xF0\x90\x28\x80"));  // bad third of four
}

TEST(Utf8Test, ReasonNamesTheOffsetOfTheBadSequence) {
  EXPECT_EQ(Utf8ErrorReason("all good \xC3\xA9"), "");
  EXPECT_EQ(Utf8ErrorReason("0123456789abcdef\xC3\xA9\xFFxyz"), "invalid UTF-8 at byte 18");
  EXPECT_EQ(FindInvalidUtf8("\xFF"), 0u);
  EXPECT_EQ(FindInvalidUtf8("abc\xE2\x82"), 3u);  // a truncated sequence at its start
  EXPECT_EQ(FindInvalidUtf8("abc"), std::string_view::npos);
}

TEST(Utf8Test, AgreesWithACodePointDecoderOnEveryTwoAndThreeByteSequence) {
  // Exhaustive over lead bytes and second bytes, with a valid third byte: the validator
  // must accept exactly the encodings of U+0080..U+FFFF minus surrogates.
  for (int b0 = 0x80; b0 <= 0xFF; ++b0) {
    for (int b1 = 0; b1 <= 0xFF; ++b1) {
      std::string two{static_cast<char>(b0), static_cast<char>(b1)};
      bool two_ok = b0 >= 0xC2 && b0 <= 0xDF && (b1 & 0xC0) == 0x80;
      EXPECT_EQ(IsValidUtf8(two), two_ok) << std::hex << b0 << " " << b1;
      std::string three{static_cast<char>(b0), static_cast<char>(b1), '\x80'};
      bool three_ok = false;
      if (b0 >= 0xE0 && b0 <= 0xEF && (b1 & 0xC0) == 0x80) {
        int cp = ((b0 & 0x0F) << 12) | ((b1 & 0x3F) << 6);
        three_ok = cp >= 0x800 && !(cp >= 0xD800 && cp <= 0xDFFF);
      }
      if (b0 >= 0xC2 && b0 <= 0xDF && (b1 & 0xC0) == 0x80) three_ok = false;  // 2 + stray
      EXPECT_EQ(IsValidUtf8(three), three_ok) << std::hex << b0 << " " << b1;
    }
  }
}

}  // namespace
}  // namespace forklift::sources
