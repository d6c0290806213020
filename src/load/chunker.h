// Turns CSV and JSON Lines sources into chunks, deterministically: the same input and options
// always give the same chunks with the same numbers, lines and checksums, which is what lets a
// rerun recognise (and verify) the chunks its ledger already holds.
//
// Rows are routed to `partitions` by a hash of their key columns (upsert), so one key always
// goes through one connection and its rows apply in input order; without a key there is
// one partition. The hash is over the key values' canonical form when the options give one
// (every spelling of a value routes alike), else over their text as spelled. A chunk closes at
// chunk_rows rows or chunk_bytes bytes, and at the end of each file. Rows the reader refuses
// (broken quoting, wrong field count, invalid UTF-8, a line that is no JSON object) travel in
// partition 0's chunk as ParseReject, so their dead letters commit with it. A JSON line's chunk
// holds the CSV record made of it (sources/jsonl_reader.h); its checksum and its dead letter are
// over the line as read.
//
// Memory: partitions x chunk_bytes (plus the longest record), whatever the input's size.
// Thread safety: none; one reader thread.
#ifndef FORKLIFT_LOAD_CHUNKER_H_
#define FORKLIFT_LOAD_CHUNKER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/result.h"
#include "sinks/chunk.h"
#include "sinks/sink.h"
#include "sources/checksum.h"
#include "sources/csv_reader.h"
#include "sources/transcode.h"

namespace forklift::load {

struct ChunkerOptions {
  int partitions = 1;              // >= 1
  std::vector<size_t> key_fields;  // indexes of the key columns (routing); empty = none
  // The routing form of key_fields[i]'s value (called with i); empty = the text as spelled.
  sinks::KeyCanonicalizer canonical_key;
  int64_t chunk_rows = 5000;
  int64_t chunk_bytes = 4 << 20;
  char delimiter = ',';
  bool header = true;                     // skip (and check) the first record of each file
  size_t columns = 0;                     // fields every row must have
  std::vector<std::string> header_names;  // when header: what each file's header must say
                                          // (empty: not checked), as HeaderName reads it
  bool fold_header_case = false;          // HeaderName's fold_case (PostgreSQL targets)
  size_t max_record_bytes = 64 << 20;
  size_t max_reject_bytes = 1 << 20;  // raw bytes kept for a rejected row's dead letter
  // JSON Lines sources (sources::IsJsonLinesPath): the columns their fields map to, by
  // name (`columns` of them), and what null and a missing field become.
  std::vector<std::string> column_names;
  std::string null_string;
  // Table lifecycle and dialect: whether the sources are JSON Lines; nullopt = by each
  // name (sources::IsJsonLinesPath). Set for stdin ('-'), which has none.
  std::optional<bool> json_lines;
  // CSV dialect of CSV files (ValidateDialectOptions; ReadSource's CSV is forklift's own,
  // left at the defaults). Records are parsed with quote/escape/skip_lines on the source's
  // bytes; with a non-default quote, escape or encoding each chunk stores the record
  // rewritten in the default dialect ('"', doubling) and UTF-8, which every sink,
  // --transform and `dlq retry` read, while its checksum and a reject's payload stay the
  // source's bytes. A record that does not convert (an undefined windows-1252 byte) is a
  // reject naming its line.
  char quote = '"';
  char escape = '"';
  uint64_t skip_lines = 0;
  sources::Encoding encoding = sources::Encoding::kUtf8;
};

// Counters the reader moves forward; other threads read them for progress.
struct ReadCounters {
  std::atomic<uint64_t> source_bytes{0};  // bytes consumed from the files (compressed)
  std::atomic<uint64_t> rows{0};          // records read, rejected ones included
};

// A header field as a column name: an unquoted name loses its surrounding blanks (*trimmed
// set when it had some) and, with fold_case, is folded to lower case (ASCII) as PostgreSQL
// folds unquoted identifiers (`ID` is column id); a quoted name is kept as written
// (`"ID"` is column "ID"). Pure.
std::string HeaderName(const sources::CsvField& field, bool fold_case, bool* trimmed);

// Reads the header of `path` (its first non-empty record) as column names (HeaderName).
// When `trimmed` is given, the names as written that had blanks trimmed are appended to it.
// Failure: the reader's errors; InvalidArgument "PATH:LINE: header: ..." for a malformed
// header, an empty file, or an empty or duplicate name.
Result<std::vector<std::string>> ReadHeader(const std::string& path, char delimiter,
                                            size_t max_record_bytes, bool fold_case = false,
                                            std::vector<std::string>* trimmed = nullptr);
// The same in a dialect (its quote, escape and skip_lines) and encoding: the names come
// back in UTF-8. Failure as above, and InvalidArgument "PATH:LINE: header: ..." for a name
// that does not convert.
Result<std::vector<std::string>> ReadHeader(const std::string& path,
                                            const sources::CsvDialect& dialect,
                                            sources::Encoding encoding, bool fold_case,
                                            std::vector<std::string>* trimmed);

// The note appended to the reason of a reject whose raw text was cut to max_reject_bytes:
// " (record of N bytes, first M kept: not retryable)". A cut record may still split into
// the right number of fields (the cut fell inside its last field), so `dlq retry` must
// never load it.
std::string TruncatedRejectNote(size_t record_bytes, size_t kept_bytes);

// Whether a dead letter with this reason and a payload of this size is a cut record: its
// reason ends with TruncatedRejectNote(..., payload_bytes), or with the
// " (record of N bytes, first M kept)" that earlier versions wrote. Pure.
bool IsTruncatedReject(std::string_view reason, size_t payload_bytes);

class Chunker {
 public:
  // Called with each finished chunk; an error stops the read and is returned by ReadFile.
  using Emit = std::function<Status(sinks::Chunk&&)>;

