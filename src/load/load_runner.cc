#include "load/load_runner.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <vector>

#include "forklift/clock.h"
#include "forklift/executor.h"
#include "forklift/retry.h"
#include "journal/journal.h"
#include "load/chunk_queue.h"
#include "load/chunker.h"
#include "load/command_transform.h"
#include "load/dead_letter_file.h"
#include "load/load_id.h"
#include "load/load_progress.h"
#include "load/transform_stage.h"
#include "sinks/pg_dsn.h"
#include "sinks/sink.h"
#include "sources/byte_source.h"
#include "sources/csv_reader.h"
#include "sources/jsonl_reader.h"

namespace forklift::load {
namespace {

using journal::RunStatus;
using sinks::Chunk;
using sinks::LedgerEntry;
using sinks::RejectedRow;

// Transient failures (a restart, too many connections, a deadlock) are retried on a new
// connection for about a minute before the load gives up.
const RetryOptions kTransientRetry{.max_attempts = 25,
                                   .base_delay = std::chrono::milliseconds(100),
                                   .max_delay = std::chrono::seconds(4)};

double PeakRssMb() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // KiB on Linux
}

// What every writer shares: the first fatal error, the stop flags, and the rejected rows
// of the chunks admitted to commit (--max-errors).
class Shared {
 public:
  explicit Shared(std::optional<int64_t> max_errors) : max_errors_(max_errors) {}

  // Of the rows written: inserted, updated, and in chunks whose target did not tell.
  std::atomic<uint64_t> rows_inserted{0}, rows_updated{0}, rows_unsplit{0};

  void Fail(Error e) {
    std::lock_guard lock(mu_);
    if (!error_) error_ = std::move(e);
    stop_.store(true);
  }
  bool stopped() const { return stop_.load(std::memory_order_relaxed); }
  void Stop() { stop_.store(true); }
  std::optional<Error> error() const {
    std::lock_guard lock(mu_);
    return error_;
  }

  // Called just before a chunk with `rejected` rows commits: false when it must not,
  // because --max-errors was exceeded. The chunk that takes the total past the limit is
  // admitted (and stops the load), every later one is refused, so the load stops within
  // one chunk of the limit and the rejected rows it reports are those that committed:
  // the message, the summary, the ledger, the journal's letters and --dlq agree.
  bool AdmitCommit(uint64_t rejected) {
    std::lock_guard lock(admit_mu_);
    if (limit_hit_) return false;
    Count(rejected);
    return true;
  }
  // Rejected rows of a chunk found committed without AdmitCommit (an attempt whose COMMIT
  // reply was lost): they count, and may stop the load, but nothing is refused.
  void CountCommitted(uint64_t rejected) {
    std::lock_guard lock(admit_mu_);
    Count(rejected);
  }

 private:
  void Count(uint64_t rejected) {  // admit_mu_ held
    admitted_rejected_ += rejected;
    if (!limit_hit_ && max_errors_ && admitted_rejected_ > static_cast<uint64_t>(*max_errors_)) {
      limit_hit_ = true;
      Fail(Error{ErrorCode::kAborted,
                 fmt::format("stopped after {} rejected rows (--max-errors {}); committed "
                             "chunks stay committed, rerun to resume",
                             admitted_rejected_, *max_errors_)});
    }
  }

  std::optional<int64_t> max_errors_;
  mutable std::mutex mu_;
  std::optional<Error> error_;
  std::atomic<bool> stop_{false};
  std::mutex admit_mu_;
  uint64_t admitted_rejected_ = 0;  // guarded by admit_mu_
  bool limit_hit_ = false;          // guarded by admit_mu_
};

std::vector<journal::DeadLetter> DeadLetters(const std::string& load_id, const Chunk& chunk,
                                             std::span<const RejectedRow> rejected) {
  std::vector<journal::DeadLetter> out;
  out.reserve(chunk.parse_rejects.size() + rejected.size());
  for (const auto& p : chunk.parse_rejects) {
    // DataLoss marks a record cut to the reject size limit: `dlq retry` refuses it.
    out.push_back({.run_id = load_id,
                   .key = fmt::format("{}:{}", chunk.source, p.line),
                   .source = chunk.source,
                   .position = fmt::format("line {}", p.line),
                   .payload = p.raw,
                   .reason = p.reason,
                   .code = IsTruncatedReject(p.reason, p.raw.size()) ? ErrorCode::kDataLoss
                                                                     : ErrorCode::kInvalidArgument,
                   .attempts = 1,
                   .chunk = chunk.number});
  }
  for (const RejectedRow& r : rejected) {
    const uint64_t line = chunk.rows[r.row].line;
    out.push_back(
        {.run_id = load_id,
         .key = fmt::format("{}:{}", chunk.source, line),
         .source = chunk.source,
         .position = fmt::format("line {}", line),
         .payload = std::string(chunk.Row(r.row)),
         .reason = r.sqlstate.empty() ? r.reason : fmt::format("{}: {}", r.sqlstate, r.reason),
         .code = ErrorCode::kInvalidArgument,
         .attempts = 1,
         .chunk = chunk.number});
  }
  return out;
}

// The writers' connections, opened as writers first get a chunk, so that a load of fewer
// chunks than --workers opens no idle connection. The first is opened before reading
// starts (a target that takes no connection fails the load before anything is read) and
// goes to the first writer that asks. Thread-safe.
class SinkPool {
 public:
  SinkPool(sinks::Target* target, Clock* clock) : target_(target), clock_(clock) {}

