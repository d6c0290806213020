#include "sources/transcode.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace forklift::sources {
namespace {

const iconv_t kNoIconv = reinterpret_cast<iconv_t>(-1);  // NOLINT: iconv's own sentinel

const char* IconvName(Encoding e) {
  switch (e) {
    case Encoding::kLatin1: return "ISO-8859-1";
    case Encoding::kWindows1252: return "WINDOWS-1252";
    case Encoding::kUtf8: break;
  }
  return "UTF-8";
}

}  // namespace

Result<Encoding> ParseEncoding(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  });
  if (lower == "utf-8" || lower == "utf8") return Encoding::kUtf8;
  if (lower == "latin1" || lower == "latin-1" || lower == "iso-8859-1") return Encoding::kLatin1;
  if (lower == "windows-1252" || lower == "cp1252") return Encoding::kWindows1252;
  return InvalidArgumentError(
      fmt::format("--encoding '{}': unknown; expected utf-8, latin1 or windows-1252", name));
}

std::string_view EncodingName(Encoding encoding) {
  switch (encoding) {
    case Encoding::kLatin1: return "latin1";
    case Encoding::kWindows1252: return "windows-1252";
    case Encoding::kUtf8: break;
  }
  return "utf-8";
}

Result<Transcoder> Transcoder::Open(Encoding from) {
  if (from == Encoding::kUtf8) return Transcoder(from, kNoIconv);
  iconv_t cd = ::iconv_open("UTF-8", IconvName(from));
  if (cd == kNoIconv) {
    return InternalError(
        fmt::format("iconv cannot convert {} to UTF-8: {}", IconvName(from), std::strerror(errno)));
  }
  return Transcoder(from, cd);
}

Transcoder::Transcoder(Transcoder&& other) noexcept
    : from_(other.from_), cd_(std::exchange(other.cd_, kNoIconv)) {}

Transcoder& Transcoder::operator=(Transcoder&& other) noexcept {
  if (this != &other) {
    if (cd_ != kNoIconv) ::iconv_close(cd_);
    from_ = other.from_;
    cd_ = std::exchange(other.cd_, kNoIconv);
  }
  return *this;
}

Transcoder::~Transcoder() {
  if (cd_ != kNoIconv) ::iconv_close(cd_);
}

std::string Transcoder::Append(std::string_view text, std::string* out) {
  // ASCII is the same in every supported encoding: most records need no iconv call.
  const bool ascii = std::all_of(text.begin(), text.end(),
                                 [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (cd_ == kNoIconv || ascii) {
    out->append(text);
    return {};
  }
  // Each byte becomes at most 3 bytes of UTF-8 (U+20AC, the euro sign, is the widest).
  const size_t start = out->size();
  out->resize(start + 3 * text.size());
  // iconv's interface is not const-correct; it does not write the input.
  char* in = const_cast<char*>(text.data());  // NOLINT(cppcoreguidelines-pro-type-const-cast)
  size_t in_left = text.size();
  char* to = out->data() + start;
  size_t to_left = out->size() - start;
  ::iconv(cd_, nullptr, nullptr, nullptr, nullptr);  // a fresh state for each text
  const size_t rc = ::iconv(cd_, &in, &in_left, &to, &to_left);
  const int err = errno;
  out->resize(out->size() - to_left);
  if (rc != static_cast<size_t>(-1)) return {};
  const size_t at = text.size() - in_left;
  if (err == EILSEQ || err == EINVAL) {
    return fmt::format("byte 0x{:02x} at offset {} is not defined in {}",
                       static_cast<unsigned char>(text[at]), at, EncodingName(from_));
  }
  return fmt::format("converting {} to UTF-8 failed at offset {}: {}", EncodingName(from_), at,
                     std::strerror(err));
}

}  // namespace forklift::sources
