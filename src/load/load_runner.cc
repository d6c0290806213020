#include "load/load_runner.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
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
#include "load/key_resume.h"
#include "load/load_id.h"
#include "load/load_progress.h"
#include "load/query_reader.h"
#include "load/transform_stage.h"
#include "sinks/pg_dsn.h"
#include "sinks/query_source.h"
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

// --mode as the user spelled it.
const char* ModeName(const LoadOptions& o) {
  return o.upsert ? "upsert" : o.insert_ignore ? "insert-ignore" : "insert";
}

double PeakRssMb() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // KiB on Linux
}

// What every writer shares: the first fatal error, the stop flags, and the rejected rows
// of the chunks admitted to commit (--max-errors).
class Shared {
 public:
  explicit Shared(std::optional<int64_t> max_errors, std::optional<double> max_percent = {})
      : max_errors_(max_errors), max_percent_(max_percent) {}

  // Of the rows written: inserted, updated, and in chunks whose target did not tell.
  std::atomic<uint64_t> rows_inserted{0}, rows_updated{0}, rows_unsplit{0};
  std::atomic<uint64_t> rows_duplicate{0};  // insert-ignore: skipped as duplicates

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
  // `rows` is the chunk's rows read, rejected ones included (--max-errors N%).
  bool AdmitCommit(uint64_t rejected, uint64_t rows) {
    std::lock_guard lock(admit_mu_);
    if (limit_hit_) return false;
    Count(rejected, rows);
    return true;
  }
  // Rejected rows of a chunk found committed without AdmitCommit (an attempt whose COMMIT
  // reply was lost): they count, and may stop the load, but nothing is refused.
  void CountCommitted(uint64_t rejected, uint64_t rows) {
    std::lock_guard lock(admit_mu_);
    Count(rejected, rows);
  }

  // --max-errors N%, once every chunk committed: judged over all the rows read, however
  // few (a file under kMaxErrorsPercentMinRows rows is judged only here).
  void JudgeAtEnd() {
    std::lock_guard lock(admit_mu_);
    JudgePercent(/*at_end=*/true);
  }

 private:
  // --max-errors N%: more than N % of the rows of the committed chunks rejected, once
  // kMaxErrorsPercentMinRows rows were committed (or at the end), stops the load.
  void JudgePercent(bool at_end) {  // admit_mu_ held
    if (limit_hit_ || !max_percent_ || admitted_rows_ == 0) return;
    if (!at_end && admitted_rows_ < kMaxErrorsPercentMinRows) return;
    const double pct =
        100.0 * static_cast<double>(admitted_rejected_) / static_cast<double>(admitted_rows_);
    if (pct <= *max_percent_) return;
    limit_hit_ = true;
    Fail(Error{ErrorCode::kAborted,
               fmt::format("{} {} of {} rows rejected ({:.2f} %, more than --max-errors {}%){}",
                           at_end ? "finished, but" : "stopped after", admitted_rejected_,
                           admitted_rows_, pct, *max_percent_,
                           at_end ? ": every chunk is committed"
                                  : "; committed chunks stay committed, rerun to resume")});
  }

  void Count(uint64_t rejected, uint64_t rows) {  // admit_mu_ held
    admitted_rows_ += rows;
    admitted_rejected_ += rejected;
    JudgePercent(/*at_end=*/false);
    if (!limit_hit_ && max_errors_ && admitted_rejected_ > static_cast<uint64_t>(*max_errors_)) {
      limit_hit_ = true;
      Fail(Error{ErrorCode::kAborted,
                 fmt::format("stopped after {} rejected rows (--max-errors {}); committed "
                             "chunks stay committed, rerun to resume",
                             admitted_rejected_, *max_errors_)});
    }
  }

