// Resume by key for query sources (`forklift load --from ... --query ... --resume-key K`),
// as an ETL checkpoint does (`WHERE k > last_processed_k`).
//
// Each partition p of N is one stream ordered by the key; its chunks are numbered p, p+N,
// p+2N... in stream order, and each chunk's ledger row records its last row's key. Chunks
// of one stream commit on several connections, in any order, so a killed load can leave a
// gap: committed chunks after an uncommitted one. The rerun of partition p starts after the
// last key of the longest run of committed chunks from its first one (the prefix), numbers
// on from there, and so meets the chunks committed after the gap again with their numbers,
// rows and checksums: those are verified and skipped, as a file load's are. An unchanged
// result therefore resumes exactly once; rows appended with larger keys are read by the
// next run (the incremental case).
//
// Thread safety: plain functions and values.
#ifndef FORKLIFT_LOAD_KEY_RESUME_H_
#define FORKLIFT_LOAD_KEY_RESUME_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/result.h"
#include "sinks/chunk.h"

namespace forklift::load {

// A key as the ledger's last_key holds it: one CSV record, every value quoted
// ("a","b""c"), so that DecodeKey gives the values back whatever they hold.
std::string EncodeKey(const std::vector<std::string>& values);
// EncodeKey's inverse. InvalidArgument naming the text for a record that is not one.
Result<std::vector<std::string>> DecodeKey(std::string_view text);

// The values of `key_fields` in row `row` of `chunk` (split with the CSV rules).
// InvalidArgument naming the key and the row's line when a value is NULL (an empty
// unquoted field: the query's NULL) — a NULL key cannot be resumed after — or the record
// does not have the field.
Result<std::vector<std::string>> RowKey(const sinks::Chunk& chunk, size_t row,
                                        const std::vector<size_t>& key_fields,
                                        std::string_view key_names);

// Where one partition's stream starts.
struct PartitionResume {
  std::vector<std::string> after;  // the prefix's last key; empty: from the first row
  int64_t next_number = 0;         // of the stream's next chunk
  uint64_t line_offset = 0;        // added to the lines of the stream read now
  int64_t prefix_chunks = 0;       // committed chunks not read again
  int64_t prefix_rows = 0;         // their rows and rejected rows, for the summary
  int64_t prefix_rejected = 0;
  // Committed chunks after the gap, by number: read again, verified, and skipped.
  std::map<int64_t, sinks::LedgerEntry> beyond;
};

// The resume of each of `partitions` streams from the load's ledger entries (entries with a
// negative chunk number are other kinds of ledger rows and ignored). Failure: InvalidArgument
// for a last_key that DecodeKey refuses.
Result<std::vector<PartitionResume>> PlanKeyResume(const std::vector<sinks::LedgerEntry>& committed,
                                                   int partitions);

// The streams of a query load without a resume key that reads everything again (an upsert:
// idempotent): each partition's numbers start after the ledger's largest chunk, so no new
// chunk meets an old one's ledger row.
std::vector<PartitionResume> PlanStartOver(const std::vector<sinks::LedgerEntry>& committed,
                                           int partitions);

}  // namespace forklift::load

#endif  // FORKLIFT_LOAD_KEY_RESUME_H_
