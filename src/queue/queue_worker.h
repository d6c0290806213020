// RunWorker: `forklift worker`, the queue's consumer. It leases slices of any open run
// (or of one), runs their jobs `slots` at a time as map runs them locally (process::Run:
// a process group each, --timeout and --termseq from the job), and records each outcome
// fenced by the slice's lease token.
//
// Threads: the calling thread claims and records (one connection); a heartbeat thread,
// which runs no job, renews the leases and reaps expired ones (its own connection); one
// thread per slot runs jobs. A lease the heartbeat finds lost (reaped, its run cancelled
// or gone) has its jobs killed at once; when the heartbeat cannot reach the queue for
// 60% of the lease, the worker kills every job it holds before the lease ends, because
// it no longer owns them (another worker may take them over).
//
// Thread safety: RunWorker may be called from one thread per process; it starts and joins
// its own threads.
#ifndef FORKLIFT_QUEUE_QUEUE_WORKER_H_
#define FORKLIFT_QUEUE_QUEUE_WORKER_H_

#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "core/latency_histogram.h"
#include "forklift/clock.h"
#include "process/process_registry.h"
#include "queue/queue_store.h"
#include "sinks/pg_dsn.h"

namespace forklift::queue {

// What a worker did, filled in by RunWorker before it returns.
struct WorkerStats {
  uint64_t items = 0;            // outcomes recorded
  uint64_t claims = 0;           // claims that returned slices
  core::LatencyHistogram claim;  // their latency: the Claim call's request to its return
};

struct WorkerOptions {
  sinks::PgDsn dsn;                           // --queue; required
  std::string schema = "forklift";            // --queue-schema
  int slots = 1;                              // -j; >= 1
  std::string run;                            // --run RUN_ID; "" (default): any run
  std::optional<Duration> max_idle;           // --max-idle; unset (default): wait for work forever
  Duration lease = std::chrono::seconds(10);  // --lease; >= 1 s
  // Variables every job gets (the CLI marks jobs for its orphan watchdog). Default none.
  std::vector<std::pair<std::string, std::string>> job_env;
  // Unique per process start, never reused ("host-pid-random"); "" (default): NewWorkerId().
  std::string worker_id;
  process::ProcessRegistry* registry = nullptr;  // jobs' groups are registered here
  int stderr_fd = 2;                             // where the worker's messages go
  // Set (serve_queue): runs an item in this process instead of as a command: gets the
  // item and its slice's stop (a lost lease, a forced stop) and returns the outcome's
  // bytes, or nullopt when it was stopped (nothing is recorded). Called on slot threads.
  // Default: none (items are map --queue jobs).
  std::function<std::optional<std::string>(const QueueItem&, const std::stop_token&)> run_item;
  // Claim again while fewer than this many items wait for a slot, so slots never wait
  // for a claim's round trip. Default 0: only when a slot is free.
  size_t prefetch = 0;
  int claim_slices = 1;          // most slices per Claim; >= 1
  WorkerStats* stats = nullptr;  // filled in when set
};

struct WorkerStops {
  std::stop_token graceful;  // claim nothing more, finish and record what is held
  std::stop_token force;     // kill the held jobs and give their slices back
};

// "HOST-PID-RANDOM": a worker identity no other process start has (64 random bits from
// the kernel). Thread-safe.
std::string NewWorkerId();

// Runs until --max-idle passes without work, or a stop. Returns 0 after --max-idle or a
// graceful stop that finished its jobs, 1 after a forced stop, 2 when the queue could not
// be opened at the start (bad DSN, refused login, newer schema), said as one line on
// stderr_fd. Connection losses later are retried (with a message) until a stop.
int RunWorker(const WorkerOptions& options, const WorkerStops& stops);

}  // namespace forklift::queue

#endif  // FORKLIFT_QUEUE_QUEUE_WORKER_H_
