// What `forklift load` is asked to do, and its validation.
// Thread safety: plain values and pure functions.
#ifndef FORKLIFT_LOAD_LOAD_OPTIONS_H_
#define FORKLIFT_LOAD_LOAD_OPTIONS_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/progress.h"
#include "forklift/result.h"
#include "sources/transcode.h"

namespace forklift::load {

struct LoadOptions {
  std::vector<std::string> sources;  // CSV files (.gz read transparently); required
  std::string to;                    // postgres://..., key=value conninfo, sqlite:PATH
  std::string table;                 // [schema.]table, quoted parts allowed
  std::vector<std::string> key;      // conflict columns; required by upsert
  bool upsert = false;               // --mode insert (default) | upsert
  int workers = 0;                   // 0: 4 for PostgreSQL, 1 for SQLite
  int64_t chunk_rows = 5000;         // rows per chunk, >= 1
  int64_t chunk_bytes = 4 << 20;     // bytes per chunk, >= 1 (a row is never split)
  std::vector<std::string> columns;  // target columns in CSV order; default: the header,
                                     // or the table's columns with header = false
  char delimiter = ',';
  std::string null_string;            // unquoted field meaning NULL; default ""
  bool header = true;                 // the first record of each file names the columns
  std::string dlq_path;               // also write dead letters as CSV here; "" = no
  std::optional<int64_t> max_errors;  // stop after more rejected rows than this
  std::string load_id;                // "" = derived (see ComputeLoadId)
  bool json = false;                  // print the summary as one JSON object on stdout
  std::string journal_path;           // "" = ResolveJournalPath's default
  ProgressDisplay display = ProgressDisplay::kAuto;
  std::chrono::milliseconds progress_interval{10000};  // between plain progress lines
  int64_t max_record_bytes = 64 << 20;  // a longer CSV record stops the load (DataLoss)
  std::string ledger_schema;            // "" = the table's schema (PostgreSQL only)

