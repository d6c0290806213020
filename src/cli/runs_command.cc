// `forklift runs`: the runs recorded in the journal, newest first.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "journal/journal.h"

namespace forklift::cli {
namespace {

std::string LocalTime(double unix_seconds) {
  auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}


}  // namespace

int RunsCommand(const std::vector<std::string>& args) {
  CLI::App app("List the runs recorded in the journal, newest first.", "forklift runs");
  std::string journal_path = journal::ResolveJournalPath("");
  std::string kind;
  int limit = 20;
  bool json = false;
  app.add_option("--journal", journal_path, "journal file (default $FORKLIFT_JOURNAL or .forklift/journal.db)");
  app.add_option("--kind", kind, "only runs of this kind: batch, map, flow, load");
  app.add_option("--limit", limit, "at most this many runs (0: all)")->check(CLI::NonNegativeNumber);
  app.add_flag("--json", json, "one JSON object per line");
  if (int rc = ParseCli(app, args); rc >= 0) return rc;
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
  if (json) {
    for (const auto& r : *runs) {
      nlohmann::json j = {{"run_id", r.run_id},         {"kind", r.kind},
                          {"name", r.name},             {"status", r.status},
                          {"started_at", r.started_at}, {"invocations", r.invocations},
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
  fmt::print("{:<32} {:<6} {:<10} {:<19} {:>9} {:>9} {:>5}\n", "RUN", "KIND", "STATUS",
             "STARTED", "SUCCEEDED", "FAILED", "RUNS");
  for (const auto& r : *runs) {
    fmt::print("{:<32} {:<6} {:<10} {:<19} {:>9} {:>9} {:>5}\n", r.run_id, r.kind, r.status,
               LocalTime(r.started_at), r.items_succeeded, r.items_failed, r.invocations);
  }
  return 0;
}

}  // namespace forklift::cli
