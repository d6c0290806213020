#include "sources/csv_reader.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <fmt/format.h>

namespace forklift::sources {
namespace {

constexpr size_t kMinBufferSize = 4;  // room for the BOM check

// Where an unquoted stretch ends.
enum class Stop { kDelimiter, kLf, kCrLf, kEnd, kNeedMore };

// The byte for an error message: printable ASCII as is, the rest escaped.
std::string ByteForMessage(char c) {
  switch (c) {
    case '\r': return "\\r";
    case '\t': return "\\t";
    case '\'': return "\\'";
    case '\\': return "\\\\";
    default: break;
  }
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return std::string(1, c);
  return fmt::format("\\x{:02x}", u);
}

// The first byte in [p, end) that may end an unquoted stretch (delimiter, quote, CR, LF),
// or `end`. The hot loop of the whole reader: 16 bytes per step with SSE2 (baseline on
// x86-64), a lookup table for the tail and elsewhere.
inline const char* FindSpecial(const char* p, const char* end, const bool* special, char delimiter,
                               char quote) {
#ifdef __SSE2__
  const __m128i d = _mm_set1_epi8(delimiter), q = _mm_set1_epi8(quote);
  const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, d), _mm_cmpeq_epi8(v, q)),
                               _mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr)));
    int mask = _mm_movemask_epi8(hit);
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  while (p < end && !special[static_cast<unsigned char>(*p)]) ++p;
  return p;
}

// Advances *p over unquoted bytes to the delimiter, the LF or the CR of a CRLF that ends
// it, or to `end`. Quotes and lone CRs are data here; *saw_quote reports a quote.
// kNeedMore when `end` is not the end of the input and the stretch may go on past it.
inline Stop ScanUnquoted(const char*& p, const char* end, bool eof, const bool* special,
                         char delimiter, char quote, bool* saw_quote) {
  for (;;) {
    p = FindSpecial(p, end, special, delimiter, quote);
    if (p == end) return eof ? Stop::kEnd : Stop::kNeedMore;
    char c = *p;
    if (c == delimiter) return Stop::kDelimiter;
    if (c == '\n') return Stop::kLf;
    if (c == '\r') {
      if (p + 1 == end) {
        if (!eof) return Stop::kNeedMore;
        ++p;  // a lone CR at the very end is data
        return Stop::kEnd;
      }
      if (p[1] == '\n') return Stop::kCrLf;
      ++p;
      continue;
    }
    *saw_quote = true;
    ++p;
  }
}

uint64_t CountLf(const char* begin, const char* end) {
  uint64_t n = 0;
  while (begin < end) {
    const void* lf = std::memchr(begin, '\n', static_cast<size_t>(end - begin));
    if (lf == nullptr) break;
    ++n;
    begin = static_cast<const char*>(lf) + 1;
  }
  return n;
}

enum class ParseStatus { kDone, kNeedMore };

// ParseRecord's view of a dialect whose quote and escape are both '"' (IsDefaultQuote).
struct DefaultQuote {
  char delimiter;
  static constexpr char quote = '"';
  static constexpr char escape = '"';
};
// And of any other.
struct AnyQuote {
  char delimiter;
  char quote;
  char escape;
};

bool IsDefaultQuote(const CsvDialect& dialect) {
  return dialect.quote == '"' && dialect.escape == '"';
}

struct Parsed {
  const char* raw_end = nullptr;
  size_t terminator_size = 0;
  uint64_t newlines = 0;  // LFs inside raw (in quoted fields)
};