  Status OpenFirst() {
    std::lock_guard lock(mu_);
    FORKLIFT_ASSIGN_OR_RETURN(spare_, target_->OpenSink());
    ++opened_;
    return {};
  }

  // The spare connection, else a new one. Transient failures (too many connections, a
  // restart) are retried like a chunk's.
  Result<std::unique_ptr<sinks::Sink>> Take(std::mt19937_64& rng, const std::stop_token& force) {
    {
      std::lock_guard lock(mu_);
      if (spare_) return std::move(spare_);
    }
    for (int attempt = 1;; ++attempt) {
      Result<std::unique_ptr<sinks::Sink>> sink = [&] {
        std::lock_guard lock(mu_);  // a Target is used from one thread at a time
        return target_->OpenSink();
      }();
      if (sink) {
        opened_.fetch_add(1);
        return sink;
      }
      if (sink.error().code != ErrorCode::kUnavailable || attempt >= kTransientRetry.max_attempts ||
          force.stop_requested()) {
        return sink;
      }
      if (!clock_->SleepUntil(clock_->Now() + BackoffDelay(kTransientRetry, attempt, rng), force)) {
        return sink;  // a forced stop ends the wait
      }
    }
  }

  int opened() const { return opened_.load(); }

 private:
  sinks::Target* target_;
  Clock* clock_;
  std::mutex mu_;
  std::unique_ptr<sinks::Sink> spare_;  // guarded by mu_
  std::atomic<int> opened_{0};
};

// One connection's loop: takes chunks from its queue and commits each exactly once.
class Writer {
 public:
  Writer(SinkPool* pool, std::unique_ptr<journal::Journal> journal, std::string load_id,
         ChunkQueue* queue, Shared* shared, WriteCounters* counters, Clock* clock, uint64_t seed)
      : pool_(pool),
        journal_(std::move(journal)),
        load_id_(std::move(load_id)),
        queue_(queue),
        shared_(shared),
        counters_(counters),
        clock_(clock),
        rng_(seed) {}

  // Interrupts the statement in flight, if the writer has a connection. Thread-safe.
  void Cancel() {
    std::lock_guard lock(cancel_mu_);
    if (sink_) sink_->Cancel();
  }

  // Never throws: an exception (std::bad_alloc, a sink's) fails the load naming it, and
  // discards the queue, so that the reader never blocks on a queue nobody drains.
  void Run(const LoadStops& stops) {
    const std::stop_token& force = stops.force;
    std::string where = "before its first chunk";
    try {
      while (std::optional<Chunk> chunk = queue_->Pop()) {
        // After a stop, queued chunks are drained, not written: never committed, a rerun
        // loads them.
        if (shared_->stopped() || stops.graceful.stop_requested() || force.stop_requested()) {
          continue;
        }
        where = fmt::format("chunk {} ({} lines {}-{})", chunk->number, chunk->source,
                            chunk->first_line, chunk->last_line);
        if (!sink_) {
          auto sink = pool_->Take(rng_, force);
          if (!sink) {
            shared_->Fail(sink.error());
            queue_->Discard();  // nobody else drains a partition's queue
            continue;
          }
          std::lock_guard lock(cancel_mu_);
          sink_ = std::move(*sink);
        }
        Write(*chunk, force);
      }
    } catch (const std::exception& e) {
      Abandon(where, e.what());
    } catch (...) {
      Abandon(where, "an exception that is not a std::exception");
    }
  }

