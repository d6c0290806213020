// `forklift runs`: the runs recorded in the journal, newest first.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "flow/flow_runner.h"
#include "journal/journal.h"

namespace forklift::cli {
namespace {

// A load records no items (its unit is the row, kept in the target's ledger): its
// succeeded and failed counts are the rows its summary reports, this invocation's and
// those of the chunks earlier ones committed.
void LoadCounts(journal::RunInfo& r) {
  if (r.kind != "load" || r.summary_json.empty()) return;
  const nlohmann::json j = nlohmann::json::parse(r.summary_json, nullptr, false);
  if (!j.is_object()) return;
  auto n = [&](const char* key) {
    return j.contains(key) && j[key].is_number() ? j[key].get<int64_t>() : 0;
  };
  r.items_succeeded = n("rows_loaded") + n("rows_skipped");
  r.items_failed = n("rows_rejected") + n("rows_rejected_earlier");
}

}  // namespace

int RunsCommand(const std::vector<std::string>& args) {
  CLI::App app("List the runs recorded in the journal, newest first.", "forklift runs");
  std::string journal_path, flow_path;
  std::string kind;
  int limit = 20;
  bool json = false;
  app.add_option("--journal", journal_path,
                 "journal file (default $FORKLIFT_JOURNAL, else .forklift/journal.db in the "
                 "working directory, as map, load and dlq find it)")
      ->group("Journal");
  app.add_option("--flow", flow_path,
                 "the journal of this flow file (.forklift/journal.db beside it, as forklift "
                 "run keeps it)")
      ->group("Journal");
  app.add_option("--kind", kind, "only runs of this kind: batch, map, flow, load")
      ->check(CLI::IsMember({"batch", "map", "flow", "load"}))
      ->group("Which runs");
  app.add_option("--limit", limit, "at most this many runs (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->group("Which runs");
  app.add_flag("--json", json, "one JSON object per line")->group("Output");
  app.footer(
      "SUCCEEDED and FAILED count items (batch), jobs (map), tasks (flow) or rows (load: "
      "loaded, rejected).");
  if (int rc = ParseCli(app, args); rc >= 0) return rc;
  journal_path = flow_path.empty() ? journal::ResolveJournalPath(journal_path)
                                   : flow::ResolveFlowJournalPath(journal_path, flow_path);
  if (!std::filesystem::exists(journal_path)) {  // listing must not create a journal
    fmt::print("no runs: {} does not exist\n", journal_path);
    return 0;
  }
  auto journal = journal::Journal::Open(journal_path);
  if (!journal) {
    fmt::print(stderr, "forklift runs: --journal: {}\n", journal.error().message);
    return 2;
  }
  auto runs = (*journal)->ListRuns(kind, limit);
  if (!runs) {
    fmt::print(stderr, "forklift runs: {}\n", runs.error().ToString());
    return 1;
  }
  for (auto& r : *runs) LoadCounts(r);
  if (json) {
    for (const auto& r : *runs) {
      nlohmann::json j = {{"run_id", r.run_id},
                          {"kind", r.kind},
                          {"name", r.name},
                          {"status", r.status},
                          {"started_at", r.started_at},
                          {"invocations", r.invocations},
                          {"items_succeeded", r.items_succeeded},
                          {"items_failed", r.items_failed}};
      j["finished_at"] = r.finished_at ? nlohmann::json(*r.finished_at) : nlohmann::json();
      j["summary"] = r.summary_json.empty() ? nlohmann::json()
                                            : nlohmann::json::parse(r.summary_json, nullptr, false);
      fmt::print("{}\n", j.dump());
    }
    return 0;
  }
  if (runs->empty()) {
    fmt::print("no runs in {}\n", journal_path);
    return 0;
  }
  // Columns as wide as their widest value: a long --load-id or --batch-id keeps the rest
  // of its row under the headings.
  size_t id_width = 3;
  for (const auto& r : *runs) id_width = std::max(id_width, r.run_id.size());
  fmt::print("{:<{}} {:<6} {:<10} {:<19} {:>9} {:>9} {:>5}\n", "RUN", id_width, "KIND", "STATUS",
             "STARTED", "SUCCEEDED", "FAILED", "RUNS");
  for (const auto& r : *runs) {
    fmt::print("{:<{}} {:<6} {:<10} {:<19} {:>9} {:>9} {:>5}\n", r.run_id, id_width, r.kind,
               r.status, LocalTime(r.started_at), r.items_succeeded, r.items_failed, r.invocations);
  }
  return 0;
}

}  // namespace forklift::cli
