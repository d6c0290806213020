// PgConnection: one libpq connection to PostgreSQL, with errors as values. It runs
// statements, parameterized queries and COPY FROM STDIN, keeps the server's structured
// error (SQLSTATE, detail, the COPY data line at fault) and classifies it into forklift's
// error codes so that retry policies can tell a dropped connection from a bad row.
//
// Errors: every message that may echo the DSN or a statement is passed through MaskSecret
// with the DSN's password, so a password never reaches a log, the journal or a terminal.
//
// Thread safety: a PgConnection is NOT thread-safe: use it from one thread at a time.
// The one exception is Cancel(), which any thread may call while another runs a statement.
#ifndef FORKLIFT_SINKS_PG_CONNECTION_H_
#define FORKLIFT_SINKS_PG_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/result.h"
#include "sinks/pg_dsn.h"

struct pg_conn;
struct pg_result;
struct pg_cancel;

namespace forklift::sinks {

// A failure as the server (or libpq) reported it.
struct PgError {
  std::string sqlstate;  // "" when none (a connection-level failure found by libpq)
  std::string message;   // PG_DIAG_MESSAGE_PRIMARY, or libpq's message when no server error
  std::string detail;    // PG_DIAG_MESSAGE_DETAIL
  std::string hint;      // PG_DIAG_MESSAGE_HINT
  std::string context;   // PG_DIAG_CONTEXT
  // The 1-based physical line of the COPY data at fault, from a CONTEXT line "COPY tbl,
  // line N" (with ", column c: ..." or ": \"...\"" after it); nullopt when the server named
  // none. A header line counts; for a CSV record with quoted newlines the server names the
  // record's last line. Read so that commas in the table name or in the echoed data cannot
  // mislead it.
  std::optional<int64_t> copy_line;
  bool connection_lost = false;  // the connection was unusable after the failure

  // "SQLSTATE 23505: duplicate key value violates ... (DETAIL: ...; HINT: ...)", with the
  // first line of CONTEXT appended when there is one; just the message without a SQLSTATE.
  std::string ToString() const;
};

// kUnavailable for what may pass on a retry: a lost connection, class 08 (connection
// exception), 57P01/57P02/57P03 (shutdown, crash, starting up), 53300 (too many
// connections), 40001 (serialization failure), 40P01 (deadlock). kInvalidArgument for
// classes 22 (data exception) and 23 (integrity constraint violation): the row is bad.
// kFailedPrecondition for class 42 (undefined table or column, syntax, permissions): the
// target is not as expected. kInternal for anything else (57014, a cancelled statement,
// included). Thread-safe.
ErrorCode ClassifyPgError(const PgError& e);

class PgConnection {
 public:
  // One row of text values; nullopt is SQL NULL.
  using Row = std::vector<std::optional<std::string>>;