 private:
  void Write(const Chunk& chunk, const std::stop_token& force) {
    // Even a chunk that rejects nothing records so: an earlier attempt that never
    // committed (lost, killed, refused at COMMIT) may have left letters that `dlq retry`
    // would otherwise load as well as this attempt does. Cheap when there are none.
    bool admitted = false;
    auto before_commit = [&](std::span<const RejectedRow> rejected) -> Status {
      if (!shared_->AdmitCommit(rejected.size() + chunk.parse_rejects.size())) {
        return AbortedError("not committed: the load stopped at --max-errors");
      }
      admitted = true;
      auto letters = DeadLetters(load_id_, chunk, rejected);
      auto ids = journal_->PutChunkDeadLetters(load_id_, chunk.number, letters);
      if (!ids) return tl::unexpected(ids.error());
      return {};
    };
    for (int attempt = 1;; ++attempt) {
      admitted = false;
      auto r = sink_->WriteChunk(chunk, before_commit);
      if (r) {
        Committed(static_cast<uint64_t>(r->rows_written),
                  r->rejected.size() + chunk.parse_rejects.size(), admitted);
        if (r->rows_inserted && r->rows_updated) {
          shared_->rows_inserted.fetch_add(static_cast<uint64_t>(*r->rows_inserted));
          shared_->rows_updated.fetch_add(static_cast<uint64_t>(*r->rows_updated));
        } else {
          shared_->rows_unsplit.fetch_add(static_cast<uint64_t>(r->rows_written));
        }
        return;
      }
      if (r.error().code != ErrorCode::kUnavailable || attempt >= kTransientRetry.max_attempts ||
          force.stop_requested()) {
        Error e = r.error();
        e.message = fmt::format("chunk {} ({} lines {}-{}): {}", chunk.number, chunk.source,
                                chunk.first_line, chunk.last_line, e.message);
        shared_->Fail(std::move(e));
        return;
      }
      counters_->retries.fetch_add(1);
      // Wait, reconnect, and ask the ledger whether the lost attempt committed after all
      // (a connection can drop between COMMIT and its reply).
      for (;; ++attempt) {
        clock_->SleepUntil(clock_->Now() + BackoffDelay(kTransientRetry, attempt, rng_), force);
        if (force.stop_requested()) {
          shared_->Fail(Error{ErrorCode::kCancelled, "cancelled while reconnecting"});
          return;
        }
        auto st = sink_->Reconnect();
        if (st) break;
        if (attempt >= kTransientRetry.max_attempts || st.error().code != ErrorCode::kUnavailable) {
          shared_->Fail(st.error());
          return;
        }
      }
      auto found = sink_->FindChunk(chunk.number);
      if (found && *found) {
        Committed(static_cast<uint64_t>((*found)->rows), static_cast<uint64_t>((*found)->rejected),
                  /*admitted=*/false);
        shared_->rows_unsplit.fetch_add(static_cast<uint64_t>((*found)->rows));
        return;
      }
    }
  }

  void Abandon(const std::string& where, std::string_view what) {
    shared_->Fail(Error{ErrorCode::kInternal,
                        fmt::format("{}: writer stopped by an exception: {}; committed chunks "
                                    "stay committed, rerun to resume",
                                    where, what)});
    queue_->Discard();
  }

  void Committed(uint64_t rows, uint64_t rejected, bool admitted) {
    counters_->rows_loaded.fetch_add(rows, std::memory_order_relaxed);
    counters_->chunks_committed.fetch_add(1, std::memory_order_relaxed);
    counters_->rows_rejected.fetch_add(rejected, std::memory_order_relaxed);
    if (!admitted) shared_->CountCommitted(rejected);
  }

  SinkPool* pool_;
  std::mutex cancel_mu_;               // sink_ is set once, under it; Cancel reads it
  std::unique_ptr<sinks::Sink> sink_;  // opened on the first chunk
  std::unique_ptr<journal::Journal> journal_;
  std::string load_id_;
  ChunkQueue* queue_;
  Shared* shared_;
  WriteCounters* counters_;
  Clock* clock_;  // the backoff's, between reconnects
  std::mt19937_64 rng_;
};

nlohmann::json ConfigJson(const LoadOptions& o, const sinks::TargetAddress& address,
                          const std::vector<std::string>& columns) {
  return nlohmann::json{
      {"to", address.password.empty() ? o.to : std::string()},
      {"to_display", address.display},
      {"needs_password", !address.password.empty()},
      {"table", o.table},
      {"mode", o.upsert ? "upsert" : "insert"},
      {"key", o.key},
      {"columns", columns},
      {"delimiter", std::string(1, o.delimiter)},
      {"null", o.null_string},
      {"chunk_rows", o.chunk_rows},
      {"ledger_schema", o.ledger_schema},
      {"transform", o.transform},
  };
}

// Whether the ledger's `recorded` source is the chunk's `now` (a SourceIdentity). Earlier
// versions recorded the path as typed; a relative one is matched by its file name (its
// working directory is not known), the chunk's checksum and lines still being verified.
bool SameSource(const std::string& recorded, const std::string& now) {
  if (recorded == now) return true;
  const std::filesystem::path r(recorded);
  return r.is_relative() && r.filename() == std::filesystem::path(now).filename();
}

// Closes the queues however reading ends (an exception included): a writer blocked in Pop
// on an open queue would keep the task group's destructor waiting forever.
class CloseOnExit {
 public:
  explicit CloseOnExit(std::vector<std::unique_ptr<ChunkQueue>>& queues) : queues_(queues) {}
  ~CloseOnExit() {
    for (auto& q : queues_) q->Close();
  }
  CloseOnExit(const CloseOnExit&) = delete;
  CloseOnExit& operator=(const CloseOnExit&) = delete;

 private:
  std::vector<std::unique_ptr<ChunkQueue>>& queues_;
};

}  // namespace

