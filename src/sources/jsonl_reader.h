// JsonLinesReader: JSON Lines (one JSON object per line; .jsonl, .ndjson, gzipped or not)
// read as the CSV records `forklift load` commits, so that everything after the reader —
// chunks, checksums, COPY, upserts, dead letters — is the CSV path unchanged.
//
// Each object's fields are mapped to `columns` by name: a string becomes its unescaped
// text, quoted (so "" stays an empty string, never NULL); a number its text as written
// (no float round trip: 0.1 and 123456789012345678901 reach a numeric column exactly);
// true/false as `true`/`false`; null, and a column the object lacks, `null_string`
// unquoted (NULL); a nested object or array its JSON text, as written, for json, jsonb
// or text columns. A field no column names is not loaded; unknown_fields() counts them,
// so the load can say so. Blank lines are skipped.
//
// A line that is not one JSON object (invalid JSON, an array or a scalar, a field given
// twice, trailing bytes, more than max_record_bytes) is an error record, not a failure:
// the load dead-letters it with its line number and the rest goes on. The parser is
// simdjson's On-Demand API (Debian's libsimdjson-dev), which also validates UTF-8.
//
// Memory: the byte source's buffer, one block of input (1 MiB) and the longest line.
// Thread safety: none; one reader per thread.
#ifndef FORKLIFT_SOURCES_JSONL_READER_H_
#define FORKLIFT_SOURCES_JSONL_READER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/result.h"
#include "sources/byte_source.h"
#include "sources/csv_reader.h"

namespace forklift::sources {

// Whether `path` names JSON Lines: it ends in .jsonl or .ndjson, optionally followed by
// .gz. Pure.
bool IsJsonLinesPath(std::string_view path);

struct JsonLinesOptions {
  std::vector<std::string> columns;  // the record's fields, in order; non-empty
  char delimiter = ',';              // of the CSV records made
  std::string null_string;           // what null and a missing field become (unquoted)
  size_t max_record_bytes = 64 << 20;
};

class JsonLinesReader {
 public:
  JsonLinesReader(std::unique_ptr<ByteSource> source, JsonLinesOptions options);
  ~JsonLinesReader();
  JsonLinesReader(const JsonLinesReader&) = delete;
  JsonLinesReader& operator=(const JsonLinesReader&) = delete;

  // The next non-blank line as a record.
  // Success: true with *rec filled — rec->raw the CSV record made of the object (empty
  // for an error record), rec->fields views of the columns' values (quoted = a JSON
  // string), rec->first_line == rec->last_line its line, rec->offset its byte offset, and
  // rec->error non-empty when the line is not one JSON object (a reason naming what is
  // wrong); line() is the line itself. False at the end of the input. The views stay valid
  // until the next call.
  // Failure: the byte source's DataLoss.
  Result<bool> Next(CsvRecord* rec);

  // The last record's line as read (the JSON text), without its terminator: what its
  // checksum and a dead letter hold. An error record longer than max_record_bytes keeps
  // its first max_record_bytes bytes.
  std::string_view line() const { return line_; }
  std::string_view terminator() const { return terminator_; }

  // Field names that no column takes, with the number of lines holding each (the first
  // 32 names; later ones are counted under "...").
  const std::map<std::string, uint64_t>& unknown_fields() const { return unknown_; }

  const ByteSource& source() const { return *source_; }

 private:
  struct Parser;
  // The next line into line_/terminator_; false at the end.
  Result<bool> NextLine();
  std::string Convert(CsvRecord* rec);  // "" or the error

  std::unique_ptr<ByteSource> source_;
  JsonLinesOptions options_;
  std::unique_ptr<Parser> parser_;
  std::string block_;  // input not yet split into lines
  size_t block_pos_ = 0;
  bool eof_ = false;
  std::string long_line_;  // a line that spans blocks
  std::string_view line_, terminator_;
  bool line_too_long_ = false;
  uint64_t line_no_ = 0;
  uint64_t offset_ = 0;  // of the next line in the decompressed stream
  std::string csv_;      // the record made
  std::vector<std::string> values_;
  std::vector<bool> seen_;
  std::map<std::string, uint64_t> unknown_;
};

}  // namespace forklift::sources

#endif  // FORKLIFT_SOURCES_JSONL_READER_H_
