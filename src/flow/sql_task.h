// SQL tasks: a flow task whose `sql` or `sql_file` runs natively on PostgreSQL (libpq) or
// SQLite instead of through a shell — the seeds' parallel VACUUM and cleanup phase with no
// psql glue. Statements run in one transaction, or each on its own when one of them may
// not run inside a transaction (VACUUM, CREATE INDEX CONCURRENTLY, ...); the task's
// timeout and a stop cancel the running statement on the server; each statement's
// command tag ("UPDATE 42") is logged; errors name the file and line of the statement and
// the server's SQLSTATE and message. The DSN's password never appears in a message.
#ifndef FORKLIFT_FLOW_SQL_TASK_H_
#define FORKLIFT_FLOW_SQL_TASK_H_

#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/clock.h"
#include "forklift/result.h"

namespace forklift::flow {

struct SqlStatement {
  std::string text;  // without its ';'
  int line = 1;      // 1-based line of its first character in the text
};

// Splits SQL text at ';' outside '...' strings (with '' inside), "..." identifiers,
// -- and /* */ comments (nested, as PostgreSQL's), and $tag$...$tag$ bodies; statements
// that hold only blanks and comments are dropped. Never fails: an unterminated string or
// body runs to the end (the server then reports it). Thread-safe.
std::vector<SqlStatement> SplitSqlStatements(std::string_view text);

// Whether the statement may not run inside a transaction block: VACUUM, CREATE/DROP
// DATABASE or TABLESPACE, ALTER SYSTEM, and CREATE/DROP INDEX or REINDEX ... CONCURRENTLY.
// Thread-safe.
bool NeedsOwnTransaction(std::string_view statement);

struct SqlTaskOptions {
  std::string dsn;                  // postgres://..., postgresql://... or sqlite:PATH
  std::string text;                 // the SQL
  std::string source;               // how errors name the text: "cleanup.sql" or "tasks.x.sql"
  std::optional<Duration> timeout;  // cancels the running statement when it passes
  std::stop_token stop;             // likewise, at once
  // Gets each line for the task's log (command tags, errors), on the calling thread.
  std::function<void(std::string_view line)> log;
};

struct SqlTaskResult {
  bool ok = false;
  bool timed_out = false;
  bool cancelled = false;
  // Per statement that ran: "UPDATE 42", "VACUUM"; "UPDATE 42 (rolled back)" when the
  // task's one transaction failed after it.
  std::vector<std::string> tags;
  // When !ok: "cleanup.sql:12: SQLSTATE 42P01: relation \"x\" does not exist", or a
  // connection failure with the DSN masked.
  std::string error;
};

// Connects, runs the statements, disconnects. Never throws; all failures are in the
// result. Blocks the calling thread. Thread-safe (each call has its own connection).
SqlTaskResult RunSqlTask(const SqlTaskOptions& options);

}  // namespace forklift::flow

#endif  // FORKLIFT_FLOW_SQL_TASK_H_