std::string LoadSummary::ToJson() const {
  nlohmann::json j{
      {"load_id", load_id},
      {"target", target},
      {"table", table},
      {"mode", mode},
      {"status", status},
      {"error", error},
      {"rows_read", rows_read},
      {"rows_loaded", rows_loaded},
      {"rows_rejected", rows_rejected},
      {"rows_skipped", rows_skipped},
      {"rows_rejected_earlier", rows_rejected_earlier},
      {"rows_inserted", rows_inserted ? nlohmann::json(*rows_inserted) : nlohmann::json()},
      {"rows_updated", rows_updated ? nlohmann::json(*rows_updated) : nlohmann::json()},
      {"rows_unchanged", rows_inserted && rows_updated
                             ? nlohmann::json(rows_loaded - *rows_inserted - *rows_updated)
                             : nlohmann::json()},
      {"chunks_committed", chunks_committed},
      {"chunks_skipped", chunks_skipped},
      {"bytes", bytes},
      {"retries", retries},
      {"elapsed_s", elapsed_s},
      {"rows_per_s", rows_per_s},
      {"mb_per_s", mb_per_s},
      {"connections", connections},
      {"peak_rss_mb", peak_rss_mb},
      {"dlq", dlq_path},
  };
  return j.dump();
}

namespace {

// "1 row", "2 rows".
std::string Counted(uint64_t n, std::string_view one, std::string_view many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

}  // namespace

std::string LoadSummary::ToText() const {
  std::string s = fmt::format(
      "load {} {}: {} read, {} loaded{}, {} rejected{}\n"
      "  {} -> {} ({}), {}\n"
      "  {:.1f} MB in {:.2f} s: {:.0f} rows/s, {:.1f} MB/s, {} committed, {} skipped, "
      "{}, peak RSS {:.1f} MB\n",
      load_id, status, Counted(rows_read, "row", "rows"), rows_loaded,
      mode == "upsert" && rows_inserted && rows_updated
          ? fmt::format(" ({} inserted, {} updated, {} unchanged)", *rows_inserted, *rows_updated,
                        rows_loaded - *rows_inserted - *rows_updated)
          : std::string(),
      rows_rejected,
      chunks_skipped == 0 ? std::string()
                          : fmt::format(", {} already loaded (resumed)", rows_skipped),
      target, table, mode, Counted(static_cast<uint64_t>(connections), "connection", "connections"),
      static_cast<double>(bytes) / 1e6, elapsed_s, rows_per_s, mb_per_s,
      Counted(chunks_committed, "chunk", "chunks"), chunks_skipped,
      Counted(retries, "retry", "retries"), peak_rss_mb);
  if (rows_rejected > 0) {
    s += fmt::format("  rejected rows: forklift dlq show {}{}\n", load_id,
                     dlq_path.empty() ? "" : " (and " + dlq_path + ")");
  }
  if (journal::ParseRunStatus(status) == journal::RunStatus::kSucceeded && chunks_committed == 0 &&
      chunks_skipped > 0) {
    // A rerun after the table was emptied (TRUNCATE) lands here: the ledger still says
    // every chunk is in. Say so, and how to load the files again.
    s += fmt::format(
        "  every chunk of load {} was already loaded (the ledger {} records all {}), so "
        "nothing was written. To load the files again: give another --load-id, or forget "
        "this load's chunks: DELETE FROM {} WHERE load_id = {};\n",
        load_id, ledger, Counted(chunks_skipped, "chunk", "chunks"), ledger,
        sinks::QuoteLiteral(load_id));
  }
  if (!error.empty()) s += fmt::format("  error: {}\n", error);
  return s;
}

namespace {

// What a load decided before it touches the target: the sources as recorded, the columns,
// the key, the writers and the load id.
struct LoadPlan {
  sinks::TargetAddress address;
  std::vector<std::string> sources;       // SourceIdentity of each --source, in order
  std::vector<std::string> header;        // the first file's header (empty with --no-header)
  std::vector<std::string> columns;       // the target's (a --transform's output columns)
  std::vector<std::string> read_columns;  // the input's (columns, but for a --transform)
  std::optional<CommandTransform> transform;
  std::vector<size_t> key_fields;  // positions of --key among read_columns (routing)
  bool json_lines = false;         // the sources are JSON Lines (they have no header)
  bool fold_header_case = false;   // PostgreSQL folds unquoted names, SQLite does not
  bool sqlite = false;
  int workers = 1;
  int partitions = 1;        // upserts route each key to one writer's queue
  uint64_t total_bytes = 0;  // of every source, for the progress bar
  sinks::TableSpec spec;
};

// The first file's header, after checking every file has the same one (before the first
// chunk commits: a later file's that differs would otherwise fail the load half-done).
// Warns on `err` of names with blanks around them.
Result<std::vector<std::string>> ReadSameHeader(const LoadOptions& options, bool fold_case,
                                                FILE* err) {
  std::vector<std::string> trimmed;
  const auto max_record = static_cast<size_t>(options.max_record_bytes);
  FORKLIFT_ASSIGN_OR_RETURN(auto header, ReadHeader(options.sources[0], options.delimiter,
                                                    max_record, fold_case, &trimmed));
  for (size_t i = 1; i < options.sources.size(); ++i) {
    FORKLIFT_ASSIGN_OR_RETURN(
        auto h, ReadHeader(options.sources[i], options.delimiter, max_record, fold_case, &trimmed));
    if (h != header) {
      return InvalidArgumentError(fmt::format(
          "{}: header ({}) differs from the first file's ({}: {}); nothing loaded",
          options.sources[i], fmt::join(h, ","), options.sources[0], fmt::join(header, ",")));
    }
  }
  std::set<std::string> warned;
  for (const std::string& t : trimmed) {
    if (!warned.insert(t).second || !err) continue;
    sources::CsvField f{.value = t};
    fmt::print(err,
               "forklift load: warning: header column '{}' has blanks around its name: "
               "read as '{}'\n",
               t, HeaderName(f, fold_case, nullptr));
  }
  return header;
}

// --transform: probes the command on the input's header (a command that cannot run fails
// here, before anything is written) and makes its output columns the target's. Routing
// stays on the input's key values, so the key must be among both.
Status PlanTransform(const LoadOptions& options, const std::stop_token& stop, LoadPlan& plan) {
  if (options.transform.empty()) return {};
  FORKLIFT_ASSIGN_OR_RETURN(
      CommandTransform t,
      CommandTransform::Probe({.command = options.transform,
                               .timeout = options.transform_timeout,
                               .delimiter = options.delimiter,
                               .input_columns = plan.read_columns,
                               .fold_header_case = plan.fold_header_case,
                               .max_output_bytes = std::max<size_t>(
                                   size_t{64} << 20, 4 * static_cast<size_t>(options.chunk_bytes))},
                              stop));
  plan.columns = t.output_columns();
  for (const std::string& k : options.key) {
    if (std::find(plan.columns.begin(), plan.columns.end(), k) == plan.columns.end()) {
      return InvalidArgumentError(fmt::format(
          "--key {}: not among the output columns of --transform ({}); a key must be a column "
          "of both the input and the output",
          k, fmt::join(plan.columns, ",")));
    }
  }
  plan.transform = std::move(t);
  return {};
}

Result<LoadPlan> PlanLoad(const LoadOptions& options, FILE* err, const std::stop_token& stop) {
  FORKLIFT_RETURN_IF_ERROR(ValidateLoadOptions(options));
  LoadPlan plan;
  FORKLIFT_ASSIGN_OR_RETURN(plan.address, sinks::ParseTargetAddress(options.to));
  FORKLIFT_ASSIGN_OR_RETURN(auto qualified, sinks::ParseQualifiedName(options.table));
  for (const std::string& src : options.sources) plan.sources.push_back(SourceIdentity(src));

  // JSON Lines or CSV, every source alike: one load is one shape of input.
  plan.json_lines = sources::IsJsonLinesPath(options.sources[0]);
  for (const std::string& src : options.sources) {
    if (sources::IsJsonLinesPath(src) != plan.json_lines) {
      return InvalidArgumentError(
          fmt::format("{}: one load reads CSV or JSON Lines, not both ({} is {}); load them apart",
                      src, options.sources[0], plan.json_lines ? "JSON Lines" : "CSV"));
    }
  }
  // The columns: --columns, else the first file's header, else the table's columns (JSON
  // Lines name their fields in every line: the table's columns, or --columns, say which).
  plan.fold_header_case = plan.address.kind == sinks::TargetAddress::Kind::kPostgres;
  if (options.header && !plan.json_lines) {
    FORKLIFT_ASSIGN_OR_RETURN(plan.header, ReadSameHeader(options, plan.fold_header_case, err));
  }
  plan.columns = options.columns.empty() ? plan.header : options.columns;
  if (plan.columns.empty()) {  // --no-header and no --columns
    FORKLIFT_ASSIGN_OR_RETURN(
        plan.columns, sinks::ReadTableColumns(plan.address, qualified.first, qualified.second));
  }
  for (const std::string& k : options.key) {
    auto it = std::find(plan.columns.begin(), plan.columns.end(), k);
    if (it == plan.columns.end()) {
      return InvalidArgumentError(fmt::format("--key {}: not among the input's columns ({})", k,
                                              fmt::join(plan.columns, ",")));
    }
    plan.key_fields.push_back(static_cast<size_t>(it - plan.columns.begin()));
  }
  plan.read_columns = plan.columns;
  FORKLIFT_RETURN_IF_ERROR(PlanTransform(options, stop, plan));
  for (const std::string& src : options.sources) {
    FORKLIFT_ASSIGN_OR_RETURN(auto bs, sources::ByteSource::Open(src));
    plan.total_bytes += bs->file_size();
  }

  plan.sqlite = plan.address.kind == sinks::TargetAddress::Kind::kSqlite;
  plan.workers = options.workers > 0 ? options.workers : (plan.sqlite ? 1 : 4);
  if (plan.sqlite && plan.workers > 1) {
    return InvalidArgumentError(
        fmt::format("--workers {}: an SQLite target takes one writer at a time (use --workers 1)",
                    plan.workers));
  }
  plan.partitions = options.upsert ? plan.workers : 1;
  std::string load_id = options.load_id;
  if (load_id.empty()) {
    FORKLIFT_ASSIGN_OR_RETURN(
        load_id, ComputeLoadId(options, plan.address.identity, plan.columns, plan.partitions));
  }
  plan.spec = sinks::TableSpec{.schema = qualified.first,
                               .table = qualified.second,
                               .columns = plan.columns,
                               .key = options.key,
                               .upsert = options.upsert,
                               .delimiter = options.delimiter,
                               .null_string = options.null_string,
                               .load_id = std::move(load_id),
                               .ledger_schema = options.ledger_schema};
  return plan;
}

// Opens and claims the target, checks --workers against the server, makes sure the ledger
// exists.
Result<std::unique_ptr<sinks::Target>> OpenTarget(const LoadPlan& plan, const LoadIo& io) {
  FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<sinks::Target> target,
                            io.open_target ? io.open_target(plan.address, plan.spec)
                                           : sinks::Target::Open(plan.address, plan.spec));
  FORKLIFT_RETURN_IF_ERROR(target->ClaimLoad());
  FORKLIFT_ASSIGN_OR_RETURN(int max_workers, target->MaxWorkers());
  if (!plan.sqlite && plan.workers > max_workers) {
    return InvalidArgumentError(fmt::format(
        "--workers {} is more than half of the server's max_connections ({}): at most {}",
        plan.workers, max_workers * 2, max_workers));
  }
  FORKLIFT_RETURN_IF_ERROR(target->EnsureLedger());
  return target;
}

// The ledger's chunks, matched against the chunks read: a chunk the ledger holds is
// skipped if it is the same chunk (source, lines, checksum), else the load refuses to
// resume. Used on the reading thread only.
class LedgerMatch {
 public:
  LedgerMatch(std::string load_id, std::vector<LedgerEntry> entries)
      : load_id_(std::move(load_id)) {
    for (auto& e : entries) committed_.emplace(e.chunk, std::move(e));
  }