  // Connects with client_encoding UTF8, application_name "forklift" unless the DSN names
  // one, connect_timeout 10 s unless the DSN names one, and TCP keepalives (keepalives=1,
  // keepalives_idle=30, keepalives_interval=10, keepalives_count=3) unless the DSN sets
  // them, so that a dead server or network fails a waiting call in about a minute.
  // On success, a connection ready for statements. On failure, Unavailable for what may
  // pass (server down or unreachable, starting up or shutting down, too many connections),
  // InvalidArgument for what will not (authentication failed, no such database or role,
  // no pg_hba.conf entry), each "cannot connect to <masked DSN>: <libpq's message>".
  static Result<std::unique_ptr<PgConnection>> Connect(const PgDsn& dsn);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs one or more statements with the simple query protocol (in one implicit
  // transaction when there are several and no explicit BEGIN), discarding their results.
  // On failure, Error{ClassifyPgError(e), e.ToString()} with last_error() = e; without a
  // round trip, InvalidArgument for a NUL byte in `sql` and FailedPrecondition during a
  // COPY. A COPY FROM STDIN is ended unloaded and fails with FailedPrecondition (use
  // CopyIn); a COPY TO STDOUT's output is discarded like any result.
  Status Exec(std::string_view sql);
  // Exec that returns the last statement's command tag ("UPDATE 42", "VACUUM", "SELECT 3"),
  // which says how many rows it affected. Fails as Exec.
  Result<std::string> ExecCommand(std::string_view sql);

  // Runs one statement with text parameters $1..$n (nullopt binds NULL) via PQexecParams.
  // On success, its rows as text (none for a statement that returns no rows).
  // On failure, as Exec (any COPY fails with FailedPrecondition), and InvalidArgument for a
  // NUL byte in a parameter (libpq would cut the value there); several statements in `sql`
  // are a server error (42601).
  Result<std::vector<Row>> Query(std::string_view sql,
                                 std::span<const std::optional<std::string>> params = {});

  // Runs `copy_sql`, a COPY ... FROM STDIN statement, sends `data` (the COPY payload in the
  // statement's format) in pieces of at most 1 MiB, and ends the COPY.
  // On success, the number of rows copied. On failure, as Exec, with last_error().copy_line
  // set when the server named the data line at fault; the COPY is over either way and the
  // connection, unless lost, is ready for the next statement (inside an aborted transaction
  // when the caller had opened one).
  Result<int64_t> CopyIn(std::string_view copy_sql, std::string_view data);

  // Streaming COPY for inputs too large to hold: BeginCopy(sql), PutCopyData(piece) as many
  // times as needed, then EndCopy() for the row count, or AbortCopy(reason) to give up and
  // keep the connection (the server rolls the COPY back with SQLSTATE 57014 and `reason`).
  // A server error about the data shows at EndCopy (libpq reads no results mid-COPY).
  // BeginCopy fails as Exec, and with FailedPrecondition when `copy_sql` is not a COPY FROM
  // STDIN (the statement has then run) or a COPY is already in progress; PutCopyData fails
  // with Unavailable when the connection is lost, FailedPrecondition outside a COPY.
  Status BeginCopy(std::string_view copy_sql);
  Status PutCopyData(std::string_view piece);
  Result<int64_t> EndCopy();
  Status AbortCopy(std::string_view reason);

  // COPY ... TO STDOUT, streamed (a query source): BeginCopyOut(sql), then GetCopyData()
  // until it returns nullopt. BeginCopyOut fails as Exec (the query's own errors: SQLSTATE
  // and message), and with FailedPrecondition when `copy_sql` is not a COPY TO STDOUT or a
  // COPY is in progress. GetCopyData's success: the next piece of the COPY's output (one
  // row, in the statement's format), valid until the next call or the destructor; nullopt
  // once the COPY ended well (the connection is then ready for the next statement).
  // Failure: as Exec for an error the server raised mid-COPY (a division by zero in row
  // 1,000,000), Unavailable when the connection is lost; the COPY is over either way.
  Status BeginCopyOut(std::string_view copy_sql);
  Result<std::optional<std::string_view>> GetCopyData();

  // A column of a statement's result, as the server describes it without running it.
  struct ResultColumn {
    std::string name;
    uint32_t type_oid = 0;
    int typmod = -1;
  };
  // The columns `sql` would return (PQprepare + PQdescribePrepared of the unnamed
  // statement; nothing runs). Failure: as Exec (a syntax error, an unknown table or column:
  // the server's SQLSTATE and message).
  Result<std::vector<ResultColumn>> DescribeQuery(std::string_view sql);

  // The error of the latest failed call (an empty PgError before any failure).
  const PgError& last_error() const { return last_error_; }
  // Whether the connection is still usable (PQstatus is CONNECTION_OK).
  bool ok() const;
  // The server's version as an integer, e.g. 150004 for 15.4.
  int server_version() const;
  // The value libpq uses for the connection option `keyword` ("keepalives_idle",
  // "application_name", ...); nullopt when it is unset or no such option exists. The
  // password is among them: never show the value of "password".
  std::optional<std::string> option(std::string_view keyword) const;

  // Asks the server to cancel whatever statement this connection is running; the running
  // call then fails (SQLSTATE 57014). Does nothing useful when none is running, and may
  // cancel the next statement if one starts just before the request arrives.
  // Thread-safe, and async-signal-safe (PQcancel): the one call another thread may make,
  // as long as it does not race with the destructor.
  void Cancel();

 private:
  PgConnection(pg_conn* conn, pg_cancel* cancel, std::string password);

  // Records a failed result (or libpq's connection error when `result` is null) in
  // last_error_ and returns it as an Error.
  tl::unexpected<Error> Fail(const pg_result* result);
  // Records a failure found before reaching the server.
  tl::unexpected<Error> FailLocal(ErrorCode code, std::string message);
  // Reads and drops the remaining results of the current command, ending a COPY OUT or
  // COPY IN left open by a statement that was not expected to start one.
  void Drain();

  pg_conn* conn_;
  pg_cancel* cancel_;
  std::string password_;  // to mask; never sent anywhere by this class
  bool in_copy_ = false;
  bool copy_out_ = false;            // in_copy_ is a COPY TO STDOUT
  char* copy_out_buffer_ = nullptr;  // GetCopyData's last piece (PQfreemem)
  PgError last_error_;
};

}  // namespace forklift::sinks

#endif  // FORKLIFT_SINKS_PG_CONNECTION_H_
