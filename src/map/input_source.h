// The inputs of `forklift map`: argument tuples, produced lazily, as GNU parallel
// builds them.
//
//  - A source is `::: a b c` (a list), `:::: FILE` or `-a FILE` (one argument per
//    record; "-" is stdin), or, when the command line names none, stdin.
//  - Records end at '\n' (or NUL with -0). The separator is removed and nothing else:
//    a CR stays, an empty line is an empty argument, a last record without a separator
//    counts, bytes are bytes, and a record may be any length (memory grows with the
//    longest record only). Without -0 a NUL inside a record is replaced by the two bytes
//    "\0" (no argv can hold a NUL), as GNU parallel does; replaced_nul() reports it.
//  - A `:::` argument holding the separator becomes several records, as in GNU parallel
//    (it writes the list to a file and reads it back): `::: $'a\nb'` is two jobs.
//  - Several sources give their cross product, the first source varying slowest
//    (`::: a b ::: 1 2` -> a 1, a 2, b 1, b 2). The first source streams (stdin of any
//    size is never held in memory); the others are read whole when the source is
//    opened, since each of their records is used once per record of the first.
//    An empty source counts as one empty argument when another source has records, and
//    no source with records means no jobs (GNU parallel: `::: a :::` -> "a ''").
//  - With --colsep REGEX each record splits into columns like Perl's
//    split(/REGEX/, $record, -1) (trailing empty columns kept, a zero-width match at the
//    start ignored, capture groups become columns), then each column is trimmed of
//    leading and trailing white space (GNU parallel sets --trim lr with --colsep). An
//    empty record is one empty column. The regex is Perl's syntax (PCRE2, see
//    perl_regex.h: no recursion, so any record length is safe); a pattern without regex
//    metacharacters splits on the literal text.
//  - A tuple is the columns of all sources, flattened in source order: the {} list and
//    the {1} {2} ... positions of the command template.
#ifndef FORKLIFT_MAP_INPUT_SOURCE_H_
#define FORKLIFT_MAP_INPUT_SOURCE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/result.h"
#include "map/perl_regex.h"

namespace forklift::map {

struct InputSpec {
  enum class Kind {
    kArgs,   // ::: a b c
    kFile,   // :::: FILE, -a FILE; "-" reads stdin
    kStdin,  // no source on the command line
  };
  Kind kind = Kind::kStdin;
  std::vector<std::string> args;  // kArgs: the arguments as given
  std::string path;               // kFile

  friend bool operator==(const InputSpec&, const InputSpec&) = default;
};

struct InputOptions {
  bool null_separated = false;        // -0/--null: records end at NUL, not '\n'
  std::optional<std::string> colsep;  // --colsep REGEX
};

// Splits records into columns for --colsep. Thread-compatible (const use is safe).
class ColumnSplitter {
 public:
  // On a pattern PCRE2 rejects returns InvalidArgument
  // "forklift map: bad --colsep regex '<pattern>': <why>".
  static Result<ColumnSplitter> Create(const std::string& pattern);

  // The trimmed columns of `record`, appended to *columns. Fails (Internal) only when
  // PCRE2 gives up on a pathological pattern (its match limit), never for a record's length.
  Status Split(std::string_view record, std::vector<std::string>* columns) const;

 private:
  std::string literal_;             // split on this when the pattern is plain text
  std::optional<PerlRegex> regex_;  // else this
};

class InputSource {
 public:
  // Opens every source now, so that an unreadable file fails before any job runs:
  // InvalidArgument "forklift map: cannot open input file 'X': <reason>" (directories
  // included). Reads all sources but the first whole (a read error is returned the same
  // way). An empty `specs` means stdin. `stdin_fd` stands in for fd 0 (tests); it is
  // read, never closed. On a bad --colsep returns InvalidArgument.
  static Result<std::unique_ptr<InputSource>> Open(const std::vector<InputSpec>& specs,
                                                   const InputOptions& options, int stdin_fd = 0);
  ~InputSource();
  InputSource(const InputSource&) = delete;
  InputSource& operator=(const InputSource&) = delete;

  // The next tuple, nullopt once the input is exhausted (and on every later call). On a
  // read error returns Internal naming the source. Not thread-safe: one reader.
  Result<std::optional<std::vector<std::string>>> Next();

  // Whether some record held a NUL that was replaced by "\0" (GNU parallel warns:
  // "A NUL character in the input was replaced with \0").
  bool replaced_nul() const { return replaced_nul_; }
  // Tuples returned so far.
  uint64_t count() const { return count_; }

 private:
  class RecordReader;
  using Record = std::vector<std::string>;  // one record's columns

  InputSource() = default;
  // The next record of the first source, split into columns; nullopt at its end.
  Result<std::optional<Record>> ReadFirst();
  Result<Record> ToColumns(std::string record);

  char separator_ = '\n';
  std::optional<ColumnSplitter> splitter_;
  std::unique_ptr<RecordReader> first_;
  std::vector<std::vector<Record>> others_;  // sources 2..n, whole
  std::vector<size_t> odometer_;             // position in each of others_
  std::optional<Record> current_first_;      // the first source's record being combined
  bool others_have_records_ = false;         // before empties became one "" record
  bool first_started_ = false;
  bool done_ = false;
  bool replaced_nul_ = false;
  uint64_t count_ = 0;
};

}  // namespace forklift::map

#endif  // FORKLIFT_MAP_INPUT_SOURCE_H_