// Parses the record that starts at `begin` (not a blank line) in [begin, end), where
// `eof` says whether `end` is the end of the input. kNeedMore when the record may go on
// past `end`; then the outputs hold garbage and the caller retries with more bytes.
// Values with "" are unquoted into *scratch, reserved once per record for all the bytes
// that remain so that earlier views into it never move.
// With an escape byte other than the quote, the escape makes the quote or itself that
// follows it literal inside a quoted field and is data before anything else (PostgreSQL's
// CSV ESCAPE); a doubled quote then closes the field.
// `Bytes` is DefaultQuote or AnyQuote: with DefaultQuote the quote and escape are the
// constant '"', so the default dialect's instance is RFC 4180 alone, with no escape branch
// and the quote's SSE2 vector a constant rather than built per field (that cost the default
// dialect 10 % more instructions); AnyQuote reads them at run time.
template <typename Bytes>
ParseStatus ParseRecord(const char* begin, const char* end, bool eof, const bool* special,
                        Bytes bytes, std::vector<CsvField>* fields, std::string* scratch,
                        std::string* error, Parsed* out) {
  const char delimiter = bytes.delimiter;
  const char quote = bytes.quote;
  const char escape = bytes.escape;
  scratch->clear();
  error->clear();
  uint64_t newlines = 0;
  size_t count = 0;  // fields of this record; *fields is resized to it at the end
  const char* p = begin;
  for (;;) {
    // Fields are assigned in place, not pushed from a local: a 16-byte load of a field
    // just written as two 8-byte stores stalls store forwarding, which cost a third of
    // the reader's time.
    if (count == fields->size()) fields->emplace_back();
    CsvField& field = (*fields)[count++];
    Stop stop;
    if (p < end && *p == quote) {
      field.quoted = true;
      const char* content = p + 1;
      const char* q = content;  // next byte not yet copied to scratch
      const char* s = content;  // next byte not yet scanned (> q past a lone escape)
      bool unquoting = false;   // this field's value is being built in *scratch
      size_t scratch_start = 0;
      const char* c = nullptr;  // the next quote at or after s, when c_known
      bool c_known = false;     // (kept across lone escapes: no rescans)
      for (;;) {
        if (!c_known || (c != nullptr && c < s)) {
          c = static_cast<const char*>(std::memchr(s, quote, static_cast<size_t>(end - s)));
          c_known = true;
        }
        if (escape != quote) {
          const char* limit = c == nullptr ? end : c;
          auto* e =
              static_cast<const char*>(std::memchr(s, escape, static_cast<size_t>(limit - s)));
          if (e != nullptr) {
            if (e + 1 == end) {
              if (!eof) return ParseStatus::kNeedMore;
              s = end;  // a last escape is data; the field is unterminated
              continue;
            }
            if (e[1] != quote && e[1] != escape) {  // data, as PostgreSQL reads it
              s = e + 1;
              continue;
            }
            if (!unquoting) {
              if (scratch->empty()) scratch->reserve(static_cast<size_t>(end - content));
              scratch_start = scratch->size();
              unquoting = true;
            }
            scratch->append(q, e);
            scratch->push_back(e[1]);
            q = s = e + 2;
            continue;
          }
        }
        if (c == nullptr) {
          if (!eof) return ParseStatus::kNeedMore;
          newlines += CountLf(content, end);
          if (error->empty()) {
            *error = fmt::format("field {}: unterminated quoted field", count);
          }
          if (unquoting) {
            scratch->append(q, end);
            field.value =
                std::string_view(scratch->data() + scratch_start, scratch->size() - scratch_start);
          } else {
            field.value = std::string_view(content, static_cast<size_t>(end - content));
          }
          fields->resize(count);
          *out = Parsed{end, 0, newlines};
          return ParseStatus::kDone;
        }
        if (escape == quote) {
          if (c + 1 == end && !eof) return ParseStatus::kNeedMore;  // "" or closing?
          if (c + 1 < end && c[1] == quote) {
            if (!unquoting) {
              if (scratch->empty()) scratch->reserve(static_cast<size_t>(end - content));
              scratch_start = scratch->size();
              unquoting = true;
            }
            scratch->append(q, c + 1);
            q = s = c + 2;
            continue;
          }
        } else if (c + 1 == end && !eof) {
          return ParseStatus::kNeedMore;  // a CR or LF after it decides the terminator
        }
        newlines += CountLf(content, c);
        if (unquoting) {
          scratch->append(q, c);
          field.value =
              std::string_view(scratch->data() + scratch_start, scratch->size() - scratch_start);
        } else {
          field.value = std::string_view(content, static_cast<size_t>(c - content));
        }
        p = c + 1;
        break;
      }
      if (p == end) {
        stop = Stop::kEnd;  // eof: a quote at `end` before it would have been kNeedMore
      } else if (*p == delimiter) {
        stop = Stop::kDelimiter;
      } else if (*p == '\n') {
        stop = Stop::kLf;
      } else if (*p == '\r' && p + 1 < end && p[1] == '\n') {
        stop = Stop::kCrLf;
      } else {  // garbage (a CR at `end` mid-input comes back from ScanUnquoted as kNeedMore)
        if (error->empty()) {
          *error = fmt::format("field {}: '{}' after closing quote", count, ByteForMessage(*p));
        }
        bool ignored = false;
        stop = ScanUnquoted(p, end, eof, special, delimiter, quote, &ignored);
        if (stop == Stop::kNeedMore) return ParseStatus::kNeedMore;
      }
    } else {
      field.quoted = false;
      const char* start = p;
      bool saw_quote = false;
      stop = ScanUnquoted(p, end, eof, special, delimiter, quote, &saw_quote);
      if (stop == Stop::kNeedMore) return ParseStatus::kNeedMore;
      field.value = std::string_view(start, static_cast<size_t>(p - start));
      if (saw_quote && error->empty()) {
        *error = fmt::format("field {}: '{}' in unquoted field", count, ByteForMessage(quote));
      }
    }
    if (stop == Stop::kDelimiter) {
      ++p;
      continue;
    }
    fields->resize(count);
    if (stop == Stop::kLf) {
      *out = Parsed{p, 1, newlines};
    } else if (stop == Stop::kCrLf) {
      *out = Parsed{p, 2, newlines};
    } else {  // kEnd (kNeedMore returned above)
      *out = Parsed{end, 0, newlines};
    }
    return ParseStatus::kDone;
  }
}

