#include "load/dlq_retry.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "journal/journal.h"
#include "load/chunker.h"
#include "sinks/pg_dsn.h"
#include "sinks/sink.h"
#include "sources/checksum.h"
#include "sources/csv_reader.h"

namespace forklift::load {
namespace {

// Attempts a letter's retry chunk number can tell apart (number = id * this + attempts).
constexpr int64_t kAttemptSlots = int64_t{1} << 20;

// The chunks the load itself (not its retries: `dlq_spec` is for LOAD_ID/dlq) has
// committed, from the target's ledger (EnsureLedger first).
Result<std::set<int64_t>> CommittedLoadChunks(const sinks::TargetAddress& address,
                                              const sinks::TableSpec& dlq_spec,
                                              const std::string& load_id) {
  std::set<int64_t> out;
  sinks::TableSpec spec = dlq_spec;
  spec.load_id = load_id;
  FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<sinks::Target> target,
                            sinks::Target::Open(address, spec));
  FORKLIFT_ASSIGN_OR_RETURN(std::vector<sinks::LedgerEntry> entries, target->CommittedChunks());
  for (const sinks::LedgerEntry& e : entries) out.insert(e.chunk);
  return out;
}

// Where load `load_id` went and how, from the configuration it recorded in the journal
// (`to` overrides the target: a password is never stored). The spec is for the retries'
// own ledger entries, under LOAD_ID/dlq.
struct RecordedTarget {
  sinks::TargetAddress address;
  sinks::TableSpec spec;
};

Result<RecordedTarget> ReadRecordedTarget(journal::Journal& journal,
                                          const std::string& journal_path,
                                          const std::string& load_id, const std::string& to) {
  FORKLIFT_ASSIGN_OR_RETURN(auto run, journal.GetRun(load_id));
  if (!run || run->kind != "load") {
    return NotFoundError(
        fmt::format("no load '{}' in {} (see forklift runs --kind load)", load_id, journal_path));
  }
  nlohmann::json summary = nlohmann::json::parse(run->summary_json, nullptr, false);
  if (summary.is_discarded() || !summary.contains("config")) {
    return InvalidArgumentError(
        fmt::format("load '{}' has no recorded configuration to retry with", load_id));
  }
  const nlohmann::json& c = summary["config"];
  // Its letters hold input rows (of chunks whose transform failed) beside output rows
  // (refused by the database), and retry does not run the transform: loading the first
  // kind as they are would store untransformed rows.
  if (const std::string transform = c.value("transform", std::string()); !transform.empty()) {
    return InvalidArgumentError(fmt::format(
        "load '{}' ran --transform '{}': its dead letters cannot be retried as they are (see "
        "forklift dlq show {}); fix them and load them with forklift load",
        load_id, transform, load_id));
  }
  // CSV dialect: the letters are the files' bytes in their quote, escape and encoding.
  if (const std::string dialect = c.value("csv_dialect", std::string()); !dialect.empty()) {
    return InvalidArgumentError(fmt::format(
        "load '{}' read its files with {}: its dead letters are those files' bytes and cannot "
        "be retried as they are (see forklift dlq show {}); fix them and load them with "
        "forklift load and the same options",
        load_id, dialect, load_id));
  }
  std::string target = to;
  if (target.empty()) {
    if (c.value("needs_password", false)) {
      return InvalidArgumentError(
          fmt::format("load '{}' went to {}, whose password is never stored: give --to", load_id,
                      c.value("to_display", std::string())));
    }
    target = c.value("to", std::string());
  }
  RecordedTarget out;
  FORKLIFT_ASSIGN_OR_RETURN(out.address, sinks::ParseTargetAddress(target));
  FORKLIFT_ASSIGN_OR_RETURN(auto qualified,
                            sinks::ParseQualifiedName(c.value("table", std::string())));
  const std::string delim = c.value("delimiter", std::string(","));
  out.spec = sinks::TableSpec{.schema = qualified.first,
                              .table = qualified.second,
                              .columns = c.value("columns", std::vector<std::string>()),
                              .key = c.value("key", std::vector<std::string>()),
                              .upsert = c.value("mode", std::string()) == "upsert",
                              .delimiter = delim.empty() ? ',' : delim[0],
                              .null_string = c.value("null", std::string()),
                              .load_id = load_id + "/dlq",
                              .ledger_schema = c.value("ledger_schema", std::string())};
  return out;
}

// One letter as a chunk of one row, numbered by the letter's id and its attempts so far
// (the id of a letter ever retried is never reused: the journal deletes only letters of
// chunks the load has not committed, which are never retried): a retry that committed but
// died before marking its letter finds its ledger row on the next run; a letter refused
// again has one attempt more, so its next retry is a new chunk.
sinks::Chunk LetterChunk(const journal::DeadLetter& d) {
  sinks::Chunk chunk;
  chunk.number = d.id * kAttemptSlots + std::min<int64_t>(d.attempts, kAttemptSlots - 1);
  chunk.source = "dlq";
  chunk.first_line = chunk.last_line = static_cast<uint64_t>(d.id);
  chunk.rows.push_back({.offset = 0,
                        .size = static_cast<uint32_t>(d.payload.size()),
                        .line = static_cast<uint64_t>(d.id)});
  chunk.data = d.payload + "\n";
  sources::Checksum sum;
  sum.Add(std::to_string(d.attempts));
  sum.Add(d.payload);
  chunk.checksum = sum.Hex();
  return chunk;
}

// Loads one parsed letter in its own transaction: true when its row is in the table
// (marked retried), false when the table refused it again (the letter stays pending,
// with the new reason and one attempt more).
Result<bool> RetryLetter(const journal::DeadLetter& d, sinks::Sink& sink,
                         journal::Journal& journal) {
  const sinks::Chunk chunk = LetterChunk(d);
  const int64_t id = d.id;
  FORKLIFT_ASSIGN_OR_RETURN(std::optional<sinks::LedgerEntry> done, sink.FindChunk(chunk.number));
  bool loaded = false;
  if (done) {  // an earlier retry committed this attempt and stopped before marking it
    loaded = done->rows > 0;
  } else {
    auto before_commit = [&](std::span<const sinks::RejectedRow> rejected) -> Status {
      if (rejected.empty()) return {};
      journal::DeadLetter again = d;
      again.reason = rejected[0].sqlstate.empty()
                         ? rejected[0].reason
                         : fmt::format("{}: {}", rejected[0].sqlstate, rejected[0].reason);
      again.attempts += 1;
      auto put = journal.PutDeadLetters(std::span(&again, 1));
      if (!put) return tl::unexpected(put.error());
      return {};
    };
    FORKLIFT_ASSIGN_OR_RETURN(sinks::ChunkWriteResult w, sink.WriteChunk(chunk, before_commit));
    loaded = w.rejected.empty();
  }
  if (loaded) FORKLIFT_RETURN_IF_ERROR(journal.MarkDeadLettersRetried(std::span(&id, 1)));
  return loaded;
}

}  // namespace

