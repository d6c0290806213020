#include "sinks/pg_connection.h"

#include <libpq-fe.h>

#include <algorithm>
#include <charconv>

namespace forklift::sinks {
namespace {

constexpr size_t kCopyPiece = size_t{1} << 20;  // PQputCopyData takes an int length

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

// libpq's messages end in a newline and continue on tab-indented lines; one line reads
// better in a log and the journal.
std::string OneLine(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

bool StartsWith(std::string_view s, size_t pos, std::string_view prefix) {
  return s.substr(pos, prefix.size()) == prefix;
}

// The line number of "COPY tbl, line N" in a CONTEXT, as CopyFromErrorCallback writes it:
// N is followed by the end, ", column c: ..." or ": \"<line>\"". The first such ", line N"
// after "COPY " wins: a table name would need that whole pattern inside it to mislead us,
// while the data echoed after it (which anyone can write) cannot.
std::optional<int64_t> CopyLineFromContext(std::string_view context) {
  for (size_t line_start = 0; line_start < context.size();) {
    size_t eol = context.find('\n', line_start);
    if (StartsWith(context, line_start, "COPY ")) {
      for (size_t hit = context.find(", line ", line_start + 5); hit != std::string_view::npos;
           hit = context.find(", line ", hit + 1)) {
        size_t digits = hit + 7;
        int64_t n = 0;
        auto [end, ec] =
            std::from_chars(context.data() + digits, context.data() + context.size(), n);
        if (ec != std::errc()) continue;
        size_t after = static_cast<size_t>(end - context.data());
        if (after == context.size() || context[after] == '\n' ||
            StartsWith(context, after, ", column ") || StartsWith(context, after, ": ")) {
          return n;
        }
      }
      return std::nullopt;
    }
    if (eol == std::string_view::npos) break;
    line_start = eol + 1;
  }
  return std::nullopt;
}

// Connection failures come without a SQLSTATE (libpq keeps the server's error to itself),
// so they are told apart by libpq's and the server's (English, lc_messages=C) wording.
ErrorCode ClassifyConnectFailure(std::string_view message) {
  auto has = [&](std::string_view s) { return message.find(s) != std::string_view::npos; };
  // The server refused for now: 53300, 57P03 and shutdown.
  if (has("too many clients") || has("connection slots are reserved") ||
      has("the database system is starting up") || has("the database system is shutting down") ||
      has("the database system is in recovery mode") ||
      has("the database system is not yet accepting connections") ||
      has("the database system is not accepting connections")) {
    return ErrorCode::kUnavailable;
  }
  // The server refused for good: authentication, no such database or role, pg_hba.conf.
  if (has("FATAL:")) return ErrorCode::kInvalidArgument;
  // libpq refused the settings themselves.
  if (has("fe_sendauth") || has("invalid ") || has("does not support SSL") ||
      has("channel binding") || has("authentication method") ||
      (has("could not translate host name") && !has("Temporary failure"))) {
    return ErrorCode::kInvalidArgument;
  }
  return ErrorCode::kUnavailable;  // refused, unreachable, timed out, dropped
}

void IgnoreNotice(void*, const char*) {}

bool HasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

}  // namespace

std::string PgError::ToString() const {
  std::string out = sqlstate.empty() ? message : "SQLSTATE " + sqlstate + ": " + message;
  std::string extra;
  auto add = [&](std::string_view label, std::string_view value) {
    if (value.empty()) return;
    if (!extra.empty()) extra += "; ";
    extra += std::string(label) + ": " + std::string(value);
  };
  add("DETAIL", detail);
  add("HINT", hint);
  // The innermost context line is the one that says where (a COPY line, a function).
  std::string_view first_context = std::string_view(context).substr(0, context.find('\n'));
  if (first_context.size() > 200) first_context = first_context.substr(0, 200);
  add("CONTEXT", first_context);
  if (!extra.empty()) out += " (" + extra + ")";
  return out;
}

ErrorCode ClassifyPgError(const PgError& e) {
  if (e.connection_lost) return ErrorCode::kUnavailable;
  const std::string& s = e.sqlstate;
  if (s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03" || s == "53300" ||
      s == "40001" || s == "40P01") {
    return ErrorCode::kUnavailable;
  }
  if (s.starts_with("22") || s.starts_with("23")) return ErrorCode::kInvalidArgument;
  if (s.starts_with("42")) return ErrorCode::kFailedPrecondition;
  return ErrorCode::kInternal;
}

Result<std::unique_ptr<PgConnection>> PgConnection::Connect(const PgDsn& dsn) {
  // The DSN is expanded in place of "dbname": what it sets overrides the entries before it
  // (connect_timeout, application_name's fallback, keepalives), and client_encoding after
  // it wins, since forklift sends and expects UTF-8 whatever the DSN says. Keepalives: a
  // session whose server or network went silent fails within about a minute instead of
  // waiting on the kernel's default (two hours and more) for a reply that never comes.
  const char* keywords[] = {"connect_timeout", "fallback_application_name", "keepalives",
                            "keepalives_idle", "keepalives_interval",       "keepalives_count",
                            "dbname",          "client_encoding",           nullptr};
  const char* values[] = {"10", "forklift",           "1",    "30",   "10",
                          "3",  dsn.conninfo.c_str(), "UTF8", nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (!conn) return InternalError("cannot connect to " + dsn.Masked() + ": out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = MaskSecret(OneLine(PQerrorMessage(conn)), dsn.password);
    PQfinish(conn);
    return MakeError(ClassifyConnectFailure(why), "cannot connect to " + dsn.Masked() + ": " + why);
  }
  // libpq prints NOTICEs ("table does not exist, skipping") to stderr by default, which
  // would scribble over the progress display.
  PQsetNoticeProcessor(conn, IgnoreNotice, nullptr);
  return std::unique_ptr<PgConnection>(new PgConnection(conn, PQgetCancel(conn), dsn.password));
}

PgConnection::PgConnection(pg_conn* conn, pg_cancel* cancel, std::string password)
    : conn_(conn), cancel_(cancel), password_(std::move(password)) {}

PgConnection::~PgConnection() {
  if (copy_out_buffer_) PQfreemem(copy_out_buffer_);
  if (cancel_) PQfreeCancel(cancel_);
  PQfinish(conn_);
}

bool PgConnection::ok() const { return PQstatus(conn_) == CONNECTION_OK; }

int PgConnection::server_version() const { return PQserverVersion(conn_); }

std::optional<std::string> PgConnection::option(std::string_view keyword) const {
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(PQconninfo(conn_),
                                                                       &PQconninfoFree);
  for (const PQconninfoOption* o = options.get(); o && o->keyword; ++o) {
    if (keyword == o->keyword && o->val) return std::string(o->val);
  }
  return std::nullopt;
}

void PgConnection::Cancel() {
  if (!cancel_) return;
  char error[256];
  // A failed request leaves the statement running; the caller's deadline handling is the
  // fallback, so the reason is not kept.
  (void)PQcancel(cancel_, error, sizeof error);
}

tl::unexpected<Error> PgConnection::Fail(const pg_result* result) {
  PgError e;
  auto field = [&](int code) -> std::string {
    const char* v = result ? PQresultErrorField(result, code) : nullptr;
    return v ? MaskSecret(v, password_) : std::string();
  };
  e.sqlstate = field(PG_DIAG_SQLSTATE);
  e.message = field(PG_DIAG_MESSAGE_PRIMARY);
  e.detail = field(PG_DIAG_MESSAGE_DETAIL);
  e.hint = field(PG_DIAG_MESSAGE_HINT);
  e.context = field(PG_DIAG_CONTEXT);
  if (e.message.empty()) {
    const char* m = result ? PQresultErrorMessage(result) : "";
    if (!*m) m = PQerrorMessage(conn_);
    e.message = MaskSecret(OneLine(m), password_);
    if (e.message.empty()) e.message = "unknown libpq failure";
  }
  e.copy_line = CopyLineFromContext(e.context);
  e.connection_lost = PQstatus(conn_) == CONNECTION_BAD;
  last_error_ = std::move(e);
  return tl::unexpected(Error{ClassifyPgError(last_error_), last_error_.ToString()});
}

tl::unexpected<Error> PgConnection::FailLocal(ErrorCode code, std::string message) {
  last_error_ = PgError{};
  last_error_.message = MaskSecret(message, password_);
  last_error_.connection_lost = PQstatus(conn_) == CONNECTION_BAD;
  return tl::unexpected(Error{code, last_error_.message});
}

void PgConnection::Drain() {
  while (PGresult* raw = PQgetResult(conn_)) {
    ResultPtr res(raw);
    ExecStatusType status = PQresultStatus(raw);
    if (status == PGRES_COPY_IN) {
      PQputCopyEnd(conn_, "forklift: no COPY data expected here");
    } else if (status == PGRES_COPY_OUT) {
      char* buffer = nullptr;
      while (PQgetCopyData(conn_, &buffer, /*async=*/0) >= 0) PQfreemem(buffer);
    } else if (status == PGRES_COPY_BOTH) {
      break;  // replication only; PQfinish ends it
    }
  }
}

Status PgConnection::Exec(std::string_view sql) {
  auto tag = ExecCommand(sql);
  if (!tag) return tl::unexpected(tag.error());
  return OkStatus();
}

Result<std::string> PgConnection::ExecCommand(std::string_view sql) {
  if (HasNul(sql)) return FailLocal(ErrorCode::kInvalidArgument, "SQL contains a NUL byte");
  if (in_copy_) {
    return FailLocal(ErrorCode::kFailedPrecondition, "a COPY is in progress");
  }
  ResultPtr res(PQexec(conn_, std::string(sql).c_str()));
  switch (res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_EMPTY_QUERY: return std::string(PQcmdStatus(res.get()));
    case PGRES_COPY_OUT:
      res.reset();
      Drain();  // Exec discards results, COPY TO STDOUT's included
      return std::string("COPY");
    case PGRES_COPY_IN:
      res.reset();
      Drain();  // ends the COPY with an error, so nothing is half-loaded
      return FailLocal(ErrorCode::kFailedPrecondition, "COPY FROM STDIN needs CopyIn, not Exec");
    default: return Fail(res.get());
  }
}

Result<std::vector<PgConnection::Row>> PgConnection::Query(
    std::string_view sql, std::span<const std::optional<std::string>> params) {
  if (HasNul(sql)) return FailLocal(ErrorCode::kInvalidArgument, "SQL contains a NUL byte");
  if (in_copy_) {
    return FailLocal(ErrorCode::kFailedPrecondition, "a COPY is in progress");
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    // libpq reads text parameters up to their first NUL: the rest would vanish silently.
    if (params[i] && HasNul(*params[i])) {
      return FailLocal(ErrorCode::kInvalidArgument,
                       "parameter $" + std::to_string(i + 1) + " contains a NUL byte");
    }
    values.push_back(params[i] ? params[i]->c_str() : nullptr);
  }
  ResultPtr res(PQexecParams(conn_, std::string(sql).c_str(), static_cast<int>(values.size()),
                             nullptr, values.data(), nullptr, nullptr, /*resultFormat=*/0));
  ExecStatusType status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_EMPTY_QUERY) return std::vector<Row>{};
  if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT) {
    res.reset();
    Drain();
    return FailLocal(ErrorCode::kFailedPrecondition, "COPY needs CopyIn, not Query");
  }
  if (status != PGRES_TUPLES_OK) return Fail(res.get());
  int rows = PQntuples(res.get());
  int cols = PQnfields(res.get());
  std::vector<Row> out(static_cast<size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    Row& row = out[static_cast<size_t>(r)];
    row.reserve(static_cast<size_t>(cols));
    for (int c = 0; c < cols; ++c) {
      if (PQgetisnull(res.get(), r, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(std::string(PQgetvalue(res.get(), r, c),
                                     static_cast<size_t>(PQgetlength(res.get(), r, c))));
      }
    }
  }
  return out;
}

Status PgConnection::BeginCopy(std::string_view copy_sql) {
  if (in_copy_) {
    return FailLocal(ErrorCode::kFailedPrecondition, "a COPY is in progress");
  }
  if (HasNul(copy_sql)) {
    return FailLocal(ErrorCode::kInvalidArgument, "SQL contains a NUL byte");
  }
  ResultPtr res(PQexec(conn_, std::string(copy_sql).c_str()));
  ExecStatusType status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COPY_IN) {
    in_copy_ = true;
    return OkStatus();
  }
  if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE ||
      status == PGRES_NONFATAL_ERROR) {
    return Fail(res.get());
  }
  res.reset();
  Drain();
  return FailLocal(ErrorCode::kFailedPrecondition,
                   "not a COPY ... FROM STDIN statement: " + std::string(copy_sql.substr(0, 100)));
}

