// PostgreSQL's binary COPY format for the column types whose text form is simple enough to
// convert exactly: the server then skips parsing numbers and dates (on a loopback load the
// server's CPU is the bottleneck; binary COPY of the benchmark's table takes ~35 % less of it).
//
// The encoder is strict on purpose: it accepts only a subset of what the server's input
// functions accept (e.g. "12", "-1.5e3", "2020-01-31", "true"), converting it to the same
// value, and reports anything else as not encodable, so the caller sends that chunk as CSV
// and lets the server decide (and name the bad line). It never guesses.
//
// Thread safety: an encoder is a plain object; use each from one thread.
#ifndef FORKLIFT_SINKS_PG_BINARY_H_
#define FORKLIFT_SINKS_PG_BINARY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sources/csv_reader.h"

namespace forklift::sinks {

enum class PgType { kText, kInt2, kInt4, kInt8, kFloat4, kFloat8, kBool, kDate, kOther };

// The type for pg_type.typname ("int8", "varchar", ...); kOther for everything else
// (numeric, timestamps, domains, arrays...), which keeps a table on CSV COPY.
PgType PgTypeFromName(std::string_view typname);

class PgBinaryEncoder {
 public:
  // `types`: the COPY's columns in order; `with_ord`: a leading int8 column (the upsert
  // staging table's row order) precedes them.
  PgBinaryEncoder(std::vector<PgType> types, bool with_ord, char delimiter,
                  std::string null_string);

  // Whether every column has a binary form here (else use CSV COPY).
  bool usable() const { return usable_; }

  // Starts a COPY payload in *out (the signature and header).
  static void Begin(std::string* out);
  // Appends one tuple for the CSV record `raw`. False, leaving *out as it was, when a
  // value is not in the strict subset or the field count is wrong. When `key` is given, the
  // encoded bytes of the key fields (set_key_fields) are appended to it as well: equal
  // values encode equally, so they compare keys by value where keys_canonical().
  bool AddRow(std::string_view raw, int64_t ord, std::string* out, std::string* key = nullptr);

  // The columns (indexes into `types`) whose encoded bytes AddRow reports as the key.
  void set_key_fields(std::vector<size_t> fields) { key_fields_ = std::move(fields); }
  // Whether equal encoded keys mean equal values and different ones different values:
  // true unless a key column is a float (0 and -0, NaNs) or has no binary form here.
  bool keys_canonical() const;
  // Ends the payload (the trailer).
  static void End(std::string* out);

 private:
  bool AddField(PgType type, const sources::CsvField& f, std::string* out);

  std::vector<PgType> types_;
  std::vector<size_t> key_fields_;
  bool with_ord_;
  char delimiter_;
  std::string null_string_;
  bool usable_ = true;
  std::vector<sources::CsvField> fields_;
  std::string scratch_;
};

}  // namespace forklift::sinks

#endif  // FORKLIFT_SINKS_PG_BINARY_H_
