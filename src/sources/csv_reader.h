// CsvReader: a streaming RFC 4180 reader for `forklift load`.
//
// `forklift load` hands each record's raw bytes straight to PostgreSQL's
// `COPY ... (FORMAT csv)`, so besides the parsed fields a record carries its exact bytes,
// its line numbers and its byte offset (for dead letters and resume).
//
// Format (RFC 4180, plus what real files need):
//  - Fields are separated by the delimiter. A field that starts with '"' is quoted: it may
//    hold the delimiter, CR, LF and '""' (one quote); its value has the quotes removed.
//  - A record ends at LF or CRLF outside quotes. A lone CR outside quotes is data.
//  - Empty lines (nothing before the terminator) are skipped but count as lines.
//  - A UTF-8 byte order mark at the very start of the input is skipped.
//  - Malformed records do not stop the reader: CsvRecord::error says why, raw is still the
//    whole record, and the next Next() goes on with the record after it. Malformations:
//    a byte other than the delimiter or a terminator right after a closing quote
//    (`a,"b"c` -> "field 2: 'c' after closing quote"), a '"' inside an unquoted field
//    (`ab"c` -> "field 1: '\"' in unquoted field"), and a quoted field still open at the
//    end of the input ("field 3: unterminated quoted field"). After a malformation the
//    rest of that field is read as unquoted data in which quotes are plain bytes, so the
//    record ends at the next line break.
//  - Lines are physical: counted by LF. A quoted field holding LFs spans several lines.
//
// Memory: one buffer (1 MiB by default), moved and grown only while a single record does
// not fit, up to max_record_bytes; O(buffer + longest record) whatever the input's size.
// A record over max_record_bytes is a fatal DataLoss error: it is almost always an
// unterminated quote swallowing the rest of the file.
//
// Thread safety: none; use a CsvReader from one thread at a time. SplitCsvRecord is
// thread-safe (it touches only its arguments).
#ifndef FORKLIFT_SOURCES_CSV_READER_H_
#define FORKLIFT_SOURCES_CSV_READER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/result.h"
#include "sources/byte_source.h"

namespace forklift::sources {

struct CsvDialect {
  char delimiter = ',';                // any single byte except '"', '\r', '\n'. Default ','.
  size_t max_record_bytes = 64 << 20;  // longer is fatal DataLoss. Default 64 MiB.
  // The byte that encloses a field (in the format notes above, '"' is this byte); not CR,
  // LF or the delimiter. Default '"'.
  char quote = '"';
  // Inside a quoted field, makes a following quote or escape byte literal (PostgreSQL's
  // CSV ESCAPE); before any other byte it is data. Equal to quote (the default) it is RFC
  // 4180's doubling. Not CR, LF or the delimiter.
  char escape = '"';
  // Physical lines (counted by LF, quotes not looked at) dropped at the start of the input,
  // after the BOM: not records, but counted in lines (first_line stays the file's).
  uint64_t skip_lines = 0;
};

// InvalidArgument naming the problem for a delimiter of '"', '\r' or '\n', a quote or
// escape that is CR, LF or the delimiter, or a max_record_bytes of 0; OK otherwise.
Status ValidateCsvDialect(const CsvDialect& dialect);

struct CsvField {
  std::string_view value;  // unquoted value ("" collapsed); valid until the next Next()
  bool quoted = false;     // enclosed in quotes (PostgreSQL's CSV NULL rule needs this)
};

struct CsvRecord {
  // The record's bytes exactly as in the (decompressed) source, quotes included, without
  // its line terminator.
  std::string_view raw;
  // "\n", "\r\n", or "" for a last record with no final newline; lies right after raw in
  // memory, so raw.data() .. terminator.data() + terminator.size() is the full line(s).
  std::string_view terminator;
  std::vector<CsvField> fields;
  uint64_t first_line = 0;  // 1-based physical line where the record starts
  uint64_t last_line = 0;   // where it ends (> first_line when a quoted field holds LFs)
  uint64_t offset = 0;      // byte offset of raw in the decompressed stream
  std::string error;        // non-empty when malformed: fields may then be partial
};

class CsvReader {
 public:
  static constexpr size_t kDefaultBufferSize = size_t{1} << 20;

  CsvReader(std::unique_ptr<ByteSource> source, const CsvDialect& dialect);
  // `buffer_size` is the initial buffer (at least 4 bytes are used); tests pass tiny ones
  // so that records straddle the buffer's end at every position.
  CsvReader(std::unique_ptr<ByteSource> source, const CsvDialect& dialect, size_t buffer_size);
  ~CsvReader();
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  // Reads the next record into *record; reuse one record object between calls so that
  // the steady state allocates nothing. The views in *record stay valid until the next
  // call.
  // Success: true with *record filled (a malformed record has a non-empty error), or
  // false at the end of the input (and on later calls).
  // Failure: DataLoss "PATH:LINE: ..." for a read or gzip error or a record longer than
  // max_record_bytes; InvalidArgument for an invalid dialect. Failures are final: later
  // calls return the same error.
  Result<bool> Next(CsvRecord* record);

  const ByteSource& source() const { return *source_; }

  // ---- Starting mid-stream (a load through the queue reads one chunk's byte span) ----
  // Declares that the source's first byte is at stream offset `offset`, at the start of
  // a record on physical line `line` (>= 1): no BOM check, no skip_lines; records then
  // carry the whole stream's offsets and lines. Call before the first Next().
  void StartAt(uint64_t offset, uint64_t line);

  // Physical lines consumed so far, blank lines included.
  uint64_t lines_read() const { return lines_read_; }

 private:
  // Moves the pending bytes to the front, grows the buffer when they fill it, and reads
  // until the buffer is full or the input ends.
  Status Refill();
  tl::unexpected<Error> Fail(ErrorCode code, std::string message);

  std::unique_ptr<ByteSource> source_;
  CsvDialect dialect_;
  std::array<bool, 256> special_{};  // bytes that end an unquoted stretch
  std::unique_ptr<char[]> buffer_;
  size_t capacity_ = 0;
  size_t pos_ = 0;              // start of the next record in buffer_
  size_t end_ = 0;              // end of the valid bytes in buffer_
  uint64_t buffer_offset_ = 0;  // stream offset of buffer_[0]
  bool eof_ = false;
  bool bom_checked_ = false;
  bool started_ = false;       // the BOM check and skip_lines are done
  bool default_quote_ = true;  // quote and escape are '"': ParseRecord's fast instance
  uint64_t skip_left_ = 0;     // of dialect.skip_lines
  uint64_t line_ = 1;          // line where the next record starts
  uint64_t lines_read_ = 0;
  std::string scratch_;  // unquoted values of fields that held ""
  std::optional<Error> failed_;
};

// Splits one raw record (as CsvRecord::raw, without its terminator) into *fields with the
// reader's rules, unquoting into *scratch; fields point into raw or *scratch. Returns the
// malformation ("" when well-formed); a line break outside quotes inside raw is one
// ("unquoted line break at byte N"), with the fields before it kept. Thread-safe. Used to
// re-split dead-lettered rows and by the SQLite sink.
std::string SplitCsvRecord(std::string_view raw, char delimiter, std::vector<CsvField>* fields,
                           std::string* scratch);
// The same with a dialect's delimiter, quote and escape (skip_lines and max_record_bytes
// are not used).
std::string SplitCsvRecord(std::string_view raw, const CsvDialect& dialect,
                           std::vector<CsvField>* fields, std::string* scratch);

}  // namespace forklift::sources

#endif  // FORKLIFT_SOURCES_CSV_READER_H_
