// `forklift load FILE... --to TARGET --table TABLE [...]` and `forklift dlq`.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>

#include "cli/commands.h"
#include "cli/signal_thread.h"
#include "core/duration_parse.h"
#include "journal/journal.h"
#include "load/dead_letter_file.h"
#include "load/dlq_retry.h"
#include "load/exit_status.h"
#include "load/load_options.h"
#include "load/load_runner.h"
#include "load/queue_load.h"
#include "process/orphan_watchdog.h"
#include "process/process_registry.h"
#include "sinks/pg_dsn.h"

namespace forklift::cli {

int LoadCommand(const std::vector<std::string>& args) {
  CLI::App app(
      "Load CSV or JSON Lines files, or a query's rows (--from DSN --query SQL), into a "
      "PostgreSQL or SQLite table in parallel chunks, exactly once, with bad rows "
      "dead-lettered.",
      "forklift load");
  load::LoadOptions o;
  std::string mode = "insert", key, columns, delimiter = ",", chunk_bytes = "4MiB",
              progress = "auto";
  std::string max_errors;
  bool no_header = false;
  const std::string target = "Target", input = "Input", mode_group = "Mode and chunking",
                    bad = "Bad rows", state = "Resume and journal", output = "Output";
  app.add_option("files", o.sources,
                 "CSV or JSON Lines (.jsonl, .ndjson) files; .gz read transparently; - for stdin "
                 "(with --format and --load-id); or --from/--query");
  app.add_option("--to", o.to, "postgres://user@host:5432/db, a libpq conninfo, or sqlite:PATH")
      ->required()
      ->group(target);
  app.add_option("--table", o.table, "target table: [schema.]table")->required()->group(target);
  app.add_option("--ledger-schema", o.ledger_schema,
                 "schema of the ledger table forklift_load_chunks (default: the table's; "
                 "PostgreSQL)")
      ->group(target);
  app.add_option("--mode", mode,
                 "insert (COPY, default), upsert (needs --key), or insert-ignore (skip and "
                 "count rows that break a unique key)")
      ->check(CLI::IsMember({"insert", "upsert", "insert-ignore"}))
      ->group(mode_group);
  app.add_option("--key", key, "conflict columns, comma-separated (--mode upsert only)")
      ->group(mode_group);
  app.add_option("--workers", o.workers,
                 "connections at once (default 4; 1 for SQLite; at most half of max_connections)")
      ->check(CLI::Range(1, 1 << 30))
      ->group(mode_group);
  app.add_option("--chunk-rows", o.chunk_rows, "rows per chunk (default 5000)")
      ->check(CLI::Range(1, 1 << 30))
      ->group(mode_group);
  app.add_option("--chunk-bytes", chunk_bytes, "bytes per chunk (default 4MiB)")->group(mode_group);
  app.add_option("--columns", columns,
                 "target columns in the files' order (default: the header; with --no-header, "
                 "the table's columns)")
      ->group(input);
  app.add_option("--delimiter", delimiter, "field delimiter (default ,; \\t for tab)")
      ->group(input);
  app.add_option("--null", o.null_string, "unquoted value meaning NULL (default: empty)")
      ->group(input);
  app.add_flag("--no-header", no_header, "the files have no header row")->group(input);
  // CSV dialect (docs/load.md, "CSV dialects").
  std::string quote = "\"", escape, encoding = "utf-8";
  app.add_option("--quote", quote, "CSV quote character (default \")")->group(input);
  app.add_option("--escape", escape,
                 "in quoted fields, makes a following quote (or itself) literal (default: the "
                 "quote, doubled as in RFC 4180); e.g. \\")
      ->group(input);
  app.add_option("--encoding", encoding,
                 "the CSV files' encoding: utf-8 (default), latin1 or windows-1252; converted "
                 "to UTF-8 on read (checksums and dead letters keep the files' bytes)")
      ->group(input);
  app.add_option("--skip-lines", o.skip_lines,
                 "physical lines to drop at the start of each CSV file, before the header (not "
                 "rows; dead letters keep the file's line numbers)")
      ->group(input);
  // Query sources (docs/load.md, "Query sources").
  const std::string query_group = "Query source (instead of files)";
  std::string resume_key;
  app.add_option("--from", o.from,
                 "read a query's rows from postgres://..., a libpq conninfo, or sqlite:PATH")
      ->group(query_group);
  app.add_option("--query", o.query,
                 "the SELECT whose rows are loaded (streamed; columns by name, as a header)")
      ->group(query_group);
  app.add_option("--resume-key", resume_key,
                 "unique result columns, comma-separated: read in their order, and a rerun "
                 "continues after the last committed key (without it an insert rerun is "
                 "refused)")
      ->group(query_group);
  app.add_option("--partition-by", o.partition_by,
                 "a result column that splits the query into --partitions streams: ranges of "
                 "its min..max for an integer, date or timestamp column (SQLite: INTEGER), "
                 "else its hash")
      ->group(query_group);
  app.add_option("--partitions", o.partitions,
                 "streams read in parallel, one source connection each (default 1)")
      ->check(CLI::Range(1, 64))
      ->group(query_group);
  app.add_option("--dlq", o.dlq_path, "also write rejected rows to this CSV file")->group(bad);
  app.add_option("--max-errors", max_errors,
                 "stop after more than N rejected rows, or more than N% of the rows read "
                 "(judged once 1000 rows were committed, and at the end)")
      ->group(bad);
  app.add_option("--load-id", o.load_id,
                 "name the load (default: a hash of sources, target, "
                 "table, mode and chunking)")
      ->group(state);
  app.add_option("--journal", o.journal_path,
                 "journal file (default $FORKLIFT_JOURNAL or .forklift/journal.db)")
      ->group(state);
  app.add_flag("--json", o.json, "print the summary as one JSON object on stdout")->group(output);
  app.add_option("--progress", progress, "auto (bar on a TTY, lines otherwise), bar, lines, none")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}))
      ->group(output);
  // Table lifecycle and dialect
  const std::string lifecycle = "Table lifecycle";
  app.add_flag("--truncate", o.truncate,
               "empty the table first, once per load (a resume does not empty it again)")
      ->group(lifecycle);
  app.add_flag("--replace", o.replace,
               "load into a shadow table and swap it in at the end, in one transaction "
               "(readers see the old table until then)")
      ->group(lifecycle);

  app.add_option("--format", o.format,
                 "csv or jsonl (default: by each file's name); needed for - (stdin), which "
                 "also needs --load-id")
      ->check(CLI::IsMember({"csv", "jsonl"}))
      ->group(input);

  // Transforms (load/command_transform.h, docs/load.md "Transforms").
  const std::string transforms = "Transforms";
  std::string transform_timeout;
  app.add_option("--transform", o.transform,
                 "pass each chunk through this command (run by /bin/sh -c): CSV with a header "
                 "on its stdin, CSV with a header naming the target's columns on its stdout; a "
                 "chunk whose command fails, times out or writes malformed CSV is dead-lettered")
      ->group(transforms);
  app.add_option("--cpu-workers", o.cpu_workers,
                 "transforms running at once (default 1); chunks still commit in input order "
                 "per partition")
      ->check(CLI::Range(1, 256))
      ->group(transforms);
  app.add_option("--transform-timeout", transform_timeout,
                 "per chunk, e.g. 30s or 2m (default: none); the command's process group then "
                 "gets SIGTERM, then SIGKILL")
      ->group(transforms);
  // Through the work queue (load/queue_load.h, docs/load.md "Through the queue").
  const std::string queue_group = "Work queue";
  std::string queue_dsn, queue_schema = "forklift", queue_checksum, queue_cwd, queue_source,
                         queue_span;
  std::optional<int64_t> queue_chunk;
  app.add_option("--queue", queue_dsn,
                 "coordinate the load through this PostgreSQL work queue: each chunk is "
                 "written by a 'forklift worker --queue DSN' on any host (the files must be at "
                 "the same path on every worker's host)")
      ->group(queue_group);
  app.add_option("--queue-schema", queue_schema, "the queue's schema (default forklift)")
      ->group(queue_group);
  // What a worker's job gets (QueueLoadOptions::worker_argv): not for people.
  app.add_option("--queue-chunk", queue_chunk)->group("")->check(CLI::NonNegativeNumber);
  app.add_option("--queue-checksum", queue_checksum)->group("");
  app.add_option("--queue-cwd", queue_cwd)->group("");
  app.add_option("--queue-source", queue_source)->group("");
  app.add_option("--queue-span", queue_span)->group("");
  app.footer(load::kExitStatusHelp);
  if (int rc = ParseCli(app, args); rc >= 0) return rc;
  if (!queue_cwd.empty() && ::chdir(queue_cwd.c_str()) != 0) {
    fmt::print(stderr, "forklift load: --queue-cwd {}: {}\n", queue_cwd, std::strerror(errno));
    return 1;
  }

  // One table of exit statuses (load/exit_status.h, docs/load.md): an error here means
  // nothing was loaded.
  auto fail = [](const Error& e) {
    fmt::print(stderr, "forklift load: {}\n", e.message);
    return load::ExitStatusOf(e);
  };
  o.upsert = mode == "upsert";
  o.insert_ignore = mode == "insert-ignore";
  o.header = !no_header;
  if (!max_errors.empty()) {
    if (Status st = load::ParseMaxErrors(max_errors, &o.max_errors, &o.max_errors_percent); !st) {
      return fail(st.error());
    }
  }
  o.display = progress == "bar"     ? ProgressDisplay::kBar
              : progress == "lines" ? ProgressDisplay::kLines
              : progress == "none"  ? ProgressDisplay::kNone
                                    : ProgressDisplay::kAuto;
  if (!key.empty()) {
    auto k = load::ParseNameList(key, "--key");
    if (!k) return fail(k.error());
    o.key = *k;
  }
  if (!resume_key.empty()) {
    auto k = load::ParseNameList(resume_key, "--resume-key");
    if (!k) return fail(k.error());
    o.resume_key = *k;
  }
  if (!columns.empty()) {
    auto c = load::ParseNameList(columns, "--columns");
    if (!c) return fail(c.error());
    o.columns = *c;
  }
  if (!transform_timeout.empty()) {
    auto t = core::ParseDuration(transform_timeout, core::BareNumber::kSeconds);
    if (!t) return fail(Error{t.error().code, "--transform-timeout: " + t.error().message});
    o.transform_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*t);
    if (o.transform_timeout.count() == 0) {
      return fail(Error{ErrorCode::kInvalidArgument,
                        fmt::format("--transform-timeout {}: must be at least 1ms (leave it "
                                    "out for none)",
                                    transform_timeout)});
    }
  }
  auto d = load::ParseDelimiter(delimiter);
  if (!d) return fail(d.error());
  o.delimiter = *d;
  // CSV dialect
  auto q = load::ParseDialectChar(quote, "--quote");
  if (!q) return fail(q.error());
  o.quote = *q;
  if (app.count("--escape") > 0) {
    auto e = load::ParseDialectChar(escape, "--escape");
    if (!e) return fail(e.error());
    o.escape = *e;
  }
  auto enc = sources::ParseEncoding(encoding);
  if (!enc) return fail(enc.error());
  o.encoding = *enc;
  auto cb = load::ParseByteSize(chunk_bytes, "--chunk-bytes");
  if (!cb) return fail(cb.error());
  o.chunk_bytes = *cb;

  if (queue_chunk) {  // a worker's job: one chunk, its result on stdout (RunLoadChunk)
    std::stop_source never;
    std::optional<load::ChunkSlice> slice;
    if (!queue_span.empty()) {
      auto decoded = load::DecodeChunkSpan(queue_source, queue_span);
      if (!decoded) return fail(decoded.error());
      slice = std::move(*decoded);
    }
    uint64_t bytes_read = 0;
    auto r =
        load::RunLoadChunk(o, *queue_chunk, queue_checksum, slice, never.get_token(), &bytes_read);
    if (!r) {
      fmt::print(stderr, "forklift load: {}\n", r.error().message);
      return r.error().code == ErrorCode::kUnavailable ? load::kChunkTransientExit : 1;
    }
    fmt::print(stdout, "{}\n", load::EncodeChunkResult(*r, bytes_read));
    return 0;
  }
  std::optional<load::QueueLoadOptions> queue;
  if (app.count("--queue") > 0) {
    auto dsn = sinks::ParsePgDsn(queue_dsn);
    if (!dsn) {
      std::string why = dsn.error().message;
      if (why.rfind("--to: ", 0) == 0) why.erase(0, 6);
      return fail(Error{ErrorCode::kInvalidArgument, "--queue: " + why});
    }
    if (queue_schema.empty()) {
      return fail(Error{ErrorCode::kInvalidArgument, "--queue-schema: must not be empty"});
    }
    if (Status st = load::ValidateQueueLoad(o); !st) return fail(st.error());
    queue.emplace();
    queue->dsn = *dsn;
    queue->schema = queue_schema;
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    const auto cwd = std::filesystem::current_path(ec);
    queue->worker_argv = {exe.string(), "load"};
    // The coordinator's options but the queue's own (and a --load-id: the coordinator
    // gives the one it uses).
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      const bool with_value = a == "--queue" || a == "--queue-schema" || a == "--load-id";
      if (with_value) {
        ++i;
        continue;
      }
      if (a.rfind("--queue=", 0) == 0 || a.rfind("--queue-schema=", 0) == 0 ||
          a.rfind("--load-id=", 0) == 0) {
        continue;
      }
      queue->worker_argv.push_back(a);
    }
    queue->worker_argv.insert(queue->worker_argv.end(), {"--queue-cwd", cwd.string()});
  } else if (app.count("--queue-schema") > 0) {
    return fail(Error{ErrorCode::kInvalidArgument, "--queue-schema: needs --queue"});
  }

  StopSignals signals("\nforklift load",
                      "reading no further, letting chunks in flight commit (send it again "
                      "to cancel them)");
  // --transform's commands: a watchdog ends their groups if forklift is SIGKILLed, then
  // sweeps by the mark every command carries in its environment (FORKLIFT_LOAD_MARK),
  // which also finds one started the moment before its announcement and what a command
  // started in a group of its own (docs/load.md). Without a watchdog they still run.
  process::ProcessRegistry transform_groups;
  std::unique_ptr<process::OrphanWatchdog> watchdog;
  load::LoadIo io;
  if (!o.transform.empty()) {
    const std::string mark = fmt::format(
        "load-{}-{}", getpid(), std::chrono::steady_clock::now().time_since_epoch().count());
    auto dog = process::OrphanWatchdog::Start(
        {.then_exec = {"/proc/self/exe", "__end-survivors", "FORKLIFT_LOAD_MARK", mark}});
    if (dog) {
      watchdog = std::move(*dog);
      transform_groups.Watch(watchdog.get());
    } else {
      fmt::print(stderr, "forklift load: warning: {}\n", dog.error().message);
    }
    io.transform_registry = &transform_groups;
    io.transform_env = {{"FORKLIFT_LOAD_MARK", mark}};
  }
  auto summary = [&]() -> Result<load::LoadSummary> {
    const load::LoadStops stops{signals.graceful(), signals.force()};
    if (queue) return load::RunQueueLoad(o, *queue, stops, std::move(io));
    return load::RunLoad(o, stops, std::move(io));
  }();
  if (!summary) return fail(summary.error());
  if (o.json) {
    fmt::print(stdout, "{}\n", summary->ToJson());
    std::fflush(stdout);
  }
  if (!o.json || journal::ParseRunStatus(summary->status) != journal::RunStatus::kSucceeded) {
    fmt::print(stderr, "{}", summary->ToText());
  }
  if (int sig = signals.first_signal(); sig != 0) return 128 + sig;
  return load::ExitStatusOf(*summary);
}

