// The reading side of a query load: each partition of the query is one stream
// (sinks::OpenQueryStream, its own source connection) read through its own Chunker on its
// own thread, its chunks numbered p, p+N, ... (key_resume.h), with their last keys, into the
// writers' queues.
//
// With a resume key, a chunk is handed on only once the next chunk's first key is known to
// differ from its last key: a key shared by two chunks would make the resume point
// ambiguous (rows of that key after it would be skipped), so the load stops with nothing of
// that boundary committed.
//
// Thread safety: ReadQuery runs the partitions' threads and returns when all have ended;
// the hooks are called from those threads (push and skipped concurrently).
#ifndef FORKLIFT_LOAD_QUERY_READER_H_
#define FORKLIFT_LOAD_QUERY_READER_H_

#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/result.h"
#include "load/chunker.h"
#include "load/key_resume.h"
#include "sinks/chunk.h"
#include "sinks/query_source.h"

namespace forklift::load {

struct QueryReadPlan {
  sinks::QuerySpec spec;
  std::vector<sinks::QueryColumn> columns;  // the result's
  ChunkerOptions chunker;                   // header and header_names set by ReadQuery
  std::vector<size_t> resume_fields;        // positions of the resume key in the result
  std::vector<PartitionResume> resume;      // one per partition (spec.partitions)
};

// The bounds of range partitions as chunks' source names carry them (RangeSourceSuffix) and
// the ledger gives them back to a rerun (RangeBoundsOf), so that every run of a load splits
// the result alike whatever rows were added since: " of COL at B1,B2,...".
std::string RangeSourceSuffix(const sinks::QuerySpec& spec);
// The bounds in a ledger entry's source name; nullopt when it names none (hash partitions).
std::optional<std::vector<std::string>> RangeBoundsOf(std::string_view source);

struct QueryReadHooks {
  std::function<bool()> stop;                              // read no further
  std::stop_token force;                                   // also interrupt the source's statements
  std::function<void(sinks::Chunk&&)> push;                // a chunk to write
  std::function<void(const sinks::LedgerEntry&)> skipped;  // a committed chunk met again
  std::function<void(const sinks::Chunk&)> chunk_read;     // tests' seam (may be empty)
};

// The name chunks and dead letters of partition `p` carry: "query", or "query partition
// P/N" (1-based).
std::string QuerySourceName(int partition, int partitions);

// Reads every partition to its end (or the stop). Failure: the first partition's error:
// the query's (SQLSTATE and message), a NULL or non-unique resume key (InvalidArgument),
// a chunk met again that differs from the ledger's, or one the stream no longer reaches
// (FailedPrecondition: the result changed under committed chunks).
Status ReadQuery(const QueryReadPlan& plan, ReadCounters* counters, const QueryReadHooks& hooks);

}  // namespace forklift::load

#endif  // FORKLIFT_LOAD_QUERY_READER_H_