Status PgConnection::PutCopyData(std::string_view piece) {
  if (!in_copy_) return FailLocal(ErrorCode::kFailedPrecondition, "no COPY in progress");
  while (!piece.empty()) {
    size_t n = std::min(piece.size(), kCopyPiece);
    if (PQputCopyData(conn_, piece.data(), static_cast<int>(n)) != 1) {
      return Fail(nullptr);
    }
    piece.remove_prefix(n);
  }
  return OkStatus();
}

Result<int64_t> PgConnection::EndCopy() {
  if (!in_copy_) return FailLocal(ErrorCode::kFailedPrecondition, "no COPY in progress");
  in_copy_ = false;
  if (PQputCopyEnd(conn_, nullptr) != 1) {
    auto error = Fail(nullptr);
    Drain();
    return error;
  }
  // The COPY's own result comes first; the loop reads to the end so the connection is
  // ready for the next command.
  ResultPtr res(PQgetResult(conn_));
  Drain();
  if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK) return Fail(res.get());
  int64_t rows = 0;
  std::string_view tuples = PQcmdTuples(res.get());
  std::from_chars(tuples.data(), tuples.data() + tuples.size(), rows);
  return rows;
}

Status PgConnection::AbortCopy(std::string_view reason) {
  if (!in_copy_) return FailLocal(ErrorCode::kFailedPrecondition, "no COPY in progress");
  in_copy_ = false;
  std::string why = reason.empty() ? "aborted by forklift" : std::string(reason);
  std::replace(why.begin(), why.end(), '\0', ' ');
  if (PQputCopyEnd(conn_, why.c_str()) != 1) {
    auto error = Fail(nullptr);
    Drain();
    return error;
  }
  Drain();  // the server's answer is the error we asked for
  if (!ok()) return Fail(nullptr);
  return OkStatus();
}

