#include "load/exit_status.h"

#include <string_view>

#include "journal/journal.h"

namespace forklift::load {

const char kExitStatusHelp[] =
    "Exit status:\n"
    "  0    every row was loaded (or had been, by an earlier run of the load)\n"
    "  1    the load failed or stopped after it began (--max-errors, a database error, a\n"
    "       changed source), or it loaded none of its rows; committed chunks stay, rerun\n"
    "  2    bad options or values, an unreadable input file: nothing was loaded\n"
    "  3    the load finished, but some rows were rejected (forklift dlq show LOAD_ID)\n"
    "  4    cannot reach the target (server down, connection refused, timeout)\n"
    "  5    the target refused: authentication failed, or a privilege is missing\n"
    "  6    the target lacks the database, schema, table, column or key index named\n"
    "  7    another load with the same load id is running\n"
    "  128+N  stopped by signal N (rerun to resume)\n";

int ExitStatusOf(const Error& e) {
  const std::string_view m = e.message;
  auto has = [&](std::string_view s) { return m.find(s) != std::string_view::npos; };
  const bool login = has("cannot connect to ");
  const bool refused = has("permission denied") || has("password authentication failed") ||
                       has("authentication failed") || has("no pg_hba.conf entry") ||
                       has("fe_sendauth") || has("SQLSTATE 42501") ||
                       (login && has("role \"") && has("does not exist"));
  switch (e.code) {
    case ErrorCode::kUnavailable: return kExitUnreachable;
    case ErrorCode::kAborted: return has("another load with load id") ? kExitBusy : kExitFailed;
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kNotFound:
      // A login the server turned down is InvalidArgument too (retrying will not help).
      if (login && refused) return kExitRefused;
      if (login && has("database \"") && has("does not exist")) return kExitMissing;
      if (login && has("could not translate host name")) return kExitUnreachable;
      return kExitUsage;
    case ErrorCode::kFailedPrecondition: return refused ? kExitRefused : kExitMissing;
    default: return refused ? kExitRefused : kExitFailed;
  }
}

int ExitStatusOf(const LoadSummary& s) {
  if (journal::ParseRunStatus(s.status) != journal::RunStatus::kSucceeded) return kExitFailed;
  return s.rows_rejected > 0 ? kExitRejected : kExitLoaded;
}

}  // namespace forklift::load
