// The `forklift load` run: sources -> chunker (the calling thread) -> bounded queues ->
// one writer per connection (executor workers) -> target, with the ledger in the target's
// transaction, dead letters in the journal, transient failures retried on a new
// connection, progress, and a summary.
#ifndef FORKLIFT_LOAD_LOAD_RUNNER_H_
#define FORKLIFT_LOAD_LOAD_RUNNER_H_

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "forklift/clock.h"
#include "forklift/result.h"
#include "load/load_options.h"
#include "sinks/sink.h"

namespace forklift::sources {
class ByteSource;
}  // namespace forklift::sources
namespace forklift::process {
class ProcessRegistry;
}  // namespace forklift::process

namespace forklift::load {

// What stops a load early: `graceful` reads no further and lets the chunks being written
// commit (queued ones are dropped: never committed, a rerun loads them); `force` also
// cancels the statements in flight.
struct LoadStops {
  std::stop_token graceful;
  std::stop_token force;
};

struct LoadIo {
  FILE* out = stdout;  // --json summary
  FILE* err = stderr;  // progress, the human summary, warnings

  // Seams for tests (faults injected where no real input can cause them); empty means the
  // real behaviour. open_target replaces sinks::Target::Open. chunk_read is called on the
  // reading thread with each chunk read, before it is matched against the ledger (a query
  // load with --partitions: on each partition's thread, concurrently).
  std::function<Result<std::unique_ptr<sinks::Target>>(const sinks::TargetAddress&,
                                                       const sinks::TableSpec&)>
      open_target;
  std::function<void(const sinks::Chunk&)> chunk_read;
  // The time source of the transient-failure backoff and the summary's elapsed time;
  // nullptr means SystemClock(). A forced stop ends a backoff wait at once.
  Clock* clock = nullptr;

  // --transform's processes: each command's group is registered in transform_registry
  // while it runs (nullptr: none), so a watchdog watching it (process/orphan_watchdog.h)
  // ends them if this program is SIGKILLed; transform_env is set in their environment
  // (e.g. the mark `forklift __end-survivors` sweeps by). The registry must outlive RunLoad.
  process::ProcessRegistry* transform_registry = nullptr;
  std::vector<std::pair<std::string, std::string>> transform_env;
};

struct LoadSummary {
  std::string load_id;
  std::string target;  // display form: never the password
  std::string table;
  std::string mode;            // insert | upsert | insert-ignore
  std::string status;          // a journal::RunStatus spelling: succeeded | failed | cancelled
  std::string error;           // why, when not succeeded
  uint64_t rows_read = 0;      // data records read (rejected ones included)
  uint64_t rows_loaded = 0;    // written by this invocation
  uint64_t rows_rejected = 0;  // dead-lettered by this invocation
  uint64_t rows_skipped = 0;   // in chunks an earlier invocation committed
  uint64_t rows_rejected_earlier = 0;  // rejected in those chunks
  // Of rows_loaded: new rows, and existing rows changed (the rest changed nothing: the same
  // values, or a later row of their key won); nullopt when the target did not tell for
  // every chunk (SQLite upserts, a chunk whose COMMIT reply was lost).
  std::optional<uint64_t> rows_inserted;
  std::optional<uint64_t> rows_updated;
  uint64_t chunks_committed = 0;
  uint64_t chunks_skipped = 0;
  uint64_t bytes = 0;    // source bytes read (compressed size for .gz)
  uint64_t retries = 0;  // chunk attempts retried after transient failures
  double elapsed_s = 0;
  double rows_per_s = 0;  // (loaded + rejected) / elapsed
  double mb_per_s = 0;
  int connections = 0;  // opened: at most --workers and (but at least 1) the chunks written
  double peak_rss_mb = 0;
  std::string dlq_path;
  std::string ledger;  // the ledger table, as SQL names it (schema.forklift_load_chunks)

  // Table lifecycle and dialect
  uint64_t rows_duplicate = 0;  // insert-ignore: skipped, as they broke a unique key
  bool replaced = false;        // --replace: the new table was swapped in by this run

