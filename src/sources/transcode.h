// Source encodings for `forklift load --encoding`, and the conversion of their text to
// UTF-8 with glibc's iconv.
//
// latin1 (ISO-8859-1) and windows-1252 are single-byte encodings whose bytes below 0x80
// are ASCII, so a CSV record in them splits exactly as its UTF-8 form would: the reader
// parses the source's bytes and each record is converted afterwards, keeping the raw
// bytes for checksums and dead letters. windows-1252 leaves 0x81, 0x8D, 0x8F, 0x90 and
// 0x9D undefined: converting one is an error naming it, never a replacement character.
#ifndef FORKLIFT_SOURCES_TRANSCODE_H_
#define FORKLIFT_SOURCES_TRANSCODE_H_

#include <iconv.h>

#include <memory>
#include <string>
#include <string_view>

#include "forklift/result.h"

namespace forklift::sources {

enum class Encoding { kUtf8, kLatin1, kWindows1252 };

// "utf-8" (also utf8), "latin1" (also latin-1, iso-8859-1), "windows-1252" (also cp1252),
// any case. InvalidArgument "--encoding 'X': unknown; expected utf-8, latin1 or
// windows-1252" otherwise. Pure.
Result<Encoding> ParseEncoding(std::string_view name);

// The canonical name: "utf-8", "latin1", "windows-1252". Pure.
std::string_view EncodingName(Encoding encoding);

// Converts text in one encoding to UTF-8.
// Thread safety: none (iconv keeps state per descriptor); one Transcoder per thread.
class Transcoder {
 public:
  // Failure: Internal when iconv has no such conversion (a C library without it).
  static Result<Transcoder> Open(Encoding from);

  Transcoder(Transcoder&&) noexcept;
  Transcoder& operator=(Transcoder&&) noexcept;
  ~Transcoder();

  Encoding from() const { return from_; }

  // Appends `text` as UTF-8 to *out. For UTF-8 sources the bytes are appended as they are
  // (their validity is the caller's check). Returns "" on success, else why, naming the
  // byte and its offset in `text` ("byte 0x81 at offset 4 is not defined in
  // windows-1252"); *out then holds the text converted before that byte.
  std::string Append(std::string_view text, std::string* out);

 private:
  Transcoder(Encoding from, iconv_t cd) : from_(from), cd_(cd) {}

  Encoding from_;
  iconv_t cd_;  // (iconv_t)-1 for UTF-8 and after a move
};

}  // namespace forklift::sources

#endif  // FORKLIFT_SOURCES_TRANSCODE_H_
