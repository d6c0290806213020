#include "sources/utf8.h"

#include <cstdint>
#include <cstring>

#include <fmt/format.h>

namespace forklift::sources {
namespace {

constexpr uint64_t kHighBits = 0x8080808080808080ULL;

// The length of the valid sequence at s[i], or 0 when it is invalid. s[i] >= 0x80.
size_t SequenceLength(const unsigned char* s, size_t i, size_t n) {
  unsigned char b = s[i];
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (b >= 0xC2 && b <= 0xDF) {
    len = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    len = 3;
    if (b == 0xE0) lo = 0xA0;  // overlong below U+0800
    if (b == 0xED) hi = 0x9F;  // surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4;
    if (b == 0xF0) lo = 0x90;  // overlong below U+10000
    if (b == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;  // continuation byte, C0/C1 (overlong ASCII) or F5..FF
  }
  if (n - i < len) return 0;
  if (s[i + 1] < lo || s[i + 1] > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if ((s[i + k] & 0xC0) != 0x80) return 0;
  }
  return len;
}

}  // namespace

size_t FindInvalidUtf8(std::string_view text) {
  auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // ASCII fast path: most CSV text is ASCII.
    while (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, s + i, 8);
      if ((word & kHighBits) != 0) break;
      i += 8;
    }
    if (i == n) break;
    if (s[i] < 0x80) {
      ++i;
      continue;
    }
    size_t len = SequenceLength(s, i, n);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

bool IsValidUtf8(std::string_view s) { return FindInvalidUtf8(s) == std::string_view::npos; }

std::string Utf8ErrorReason(std::string_view s) {
  size_t at = FindInvalidUtf8(s);
  if (at == std::string_view::npos) return {};
  return fmt::format("invalid UTF-8 at byte {}", at);
}

}  // namespace forklift::sources
