#include "load/dlq_retry.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "journal/journal.h"
#include "sinks/pg_dsn.h"
#include "sinks/sink.h"
#include "sources/checksum.h"
#include "sources/csv_reader.h"

namespace forklift::load {

Result<DlqRetryResult> RetryDeadLetters(const std::string& journal_path,
                                        const std::string& load_id, const std::string& to) {
  auto journal_or = journal::Journal::Open(journal_path);
  if (!journal_or) return InvalidArgumentError("--journal: " + journal_or.error().message);
  journal::Journal& journal = **journal_or;
  FORKLIFT_ASSIGN_OR_RETURN(auto run, journal.GetRun(load_id));
  if (!run || run->kind != "load") {
    return NotFoundError(fmt::format("no load '{}' in {} (see forklift runs --kind load)",
                                     load_id, journal_path));
  }
  nlohmann::json summary = nlohmann::json::parse(run->summary_json, nullptr, false);
  if (summary.is_discarded() || !summary.contains("config")) {
    return InvalidArgumentError(
        fmt::format("load '{}' has no recorded configuration to retry with", load_id));
  }
  const nlohmann::json& c = summary["config"];
  std::string target = to;
  if (target.empty()) {
    if (c.value("needs_password", false)) {
      return InvalidArgumentError(fmt::format(
          "load '{}' went to {}, whose password is never stored: give --to", load_id,
          c.value("to_display", std::string())));
    }
    target = c.value("to", std::string());
  }
  FORKLIFT_ASSIGN_OR_RETURN(sinks::TargetAddress address, sinks::ParseTargetAddress(target));
  FORKLIFT_ASSIGN_OR_RETURN(auto qualified,
                            sinks::ParseQualifiedName(c.value("table", std::string())));
  const std::string delim = c.value("delimiter", std::string(","));
  sinks::TableSpec spec{.schema = qualified.first,
                        .table = qualified.second,
                        .columns = c.value("columns", std::vector<std::string>()),
                        .key = c.value("key", std::vector<std::string>()),
                        .upsert = c.value("mode", std::string()) == "upsert",
                        .delimiter = delim.empty() ? ',' : delim[0],
                        .null_string = c.value("null", std::string()),
                        .load_id = load_id + "/dlq"};
  const int64_t chunk_rows = std::max<int64_t>(1, c.value("chunk_rows", int64_t{5000}));
  FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<sinks::Target> tgt, sinks::Target::Open(address, spec));
  FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<sinks::Sink> sink, tgt->OpenSink());
  FORKLIFT_ASSIGN_OR_RETURN(std::vector<journal::DeadLetter> pending,
                            journal.ListDeadLetters(load_id, /*include_retried=*/false));

  DlqRetryResult result;
  result.pending = pending.size();
  std::vector<sources::CsvField> fields;
  std::string scratch;
  size_t i = 0;
  while (i < pending.size()) {
    sinks::Chunk chunk;
    std::vector<const journal::DeadLetter*> in_chunk;
    sources::Checksum sum;
    chunk.number = pending[i].id;
    chunk.source = "dlq";
    for (; i < pending.size() && static_cast<int64_t>(in_chunk.size()) < chunk_rows; ++i) {
      const journal::DeadLetter& d = pending[i];
      std::string reason = sources::SplitCsvRecord(d.payload, spec.delimiter, &fields, &scratch);
      if (!reason.empty() || fields.size() != spec.columns.size()) {
        ++result.unparsable;
        continue;
      }
      chunk.rows.push_back({.offset = static_cast<uint32_t>(chunk.data.size()),
                            .size = static_cast<uint32_t>(d.payload.size()),
                            .line = static_cast<uint64_t>(d.id)});
      chunk.data += d.payload;
      chunk.data += '\n';
      sum.Add(d.payload);
      in_chunk.push_back(&d);
    }
    if (in_chunk.empty()) continue;
    chunk.first_line = static_cast<uint64_t>(in_chunk.front()->id);
    chunk.last_line = static_cast<uint64_t>(in_chunk.back()->id);
    chunk.checksum = sum.Hex();
    std::vector<int64_t> ids;
    for (const auto* d : in_chunk) ids.push_back(d->id);
    FORKLIFT_ASSIGN_OR_RETURN(std::optional<sinks::LedgerEntry> done, sink->FindChunk(chunk.number));
    if (done) {  // an earlier retry committed this chunk and stopped before marking it
      FORKLIFT_RETURN_IF_ERROR(journal.MarkDeadLettersRetried(ids));
      result.loaded += static_cast<uint64_t>(done->rows);
      continue;
    }
    // Rows refused again keep a pending letter with the new reason (same key, replaced).
    auto before_commit = [&](std::span<const sinks::RejectedRow> rejected) -> Status {
      std::vector<journal::DeadLetter> again;
      for (const sinks::RejectedRow& r : rejected) {
        journal::DeadLetter d = *in_chunk[r.row];
        d.reason = r.sqlstate.empty() ? r.reason : fmt::format("{}: {}", r.sqlstate, r.reason);
        d.attempts += 1;
        again.push_back(std::move(d));
      }
      auto put = journal.PutDeadLetters(again);
      if (!put) return tl::unexpected(put.error());
      return {};
    };
    FORKLIFT_ASSIGN_OR_RETURN(sinks::ChunkWriteResult w, sink->WriteChunk(chunk, before_commit));
    std::vector<bool> refused(in_chunk.size(), false);
    for (const auto& r : w.rejected) refused[r.row] = true;
    std::vector<int64_t> loaded;
    for (size_t k = 0; k < in_chunk.size(); ++k) {
      if (!refused[k]) loaded.push_back(in_chunk[k]->id);
    }
    FORKLIFT_RETURN_IF_ERROR(journal.MarkDeadLettersRetried(loaded));
    result.loaded += loaded.size();
    result.rejected += w.rejected.size();
  }
  return result;
}

}  // namespace forklift::load
