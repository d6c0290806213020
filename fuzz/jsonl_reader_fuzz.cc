// JsonLinesReader over arbitrary bytes. Properties:
//  - it never fails on plain input (a bad line is an error record, not an error) and
//    reads one record per non-blank line, with 1-based increasing line numbers;
//  - a record that is not an error is a CSV record that SplitCsvRecord (what the sinks
//    and `dlq retry` do) splits back into exactly the reader's fields, values and quoting
//    alike, one per column;
//  - an error record's line() is the input's bytes at its offset (the first
//    max_record_bytes of the line).
// Input: byte 0 picks the columns (names the dictionary also holds), byte 1 the
// delimiter; the rest is the file.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "sources/byte_source.h"
#include "sources/csv_reader.h"
#include "sources/jsonl_reader.h"

namespace {

namespace src = forklift::sources;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  forklift::fuzz::Input in(data, size);
  static const std::vector<std::vector<std::string>> kColumns = {
      {"a"}, {"a", "b"}, {"id", "name", "tags"}, {"a", "b", "c", "d", "e"}};
  static const char kDelims[] = {',', '\t', ';', '|'};
  const auto& columns = kColumns[in.Byte() % kColumns.size()];
  const char d = kDelims[in.Byte() % sizeof kDelims];
  const std::string_view bytes = in.Rest();
  if (bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x1f &&
      static_cast<uint8_t>(bytes[1]) == 0x8b) {
    return 0;  // gzip: ByteSource's own target covers it
  }
  forklift::fuzz::MemFile file(bytes);
  auto source = src::ByteSource::Open(file.path());
  FUZZ_CHECK(source);
  src::JsonLinesReader reader(std::move(*source),
                              {.columns = columns, .delimiter = d, .max_record_bytes = 1 << 16});
  src::CsvRecord rec;
  std::vector<src::CsvField> split;
  std::string scratch;
  uint64_t last_line = 0;
  for (;;) {
    auto got = reader.Next(&rec);
    FUZZ_CHECK(got);
    if (!*got) break;
    FUZZ_CHECK(rec.first_line > last_line && rec.first_line == rec.last_line);
    last_line = rec.first_line;
    if (!rec.error.empty()) {
      FUZZ_CHECK(rec.raw.empty());
      FUZZ_CHECK(rec.offset <= bytes.size());
      FUZZ_CHECK(bytes.substr(rec.offset, reader.line().size()) == reader.line());
      continue;
    }
    FUZZ_CHECK(rec.fields.size() == columns.size());
    std::string reason = src::SplitCsvRecord(rec.raw, d, &split, &scratch);
    FUZZ_CHECK(reason.empty());
    FUZZ_CHECK(split.size() == rec.fields.size());
    for (size_t i = 0; i < split.size(); ++i) {
      FUZZ_CHECK(split[i].value == rec.fields[i].value);
      FUZZ_CHECK(split[i].quoted == rec.fields[i].quoted);
    }
  }
  return 0;
}