  std::optional<int64_t> max_errors_;
  std::optional<double> max_percent_;
  mutable std::mutex mu_;
  std::optional<Error> error_;
  std::atomic<bool> stop_{false};
  std::mutex admit_mu_;
  uint64_t admitted_rejected_ = 0;  // guarded by admit_mu_
  uint64_t admitted_rows_ = 0;      // guarded by admit_mu_
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
      if (!shared_->AdmitCommit(rejected.size() + chunk.parse_rejects.size(),
                                chunk.rows.size() + chunk.parse_rejects.size())) {
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
                  r->rejected.size() + chunk.parse_rejects.size(), admitted,
                  chunk.rows.size() + chunk.parse_rejects.size());
        shared_->rows_duplicate.fetch_add(static_cast<uint64_t>(r->rows_duplicate));
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
                  /*admitted=*/false, chunk.rows.size() + chunk.parse_rejects.size());
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

  void Committed(uint64_t rows, uint64_t rejected, bool admitted, uint64_t rows_read) {
    counters_->rows_loaded.fetch_add(rows, std::memory_order_relaxed);
    counters_->chunks_committed.fetch_add(1, std::memory_order_relaxed);
    counters_->rows_rejected.fetch_add(rejected, std::memory_order_relaxed);
    if (!admitted) shared_->CountCommitted(rejected, rows_read);
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
  nlohmann::json config{
      {"to", address.password.empty() ? o.to : std::string()},
      {"to_display", address.display},
      {"needs_password", !address.password.empty()},
      {"table", o.table},
      {"mode", ModeName(o)},
      {"key", o.key},
      {"columns", columns},
      {"delimiter", std::string(1, o.delimiter)},
      {"null", o.null_string},
      {"chunk_rows", o.chunk_rows},
      {"ledger_schema", o.ledger_schema},
      {"lifecycle", o.replace    ? "replace"
                    : o.truncate ? "truncate"
                                 : "append"},
      {"transform", o.transform},
  };
  // CSV dialect: dead letters keep the file's bytes, which `dlq retry` cannot read as the
  // default dialect; recorded only when set, so that it can refuse them.
  if (o.quote != '"' || EffectiveEscape(o) != '"' || o.encoding != sources::Encoding::kUtf8) {
    config["csv_dialect"] = fmt::format("--quote {} --escape {} --encoding {}", o.quote,
                                        EffectiveEscape(o), sources::EncodingName(o.encoding));
  }
  return config;
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
      {"rows_duplicate", rows_duplicate},
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
      {"replaced", replaced},
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
      "load {} {}: {} read, {} loaded{}, {} rejected{}{}\n"
      "  {} -> {} ({}), {}\n"
      "  {:.1f} MB in {:.2f} s: {:.0f} rows/s, {:.1f} MB/s, {} committed, {} skipped, "
      "{}, peak RSS {:.1f} MB\n",
      load_id, status, Counted(rows_read, "row", "rows"), rows_loaded,
      mode == "upsert" && rows_inserted && rows_updated
          ? fmt::format(" ({} inserted, {} updated, {} unchanged)", *rows_inserted, *rows_updated,
                        rows_loaded - *rows_inserted - *rows_updated)
          : std::string(),
      rows_rejected,
      mode == "insert-ignore" ? fmt::format(", {} duplicates skipped", rows_duplicate)
                              : std::string(),
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
  if (replaced) s += fmt::format("  --replace: the new {} is swapped in\n", table);
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
  // Query sources (--from/--query): the query's streams; the resume is set once the
  // ledger is read (PlanQueryResume).
  bool query = false;
  QueryReadPlan query_plan;
  // The C++ pipeline's source and transform (LoadExtension), when set; else nullptr.
  const LoadExtension* ext = nullptr;
};

// The chunk function of the transform stage: --transform's command or the pipeline's
// function; empty when the load has neither.
TransformStage::Transform StageFunction(const LoadPlan& plan, std::stop_token token) {
  if (plan.transform) {
    return [&t = *plan.transform, token = std::move(token)](Chunk&& c) {
      return t.Apply(std::move(c), token);
    };
  }
  if (plan.ext && plan.ext->transform) return plan.ext->transform;
  return {};
}

// How many threads the stage runs: --cpu-workers, or the pipeline's own count.
int StageWorkers(const LoadOptions& options, const LoadPlan& plan) {
  return plan.ext && plan.ext->transform ? plan.ext->transform_workers : options.cpu_workers;
}

// Whether rows go to the writers' queues by a hash of --key (upserts), rather than all
// through one queue: not for a query resumed by key, whose chunks are slices of one
// ordered stream (its --key is unique, ValidateQuerySourceOptions).
bool Routed(const LoadOptions& options) { return options.upsert && options.resume_key.empty(); }

