#include "load/queue_load.h"

#include <fmt/format.h>

#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

#include "queue/queue_coordinator.h"
#include "sinks/pg_dsn.h"

namespace forklift::load {
namespace {

// What every QueueSink of one load shares.
struct QueueShared {
  std::unique_ptr<queue::QueueCoordinator> coordinator;
  std::vector<std::string> argv;  // the worker's command, before the chunk's options
  std::stop_token force;
  std::mutex mu;
  std::map<int64_t, int> attempts;      // guarded by mu: per chunk, the queue's attempt
  std::unique_ptr<sinks::Sink> ledger;  // guarded by mu: FindChunk's connection

  int NextAttempt(int64_t chunk) {
    std::lock_guard lock(mu);
    return ++attempts[chunk];
  }
};

// A writer's sink: each chunk is a job in the queue; its outcome is the worker's write.
class QueueSink : public sinks::Sink {
 public:
  explicit QueueSink(QueueShared* shared) : shared_(shared) {}

  Result<sinks::ChunkWriteResult> WriteChunk(const sinks::Chunk& chunk,
                                             const sinks::BeforeCommit& before_commit) override {
    process::SpawnOptions spawn;
    spawn.argv = shared_->argv;
    spawn.argv.insert(spawn.argv.end(), {"--queue-chunk", std::to_string(chunk.number),
                                         "--queue-checksum", chunk.checksum, "--queue-source",
                                         chunk.source, "--queue-span", EncodeChunkSpan(chunk)});
    // Attempts are numbered per chunk from 1, so a rerun that adopts the queue's run
    // finds the items an earlier coordinator enqueued instead of adding new ones.
    const int attempt = shared_->NextAttempt(chunk.number);
    FORKLIFT_ASSIGN_OR_RETURN(process::Completion c,
                              shared_->coordinator->Run(fmt::format("chunk {}", chunk.number),
                                                        attempt, spawn, shared_->force));
    if (c.cancelled) return CancelledError("cancelled");
    auto out = c.stdout_output.ReadAll();
    if (!out) return tl::unexpected(out.error());
    if (c.exit_code != 0) {
      auto err = c.stderr_output.ReadAll();
      std::string why = err ? *err : std::string();
      while (!why.empty() && (why.back() == '\n' || why.back() == '\r')) why.pop_back();
      if (why.empty()) {
        why = c.signal ? fmt::format("killed by signal {}", c.signal)
                       : fmt::format("exit {}", c.exit_code);
      }
      why = "worker: " + why;
      if (c.exit_code == kChunkTransientExit) return UnavailableError(why);
      return tl::unexpected(Error{ErrorCode::kInternal, why});
    }
    FORKLIFT_ASSIGN_OR_RETURN(sinks::ChunkWriteResult r, DecodeChunkResult(*out));
    // The rows committed on the worker; the dead letters are recorded here, with the chunk.
    if (!r.already_committed && before_commit) {
      FORKLIFT_RETURN_IF_ERROR(before_commit(r.rejected));
    }
    return r;
  }

  Status Reconnect() override { return {}; }

  Result<std::optional<sinks::LedgerEntry>> FindChunk(int64_t chunk) override {
    std::lock_guard lock(shared_->mu);
    auto found = shared_->ledger->FindChunk(chunk);
    if (!found && found.error().code == ErrorCode::kUnavailable) {
      FORKLIFT_RETURN_IF_ERROR(shared_->ledger->Reconnect());
      return shared_->ledger->FindChunk(chunk);
    }
    return found;
  }

 private:
  QueueShared* shared_;
};

// The real target for everything but the writes, which go through the queue.
class QueueTarget : public sinks::Target {
 public:
  QueueTarget(std::unique_ptr<sinks::Target> real, QueueShared* shared)
      : real_(std::move(real)), shared_(shared) {}
  const sinks::TargetAddress& address() const override { return real_->address(); }
  Result<int> MaxWorkers() override { return real_->MaxWorkers(); }
  Status EnsureLedger() override { return real_->EnsureLedger(); }
  Status ClaimLoad() override { return real_->ClaimLoad(); }
  Result<std::vector<sinks::LedgerEntry>> CommittedChunks() override {
    return real_->CommittedChunks();
  }
  Status PrepareTable() override { return real_->PrepareTable(); }
  Result<bool> FinishTable() override { return real_->FinishTable(); }
  Result<std::unique_ptr<sinks::Sink>> OpenSink() override {
    {
      std::lock_guard lock(shared_->mu);
      if (!shared_->ledger) {
        FORKLIFT_ASSIGN_OR_RETURN(shared_->ledger, real_->OpenSink());
      }
    }
    return std::unique_ptr<sinks::Sink>(std::make_unique<QueueSink>(shared_));
  }
  sinks::KeyCanonicalizer CanonicalKey() const override { return real_->CanonicalKey(); }

