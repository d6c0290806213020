// `forklift load --queue DSN`: this process is the coordinator of a load whose chunks are
// written by `forklift worker` processes on any number of hosts (docs/load.md "Through the
// queue"). It runs RunLoad as a local load does (plan, ledger, chunker, progress, summary,
// journal, dead letters, exit status), with one change: a writer hands each chunk to the
// queue as a job, `forklift load ... --queue-chunk N --queue-checksum HEX`, and waits for
// its outcome. The worker's job re-reads the chunk from the sources (which must be on
// storage every worker reads, at the same path), checks its checksum, and writes its rows
// and its ledger row in one transaction (RunLoadChunk), so the table is exactly-once even
// when a chunk runs twice (a SIGKILLed or partitioned worker). Upserts keep input order
// per key: each writer (one per --workers partition) has one chunk in the queue at a time.
//
// Thread safety: RunQueueLoad is not thread-safe with itself on the same io; the sinks it
// makes are used by RunLoad's writers, one each.
#ifndef FORKLIFT_LOAD_QUEUE_LOAD_H_
#define FORKLIFT_LOAD_QUEUE_LOAD_H_

#include <string>
#include <string_view>
#include <vector>

#include "forklift/result.h"
#include "load/load_options.h"
#include "load/load_runner.h"
#include "sinks/pg_dsn.h"
#include "sinks/sink.h"

namespace forklift::load {

struct QueueLoadOptions {
  sinks::PgDsn dsn;                 // --queue; required
  std::string schema = "forklift";  // --queue-schema
  // What a worker runs for a chunk, before "--queue-chunk N --queue-checksum HEX": the
  // forklift binary (the same path on every host), "load", the coordinator's options
  // without --queue and --queue-schema, and "--queue-cwd DIR" (relative paths).
  std::vector<std::string> worker_argv;
};

// InvalidArgument naming the option for what a load through the queue does not do: a
// --query/--from source, stdin ('-'), --transform, --truncate, --replace, an SQLite
// target (a file on one host). Pure.
Status ValidateQueueLoad(const LoadOptions& options);

// Runs the load as the coordinator. Fails as RunLoad, and with ValidateQueueLoad's errors
// and the queue's (cannot connect, another coordinator follows this load) before
// anything is written. A chunk whose job failed for good (the worker's error, a chunk
// dead-lettered after losing its worker 3 times) fails the load as a local writer's
// error does; a transient one (exit 75) is retried as a lost connection is.
Result<LoadSummary> RunQueueLoad(const LoadOptions& options, const QueueLoadOptions& queue,
                                 const LoadStops& stops, LoadIo io);

// The exit status of a chunk job whose failure is transient (the target unreachable):
// the coordinator retries it. Others are 1.
inline constexpr int kChunkTransientExit = 75;

// A chunk's slice in its job's argv (--queue-span): "BEGIN:END:LINE:PART:SEEKABLE:FIRST"
// (sinks::Chunk's span fields). Decode fails with InvalidArgument for another shape.
std::string EncodeChunkSpan(const sinks::Chunk& chunk);
Result<ChunkSlice> DecodeChunkSpan(std::string source, std::string_view text);

// A chunk job's result on its stdout: one JSON object, with the source bytes the job read
// (source_bytes_read: its span, for a seekable file). Decode fails with DataLoss.
std::string EncodeChunkResult(const sinks::ChunkWriteResult& r, uint64_t source_bytes_read);
Result<sinks::ChunkWriteResult> DecodeChunkResult(std::string_view text);

}  // namespace forklift::load

#endif  // FORKLIFT_LOAD_QUEUE_LOAD_H_