// The first file's header, after checking every file has the same one (before the first
// chunk commits: a later file's that differs would otherwise fail the load half-done).
// Warns on `err` of names with blanks around them.
Result<std::vector<std::string>> ReadSameHeader(const LoadOptions& options, bool fold_case,
                                                FILE* err) {
  std::vector<std::string> trimmed;
  const sources::CsvDialect dialect{
      .delimiter = options.delimiter,
      .max_record_bytes = static_cast<size_t>(options.max_record_bytes),
      .quote = options.quote,
      .escape = EffectiveEscape(options),
      .skip_lines = static_cast<uint64_t>(options.skip_lines)};
  FORKLIFT_ASSIGN_OR_RETURN(
      auto header, ReadHeader(options.sources[0], dialect, options.encoding, fold_case, &trimmed));
  for (size_t i = 1; i < options.sources.size(); ++i) {
    FORKLIFT_ASSIGN_OR_RETURN(
        auto h, ReadHeader(options.sources[i], dialect, options.encoding, fold_case, &trimmed));
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

// Table lifecycle and dialect: what the target does before the first chunk and with
// duplicates, for file and query loads alike.
void ApplyLifecycle(const LoadOptions& options, sinks::TableSpec& spec) {
  spec.lifecycle = options.replace    ? sinks::TableSpec::Lifecycle::kReplace
                   : options.truncate ? sinks::TableSpec::Lifecycle::kTruncate
                                      : sinks::TableSpec::Lifecycle::kAppend;
  spec.ignore_duplicates = options.insert_ignore;
}

// The writers: --workers, else 4 connections to PostgreSQL and 1 to SQLite (which takes
// one writer at a time, so more is refused rather than clamped). Every planner's.
Status PlanWorkers(const LoadOptions& options, LoadPlan& plan) {
  plan.sqlite = plan.address.kind == sinks::TargetAddress::Kind::kSqlite;
  plan.workers = options.workers > 0 ? options.workers : (plan.sqlite ? 1 : 4);
  if (plan.sqlite && plan.workers > 1) {
    return InvalidArgumentError(
        fmt::format("--workers {}: an SQLite target takes one writer at a time (use --workers 1)",
                    plan.workers));
  }
  return {};
}

Status PlanTransform(const LoadOptions& options, const std::stop_token& stop, const LoadIo& io,
                     LoadPlan& plan);

// ---- Query sources ----------------------------------------------------------------

// The plan of a --from/--query load: the result's columns (described, not run) stand for
// a file's header. Everything wrong with the query, its key or its partitioning is found
// here, before anything is written.
Result<LoadPlan> PlanQueryLoad(const LoadOptions& options, const std::stop_token& stop,
                               const LoadExtension& ext, const LoadIo& io) {
  LoadPlan plan;
  plan.query = true;
  plan.ext = &ext;
  FORKLIFT_ASSIGN_OR_RETURN(plan.address, sinks::ParseTargetAddress(options.to));
  FORKLIFT_ASSIGN_OR_RETURN(auto qualified, sinks::ParseQualifiedName(options.table));
  sinks::QuerySpec& q = plan.query_plan.spec;
  auto from = sinks::ParseTargetAddress(options.from);
  if (!from) {
    std::string m = from.error().message;
    if (m.starts_with("--to")) m = "--from" + m.substr(4);
    return InvalidArgumentError(std::move(m));
  }
  q.from = *from;
  q.query = options.query;
  q.resume_key = options.resume_key;
  q.partition_by = options.partition_by;
  q.partitions = options.partitions;
  auto described = sinks::DescribeQuery(q);
  if (!described) {
    // A query the source refuses is a bad value (exit status 2), unless it cannot be reached.
    Error e = described.error();
    if (e.code != ErrorCode::kUnavailable) e.code = ErrorCode::kInvalidArgument;
    return tl::unexpected(std::move(e));
  }
  plan.query_plan.columns = std::move(*described);
  for (const auto& c : plan.query_plan.columns) plan.header.push_back(c.name);
  auto position = [&](const std::string& name) -> std::optional<size_t> {
    auto it = std::find(plan.header.begin(), plan.header.end(), name);
    if (it == plan.header.end()) return std::nullopt;
    return static_cast<size_t>(it - plan.header.begin());
  };
  for (const std::string& k : options.resume_key) {
    auto at = position(k);
    if (!at) {
      return InvalidArgumentError(
          fmt::format("--resume-key {}: not a column of the query's result ({})", k,
                      fmt::join(plan.header, ",")));
    }
    plan.query_plan.resume_fields.push_back(*at);
  }
  if (!options.partition_by.empty() && !position(options.partition_by)) {
    return InvalidArgumentError(
        fmt::format("--partition-by {}: not a column of the query's result ({})",
                    options.partition_by, fmt::join(plan.header, ",")));
  }
  if (!options.columns.empty() && options.columns.size() != plan.header.size()) {
    return InvalidArgumentError(fmt::format(
        "--columns {}: {} names for the query's {} columns ({})", fmt::join(options.columns, ","),
        options.columns.size(), plan.header.size(), fmt::join(plan.header, ",")));
  }
  plan.columns = options.columns.empty() ? plan.header : options.columns;
  for (const std::string& k : options.key) {
    auto it = std::find(plan.columns.begin(), plan.columns.end(), k);
    if (it == plan.columns.end()) {
      return InvalidArgumentError(fmt::format("--key {}: not among the query's columns ({})", k,
                                              fmt::join(plan.columns, ",")));
    }
    plan.key_fields.push_back(static_cast<size_t>(it - plan.columns.begin()));
  }
  plan.read_columns = plan.columns;
  FORKLIFT_RETURN_IF_ERROR(PlanTransform(options, stop, io, plan));
  plan.sources = {QuerySourceName(0, 1)};
  FORKLIFT_RETURN_IF_ERROR(PlanWorkers(options, plan));
  plan.partitions = Routed(options) ? plan.workers : 1;
  std::string load_id = options.load_id;
  if (load_id.empty()) {
    FORKLIFT_ASSIGN_OR_RETURN(
        load_id, ComputeQueryLoadId(options, q.from.identity, plan.address.identity, plan.columns,
                                    plan.partitions));
  }
  plan.spec = sinks::TableSpec{.schema = qualified.first,
                               .table = qualified.second,
                               .columns = plan.columns,
                               .key = options.key,
                               .upsert = options.upsert,
                               .delimiter = ',',
                               .null_string = "",
                               .load_id = std::move(load_id),
                               .ledger_schema = options.ledger_schema,
                               .ledger_last_key = !options.resume_key.empty()};
  ApplyLifecycle(options, plan.spec);
  return plan;
}

// Where each of the query's streams starts, from the ledger: after its committed prefix's
// last key (--resume-key), else from the first row, which only an upsert may do again.
Status PlanQueryResume(const LoadOptions& options, const std::vector<LedgerEntry>& committed,
                       LoadPlan& plan) {
  // Range partitions: the bounds the load's first run computed (in its ledger rows'
  // sources), else computed now from the column's min and max.
  sinks::QuerySpec& q = plan.query_plan.spec;
  if (q.partitions > 1) {
    const auto first = std::find_if(committed.begin(), committed.end(),
                                    [](const LedgerEntry& e) { return e.chunk >= 0; });
    if (first != committed.end()) {
      auto bounds = RangeBoundsOf(first->source);
      if (bounds && bounds->size() != static_cast<size_t>(q.partitions - 1)) {
        return FailedPreconditionError(fmt::format(
            "load {}: the ledger's chunk {} names {} range bounds ({}) for {} partitions",
            plan.spec.load_id, first->chunk, bounds->size(), first->source, q.partitions));
      }
      if (bounds) q.range_bounds = std::move(*bounds);
    } else if (sinks::IsRangeColumn(q, plan.query_plan.columns)) {
      FORKLIFT_ASSIGN_OR_RETURN(q.range_bounds,
                                sinks::ComputeRangeBounds(q, plan.query_plan.columns));
    }
  }
  if (!options.resume_key.empty()) {
    FORKLIFT_ASSIGN_OR_RETURN(plan.query_plan.resume, PlanKeyResume(committed, options.partitions));
    return {};
  }
  const auto chunks = std::count_if(committed.begin(), committed.end(),
                                    [](const LedgerEntry& e) { return e.chunk >= 0; });
  if (chunks > 0 && !options.upsert) {
    const std::string& schema =
        plan.spec.ledger_schema.empty() ? plan.spec.schema : plan.spec.ledger_schema;
    const std::string ledger =
        schema.empty() ? std::string("forklift_load_chunks") : schema + ".forklift_load_chunks";
    return InvalidArgumentError(fmt::format(
        "load {}: an earlier run of this --query load committed {} chunks into {}, and an "
        "insert cannot tell which of the query's rows they held: running it again would "
        "insert them twice, so it is refused (nothing was loaded). For loads that resume, "
        "add --resume-key COLUMN[,COLUMN] (a unique key of the result: a rerun continues "
        "after the last committed key) or use --mode upsert --key COLUMN (a rerun reads "
        "everything again, idempotently); either is a new load. To insert the rows again "
        "anyway: another --load-id, or DELETE FROM {} WHERE load_id = {}",
        plan.spec.load_id, chunks, sinks::ShownTable(plan.spec), ledger,
        sinks::QuoteLiteral(plan.spec.load_id)));
  }
  plan.query_plan.resume = PlanStartOver(committed, options.partitions);
  return {};
}

// ReadSources for a query: its streams in parallel into the writers' queues.
void ReadQuerySources(const LoadOptions& options, const LoadPlan& plan, sinks::Target& target,
                      std::vector<std::unique_ptr<ChunkQueue>>& queues, const LoadIo& io,
                      const LoadStops& stops, Shared& shared, ReadCounters& rcounters,
                      WriteCounters& wcounters, uint64_t& rejected_earlier) {
  QueryReadPlan qp = plan.query_plan;
  const bool routed = Routed(options);
  qp.chunker = ChunkerOptions{.partitions = plan.partitions,
                              .key_fields = plan.key_fields,
                              .canonical_key = target.CanonicalKey(),
                              .chunk_rows = options.chunk_rows,
                              .chunk_bytes = options.chunk_bytes,
                              .delimiter = ',',
                              .header = true,
                              .columns = plan.read_columns.size(),
                              .max_record_bytes = static_cast<size_t>(options.max_record_bytes),
                              .column_names = plan.read_columns};
  auto to_queue = [&](Chunk&& chunk) {
    const size_t q = routed ? static_cast<size_t>(chunk.partition) : 0;
    queues[q]->Push(std::move(chunk));
  };
  // --transform: as for files (ReadSources). The partitions' threads take turns at the
  // stage, which has one pusher; each partition's chunks keep their order through it.
  std::stop_source transform_stop;
  std::stop_callback on_graceful(stops.graceful, [&] { transform_stop.request_stop(); });
  std::stop_callback on_force(stops.force, [&] { transform_stop.request_stop(); });
  std::optional<TransformStage> stage;
  std::mutex stage_mu;
  if (TransformStage::Transform fn = StageFunction(plan, transform_stop.get_token())) {
    stage.emplace(StageWorkers(options, plan), std::move(fn), to_queue);
  }
  std::mutex skipped_mu;
  QueryReadHooks hooks{.stop = [&] { return shared.stopped() || stops.graceful.stop_requested(); },
                       .force = stops.force,
                       .push =
                           [&](Chunk&& chunk) {
                             if (!stage) return to_queue(std::move(chunk));
                             std::lock_guard lock(stage_mu);
                             if (Status st = stage->Push(std::move(chunk)); !st) {
                               shared.Fail(st.error());
                             }
                           },
                       .skipped =
                           [&](const LedgerEntry& e) {
                             wcounters.rows_skipped.fetch_add(static_cast<uint64_t>(e.rows));
                             wcounters.chunks_skipped.fetch_add(1);
                             std::lock_guard lock(skipped_mu);
                             rejected_earlier += static_cast<uint64_t>(e.rejected);
                           },
                       .chunk_read = io.chunk_read};
  try {
    // A forced stop's interrupted query is the stop, not a failure: the summary says so.
    Status read = ReadQuery(qp, &rcounters, hooks);
    if (!read && !stops.force.stop_requested()) shared.Fail(read.error());
    if (stage) {
      if (Status st = stage->Finish(); !st) shared.Fail(st.error());
    }
  } catch (const std::exception& e) {
    shared.Fail(Error{ErrorCode::kInternal,
                      fmt::format("reading the query: stopped by an exception: {}", e.what())});
  }
}

// The chunks a key resume does not read again count as already loaded.
void CountQueryPrefix(const LoadPlan& plan, WriteCounters& wcounters, uint64_t& rejected_earlier) {
  for (const PartitionResume& r : plan.query_plan.resume) {
    wcounters.rows_skipped.fetch_add(static_cast<uint64_t>(r.prefix_rows));
    wcounters.chunks_skipped.fetch_add(static_cast<uint64_t>(r.prefix_chunks));
    rejected_earlier += static_cast<uint64_t>(r.prefix_rejected);
  }
}

// ---- Files --------------------------------------------------------------------------

// --transform: probes the command on the input's header (a command that cannot run fails
// here, before anything is written) and makes its output columns the target's. The key
// must be among the output's columns (routing reads it in the input where it is there).
Status PlanTransform(const LoadOptions& options, const std::stop_token& stop, const LoadIo& io,
                     LoadPlan& plan) {
  if (plan.ext && plan.ext->transform) {  // the pipeline's function: its columns are given
    plan.columns = plan.ext->transform_columns;
    for (const std::string& k : options.key) {
      if (std::find(plan.columns.begin(), plan.columns.end(), k) == plan.columns.end()) {
        return InvalidArgumentError(fmt::format(
            "--key {}: not among the transform's output columns ({}); a key must be a column "
            "of both the input and the output",
            k, fmt::join(plan.columns, ",")));
      }
    }
    return {};
  }
  if (options.transform.empty()) return {};
  FORKLIFT_ASSIGN_OR_RETURN(
      CommandTransform t,
      CommandTransform::Probe({.command = options.transform,
                               .timeout = options.transform_timeout,
                               .delimiter = options.delimiter,
                               .input_columns = plan.read_columns,
                               .fold_header_case = plan.fold_header_case,
                               .max_output_bytes = std::max<size_t>(
                                   size_t{64} << 20, 4 * static_cast<size_t>(options.chunk_bytes)),
                               .registry = io.transform_registry,
                               .env = io.transform_env},
                              stop));
  plan.columns = t.output_columns();
  for (const std::string& k : options.key) {
    if (std::find(plan.columns.begin(), plan.columns.end(), k) == plan.columns.end()) {
      return InvalidArgumentError(fmt::format(
          "--key {}: not among the output columns of --transform ({}): the rows written must "
          "have the key",
          k, fmt::join(plan.columns, ",")));
    }
  }
  plan.transform = std::move(t);
  return {};
}

Result<LoadPlan> PlanExtensionLoad(const LoadOptions& options, const LoadExtension& ext,
                                   const std::stop_token& stop, const LoadIo& io);

Result<LoadPlan> PlanLoad(const LoadOptions& options, const LoadIo& io, const std::stop_token& stop,
                          const LoadExtension& ext) {
  if (ext.transform) {
    if (!options.transform.empty()) {
      return InvalidArgumentError("a pipeline's transform with --transform: give one of them");
    }
    if (ext.transform_columns.empty()) {
      return InvalidArgumentError("a pipeline's transform needs its output columns");
    }
  }
  if (ext.open_source) return PlanExtensionLoad(options, ext, stop, io);
  FORKLIFT_RETURN_IF_ERROR(ValidateLoadOptions(options));
  if (!options.query.empty()) {
    FORKLIFT_ASSIGN_OR_RETURN(LoadPlan plan, PlanQueryLoad(options, stop, ext, io));
    return plan;
  }
  LoadPlan plan;
  plan.ext = &ext;
  FORKLIFT_ASSIGN_OR_RETURN(plan.address, sinks::ParseTargetAddress(options.to));
  FORKLIFT_ASSIGN_OR_RETURN(auto qualified, sinks::ParseQualifiedName(options.table));
  for (const std::string& src : options.sources) plan.sources.push_back(SourceIdentity(src));

  // JSON Lines or CSV, every source alike: one load is one shape of input.
  plan.json_lines = options.format.empty() ? sources::IsJsonLinesPath(options.sources[0])
                                           : options.format == "jsonl";
  for (const std::string& src : options.sources) {
    if (options.format.empty() && sources::IsJsonLinesPath(src) != plan.json_lines) {
      return InvalidArgumentError(
          fmt::format("{}: one load reads CSV or JSON Lines, not both ({} is {}); load them apart",
                      src, options.sources[0], plan.json_lines ? "JSON Lines" : "CSV"));
    }
  }
  // The columns: --columns, else the first file's header, else the table's columns (JSON
  // Lines name their fields in every line: the table's columns, or --columns, say which).
  plan.fold_header_case = plan.address.kind == sinks::TargetAddress::Kind::kPostgres;
  if (options.header && !plan.json_lines) {
    FORKLIFT_ASSIGN_OR_RETURN(plan.header, ReadSameHeader(options, plan.fold_header_case, io.err));
  }
  plan.columns = options.columns.empty() ? plan.header : options.columns;
  if (plan.columns.empty()) {  // --no-header and no --columns
    FORKLIFT_ASSIGN_OR_RETURN(
        plan.columns, sinks::ReadTableColumns(plan.address, qualified.first, qualified.second));
  }
  // Routing by key reads the key's values in the input. A --transform may make the key
  // (a re-shape's output has columns its input lacks): its chunks are then not routed, and
  // one writer applies them all in input order, so no two connections apply one key.
  bool routed_by_input = true;
  for (const std::string& k : options.key) {
    auto it = std::find(plan.columns.begin(), plan.columns.end(), k);
    if (it == plan.columns.end()) {
      if (!options.transform.empty()) {
        routed_by_input = false;
        continue;
      }
      return InvalidArgumentError(fmt::format("--key {}: not among the input's columns ({})", k,
                                              fmt::join(plan.columns, ",")));
    }
    plan.key_fields.push_back(static_cast<size_t>(it - plan.columns.begin()));
  }
  if (!routed_by_input) plan.key_fields.clear();
  plan.read_columns = plan.columns;
  FORKLIFT_RETURN_IF_ERROR(PlanTransform(options, stop, io, plan));
  for (const std::string& src : options.sources) {
    if (src == "-") continue;  // opening stdin reads its first bytes: the chunker's
    FORKLIFT_ASSIGN_OR_RETURN(auto bs, sources::ByteSource::Open(src));
    plan.total_bytes += bs->file_size();
  }

  FORKLIFT_RETURN_IF_ERROR(PlanWorkers(options, plan));
  plan.partitions = options.upsert && routed_by_input ? plan.workers : 1;
  if (!routed_by_input && plan.workers > 1 && io.err) {
    fmt::print(io.err,
               "forklift load: note: --key {} is among the --transform's output columns, not "
               "the input's: one writer applies the chunks, in input order (of --workers {})\n",
               fmt::join(options.key, ","), plan.workers);
  }
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
  ApplyLifecycle(options, plan.spec);
  return plan;
}

// The plan of a load from the pipeline's source (LoadExtension::open_source): its columns
// stand for a file's header, its name for the files.
Result<LoadPlan> PlanExtensionLoad(const LoadOptions& options, const LoadExtension& ext,
                                   const std::stop_token& stop, const LoadIo& io) {
  if (!options.sources.empty() || !options.query.empty() || !options.from.empty()) {
    return InvalidArgumentError(
        "a pipeline's source with files or a --query: give one source of rows");
  }
  if (ext.source_name.empty() || ext.source_columns.empty()) {
    return InvalidArgumentError("a pipeline's source needs a name and its columns");
  }
  LoadOptions checked = options;  // validated as a load of one source of that name
  checked.sources = {ext.source_name};
  FORKLIFT_RETURN_IF_ERROR(ValidateLoadOptions(checked));
  if (ext.source_name == "-") {
    return InvalidArgumentError("a pipeline's source cannot be named '-' (stdin's name)");
  }
  LoadPlan plan;
  plan.ext = &ext;
  FORKLIFT_ASSIGN_OR_RETURN(plan.address, sinks::ParseTargetAddress(options.to));
  FORKLIFT_ASSIGN_OR_RETURN(auto qualified, sinks::ParseQualifiedName(options.table));
  plan.sources = {ext.source_name};
  plan.fold_header_case = plan.address.kind == sinks::TargetAddress::Kind::kPostgres;
  plan.header = ext.source_columns;
  plan.columns = options.columns.empty() ? plan.header : options.columns;
  if (plan.columns.size() != plan.header.size()) {
    return InvalidArgumentError(fmt::format("--columns {}: {} names for the source's {} columns",
                                            fmt::join(plan.columns, ","), plan.columns.size(),
                                            plan.header.size()));
  }
  for (const std::string& k : options.key) {
    auto it = std::find(plan.columns.begin(), plan.columns.end(), k);
    if (it == plan.columns.end()) {
      return InvalidArgumentError(fmt::format("--key {}: not among the source's columns ({})", k,
                                              fmt::join(plan.columns, ",")));
    }
    plan.key_fields.push_back(static_cast<size_t>(it - plan.columns.begin()));
  }
  plan.read_columns = plan.columns;
  FORKLIFT_RETURN_IF_ERROR(PlanTransform(options, stop, io, plan));
  FORKLIFT_RETURN_IF_ERROR(PlanWorkers(options, plan));
  plan.partitions = options.upsert ? plan.workers : 1;
  std::string load_id = options.load_id;
  if (load_id.empty()) {
    FORKLIFT_ASSIGN_OR_RETURN(
        load_id, ComputeQueryLoadId(options, "pipeline:" + ext.source_name, plan.address.identity,
                                    plan.columns, plan.partitions));
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
  ApplyLifecycle(options, plan.spec);
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
  FORKLIFT_RETURN_IF_ERROR(target->PrepareTable());  // --truncate, --replace: once per load
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

// The chunker's options of a load: the same plan gives the same chunks, numbers and
// checksums (a load through the queue re-reads one chunk on a worker).
ChunkerOptions PlanChunker(const LoadOptions& options, const LoadPlan& plan,
                           const sinks::Target& target) {
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
  if (!options.format.empty()) copts.json_lines = plan.json_lines;  // --format
  if (plan.ext && plan.ext->open_source) {
    // The pipeline's source writes its header itself, with the names as given.
    copts.header = true;
    copts.header_names.clear();
    copts.json_lines = false;
  }
  // CSV dialect
  copts.quote = options.quote;
  copts.escape = EffectiveEscape(options);
  copts.skip_lines = static_cast<uint64_t>(options.skip_lines);
  copts.encoding = options.encoding;
  return copts;
}

// The reading side, on the calling thread: every source through the chunker into the
// writers' queues, skipping committed chunks. Ends early on a stop; a failure (or an
// exception) goes to `shared`, naming the file.
void ReadSources(const LoadOptions& options, const LoadPlan& plan, sinks::Target& target,
                 LedgerMatch& ledger, std::vector<std::unique_ptr<ChunkQueue>>& queues,
                 const LoadIo& io, const LoadStops& stops, Shared& shared, ReadCounters& rcounters,
                 WriteCounters& wcounters, uint64_t& rejected_earlier) {
  Chunker chunker(PlanChunker(options, plan, target), &rcounters);
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
  if (TransformStage::Transform fn = StageFunction(plan, transform_stop.get_token())) {
    stage.emplace(StageWorkers(options, plan), std::move(fn), to_queue);
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
    if (plan.ext && plan.ext->open_source) {  // the pipeline's source
      Result<std::unique_ptr<sources::ByteSource>> source = plan.ext->open_source();
      Status st = source ? chunker.ReadSource(plan.ext->source_name, std::move(*source), emit, stop)
                         : Status(tl::unexpected(source.error()));
      if (!st) {
        shared.Fail(st.error());
        return;
      }
    }
    for (const std::string& src : plan.sources) {
      if (stop() || (plan.ext && plan.ext->open_source)) break;
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
  s.mode = ModeName(options);
  s.rows_duplicate = shared.rows_duplicate.load();
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
  } else if (s.rows_read > 0 && s.rows_loaded == 0 && s.rows_skipped == 0 &&
             s.rows_duplicate == 0) {
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
  return RunLoad(options, stops, std::move(io), LoadExtension{});
}

Result<LoadSummary> RunLoad(const LoadOptions& options, const LoadStops& stops, LoadIo io,
                            const LoadExtension& ext) {
  Clock& clock = io.clock ? *io.clock : SystemClock();
  const TimePoint start = clock.Now();
  FORKLIFT_ASSIGN_OR_RETURN(LoadPlan plan, PlanLoad(options, io, stops.graceful, ext));
  const std::string& load_id = plan.spec.load_id;
  FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<sinks::Target> target, OpenTarget(plan, io));
  FORKLIFT_ASSIGN_OR_RETURN(std::vector<LedgerEntry> committed, target->CommittedChunks());
  if (plan.query) FORKLIFT_RETURN_IF_ERROR(PlanQueryResume(options, committed, plan));
  LedgerMatch ledger(load_id, plan.query ? std::vector<LedgerEntry>() : std::move(committed));

  const std::string journal_path = journal::ResolveJournalPath(options.journal_path);
  auto journal = journal::Journal::Open(journal_path);
  if (!journal) {
    return InvalidArgumentError("--journal: " + journal.error().message);
  }
  FORKLIFT_RETURN_IF_ERROR((*journal)->BeginRun(load_id, "load", sinks::ShownTable(plan.spec)));
  nlohmann::json config = ConfigJson(options, plan.address, plan.columns);
  if (ext.transform) config["transform"] = "(C++) " + ext.transform_name;
  if (ext.open_source) config["source"] = ext.source_name;
  if (plan.query) {
    const sinks::TargetAddress& from = plan.query_plan.spec.from;
    config["from"] = from.password.empty() ? options.from : std::string();
    config["from_display"] = from.display;
    config["query"] = options.query;
    config["resume_key"] = options.resume_key;
    config["partition_by"] = options.partition_by;
    config["partitions"] = options.partitions;
  }
  FORKLIFT_RETURN_IF_ERROR((*journal)->FinishRun(load_id, journal::RunStatus::kRunning,
                                                 nlohmann::json{{"config", config}}.dump()));
  // A failure from here on ends a run the journal has begun: record it as failed.
  auto failed = [&](const Error& e) {
    (void)(*journal)->FinishRun(load_id, journal::RunStatus::kFailed,
                                nlohmann::json{{"config", config}, {"error", e.ToString()}}.dump());
    return tl::unexpected(e);
  };

  // One queue per writer for upserts (a key's rows go to one connection), else one shared.
  Shared shared(options.max_errors, options.max_errors_percent);
  WriteCounters wcounters;
  ReadCounters rcounters;
  std::vector<std::unique_ptr<ChunkQueue>> queues;
  const bool routed = Routed(options);
  const int nqueues = routed ? plan.workers : 1;
  for (int i = 0; i < nqueues; ++i) {
    queues.push_back(
        std::make_unique<ChunkQueue>(routed ? 2 : 2 * static_cast<size_t>(plan.workers)));
  }
  SinkPool pool(target.get(), &clock);
  if (Status st = pool.OpenFirst(); !st) return failed(st.error());
  std::vector<std::unique_ptr<Writer>> writers;
  std::random_device rd;
  for (int i = 0; i < plan.workers; ++i) {
    auto wj = journal::Journal::Open(journal_path);
    if (!wj) return failed(wj.error());
    writers.push_back(std::make_unique<Writer>(&pool, std::move(*wj), load_id,
                                               queues[routed ? i : 0].get(), &shared, &wcounters,
                                               &clock, rd()));
  }
  auto executor_or =
      Executor::Create({.workers = static_cast<size_t>(plan.workers), .queue_capacity = 64});
  if (!executor_or) return failed(executor_or.error());
  std::unique_ptr<Executor> executor = std::move(*executor_or);
  uint64_t rejected_earlier = 0;  // in the chunks skipped (the reading thread's)
  if (plan.query) CountQueryPrefix(plan, wcounters, rejected_earlier);
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
    if (plan.query) {
      ReadQuerySources(options, plan, *target, queues, io, stops, shared, rcounters, wcounters,
                       rejected_earlier);
    } else {
      ReadSources(options, plan, *target, ledger, queues, io, stops, shared, rcounters, wcounters,
                  rejected_earlier);
    }
  }
  executor->Shutdown();
  progress.Stop();
  if (!shared.error() && !stops.graceful.stop_requested() && !stops.force.stop_requested()) {
    shared.JudgeAtEnd();  // --max-errors N%
  }

  const double elapsed_s = std::chrono::duration<double>(clock.Now() - start).count();
  LoadSummary s = Summarize(options, plan, stops, shared, rcounters, wcounters, rejected_earlier,
                            pool.opened(), elapsed_s);
  // --replace: swap the shadow in only after a load that succeeded (rejected rows or not);
  // otherwise the old table stays as it was and a rerun continues the shadow.
  if (options.replace && journal::ParseRunStatus(s.status) == RunStatus::kSucceeded) {
    if (Result<bool> st = target->FinishTable(); !st) {
      s.status = ToString(RunStatus::kFailed);
      s.error = sinks::MaskSecret(
          "swapping the new table in: " + st.error().ToString() +
              "; the old table is unchanged and every chunk is committed: rerun to swap",
          plan.address.password);
    } else {
      s.replaced = *st;
    }
  }
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

Result<sinks::ChunkWriteResult> RunLoadChunk(const LoadOptions& options, int64_t number,
                                             std::string_view checksum,
                                             const std::optional<ChunkSlice>& slice,
                                             const std::stop_token& stop, uint64_t* bytes_read) {
  if (!options.transform.empty() || !options.query.empty() || options.truncate || options.replace) {
    return InvalidArgumentError(
        "a chunk of a queue load takes no --transform, --query, --truncate or --replace");
  }
  if (bytes_read) *bytes_read = 0;
  const LoadExtension none;
  const LoadIo io;  // err = stderr; a chunk's job runs no transform
  FORKLIFT_ASSIGN_OR_RETURN(LoadPlan plan, PlanLoad(options, io, stop, none));
  FORKLIFT_ASSIGN_OR_RETURN(auto target, sinks::Target::Open(plan.address, plan.spec));
  FORKLIFT_ASSIGN_OR_RETURN(auto sink, target->OpenSink());
  // Committed by an earlier attempt (a worker that lost its lease after COMMIT): nothing
  // to read or write. WriteChunk would find it too, after reading the chunk.
  FORKLIFT_ASSIGN_OR_RETURN(std::optional<LedgerEntry> done, sink->FindChunk(number));
  if (done) {
    return sinks::ChunkWriteResult{.rows_written = done->rows, .already_committed = true};
  }
  // The same plan as the coordinator's, so the chunker makes the chunks alike.
  ReadCounters counters;
  Chunker chunker(PlanChunker(options, plan, *target), &counters);
  std::optional<Chunk> found;
  auto stopped = [&] { return found.has_value() || stop.stop_requested(); };
  if (slice) {
    if (std::find(plan.sources.begin(), plan.sources.end(), slice->source) == plan.sources.end()) {
      return FailedPreconditionError(fmt::format(
          "chunk {}: its source {} is not among this job's sources", number, slice->source));
    }
  }
  if (slice && slice->seekable) {
    // Its span holds its rows and other partitions' (upsert): its partition's first
    // chunk there is it, as partition's builder starts it empty and closes it alike.
    auto emit = [&](Chunk&& chunk) -> Status {
      if (!found && chunk.partition == slice->partition) {
        found = std::move(chunk);
        found->number = number;
      }
      return {};
    };
    FORKLIFT_RETURN_IF_ERROR(chunker.ReadSpan(slice->source, slice->begin, slice->end,
                                              slice->first_line, number, emit, stopped));
  } else {
    auto emit = [&](Chunk&& chunk) -> Status {
      if (chunk.number == number) found = std::move(chunk);
      return {};
    };
    if (slice) {  // gzip or JSON Lines: its file from the start, numbered as the coordinator's
      chunker.set_next_chunk(slice->file_first_chunk);
      FORKLIFT_RETURN_IF_ERROR(chunker.ReadFile(slice->source, emit, stopped));
    } else {
      for (const std::string& src : plan.sources) {
        if (stopped()) break;
        FORKLIFT_RETURN_IF_ERROR(chunker.ReadFile(src, emit, stopped));
      }
    }
  }
  if (bytes_read) *bytes_read = counters.source_bytes.load();
  if (stop.stop_requested()) return CancelledError("stopped");
  if (!found) {
    return FailedPreconditionError(
        fmt::format("chunk {}: the sources on this host end before it (are they the "
                    "coordinator's files?)",
                    number));
  }
  if (found->checksum != checksum) {
    return FailedPreconditionError(fmt::format(
        "chunk {} ({}, lines {}-{}): checksum {} on this host, {} on the "
        "coordinator's: the sources differ",
        number, found->source, found->first_line, found->last_line, found->checksum, checksum));
  }
  return sink->WriteChunk(*found, [](std::span<const RejectedRow>) -> Status { return {}; });
}

}  // namespace forklift::load