Result<int64_t> PgConnection::CopyIn(std::string_view copy_sql, std::string_view data) {
  FORKLIFT_RETURN_IF_ERROR(BeginCopy(copy_sql));
  Status put = PutCopyData(data);
  if (!put) {
    // Most likely the connection is gone; either way, end the COPY so the connection is
    // not left inside it, and report the send failure.
    in_copy_ = false;
    PQputCopyEnd(conn_, "forklift: sending COPY data failed");
    Drain();
    return tl::unexpected(std::move(put).error());
  }
  return EndCopy();
}

Status PgConnection::BeginCopyOut(std::string_view copy_sql) {
  if (in_copy_) return FailLocal(ErrorCode::kFailedPrecondition, "a COPY is in progress");
  if (HasNul(copy_sql)) return FailLocal(ErrorCode::kInvalidArgument, "SQL contains a NUL byte");
  ResultPtr res(PQexec(conn_, std::string(copy_sql).c_str()));
  ExecStatusType status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COPY_OUT) {
    in_copy_ = copy_out_ = true;
    return OkStatus();
  }
  if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE ||
      status == PGRES_NONFATAL_ERROR) {
    return Fail(res.get());
  }
  res.reset();
  Drain();
  return FailLocal(ErrorCode::kFailedPrecondition,
                   "not a COPY ... TO STDOUT statement: " + std::string(copy_sql.substr(0, 100)));
}

