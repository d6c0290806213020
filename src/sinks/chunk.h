// A chunk: the unit `forklift load` commits. Its rows and its ledger row go to the target in
// one transaction, so a chunk is loaded exactly once whatever happens to the process.
// Thread safety: a plain value; one thread writes it, then hands it over.
#ifndef FORKLIFT_SINKS_CHUNK_H_
#define FORKLIFT_SINKS_CHUNK_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace forklift::sinks {

// Where one row's CSV record sits in Chunk::data.
struct ChunkRow {
  uint32_t offset = 0;  // of the record's first byte
  uint32_t size = 0;    // the record without its terminator
  uint64_t line = 0;    // first source line of the record (1-based)
};

// A row the reader refused before any database saw it (wrong field count, broken quoting,
// invalid UTF-8). It travels with the chunk of its source range, so that its dead letter
// is recorded once, with that chunk.
struct ParseReject {
  uint64_t line = 0;
  std::string raw;     // the record as read (bounded by the reader's record limit)
  std::string reason;  // "expected 7 fields, found 6"
};

struct Chunk {
  int64_t number = 0;       // unique within a load; the ledger's key with the load id
  int partition = 0;        // the writer it goes through (upsert routes rows by key)
  std::string source;       // the source file as given on the command line
  uint64_t first_line = 0;  // smallest and largest source line among its rows and rejects
  uint64_t last_line = 0;
  std::string checksum;  // XXH3 of the source bytes of its rows and rejects, in order
  std::string data;      // the rows' CSV records, each followed by '\n'
  std::vector<ChunkRow> rows;
  std::vector<ParseReject> parse_rejects;
  // A query source's resume key after this chunk (its last row's key, load/key_resume.h's
  // encoding), recorded in the ledger's last_key; nullopt for other sources.
  std::optional<std::string> last_key;
  // Where its rows and rejects lie in its source, for a load through the queue (a worker
  // reads just that): the decompressed byte span [span_begin, span_end), which starts at
  // line first_line; `seekable` when a reader can start there (a plain CSV file, not gzip,
  // JSON Lines or a query); file_first_chunk is the number of its file's first chunk.
  uint64_t span_begin = 0;
  uint64_t span_end = 0;
  bool seekable = false;
  int64_t file_first_chunk = 0;

  std::string_view Row(size_t i) const {
    return std::string_view(data).substr(rows[i].offset, rows[i].size);
  }
};

// A row of a chunk the database refused, with the database's reason.
struct RejectedRow {
  size_t row = 0;        // index into Chunk::rows
  std::string sqlstate;  // PostgreSQL's SQLSTATE or SQLite's error name
  std::string reason;
};

// What the target's ledger table holds for a committed chunk.
struct LedgerEntry {
  int64_t chunk = 0;
  std::string source;
  int64_t first_line = 0;
  int64_t last_line = 0;
  int64_t rows = 0;      // rows written
  int64_t rejected = 0;  // rows dead-lettered (parse and database)
  std::string checksum;
  std::optional<std::string> last_key;  // read only with TableSpec::ledger_last_key
};

}  // namespace forklift::sinks

#endif  // FORKLIFT_SINKS_CHUNK_H_
