// `forklift load FILE... --to TARGET --table TABLE [...]` and `forklift dlq`.
#include <fmt/format.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <stop_token>

#include "cli/commands.h"
#include "cli/signal_thread.h"
#include "journal/journal.h"
#include "load/dead_letter_file.h"
#include "load/dlq_retry.h"
#include "load/load_options.h"
#include "load/load_runner.h"

namespace forklift::cli {

int LoadCommand(const std::vector<std::string>& args) {
  CLI::App app("Load CSV files into a PostgreSQL or SQLite table in parallel chunks, "
               "exactly once, with bad rows dead-lettered.",
               "forklift load");
  load::LoadOptions o;
  std::string mode = "insert", key, columns, delimiter = ",", chunk_bytes = "4MiB", progress = "auto";
  int64_t max_errors = -1;
  bool no_header = false;
  app.add_option("files", o.sources, "CSV files (.gz read transparently)")->required();
  app.add_option("--to", o.to, "postgres://user@host:5432/db, a libpq conninfo, or sqlite:PATH")
      ->required();
  app.add_option("--table", o.table, "target table: [schema.]table")->required();
  app.add_option("--key", key, "conflict columns, comma-separated (upsert)");
  app.add_option("--mode", mode, "insert (COPY, default) or upsert (needs --key)")
      ->check(CLI::IsMember({"insert", "upsert"}));
  app.add_option("--workers", o.workers,
                 "connections at once (default 4; 1 for SQLite; at most half of max_connections)")
      ->check(CLI::Range(1, 1 << 30));
  app.add_option("--chunk-rows", o.chunk_rows, "rows per chunk (default 5000)")
      ->check(CLI::Range(1, 1 << 30));
  app.add_option("--chunk-bytes", chunk_bytes, "bytes per chunk (default 4MiB)");
  app.add_option("--columns", columns, "target columns in the files' order (default: the header)");
  app.add_option("--delimiter", delimiter, "field delimiter (default ,; \\t for tab)");
  app.add_option("--null", o.null_string, "unquoted value meaning NULL (default: empty)");
  app.add_flag("--no-header", no_header, "the files have no header row (needs --columns)");
  app.add_option("--dlq", o.dlq_path, "also write rejected rows to this CSV file");
  app.add_option("--max-errors", max_errors, "stop after more than N rejected rows")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--load-id", o.load_id, "name the load (default: a hash of sources, target, "
                                         "table, mode and chunking)");
  app.add_flag("--json", o.json, "print the summary as one JSON object on stdout");
  app.add_option("--journal", o.journal_path,
                 "journal file (default $FORKLIFT_JOURNAL or .forklift/journal.db)");
  app.add_option("--progress", progress, "auto (bar on a TTY, lines otherwise), bar, lines, none")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}));
  if (int rc = ParseCli(app, args); rc >= 0) return rc;

  // Bad input (options, files, values) exits 2 before anything is loaded; a target that
  // cannot be reached or lacks the table exits 1.
  auto fail = [](const Error& e) {
    fmt::print(stderr, "forklift load: {}\n", e.message);
    return e.code == ErrorCode::kInvalidArgument || e.code == ErrorCode::kNotFound ? 2 : 1;
  };
  o.upsert = mode == "upsert";
  o.header = !no_header;
  if (max_errors >= 0) o.max_errors = max_errors;
  o.display = progress == "bar"     ? ProgressDisplay::kBar
              : progress == "lines" ? ProgressDisplay::kLines
              : progress == "none"  ? ProgressDisplay::kNone
                                    : ProgressDisplay::kAuto;
  if (!key.empty()) {
    auto k = load::ParseNameList(key, "--key");
    if (!k) return fail(k.error());
    o.key = *k;
  }
  if (!columns.empty()) {
    auto c = load::ParseNameList(columns, "--columns");
    if (!c) return fail(c.error());
    o.columns = *c;
  }
  auto d = load::ParseDelimiter(delimiter);
  if (!d) return fail(d.error());
  o.delimiter = *d;
  auto cb = load::ParseByteSize(chunk_bytes, "--chunk-bytes");
  if (!cb) return fail(cb.error());
  o.chunk_bytes = *cb;

  std::stop_source graceful, force_stop;
  SignalThread signals(
      [&](int sig) {
        fmt::print(stderr, "\nforklift load: {}: reading no further, letting chunks in flight "
                           "commit (send it again to cancel them)\n", sigabbrev_np(sig));
        graceful.request_stop();
      },
      [&](int) { force_stop.request_stop(); });
  auto summary = load::RunLoad(o, {graceful.get_token(), force_stop.get_token()}, {});
  if (!summary) return fail(summary.error());
  if (o.json) {
    fmt::print(stdout, "{}\n", summary->ToJson());
    std::fflush(stdout);
  }
  if (!o.json || summary->status != "succeeded") fmt::print(stderr, "{}", summary->ToText());
  if (int sig = signals.first_signal(); sig != 0) return 128 + sig;
  return summary->status == "succeeded" ? 0 : 1;
}