Result<std::optional<std::string_view>> PgConnection::GetCopyData() {
  if (copy_out_buffer_) {
    PQfreemem(copy_out_buffer_);
    copy_out_buffer_ = nullptr;
  }
  if (!copy_out_) return FailLocal(ErrorCode::kFailedPrecondition, "no COPY TO STDOUT in progress");
  const int n = PQgetCopyData(conn_, &copy_out_buffer_, /*async=*/0);
  if (n > 0) return std::optional<std::string_view>(std::string_view(copy_out_buffer_, n));
  in_copy_ = copy_out_ = false;
  // -1: the COPY ended; its result says how. -2: an error (the connection, mostly).
  ResultPtr res(PQgetResult(conn_));
  ExecStatusType status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (n == -1 && status == PGRES_COMMAND_OK) {
    res.reset();
    Drain();
    return std::optional<std::string_view>();
  }
  auto failed = Fail(status == PGRES_COMMAND_OK ? nullptr : res.get());
  res.reset();
  Drain();
  return failed;
}

Result<std::vector<PgConnection::ResultColumn>> PgConnection::DescribeQuery(std::string_view sql) {
  if (in_copy_) return FailLocal(ErrorCode::kFailedPrecondition, "a COPY is in progress");
  if (HasNul(sql)) return FailLocal(ErrorCode::kInvalidArgument, "SQL contains a NUL byte");
  ResultPtr prep(PQprepare(conn_, "", std::string(sql).c_str(), 0, nullptr));
  if (!prep || PQresultStatus(prep.get()) != PGRES_COMMAND_OK) return Fail(prep.get());
  ResultPtr desc(PQdescribePrepared(conn_, ""));
  if (!desc || PQresultStatus(desc.get()) != PGRES_COMMAND_OK) return Fail(desc.get());
  std::vector<ResultColumn> out;
  const int n = PQnfields(desc.get());
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    out.push_back({.name = PQfname(desc.get(), i),
                   .type_oid = PQftype(desc.get(), i),
                   .typmod = PQfmod(desc.get(), i)});
  }
  return out;
}

}  // namespace forklift::sinks