  // Query sources: the rows of a query instead of files (sinks/query_source.h).
  std::string from;                     // --from: postgres://..., conninfo, sqlite:PATH; "" = files
  std::string query;                    // --query: the SQL whose result is loaded
  std::vector<std::string> resume_key;  // --resume-key: unique result columns; resume by key
  std::string partition_by;             // --partition-by: a result column to hash
  int partitions = 1;                   // --partitions: streams read in parallel, >= 1
  // Table lifecycle and dialect
  bool truncate = false;       // --truncate: empty the table once, as part of the load
  bool replace = false;        // --replace: load a shadow table, swap it in at the end
  bool insert_ignore = false;  // --mode insert-ignore: skip rows that break a unique key
  // --max-errors N%: stop once more than this percentage of the rows read were rejected
  // (see ParseMaxErrors for when it is judged); nullopt = none.
  std::optional<double> max_errors_percent;
  // --format csv|jsonl: the sources' format; "" = by each name (.jsonl, .ndjson: JSON
  // Lines). Needed for '-' (stdin).
  std::string format;
  // Transforms (load/command_transform.h): each chunk through a command before it is written.
  std::string transform;                           // --transform: run by /bin/sh -c; "" = none
  int cpu_workers = 1;                             // --cpu-workers: transforms at once, >= 1
  std::chrono::milliseconds transform_timeout{0};  // --transform-timeout per chunk; 0 = none
  // CSV dialect (ValidateDialectOptions): how CSV files are written. Rows reach the table
  // (and --transform) in the default dialect and UTF-8; checksums and dead letters keep
  // the files' bytes.
  char quote = '"';                                       // --quote: encloses a field
  std::optional<char> escape;                             // --escape; nullopt = the quote
  sources::Encoding encoding = sources::Encoding::kUtf8;  // --encoding, converted on read
  int64_t skip_lines = 0;  // --skip-lines: physical lines dropped before each file's header
};

// Table lifecycle and dialect

// A percentage of --max-errors is judged only once this many rows were committed (and
// again over all rows at the end), so that the first bad row of a big file does not stop
// it at 100 %.
inline constexpr uint64_t kMaxErrorsPercentMinRows = 1000;

// A --max-errors value: "N" (rows, into *count) or "N%" (0 <= N <= 100, fractions allowed,
// into *percent). InvalidArgument naming --max-errors and the value otherwise.
Status ParseMaxErrors(std::string_view text, std::optional<int64_t>* count,
                      std::optional<double>* percent);

// InvalidArgument naming the options for lifecycle options that cannot go together:
// --truncate with --replace, insert-ignore with upsert or with --key, --max-errors N with
// N%, a percentage outside [0, 100]. Called by ValidateLoadOptions.
Status ValidateLifecycleOptions(const LoadOptions& options);

// '-' (stdin) as the one source: InvalidArgument saying why without --load-id (the
// default id hashes file sizes and times; a rerun resumes by reading the stream again
// under the same id), without --format, with other sources, or as CSV with a header.
Status ValidateStdinOptions(const LoadOptions& options);

// InvalidArgument naming the option for values out of range: no sources, empty --to or
// --table, a --table or --load-id that is not valid UTF-8, --workers < 0,
// --chunk-rows/--chunk-bytes < 1, upsert without --key,
// --key without upsert, a key not
// among --columns, a delimiter that is '"', CR, LF or not ASCII, a --null that holds the
// delimiter, a quote, CR or LF or is not valid UTF-8, duplicate column names,
// --max-errors < 0; and what ValidateQuerySourceOptions, ValidateLifecycleOptions,
// ValidateStdinOptions, ValidateTransformOptions and ValidateDialectOptions refuse.
Status ValidateLoadOptions(const LoadOptions& options);

// The query source options' part of ValidateLoadOptions (which calls it first):
// InvalidArgument naming the option for --from without --query or the reverse, files
// given too, --resume-key/--partition-by/--partitions without --query, --partitions < 1 or
// over 64, --partitions N > 1 without --partition-by or --partition-by without it, a name
// given twice in --resume-key, --no-header/--delimiter/--null with --query (a result has
// its own header and CSV), --mode upsert --resume-key whose --key lacks a resume-key
// column, a --query that is empty or not valid UTF-8.
Status ValidateQuerySourceOptions(const LoadOptions& options);

// InvalidArgument naming the option: --cpu-workers < 1 or > 256, --cpu-workers or
// --transform-timeout without --transform (they would be ignored), a negative
// --transform-timeout, a --transform that is blank or not valid UTF-8 (the journal keeps
// it as JSON text).
Status ValidateTransformOptions(const LoadOptions& options);

// CSV dialect

// --escape as the reader takes it: the quote when not given (RFC 4180 doubling).
inline char EffectiveEscape(const LoadOptions& o) { return o.escape.value_or(o.quote); }

// Whether any dialect option differs from the default (only then is it part of the load id).
bool HasCsvDialect(const LoadOptions& o);

// The dialect options' part of ValidateLoadOptions: InvalidArgument naming the option for
// a --quote or --escape that is CR, LF, the delimiter or not ASCII, a --skip-lines < 0, a --null
// holding the quote, and any dialect option with --query (a result is read as forklift writes it)
// or with JSON Lines sources (--format jsonl, or a .jsonl/.ndjson file without --format csv).
Status ValidateDialectOptions(const LoadOptions& options);

// A --quote or --escape value: exactly one byte. InvalidArgument naming `option` otherwise.
Result<char> ParseDialectChar(std::string_view text, std::string_view option);

// "4MiB", "512KiB", "1GB", "1000" (bytes) -> bytes. InvalidArgument naming `option` and the
// value for anything else, zero, or an overflow.
Result<int64_t> ParseByteSize(std::string_view text, std::string_view option);

// "a,b , c" -> {"a", "b", "c"}; InvalidArgument naming `option` for an empty name.
Result<std::vector<std::string>> ParseNameList(std::string_view text, std::string_view option);

// A --delimiter value: one byte, or "\t" / "tab". InvalidArgument otherwise.
Result<char> ParseDelimiter(std::string_view text);

}  // namespace forklift::load

#endif  // FORKLIFT_LOAD_LOAD_OPTIONS_H_
