// UTF-8 validation for text columns: PostgreSQL rejects a whole COPY batch for one invalid
// byte sequence, so `forklift load` checks rows first and dead-letters the bad ones.
//
// Valid means well-formed per Unicode's table 3-7: no overlong forms, no surrogates
// (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence, no stray continuation
// byte. NUL bytes are valid UTF-8 (the caller decides whether a sink accepts them).
//
// Thread safety: pure functions, safe from any thread.
#ifndef FORKLIFT_SOURCES_UTF8_H_
#define FORKLIFT_SOURCES_UTF8_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace forklift::sources {

// Whether `s` is entirely valid UTF-8. Checks 8 ASCII bytes at a time.
bool IsValidUtf8(std::string_view s);

// The 0-based offset of the first byte of the first invalid sequence, or
// std::string_view::npos when `s` is valid.
size_t FindInvalidUtf8(std::string_view s);

// "invalid UTF-8 at byte N" (N as FindInvalidUtf8 gives it), or "" when `s` is valid.
std::string Utf8ErrorReason(std::string_view s);

}  // namespace forklift::sources

#endif  // FORKLIFT_SOURCES_UTF8_H_