  std::string ToJson() const;  // one JSON object, one line
  std::string ToText() const;  // a few human lines
};

// Runs the load to its end. An error return means nothing was loaded: bad options, a
// source or header that cannot be read, a target that cannot be reached or lacks the
// table, too many workers; it names the option, file or value. Otherwise the summary says
// how it ended: failed (a source changed since the ledger's chunks were committed, or
// ends before a chunk the ledger holds: FailedPrecondition naming the file and chunk; a
// fatal database error; --max-errors exceeded; an exception in a writer or the reader:
// Internal naming it) or cancelled (a stop) keep every committed chunk, and rerunning the
// same command resumes. Sources are recorded (ledger, dead letters) by SourceIdentity, so
// `./a.csv` and `a.csv` resume each other; ledgers of earlier versions, which hold the path
// as typed, are matched by file name when that path is relative. Not thread-safe with
// itself on the same io.
Result<LoadSummary> RunLoad(const LoadOptions& options, const LoadStops& stops, LoadIo io);

// Where a chunk of a load through the queue lies (sinks::Chunk's span fields), as the
// coordinator's chunker saw it: the job reads only that.
struct ChunkSlice {
  std::string source;  // Chunk::source: one of the load's sources
  uint64_t begin = 0;  // Chunk::span_begin, span_end, first_line
  uint64_t end = 0;
  uint64_t first_line = 0;
  int partition = 0;
  bool seekable = false;         // Chunk::seekable: else the file is read from its start
  int64_t file_first_chunk = 0;  // Chunk::file_first_chunk
};

// One chunk of a load through the queue (`forklift load --queue`; run by a worker as
// `forklift load ... --queue-chunk N --queue-checksum HEX --queue-slice ...`): plans the
// load as RunLoad would (the same options give the same chunks), reads the chunk (with
// a slice: its byte span of a seekable file, else its file from the start; without: the
// sources from the start) and writes it, its rows and its ledger row in one transaction.
// *bytes_read (when given) gets the source bytes read. Records nothing in the journal
// (the coordinator does). On success, the write's result (already_committed when the
// ledger holds the chunk: nothing was read or written). On failure: PlanLoad's and the
// target's errors (Unavailable: transient), FailedPrecondition when the sources here end
// before the chunk, give it another checksum, or do not hold the slice's source (or it
// is gzip where the slice says seekable), Cancelled on `stop`. Not thread-safe.
Result<sinks::ChunkWriteResult> RunLoadChunk(const LoadOptions& options, int64_t number,
                                             std::string_view checksum,
                                             const std::optional<ChunkSlice>& slice,
                                             const std::stop_token& stop,
                                             uint64_t* bytes_read = nullptr);

// ---- The C++ pipeline's seam (load/pipeline.h) ------------------------------------------

// What the C++ pipeline plugs into RunLoad in place of files and --transform: everything
// else (planning, the target, the ledger, the writers, dead letters, progress, the
// summary) is RunLoad's own.
struct LoadExtension {
  // A source of CSV (delimiter and null as the options say) that starts with a header
  // line naming `source_columns`, instead of options.sources, which must then be empty.
  // `source_name` is what the ledger and dead letters record as the chunks' source. The
  // load id, when options.load_id is empty, hashes the name instead of files' sizes and
  // times (ComputeQueryLoadId with it as the source's identity): a rerun under the same
  // name resumes, and must read the same bytes, or it fails as a changed source.
  std::string source_name;
  std::vector<std::string> source_columns;
  // Called once, on the reading thread, before the first chunk; an error fails the load.
  std::function<Result<std::unique_ptr<sources::ByteSource>>()> open_source;

  // A chunk function instead of options.transform (which must then be empty): runs on
  // `transform_workers` threads through the ordered TransformStage; its output columns
  // are `transform_columns` (the target's), and it must turn its own failures into the
  // chunk's parse_rejects (TransformStage::Transform). `transform_name` is recorded as
  // the load's transform (so `dlq retry` refuses its letters, as for --transform).
  std::function<std::optional<sinks::Chunk>(sinks::Chunk&&)> transform;
  std::vector<std::string> transform_columns;
  std::string transform_name;
  int transform_workers = 1;
};

// RunLoad with `ext`'s source and transform (either may be unset). Fails as RunLoad, and
// with InvalidArgument when ext's source is set with options.sources or a --query, when
// its transform is set with options.transform or without transform_columns, or when a
// --key is not among the source's and the transform's columns.
Result<LoadSummary> RunLoad(const LoadOptions& options, const LoadStops& stops, LoadIo io,
                            const LoadExtension& ext);

}  // namespace forklift::load

#endif  // FORKLIFT_LOAD_LOAD_RUNNER_H_
