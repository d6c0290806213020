// Dead letters as a CSV file (--dlq FILE): one row per rejected input row, with its source,
// line, reason and the raw record, so that a person can read, fix and reload it.
// Thread safety: pure functions.
#ifndef FORKLIFT_LOAD_DEAD_LETTER_FILE_H_
#define FORKLIFT_LOAD_DEAD_LETTER_FILE_H_

#include <span>
#include <string>

#include "forklift/result.h"
#include "journal/journal.h"

namespace forklift::load {

// Writes `letters` as RFC 4180 CSV with the header load_id,source,line,reason,raw to a
// temporary file beside `path`, then renames it over `path` (a reader never sees half a
// file). InvalidArgument "--dlq PATH: ..." when it cannot be written.
Status WriteDeadLetterFile(const std::string& path, std::span<const journal::DeadLetter> letters);

// One letter as a row of that file (with its newline).
std::string DeadLetterCsvRow(const journal::DeadLetter& letter);
// The header line of that file (with its newline).
constexpr const char* kDeadLetterCsvHeader = "load_id,source,line,reason,raw\n";

// `value` as one CSV field: quoted (quotes doubled) when it holds a comma, quote, CR or LF
// or starts or ends with a space.
std::string CsvField(std::string_view value);

}  // namespace forklift::load

#endif  // FORKLIFT_LOAD_DEAD_LETTER_FILE_H_