  // The entry of a committed `chunk` (to skip it), nullptr for a chunk to write, or
  // FailedPrecondition when the ledger's chunk of that number is not this one.
  Result<const LedgerEntry*> Find(const Chunk& chunk) {
    auto it = committed_.find(chunk.number);
    if (it == committed_.end()) return nullptr;
    const LedgerEntry& e = it->second;
    seen_.insert(chunk.number);
    if (e.checksum != chunk.checksum || !SameSource(e.source, chunk.source) ||
        e.first_line != static_cast<int64_t>(chunk.first_line) ||
        e.last_line != static_cast<int64_t>(chunk.last_line)) {
      return FailedPreconditionError(
          fmt::format("{}: source changed since load {} committed chunk {} (lines {}-{} of {}, "
                      "checksum {}; now lines {}-{}, checksum {}): not resuming",
                      chunk.source, load_id_, chunk.number, e.first_line, e.last_line, e.source,
                      e.checksum, chunk.first_line, chunk.last_line, chunk.checksum));
    }
    return &e;
  }

  // After every source was read: each chunk the ledger holds must have been among them,
  // or a source cut at a chunk boundary would "resume" to success with rows it no longer has.
  Status AllFound() const {
    for (const auto& [number, e] : committed_) {
      if (seen_.count(number)) continue;
      return FailedPreconditionError(
          fmt::format("{}: source changed since load {} committed chunk {} (lines {}-{}, "
                      "{} rows): the sources now end before it; not resuming",
                      e.source, load_id_, number, e.first_line, e.last_line, e.rows));
    }
    return {};
  }