std::array<bool, 256> SpecialBytes(char delimiter, char quote) {
  std::array<bool, 256> table{};
  table[static_cast<unsigned char>(delimiter)] = true;
  table['\n'] = true;
  table['\r'] = true;
  table[static_cast<unsigned char>(quote)] = true;
  return table;
}

}  // namespace

Status ValidateCsvDialect(const CsvDialect& dialect) {
  auto line_break = [](char c) { return c == '\r' || c == '\n'; };
  const char d = dialect.delimiter;
  if (d == '"' || line_break(d)) {
    return InvalidArgumentError(fmt::format("CSV delimiter cannot be '{}'", ByteForMessage(d)));
  }
  if (line_break(dialect.quote) || dialect.quote == d) {
    return InvalidArgumentError(fmt::format("CSV quote cannot be '{}' (CR, LF or the delimiter)",
                                            ByteForMessage(dialect.quote)));
  }
  if (line_break(dialect.escape) || dialect.escape == d) {
    return InvalidArgumentError(fmt::format("CSV escape cannot be '{}' (CR, LF or the delimiter)",
                                            ByteForMessage(dialect.escape)));
  }
  if (dialect.max_record_bytes == 0) {
    return InvalidArgumentError("CSV max_record_bytes must be positive");
  }
  return OkStatus();
}

CsvReader::CsvReader(std::unique_ptr<ByteSource> source, const CsvDialect& dialect)
    : CsvReader(std::move(source), dialect, kDefaultBufferSize) {}

CsvReader::CsvReader(std::unique_ptr<ByteSource> source, const CsvDialect& dialect,
                     size_t buffer_size)
    : source_(std::move(source)),
      dialect_(dialect),
      special_(SpecialBytes(dialect.delimiter, dialect.quote)),
      capacity_(std::max(buffer_size, kMinBufferSize)) {
  buffer_.reset(new char[capacity_]);
  skip_left_ = dialect_.skip_lines;
  default_quote_ = IsDefaultQuote(dialect_);
  if (auto valid = ValidateCsvDialect(dialect_); !valid) failed_ = valid.error();
}

CsvReader::~CsvReader() = default;

void CsvReader::StartAt(uint64_t offset, uint64_t line) {
  started_ = true;
  skip_left_ = 0;
  buffer_offset_ = offset;
  line_ = line;
  lines_read_ = line > 0 ? line - 1 : 0;
}

tl::unexpected<Error> CsvReader::Fail(ErrorCode code, std::string message) {
  failed_ = Error{code, std::move(message)};
  return tl::unexpected(*failed_);
}

Status CsvReader::Refill() {
  size_t keep = end_ - pos_;
  if (pos_ > 0) {
    std::memmove(buffer_.get(), buffer_.get() + pos_, keep);
    buffer_offset_ += pos_;
    pos_ = 0;
    end_ = keep;
  }
  if (keep == capacity_) {
    // One record fills the buffer: grow, up to what max_record_bytes allows (Next fails
    // before a record needs more; +2 leaves room to see its CRLF).
    size_t limit = dialect_.max_record_bytes > std::numeric_limits<size_t>::max() / 4
                       ? std::numeric_limits<size_t>::max() / 2
                       : dialect_.max_record_bytes + 2;
    size_t grown = std::max(std::min(capacity_ * 2, limit), capacity_ + 1);
    std::unique_ptr<char[]> bigger(new char[grown]);
    std::memcpy(bigger.get(), buffer_.get(), keep);
    buffer_ = std::move(bigger);
    capacity_ = grown;
  }
  // Fill up completely: a record that did not fit is parsed again from its start, and
  // reading in full buffers keeps that re-parse linear in the record's length.
  while (end_ < capacity_ && !eof_) {
    auto n = source_->Read(buffer_.get() + end_, capacity_ - end_);
    if (!n) {
      // ByteSource says "PATH: what"; say where in the CSV it happened.
      std::string what = n.error().message;
      std::string prefix = source_->path() + ": ";
      if (what.compare(0, prefix.size(), prefix) == 0) what.erase(0, prefix.size());
      return Fail(ErrorCode::kDataLoss, fmt::format("{}:{}: {}", source_->path(), line_, what));
    }
    if (*n == 0) eof_ = true;
    end_ += *n;
  }
  return OkStatus();
}