  Chunker(ChunkerOptions options, ReadCounters* counters);
  ~Chunker();

  // Reads one source to its end, emitting its chunks (numbered on from the previous file's).
  // `stop` is polled between records: when it returns true, reading ends early and what
  // was read but not emitted is dropped (it was never committed). Failure: the reader's
  // DataLoss / NotFound, InvalidArgument for a header that differs from header_names.
  Status ReadFile(const std::string& path, const Emit& emit, const std::function<bool()>& stop);

  // ReadFile for CSV that another producer makes (a query source: ByteSource::FromPull),
  // named `name` in chunks and messages. Fails as ReadFile, and with the source's errors.
  Status ReadSource(const std::string& name, std::unique_ptr<sources::ByteSource> source,
                    const Emit& emit, const std::function<bool()>& stop);

  // Reads the CSV records of `path`'s decompressed bytes [begin, end), which start at a
  // record on line `first_line`, numbering its chunks from `first_number`: the chunks a
  // whole read emits whose spans lie inside it come out alike (a load through the queue
  // reads one chunk this way); other partitions' chunks it emits are partial. No header
  // is read. Failure: ReadFile's, and FailedPrecondition when the file here is gzip (it
  // cannot be entered mid-way), is no regular file or is shorter than `end`.
  Status ReadSpan(const std::string& path, uint64_t begin, uint64_t end, uint64_t first_line,
                  int64_t first_number, const Emit& emit, const std::function<bool()>& stop);

  // Numbers the next file's chunks from `n` (a worker reading one file of a load).
  void set_next_chunk(int64_t n) { next_chunk_ = n; }

  int64_t chunks_emitted() const { return next_chunk_; }

  // Fields of the JSON Lines read so far that no column takes, with how often each came
  // (sources::JsonLinesReader::unknown_fields, over every file).
  const std::map<std::string, uint64_t>& unknown_fields() const { return unknown_fields_; }

 private:
  struct Builder;
  Status ReadCsv(const std::string& path, const Emit& emit, const std::function<bool()>& stop);
  Status ReadCsvFrom(sources::CsvReader& reader, const Emit& emit,
                     const std::function<bool()>& stop);
  Status ReadJsonLines(const std::string& path, const Emit& emit,
                       const std::function<bool()>& stop);
  // One record: `text` and `terminator` are the source's bytes of it (the checksum, a
  // reject's payload), rec.raw what the chunk stores (the same for CSV).
  Status Add(const sources::CsvRecord& rec, std::string_view text, std::string_view terminator,
             const Emit& emit);
  // The same, storing `stored` (rec.raw in the default dialect and UTF-8) instead of
  // rec.raw; a non-empty `stored_error` (it did not convert) makes the row a reject.
  Status Add(const sources::CsvRecord& rec, std::string_view stored, std::string_view stored_error,
             std::string_view text, std::string_view terminator, const Emit& emit);
  // Rewrites rec (well-formed) into *out as the chunk stores it (see ChunkerOptions'
  // dialect); "" or why it does not convert.
  std::string Reencode(const sources::CsvRecord& rec, std::string* out);
  bool reencode() const {
    return options_.quote != '"' || options_.escape != '"' ||
           options_.encoding != sources::Encoding::kUtf8;
  }
  Status Flush(Builder& b, const Emit& emit);
  Builder& Route(const std::vector<std::string_view>& key_values);

  ChunkerOptions options_;
  ReadCounters* counters_;
  std::vector<std::unique_ptr<Builder>> builders_;
  int64_t next_chunk_ = 0;
  std::string path_;
  bool seekable_ = false;         // the file read now is plain CSV (Chunk::seekable)
  int64_t file_first_chunk_ = 0;  // the number of its first chunk
  std::string keybuf_;
  std::map<std::string, uint64_t> unknown_fields_;
  std::optional<sources::Transcoder> transcoder_;  // opened by the first CSV file
  std::string stored_;                             // Reencode's output
  std::string value_;                              // one field converted
};

}  // namespace forklift::load

#endif  // FORKLIFT_LOAD_CHUNKER_H_