 private:
  std::string load_id_;
  std::map<int64_t, LedgerEntry> committed_;
  std::set<int64_t> seen_;
};

// The reading side, on the calling thread: every source through the chunker into the
// writers' queues, skipping committed chunks. Ends early on a stop; a failure (or an
// exception) goes to `shared`, naming the file.
void ReadSources(const LoadOptions& options, const LoadPlan& plan, sinks::Target& target,
                 LedgerMatch& ledger, std::vector<std::unique_ptr<ChunkQueue>>& queues,
                 const LoadIo& io, const LoadStops& stops, Shared& shared, ReadCounters& rcounters,
                 WriteCounters& wcounters, uint64_t& rejected_earlier) {
  ChunkerOptions copts{.partitions = plan.partitions,
                       .key_fields = plan.key_fields,
                       .canonical_key = target.CanonicalKey(),
                       .chunk_rows = options.chunk_rows,
                       .chunk_bytes = options.chunk_bytes,
                       .delimiter = options.delimiter,
                       .header = options.header && !plan.json_lines,
                       .columns = plan.read_columns.size(),
                       .header_names = plan.header,
                       .fold_header_case = plan.fold_header_case,
                       .max_record_bytes = static_cast<size_t>(options.max_record_bytes),
                       .column_names = plan.read_columns,
                       .null_string = options.null_string};
  Chunker chunker(copts, &rcounters);
  auto stop = [&] { return shared.stopped() || stops.graceful.stop_requested(); };
  auto to_queue = [&](Chunk&& chunk) {
    const size_t q = options.upsert ? static_cast<size_t>(chunk.partition) : 0;
    queues[q]->Push(std::move(chunk));
  };
  // --transform: chunks to write go through the stage, which hands them on in order. A
  // stop ends the transforms running (their chunks are dropped, as queued ones are).
  std::stop_source transform_stop;
  std::stop_callback on_graceful(stops.graceful, [&] { transform_stop.request_stop(); });
  std::stop_callback on_force(stops.force, [&] { transform_stop.request_stop(); });
  std::optional<TransformStage> stage;
  if (plan.transform) {
    stage.emplace(
        options.cpu_workers,
        [&t = *plan.transform, token = transform_stop.get_token()](Chunk&& c) {
          return t.Apply(std::move(c), token);
        },
        to_queue);
  }
  auto emit = [&](Chunk&& chunk) -> Status {
    if (io.chunk_read) io.chunk_read(chunk);
    FORKLIFT_ASSIGN_OR_RETURN(const LedgerEntry* e, ledger.Find(chunk));
    if (e) {
      wcounters.rows_skipped.fetch_add(static_cast<uint64_t>(e->rows));
      rejected_earlier += static_cast<uint64_t>(e->rejected);
      wcounters.chunks_skipped.fetch_add(1);
      return {};
    }
    if (stage) return stage->Push(std::move(chunk));
    to_queue(std::move(chunk));
    return {};
  };
  std::string reading = plan.sources[0];
  try {
    for (const std::string& src : plan.sources) {
      if (stop()) break;
      reading = src;
      if (Status st = chunker.ReadFile(src, emit, stop); !st) {
        shared.Fail(st.error());
        return;
      }
    }
    if (stage) {
      if (Status st = stage->Finish(); !st) {
        shared.Fail(st.error());
        return;
      }
    }
    if (!stop()) {
      if (Status st = ledger.AllFound(); !st) shared.Fail(st.error());
    }
    for (const auto& [name, n] : chunker.unknown_fields()) {
      if (!io.err) break;
      fmt::print(io.err, "forklift load: warning: {} in {} {}: not a column of {}, not loaded\n",
                 name == "..." ? std::string("more fields") : "field '" + name + "'", n,
                 n == 1 ? "line" : "lines", options.table);
    }
  } catch (const std::exception& e) {
    shared.Fail(Error{ErrorCode::kInternal,
                      fmt::format("reading {}: stopped by an exception: {}", reading, e.what())});
  } catch (...) {
    shared.Fail(
        Error{ErrorCode::kInternal, fmt::format("reading {}: stopped by an exception that is not a "
                                                "std::exception",
                                                reading)});
  }
}

// How the load ended, from its counters (the --dlq file and peak RSS are the caller's).
LoadSummary Summarize(const LoadOptions& options, const LoadPlan& plan, const LoadStops& stops,
                      const Shared& shared, const ReadCounters& rcounters,
                      const WriteCounters& wcounters, uint64_t rejected_earlier, int connections,
                      double elapsed_s) {
  LoadSummary s;
  s.load_id = plan.spec.load_id;
  s.target = plan.address.display;
  s.table = options.table;
  s.mode = options.upsert ? "upsert" : "insert";
  s.rows_read = rcounters.rows.load();
  s.rows_loaded = wcounters.rows_loaded.load();
  s.rows_rejected = wcounters.rows_rejected.load();
  s.rows_skipped = wcounters.rows_skipped.load();
  s.rows_rejected_earlier = rejected_earlier;
  if (!options.upsert) {
    s.rows_inserted = s.rows_loaded;
    s.rows_updated = 0;
  } else if (shared.rows_unsplit.load() == 0) {
    s.rows_inserted = shared.rows_inserted.load();
    s.rows_updated = shared.rows_updated.load();
  }
  s.chunks_committed = wcounters.chunks_committed.load();
  s.chunks_skipped = wcounters.chunks_skipped.load();
  s.bytes = rcounters.source_bytes.load();
  s.retries = wcounters.retries.load();
  s.elapsed_s = elapsed_s;
  s.rows_per_s = static_cast<double>(s.rows_loaded + s.rows_rejected) / std::max(s.elapsed_s, 1e-9);
  s.mb_per_s = static_cast<double>(s.bytes) / 1e6 / std::max(s.elapsed_s, 1e-9);
  s.connections = connections;
  if (auto e = shared.error()) {
    s.status =
        ToString(e->code == ErrorCode::kCancelled ? RunStatus::kCancelled : RunStatus::kFailed);
    s.error = sinks::MaskSecret(e->ToString(), plan.address.password);
  } else if (stops.graceful.stop_requested() || stops.force.stop_requested()) {
    s.status = ToString(RunStatus::kCancelled);
    s.error = "stopped by a signal; committed chunks stay committed, rerun to resume";
  } else if (s.rows_read > 0 && s.rows_loaded == 0 && s.rows_skipped == 0) {
    // Every row was rejected: nothing of the input is in the table.
    s.status = ToString(RunStatus::kFailed);
    s.error = fmt::format("no row loaded: all {} rejected (forklift dlq show {})", s.rows_rejected,
                          s.load_id);
  } else {
    s.status = ToString(RunStatus::kSucceeded);
  }
  const std::string& ledger_schema =
      options.ledger_schema.empty() ? plan.spec.schema : options.ledger_schema;
  s.ledger = ledger_schema.empty() ? std::string("forklift_load_chunks")
                                   : ledger_schema + ".forklift_load_chunks";
  return s;
}

}  // namespace