Result<DlqRetryResult> RetryDeadLetters(const std::string& journal_path, const std::string& load_id,
                                        const std::string& to) {
  auto journal_or = journal::Journal::Open(journal_path);
  if (!journal_or) return InvalidArgumentError("--journal: " + journal_or.error().message);
  journal::Journal& journal = **journal_or;
  FORKLIFT_ASSIGN_OR_RETURN(RecordedTarget rt,
                            ReadRecordedTarget(journal, journal_path, load_id, to));
  const sinks::TableSpec& spec = rt.spec;
  FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<sinks::Target> tgt,
                            sinks::Target::Open(rt.address, spec));
  FORKLIFT_RETURN_IF_ERROR(tgt->EnsureLedger());
  FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<sinks::Sink> sink, tgt->OpenSink());
  // The ledger before the letters: a committed chunk's letters are final, while those
  // listed first might be a dead attempt's that the chunk's committing attempt replaced
  // in between (a load resumed while this runs).
  FORKLIFT_ASSIGN_OR_RETURN(std::set<int64_t> committed,
                            CommittedLoadChunks(rt.address, spec, load_id));
  FORKLIFT_ASSIGN_OR_RETURN(std::vector<journal::DeadLetter> pending,
                            journal.ListDeadLetters(load_id, /*include_retried=*/false));

  DlqRetryResult result;
  result.pending = pending.size();
  std::vector<sources::CsvField> fields;
  std::string scratch;
  // Dead letters are few; a transaction each is cheap enough.
  for (const journal::DeadLetter& d : pending) {
    // A letter of a chunk the load has not committed may be stale (that attempt may never
    // commit, and the next may not reject the row) or the load may yet load its row: only
    // resuming the load settles it. Letters without a chunk predate the column.
    if (d.chunk && !committed.count(*d.chunk)) {
      ++result.uncommitted;
      continue;
    }
    // A record cut to the reject size limit may still split into the right number of
    // fields (the cut fell in its last field): loading it would store a shortened value.
    if (d.code == ErrorCode::kDataLoss || IsTruncatedReject(d.reason, d.payload.size())) {
      ++result.truncated;
      continue;
    }
    std::string reason = sources::SplitCsvRecord(d.payload, spec.delimiter, &fields, &scratch);
    if (!reason.empty() || fields.size() != spec.columns.size()) {
      ++result.unparsable;
      continue;
    }
    FORKLIFT_ASSIGN_OR_RETURN(bool loaded, RetryLetter(d, *sink, journal));
    ++(loaded ? result.loaded : result.rejected);
  }
  return result;
}

}  // namespace forklift::load
