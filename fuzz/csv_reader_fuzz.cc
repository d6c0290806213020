// CsvReader and SplitCsvRecord over arbitrary bytes. Properties:
//  - a reader with a tiny buffer (records straddle its end at every position) reads the
//    same records (fields, raw bytes, terminators, lines, offsets, errors) as one whose
//    buffer holds the whole input, and both end cleanly or both fail (after a fatal error
//    -- corrupt gzip -- the records before it agree, however many each had read);
//  - for plain (not gzip) input, each record's raw bytes and terminator are the input's
//    bytes at its offset, records come in order without overlap, and only blank lines
//    lie between them;
//  - re-splitting a well-formed record with SplitCsvRecord (what dead letters and the
//    SQLite sink do) gives the reader's fields.
// Input: byte 0 picks the delimiter, byte 1 the small buffer's size; the rest is the file.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "sources/byte_source.h"
#include "sources/csv_reader.h"

namespace {

namespace src = forklift::sources;

struct Field {
  std::string value;
  bool quoted;
  bool operator==(const Field&) const = default;
};

struct Rec {
  std::string raw, terminator, error;
  std::vector<Field> fields;
  uint64_t first_line, last_line, offset;
  bool operator==(const Rec&) const = default;
};

struct Read {
  std::vector<Rec> records;
  std::string final_error;  // "" when the input ended cleanly
  bool compressed = false;
};

Read ReadAll(std::string_view bytes, char delimiter, size_t buffer_size) {
  Read out;
  forklift::fuzz::MemFile file(bytes);
  auto source = src::ByteSource::Open(file.path());
  if (!source) {
    out.final_error = source.error().message;
    return out;
  }
  out.compressed = (*source)->compressed();
  src::CsvDialect dialect{.delimiter = delimiter, .max_record_bytes = 1 << 20};
  src::CsvReader reader(std::move(*source), dialect, buffer_size);
  src::CsvRecord r;
  while (true) {
    auto more = reader.Next(&r);
    if (!more) {
      out.final_error = more.error().message;
      // Failures are final.
      auto again = reader.Next(&r);
      FUZZ_CHECK(!again && again.error().message == out.final_error);
      break;
    }
    if (!*more) break;
    // terminator lies right after raw.
    FUZZ_CHECK(r.terminator.empty() || r.terminator.data() == r.raw.data() + r.raw.size());
    Rec rec{std::string(r.raw),
            std::string(r.terminator),
            r.error,
            {},
            r.first_line,
            r.last_line,
            r.offset};
    for (const auto& f : r.fields) rec.fields.push_back({std::string(f.value), f.quoted});
    out.records.push_back(std::move(rec));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  forklift::fuzz::Input in(data, size);
  static const char kDelims[] = {',', ';', '\t', '|', ' ', 'a', '\0', '\x80'};
  char delimiter = kDelims[in.Byte() % sizeof kDelims];
  size_t small = 4 + in.Byte() % 29;
  std::string_view bytes = in.Rest();

  Read big = ReadAll(bytes, delimiter, bytes.size() + 16);
  Read tiny = ReadAll(bytes, delimiter, small);
  FUZZ_CHECK(big.final_error.empty() == tiny.final_error.empty());
  if (big.final_error.empty()) {
    FUZZ_CHECK(big.records == tiny.records);
  } else {
    // A fatal error (a corrupt gzip stream, an over-long record) is met after however
    // many records the buffer held before it: the records before it agree.
    const auto& shorter = big.records.size() < tiny.records.size() ? big.records : tiny.records;
    const auto& longer = big.records.size() < tiny.records.size() ? tiny.records : big.records;
    FUZZ_CHECK(std::equal(shorter.begin(), shorter.end(), longer.begin()));
  }

  uint64_t next_offset = 0;
  uint64_t next_line = 1;
  if (!big.compressed && bytes.substr(0, 3) == "\xEF\xBB\xBF") next_offset = 3;
  for (const Rec& r : big.records) {
    FUZZ_CHECK(r.offset >= next_offset);
    FUZZ_CHECK(r.first_line >= next_line && r.last_line >= r.first_line);
    FUZZ_CHECK(r.terminator.empty() || r.terminator == "\n" || r.terminator == "\r\n");
    FUZZ_CHECK(!r.fields.empty() || !r.error.empty());
    if (!big.compressed) {
      // What lies between two records is blank lines only.
      std::string_view gap = bytes.substr(next_offset, r.offset - next_offset);
      for (size_t i = 0; i < gap.size(); ++i) {
        FUZZ_CHECK(gap[i] == '\n' || (gap[i] == '\r' && i + 1 < gap.size() && gap[i + 1] == '\n'));
      }
      FUZZ_CHECK(bytes.substr(r.offset, r.raw.size()) == r.raw);
      FUZZ_CHECK(bytes.substr(r.offset + r.raw.size(), r.terminator.size()) == r.terminator);
      size_t lfs = 0;
      for (char c : r.raw) lfs += c == '\n';
      FUZZ_CHECK(r.last_line - r.first_line == lfs);
    }
    next_offset = r.offset + r.raw.size() + r.terminator.size();
    next_line = r.last_line + (r.terminator.empty() ? 0 : 1);
    if (r.terminator.empty()) {
      // Only the last record may lack a terminator.
      FUZZ_CHECK(&r == &big.records.back());
    }

    if (r.error.empty()) {
      std::vector<src::CsvField> fields;
      std::string scratch;
      std::string err = src::SplitCsvRecord(r.raw, delimiter, &fields, &scratch);
      FUZZ_CHECK(err.empty());
      FUZZ_CHECK(fields.size() == r.fields.size());
      for (size_t i = 0; i < fields.size(); ++i) {
        FUZZ_CHECK(fields[i].value == r.fields[i].value);
        FUZZ_CHECK(fields[i].quoted == r.fields[i].quoted);
      }
    }
  }
  if (!big.compressed && big.final_error.empty()) {
    // Nothing but blank lines after the last record.
    for (char c : bytes.substr(next_offset)) FUZZ_CHECK(c == '\n' || c == '\r');
  }
  return 0;
}