Result<LoadSummary> RunLoad(const LoadOptions& options, const LoadStops& stops, LoadIo io) {
  Clock& clock = io.clock ? *io.clock : SystemClock();
  const TimePoint start = clock.Now();
  FORKLIFT_ASSIGN_OR_RETURN(LoadPlan plan, PlanLoad(options, io.err, stops.graceful));
  const std::string& load_id = plan.spec.load_id;
  FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<sinks::Target> target, OpenTarget(plan, io));
  FORKLIFT_ASSIGN_OR_RETURN(std::vector<LedgerEntry> committed, target->CommittedChunks());
  LedgerMatch ledger(load_id, std::move(committed));

  const std::string journal_path = journal::ResolveJournalPath(options.journal_path);
  auto journal = journal::Journal::Open(journal_path);
  if (!journal) {
    return InvalidArgumentError("--journal: " + journal.error().message);
  }
  FORKLIFT_RETURN_IF_ERROR((*journal)->BeginRun(load_id, "load", sinks::ShownTable(plan.spec)));
  const nlohmann::json config = ConfigJson(options, plan.address, plan.columns);
  FORKLIFT_RETURN_IF_ERROR((*journal)->FinishRun(load_id, journal::RunStatus::kRunning,
                                                 nlohmann::json{{"config", config}}.dump()));
  // A failure from here on ends a run the journal has begun: record it as failed.
  auto failed = [&](const Error& e) {
    (void)(*journal)->FinishRun(load_id, journal::RunStatus::kFailed,
                                nlohmann::json{{"config", config}, {"error", e.ToString()}}.dump());
    return tl::unexpected(e);
  };

  // One queue per writer for upserts (a key's rows go to one connection), else one shared.
  Shared shared(options.max_errors);
  WriteCounters wcounters;
  ReadCounters rcounters;
  std::vector<std::unique_ptr<ChunkQueue>> queues;
  const int nqueues = options.upsert ? plan.workers : 1;
  for (int i = 0; i < nqueues; ++i) {
    queues.push_back(
        std::make_unique<ChunkQueue>(options.upsert ? 2 : 2 * static_cast<size_t>(plan.workers)));
  }
  SinkPool pool(target.get(), &clock);
  if (Status st = pool.OpenFirst(); !st) return failed(st.error());
  std::vector<std::unique_ptr<Writer>> writers;
  std::random_device rd;
  for (int i = 0; i < plan.workers; ++i) {
    auto wj = journal::Journal::Open(journal_path);
    if (!wj) return failed(wj.error());
    writers.push_back(std::make_unique<Writer>(&pool, std::move(*wj), load_id,
                                               queues[options.upsert ? i : 0].get(), &shared,
                                               &wcounters, &clock, rd()));
  }
  auto executor_or =
      Executor::Create({.workers = static_cast<size_t>(plan.workers), .queue_capacity = 64});
  if (!executor_or) return failed(executor_or.error());
  std::unique_ptr<Executor> executor = std::move(*executor_or);
  uint64_t rejected_earlier = 0;  // in the chunks skipped (the reading thread's)
  LoadProgress progress(options.display, options.progress_interval, io.err, plan.total_bytes,
                        &rcounters, &wcounters);
  progress.Start();
  // A forced stop interrupts the statements in flight.
  std::stop_callback on_force(stops.force, [&] {
    shared.Stop();
    for (auto& q : queues) q->Discard();
    for (auto& w : writers) w->Cancel();
  });
  {
    TaskGroup group(*executor);
    CloseOnExit close_queues(queues);  // destroyed first: before the group waits
    for (auto& w : writers) {
      Writer* writer = w.get();
      Status st = group.Run([writer, &stops] { writer->Run(stops); });
      if (!st) {  // a writer that never runs would leave its queue full
        shared.Fail(st.error());
        for (auto& q : queues) q->Discard();
      }
    }
    ReadSources(options, plan, *target, ledger, queues, io, stops, shared, rcounters, wcounters,
                rejected_earlier);
  }
  executor->Shutdown();
  progress.Stop();

  const double elapsed_s = std::chrono::duration<double>(clock.Now() - start).count();
  LoadSummary s = Summarize(options, plan, stops, shared, rcounters, wcounters, rejected_earlier,
                            pool.opened(), elapsed_s);
  if (!options.dlq_path.empty()) {
    s.dlq_path = options.dlq_path;
    auto letters = (*journal)->ListDeadLetters(load_id, /*include_retried=*/false);
    Status st = letters ? WriteDeadLetterFile(options.dlq_path, *letters)
                        : Status(tl::unexpected(letters.error()));
    if (!st) {
      s.status = ToString(RunStatus::kFailed);
      s.error += (s.error.empty() ? "" : "; ") + st.error().ToString();
    }
  }
  s.peak_rss_mb = PeakRssMb();
  nlohmann::json summary = nlohmann::json::parse(s.ToJson());
  summary["config"] = config;
  (void)(*journal)->FinishRun(load_id, *journal::ParseRunStatus(s.status), summary.dump());
  return s;
}

}  // namespace forklift::load