int DlqCommand(const std::vector<std::string>& args) {
  CLI::App app("Dead letters of loads: list, show, retry.", "forklift dlq");
  app.require_subcommand(1);
  std::string journal_path, load_id, to;
  bool json = false, all = false;
  auto* list = app.add_subcommand("list", "loads with pending dead letters, or one load's letters");
  list->add_option("load_id", load_id, "a load id (see forklift runs --kind load)");
  auto* show = app.add_subcommand("show", "a load's dead letters in full (CSV with the raw rows)");
  show->add_option("load_id", load_id, "the load id")->required();
  auto* retry = app.add_subcommand("retry", "load a load's pending dead letters again");
  retry->add_option("load_id", load_id, "the load id")->required();
  retry->add_option("--to", to, "target (needed when the load's DSN had a password)");
  for (CLI::App* sub : {list, show, retry}) {
    sub->add_option("--journal", journal_path,
                    "journal file (default $FORKLIFT_JOURNAL or .forklift/journal.db)");
  }
  list->add_flag("--all", all, "include letters already retried");
  show->add_flag("--all", all, "include letters already retried");
  list->add_flag("--json", json, "one JSON object per line");
  if (int rc = ParseCli(app, args); rc >= 0) return rc;

  const std::string path = journal::ResolveJournalPath(journal_path);
  if (retry->parsed()) {
    auto r = load::RetryDeadLetters(path, load_id, to);
    if (!r) {
      fmt::print(stderr, "forklift dlq retry: {}\n", r.error().message);
      return r.error().code == ErrorCode::kInvalidArgument ? 2 : 1;
    }
    fmt::print("{}: {} pending, {} loaded, {} refused again, {} not a record of the load's "
               "columns, {} cut to the size limit (not retryable){}\n",
               load_id, r->pending, r->loaded, r->rejected, r->unparsable, r->truncated,
               r->uncommitted == 0
                   ? std::string()
                   : fmt::format(", {} of uncommitted chunks: resume the load first",
                                 r->uncommitted));
    return r->loaded == r->pending ? 0 : 1;
  }
  auto journal = journal::Journal::Open(path);
  if (!journal) {
    fmt::print(stderr, "forklift dlq: --journal: {}\n", journal.error().message);
    return 2;
  }
  auto letters = (*journal)->ListDeadLetters(load_id, all);
  if (!letters) {
    fmt::print(stderr, "forklift dlq: {}\n", letters.error().message);
    return 1;
  }
  if (show->parsed()) {
    std::fputs(load::kDeadLetterCsvHeader, stdout);
    for (const auto& d : *letters) {
      const std::string row = load::DeadLetterCsvRow(d);  // may hold NULs
      std::fwrite(row.data(), 1, row.size(), stdout);
    }
    return 0;
  }
  if (load_id.empty()) {  // per load: how many are pending
    std::map<std::string, size_t> counts;
    for (const auto& d : *letters) ++counts[d.run_id];
    if (!json) fmt::print("{:<24} {:>8}\n", "LOAD", "LETTERS");
    for (const auto& [id, n] : counts) {
      if (json) {
        // A load id is any text (--load-id): the JSON library escapes it. Invalid UTF-8
        // becomes U+FFFD rather than an exception.
        const nlohmann::json line{{"load_id", id}, {"letters", n}};
        fmt::print("{}\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      } else {
        fmt::print("{:<24} {:>8}\n", id, n);
      }
    }
    return 0;
  }
  for (const auto& d : *letters) {
    std::string raw = d.payload.substr(0, 60);
    for (char& ch : raw) if (static_cast<unsigned char>(ch) < 32) ch = ' ';
    fmt::print("{:>6}  {}:{}  {}  | {}\n", d.id, d.source,
               d.position.starts_with("line ") ? d.position.substr(5) : d.position, d.reason, raw);
  }
  return 0;
}

}  // namespace forklift::cli