Result<bool> CsvReader::Next(CsvRecord* record) {
  if (failed_) return tl::unexpected(*failed_);
  for (;;) {
    const char* buf = buffer_.get();
    // The start of the input, once: the BOM, then skip_lines. One flag for both keeps the
    // per-record cost what it was before skip_lines.
    if (!started_) [[unlikely]] {
      if (!bom_checked_) {
        if (end_ - pos_ < 3 && !eof_) {
          FORKLIFT_RETURN_IF_ERROR(Refill());
          continue;
        }
        bom_checked_ = true;
        if (end_ - pos_ >= 3 && std::memcmp(buf + pos_, "\xEF\xBB\xBF", 3) == 0) pos_ += 3;
      }
      // skip_lines: whole physical lines, quotes and all, dropped as they come (a skipped
      // line longer than the buffer costs no memory).
      while (skip_left_ > 0 && pos_ < end_) {
        auto* lf = static_cast<const char*>(std::memchr(buf + pos_, '\n', end_ - pos_));
        if (lf == nullptr) {
          pos_ = end_;
          break;
        }
        pos_ = static_cast<size_t>(lf - buf) + 1;
        --skip_left_;
        lines_read_ = line_++;
      }
      if (skip_left_ > 0) {
        if (eof_) return false;  // the file holds no more than the lines to skip
        FORKLIFT_RETURN_IF_ERROR(Refill());
        continue;
      }
      started_ = true;
    }
    while (pos_ < end_) {  // blank lines
      if (buf[pos_] == '\n') {
        pos_ += 1;
      } else if (buf[pos_] == '\r' && pos_ + 1 < end_ && buf[pos_ + 1] == '\n') {
        pos_ += 2;
      } else {
        break;
      }
      lines_read_ = line_++;
    }
    if (pos_ == end_ || (buf[pos_] == '\r' && pos_ + 1 == end_ && !eof_)) {
      if (pos_ == end_ && eof_) return false;
      FORKLIFT_RETURN_IF_ERROR(Refill());
      continue;
    }
    Parsed parsed;
    ParseStatus status;
    if (default_quote_) [[likely]] {
      status = ParseRecord(buf + pos_, buf + end_, eof_, special_.data(),
                           DefaultQuote{dialect_.delimiter}, &record->fields, &scratch_,
                           &record->error, &parsed);
    } else {
      status = ParseRecord(buf + pos_, buf + end_, eof_, special_.data(),
                           AnyQuote{dialect_.delimiter, dialect_.quote, dialect_.escape},
                           &record->fields, &scratch_, &record->error, &parsed);
    }
    size_t raw_size = status == ParseStatus::kDone
                          ? static_cast<size_t>(parsed.raw_end - (buf + pos_))
                          : end_ - pos_ - 1;  // at least this, the last byte may be a CR
    if (raw_size > dialect_.max_record_bytes) {
      return Fail(ErrorCode::kDataLoss,
                  fmt::format("{}:{}: record longer than {} bytes (max_record_bytes); "
                              "unterminated quote?",
                              source_->path(), line_, dialect_.max_record_bytes));
    }
    if (status == ParseStatus::kNeedMore) {
      FORKLIFT_RETURN_IF_ERROR(Refill());
      continue;
    }
    record->raw = std::string_view(buf + pos_, raw_size);
    record->terminator = std::string_view(parsed.raw_end, parsed.terminator_size);
    record->first_line = line_;
    record->last_line = line_ + parsed.newlines;
    record->offset = buffer_offset_ + pos_;
    pos_ += raw_size + parsed.terminator_size;
    lines_read_ = record->last_line;
    line_ = record->last_line + (parsed.terminator_size > 0 ? 1 : 0);
    return true;
  }
}

std::string SplitCsvRecord(std::string_view raw, char delimiter, std::vector<CsvField>* fields,
                           std::string* scratch) {
  return SplitCsvRecord(raw, CsvDialect{.delimiter = delimiter}, fields, scratch);
}

std::string SplitCsvRecord(std::string_view raw, const CsvDialect& dialect,
                           std::vector<CsvField>* fields, std::string* scratch) {
  std::array<bool, 256> special = SpecialBytes(dialect.delimiter, dialect.quote);
  std::string error;
  Parsed parsed;
  const char* end = raw.data() + raw.size();
  if (IsDefaultQuote(dialect)) {
    ParseRecord(raw.data(), end, /*eof=*/true, special.data(), DefaultQuote{dialect.delimiter},
                fields, scratch, &error, &parsed);
  } else {
    ParseRecord(raw.data(), end, /*eof=*/true, special.data(),
                AnyQuote{dialect.delimiter, dialect.quote, dialect.escape}, fields, scratch, &error,
                &parsed);
  }
  size_t consumed = static_cast<size_t>(parsed.raw_end - raw.data());
  if (consumed < raw.size() && error.empty()) {
    error = fmt::format("unquoted line break at byte {}", consumed);
  }
  return error;
}

}  // namespace forklift::sources