namespace {

// `s` with control bytes as spaces, for one line of a table.
std::string OneLine(std::string s) {
  for (char& ch : s) {
    if (static_cast<unsigned char>(ch) < 32) ch = ' ';
  }
  return s;
}

}  // namespace

int DlqCommand(const std::vector<std::string>& args) {
  CLI::App app("Dead letters of loads: list, show, retry, discard.", "forklift dlq");
  app.require_subcommand(1);
  std::string journal_path, load_id, to;
  bool json = false, all = false;
  std::optional<int64_t> letter;
  auto* list = app.add_subcommand("list", "loads with pending dead letters, or one load's letters");
  list->add_option("load_id", load_id, "a load id (see forklift runs --kind load)");
  auto* show = app.add_subcommand("show", "a load's dead letters in full (CSV with the raw rows)");
  show->add_option("load_id", load_id, "the load id")->required();
  auto* retry = app.add_subcommand("retry", "load a load's pending dead letters again");
  retry->add_option("load_id", load_id, "the load id")->required();
  retry->add_option("--to", to, "target (needed when the load's DSN had a password)")
      ->group("Target");
  auto* discard = app.add_subcommand("discard", "forget a load's pending dead letters");
  discard->add_option("load_id", load_id, "the load id")->required();
  discard->add_option("--letter", letter, "only this letter (its id in dlq list LOAD_ID)")
      ->group("Which letters");
  for (CLI::App* sub : {list, show, retry, discard}) {
    sub->add_option("--journal", journal_path,
                    "journal file (default $FORKLIFT_JOURNAL or .forklift/journal.db)")
        ->group("Journal");
  }
  list->add_flag("--all", all, "include letters already retried")->group("Which letters");
  show->add_flag("--all", all, "include letters already retried")->group("Which letters");
  list->add_flag("--json", json, "one JSON object per line")->group("Output");
  app.footer(
      "Arguments:\n"
      "  list [LOAD_ID]       per load: table, start, pending letters; or one load's letters\n"
      "  show LOAD_ID         the letters as CSV: load_id,source,line,reason,raw\n"
      "  retry LOAD_ID        load the pending letters again (exit 0 when all loaded)\n"
      "  discard LOAD_ID      forget the pending letters, or one (--letter N)\n"
      "Each takes --journal (found as the load found it: --journal, else $FORKLIFT_JOURNAL,\n"
      "else .forklift/journal.db in the working directory). An unknown LOAD_ID exits 1.");
  if (int rc = ParseCli(app, args); rc >= 0) return rc;

  const std::string path = journal::ResolveJournalPath(journal_path);
  if (retry->parsed()) {
    auto r = load::RetryDeadLetters(path, load_id, to);
    if (!r) {
      fmt::print(stderr, "forklift dlq retry: {}\n", r.error().message);
      return r.error().code == ErrorCode::kInvalidArgument ? 2 : 1;
    }
    fmt::print(
        "{}: {} pending, {} loaded, {} refused again, {} not a record of the load's "
        "columns, {} cut to the size limit (not retryable){}\n",
        load_id, r->pending, r->loaded, r->rejected, r->unparsable, r->truncated,
        r->uncommitted == 0
            ? std::string()
            : fmt::format(", {} of uncommitted chunks: resume the load first", r->uncommitted));
    return r->loaded == r->pending ? 0 : 1;
  }
  auto journal = journal::Journal::Open(path);
  if (!journal) {
    fmt::print(stderr, "forklift dlq: --journal: {}\n", journal.error().message);
    return 2;
  }
  // A load id that names no load is a mistake to report, not an empty list.
  if (!load_id.empty()) {
    auto run = (*journal)->GetRun(load_id);
    if (!run) {
      fmt::print(stderr, "forklift dlq: {}\n", run.error().message);
      return 1;
    }
    if (!*run || (*run)->kind != "load") {
      fmt::print(stderr, "forklift dlq: no load '{}' in {} (see forklift runs --kind load)\n",
                 load_id, path);
      return 1;
    }
  }
  if (discard->parsed()) {
    auto n = (*journal)->DiscardDeadLetters(load_id, letter);
    if (!n) {
      fmt::print(stderr, "forklift dlq discard: {}\n", n.error().message);
      return 1;
    }
    if (letter && *n == 0) {
      fmt::print(stderr,
                 "forklift dlq discard: load '{}' has no pending letter {} (see "
                 "forklift dlq list {})\n",
                 load_id, *letter, load_id);
      return 1;
    }
    fmt::print("{}: {} letter{} discarded\n", load_id, *n, *n == 1 ? "" : "s");
    return 0;
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
  if (load_id.empty()) {  // per load: its table, when it started, how many are pending
    struct Load {
      std::string table;
      double started_at = 0;
      size_t letters = 0;
    };
    std::map<std::string, Load> loads;
    for (const auto& d : *letters) ++loads[d.run_id].letters;
    size_t id_width = 4, table_width = 5;
    for (auto& [id, l] : loads) {
      auto run = (*journal)->GetRun(id);
      if (run && *run) {
        l.table = (*run)->name;
        l.started_at = (*run)->started_at;
      }
      id_width = std::max(id_width, OneLine(id).size());
      table_width = std::max(table_width, OneLine(l.table).size());
    }
    if (!json) {
      fmt::print("{:<{}} {:<{}} {:<19} {:>8}\n", "LOAD", id_width, "TABLE", table_width, "STARTED",
                 "LETTERS");
    }
    for (const auto& [id, l] : loads) {
      if (json) {
        // A load id is any text (--load-id): the JSON library escapes it. Invalid UTF-8
        // becomes U+FFFD rather than an exception.
        const nlohmann::json line{{"load_id", id},
                                  {"table", l.table},
                                  {"started_at", l.started_at},
                                  {"letters", l.letters}};
        fmt::print("{}\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      } else {
        fmt::print("{:<{}} {:<{}} {:<19} {:>8}\n", OneLine(id), id_width, OneLine(l.table),
                   table_width, l.started_at > 0 ? LocalTime(l.started_at) : "?", l.letters);
      }
    }
    return 0;
  }
  for (const auto& d : *letters) {
    std::string raw = OneLine(d.payload.substr(0, 60));
    fmt::print("{:>6}  {}:{}  {}  | {}\n", d.id, d.source,
               d.position.starts_with("line ") ? d.position.substr(5) : d.position, d.reason, raw);
  }
  return 0;
}

}  // namespace forklift::cli