 private:
  std::unique_ptr<sinks::Target> real_;
  QueueShared* shared_;
};

}  // namespace

Status ValidateQueueLoad(const LoadOptions& o) {
  auto refuse = [](std::string_view what) {
    return InvalidArgumentError(
        fmt::format("--queue: {} is not supported through the queue (load it locally)", what));
  };
  if (!o.query.empty() || !o.from.empty()) return refuse("a --query/--from source");
  for (const std::string& s : o.sources) {
    if (s == "-") return refuse("stdin ('-')");
  }
  if (!o.transform.empty()) return refuse("--transform");
  if (o.truncate) return refuse("--truncate");
  if (o.replace) return refuse("--replace");
  if (o.to.rfind("sqlite:", 0) == 0) return refuse("an SQLite target (a file on one host)");
  // Each chunk's job carries the load's options to the workers through the queue's tables,
  // where a password must never be (nor in the workers' process lists).
  if (auto dsn = sinks::ParsePgDsn(o.to); dsn && !dsn->password.empty()) {
    return InvalidArgumentError(fmt::format(
        "--queue: --to {} holds a password, which would travel to the workers through the "
        "queue's tables: drop it from --to and give it to each worker instead (a password "
        "file, PGPASSFILE, or PGPASSWORD in the worker's environment)",
        dsn->Masked()));
  }
  return {};
}

Result<LoadSummary> RunQueueLoad(const LoadOptions& options, const QueueLoadOptions& queue,
                                 const LoadStops& stops, LoadIo io) {
  FORKLIFT_RETURN_IF_ERROR(ValidateQueueLoad(options));
  QueueShared shared;
  shared.argv = queue.worker_argv;
  shared.force = stops.force;
  auto open_real = io.open_target;
  io.open_target = [&](const sinks::TargetAddress& address,
                       const sinks::TableSpec& spec) -> Result<std::unique_ptr<sinks::Target>> {
    FORKLIFT_ASSIGN_OR_RETURN(
        std::unique_ptr<sinks::Target> real,
        open_real ? open_real(address, spec) : sinks::Target::Open(address, spec));
    // The run is named by the load id: a rerun (a resume) adopts what is still queued.
    FORKLIFT_ASSIGN_OR_RETURN(
        shared.coordinator,
        queue::QueueCoordinator::Start({.dsn = queue.dsn,
                                        .schema = queue.schema,
                                        .run = {.name = "load-" + spec.load_id, .kind = "load"},
                                        .adopt = true,
                                        .slice_items = 1,
                                        .label = "forklift load",
                                        .stderr_fd = fileno(io.err)}));
    shared.argv.insert(shared.argv.end(), {"--load-id", spec.load_id});
    return std::unique_ptr<sinks::Target>(std::make_unique<QueueTarget>(std::move(real), &shared));
  };
  auto summary = RunLoad(options, stops, io);
  if (shared.coordinator) shared.coordinator->Finish();
  return summary;
}

std::string EncodeChunkSpan(const sinks::Chunk& c) {
  return fmt::format("{}:{}:{}:{}:{}:{}", c.span_begin, c.span_end, c.first_line, c.partition,
                     c.seekable ? 1 : 0, c.file_first_chunk);
}

Result<ChunkSlice> DecodeChunkSpan(std::string source, std::string_view text) {
  ChunkSlice s{.source = std::move(source)};
  int seekable = 0;
  char tail = 0;
  const std::string t(text);
  // %c catches trailing bytes: exactly six fields.
  if (std::sscanf(t.c_str(), "%" SCNu64 ":%" SCNu64 ":%" SCNu64 ":%d:%d:%" SCNd64 "%c", &s.begin,
                  &s.end, &s.first_line, &s.partition, &seekable, &s.file_first_chunk,
                  &tail) != 6 ||
      s.begin > s.end || s.partition < 0 || (seekable != 0 && seekable != 1) ||
      s.file_first_chunk < 0) {
    return InvalidArgumentError(
        fmt::format("--queue-span {}: not BEGIN:END:LINE:PART:0|1:FIRST", text));
  }
  s.seekable = seekable == 1;
  return s;
}

std::string EncodeChunkResult(const sinks::ChunkWriteResult& r, uint64_t source_bytes_read) {
  nlohmann::json rejected = nlohmann::json::array();
  for (const sinks::RejectedRow& row : r.rejected) {
    rejected.push_back({{"row", row.row}, {"sqlstate", row.sqlstate}, {"reason", row.reason}});
  }
  nlohmann::json j{{"rows_written", r.rows_written},
                   {"rows_duplicate", r.rows_duplicate},
                   {"already_committed", r.already_committed},
                   {"rejected", std::move(rejected)},
                   {"source_bytes_read", source_bytes_read}};
  j["rows_inserted"] = r.rows_inserted ? nlohmann::json(*r.rows_inserted) : nlohmann::json();
  j["rows_updated"] = r.rows_updated ? nlohmann::json(*r.rows_updated) : nlohmann::json();
  return j.dump();
}

Result<sinks::ChunkWriteResult> DecodeChunkResult(std::string_view text) {
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    sinks::ChunkWriteResult r;
    r.rows_written = j.at("rows_written").get<int64_t>();
    r.rows_duplicate = j.at("rows_duplicate").get<int64_t>();
    r.already_committed = j.at("already_committed").get<bool>();
    if (!j.at("rows_inserted").is_null()) r.rows_inserted = j["rows_inserted"].get<int64_t>();
    if (!j.at("rows_updated").is_null()) r.rows_updated = j["rows_updated"].get<int64_t>();
    for (const auto& row : j.at("rejected")) {
      r.rejected.push_back({.row = row.at("row").get<size_t>(),
                            .sqlstate = row.at("sqlstate").get<std::string>(),
                            .reason = row.at("reason").get<std::string>()});
    }
    return r;
  } catch (const std::exception& e) {
    return tl::unexpected(Error{ErrorCode::kDataLoss,
                                fmt::format("a chunk job's result does not decode: {}", e.what())});
  }
}

}  // namespace forklift::load
