// SplitCsvRecord, both ways. Properties:
//  - fields written as CSV (each quoted, quotes doubled, or left bare when it holds
//    nothing special) and joined by the delimiter split back to the same values, with
//    `quoted` telling which were quoted;
//  - an arbitrary record splits without crashing; every field's value points into the
//    record or the scratch buffer; a well-formed record's unquoted fields are exactly its
//    bytes between delimiters, and the number of fields is one more than the delimiters
//    outside quotes.
// Input: byte 0 picks the delimiter, byte 1 a mode; the rest is fields separated by
// '\x01' (mode even) or one raw record (mode odd).
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "sources/csv_reader.h"

namespace {

namespace src = forklift::sources;

bool Within(std::string_view inner, std::string_view outer) {
  return inner.empty() || (inner.data() >= outer.data() &&
                           inner.data() + inner.size() <= outer.data() + outer.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  forklift::fuzz::Input in(data, size);
  static const char kDelims[] = {',', ';', '\t', '|', ' ', 'x', '\x80'};
  const char d = kDelims[in.Byte() % sizeof kDelims];
  const uint8_t mode = in.Byte();
  std::vector<src::CsvField> fields;
  std::string scratch;

  if (mode % 2 == 0) {
    std::vector<std::string> values;
    std::vector<bool> quote;
    while (true) {
      std::string_view v = in.Until('\x01');
      values.emplace_back(v);
      // An empty last field with no delimiter after it reads as an empty record; quote it.
      bool special =
          v.empty() || v.find_first_of(std::string("\"\r\n") + d) != std::string_view::npos;
      quote.push_back(special || (mode & 2));
      if (in.empty()) break;
    }
    std::string raw;
    for (size_t i = 0; i < values.size(); ++i) {
      if (i) raw += d;
      if (!quote[i]) {
        raw += values[i];
        continue;
      }
      raw += '"';
      for (char c : values[i]) {
        if (c == '"') raw += '"';
        raw += c;
      }
      raw += '"';
    }
    std::string err = src::SplitCsvRecord(raw, d, &fields, &scratch);
    FUZZ_CHECK(err.empty());
    FUZZ_CHECK(fields.size() == values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      FUZZ_CHECK(fields[i].value == values[i]);
      FUZZ_CHECK(fields[i].quoted == quote[i]);
    }
    return 0;
  }

  std::string raw(in.Rest());
  std::string err = src::SplitCsvRecord(raw, d, &fields, &scratch);
  for (const auto& f : fields) FUZZ_CHECK(Within(f.value, raw) || Within(f.value, scratch));
  if (err.empty()) {
    FUZZ_CHECK(!fields.empty());
    size_t delims = 0;
    bool in_quotes = false;
    for (char c : raw) {
      if (c == '"')
        in_quotes = !in_quotes;
      else if (c == d && !in_quotes)
        ++delims;
      else
        FUZZ_CHECK(in_quotes || (c != '\n'));
    }
    FUZZ_CHECK(!in_quotes);
    FUZZ_CHECK(fields.size() == delims + 1);
    if (raw.find('"') == std::string::npos) {
      size_t start = 0;
      for (const auto& f : fields) {
        size_t end = raw.find(d, start);
        FUZZ_CHECK(f.value == std::string_view(raw).substr(start, end - start) && !f.quoted);
        start = end == std::string::npos ? raw.size() : end + 1;
      }
    }
  }
  return 0;
}
