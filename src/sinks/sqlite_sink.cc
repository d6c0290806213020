#include "sinks/sqlite_sink.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "sinks/pg_dsn.h"
#include "sources/csv_reader.h"

namespace forklift::sinks {
namespace {

using sources::CsvField;
using sources::SplitCsvRecord;

constexpr int kBusyTimeoutMs = 10000;

constexpr const char* kLedgerDdl =
    "CREATE TABLE IF NOT EXISTS {}forklift_load_chunks("
    "load_id TEXT NOT NULL, chunk INTEGER NOT NULL, source TEXT NOT NULL, "
    "first_line INTEGER NOT NULL, last_line INTEGER NOT NULL, rows INTEGER NOT NULL, "
    "rejected INTEGER NOT NULL, checksum TEXT NOT NULL, target_table TEXT NOT NULL, "
    "committed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), "
    "PRIMARY KEY(load_id, chunk))";

// SQLite's extended result codes that mean "this row's data", by name, for dead letters.
std::string CodeName(int rc) {
  switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE: return "SQLITE_CONSTRAINT_UNIQUE";
    case SQLITE_CONSTRAINT_PRIMARYKEY: return "SQLITE_CONSTRAINT_PRIMARYKEY";
    case SQLITE_CONSTRAINT_NOTNULL: return "SQLITE_CONSTRAINT_NOTNULL";
    case SQLITE_CONSTRAINT_CHECK: return "SQLITE_CONSTRAINT_CHECK";
    case SQLITE_CONSTRAINT_FOREIGNKEY: return "SQLITE_CONSTRAINT_FOREIGNKEY";
    case SQLITE_CONSTRAINT_DATATYPE: return "SQLITE_CONSTRAINT_DATATYPE";
    case SQLITE_CONSTRAINT_TRIGGER: return "SQLITE_CONSTRAINT_TRIGGER";
    case SQLITE_CONSTRAINT: return "SQLITE_CONSTRAINT";
    case SQLITE_MISMATCH: return "SQLITE_MISMATCH";
    case SQLITE_TOOBIG: return "SQLITE_TOOBIG";
    default: return fmt::format("SQLITE_{}", rc);
  }
}

bool IsRowError(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_CONSTRAINT || primary == SQLITE_MISMATCH || primary == SQLITE_TOOBIG;
}

bool IsTransient(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

// SQLite's column affinity from a declared type (https://sqlite.org/datatype3.html 3.1).
enum class Affinity { kInteger, kText, kBlob, kReal, kNumeric };
Affinity AffinityOf(std::string decl) {
  for (char& c : decl) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (decl.find("INT") != std::string::npos) return Affinity::kInteger;
  if (decl.find("CHAR") != std::string::npos || decl.find("CLOB") != std::string::npos ||
      decl.find("TEXT") != std::string::npos) {
    return Affinity::kText;
  }
  if (decl.empty() || decl.find("BLOB") != std::string::npos) return Affinity::kBlob;
  if (decl.find("REAL") != std::string::npos || decl.find("FLOA") != std::string::npos ||
      decl.find("DOUB") != std::string::npos) {
    return Affinity::kReal;
  }
  return Affinity::kNumeric;
}

// Binds a value as SQLite's affinity would store it, converting here what converts exactly
// (-?digits for INTEGER, a plain decimal for REAL) so SQLite need not parse it again; any
// other text is bound as text and SQLite applies its own rules, as for `.import`.
void BindValue(sqlite3_stmt* s, int i, Affinity a, std::string_view v) {
  if (a == Affinity::kInteger && !v.empty() && v.size() <= 19) {
    int64_t n = 0;
    const bool digits = std::all_of(v.begin() + (v[0] == '-' ? 1 : 0), v.end(),
                                    [](char c) { return c >= '0' && c <= '9'; });
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (digits && v != "-" && ec == std::errc() && p == v.data() + v.size()) {
      sqlite3_bind_int64(s, i, n);
      return;
    }
  } else if (a == Affinity::kReal && !v.empty() && v.size() <= 32) {
    const bool plain = std::all_of(v.begin(), v.end(), [](char c) {
      return (c >= '0' && c <= '9') || c == '.' || c == '-';
    });
    double x = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (plain && ec == std::errc() && p == v.data() + v.size()) {
      sqlite3_bind_double(s, i, x);
      return;
    }
  }
  sqlite3_bind_text64(s, i, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8);
}

// Owns a prepared statement.
struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

struct DbDeleter {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbDeleter>;

class SqliteConn {
 public:
  static Result<SqliteConn> Open(const TargetAddress& address) {
    sqlite3* raw = nullptr;
    // No SQLITE_OPEN_CREATE: a mistyped path must not become an empty database.
    int rc = sqlite3_open_v2(address.conninfo.c_str(), &raw,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    DbPtr db(raw);
    if (rc != SQLITE_OK) {
      return FailedPreconditionError(fmt::format(
          "{}: cannot open: {}", address.display,
          raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
    }
    sqlite3_extended_result_codes(raw, 1);
    sqlite3_busy_timeout(raw, kBusyTimeoutMs);
    SqliteConn c(address.display, std::move(db));
    FORKLIFT_RETURN_IF_ERROR(c.Exec("PRAGMA journal_mode=WAL"));
    FORKLIFT_RETURN_IF_ERROR(c.Exec("PRAGMA synchronous=NORMAL"));
    FORKLIFT_RETURN_IF_ERROR(c.Exec("PRAGMA wal_autocheckpoint=16384"));
    return c;
  }

  sqlite3* db() const { return db_.get(); }

  Error Fail(std::string_view what, int rc) const {
    std::string msg = fmt::format("{}: {}: {}", display_, what, sqlite3_errmsg(db_.get()));
    if (IsTransient(rc)) return Error{ErrorCode::kUnavailable, std::move(msg)};
    return Error{ErrorCode::kInternal, std::move(msg)};
  }

  Status Exec(const std::string& sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string m = err ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      return MakeError(IsTransient(rc) ? ErrorCode::kUnavailable : ErrorCode::kInternal,
                       fmt::format("{}: {}: {}", display_, sql.substr(0, 60), m));
    }
    return {};
  }

  Result<StmtPtr> Prepare(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v3(db_.get(), sql.c_str(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    if (rc != SQLITE_OK) return tl::unexpected(Fail("prepare " + sql.substr(0, 60), rc));
    return StmtPtr(s);
  }

 private:
  SqliteConn(std::string display, DbPtr db) : display_(std::move(display)), db_(std::move(db)) {}
  std::string display_;
  DbPtr db_;
};

std::string Prefix(const TableSpec& spec) {
  return spec.schema.empty() ? std::string() : QuoteIdent(spec.schema) + ".";
}

std::string QualifiedTable(const TableSpec& spec) {
  return QuoteQualified(spec.schema, spec.table);
}

std::string InsertSql(const TableSpec& spec) {
  std::string cols, params;
  for (size_t i = 0; i < spec.columns.size(); ++i) {
    if (i) {
      cols += ", ";
      params += ", ";
    }
    cols += QuoteIdent(spec.columns[i]);
    params += "?" + std::to_string(i + 1);
  }
  std::string sql = fmt::format("INSERT INTO {} ({}) VALUES ({})", QualifiedTable(spec), cols,
                                params);
  if (!spec.upsert) return sql;
  std::string keys, sets, changed;
  for (const std::string& k : spec.key) keys += (keys.empty() ? "" : ", ") + QuoteIdent(k);
  for (const std::string& c : spec.columns) {
    if (std::find(spec.key.begin(), spec.key.end(), c) != spec.key.end()) continue;
    const std::string q = QuoteIdent(c);
    sets += fmt::format("{}{} = excluded.{}", sets.empty() ? "" : ", ", q, q);
    changed += fmt::format("{}{} IS NOT excluded.{}", changed.empty() ? "" : " OR ", q, q);
  }
  if (sets.empty()) return fmt::format("{} ON CONFLICT ({}) DO NOTHING", sql, keys);
  // A row that would not change is not rewritten (a rerun of the same data writes nothing).
  return fmt::format("{} ON CONFLICT ({}) DO UPDATE SET {} WHERE {}", sql, keys, sets, changed);
}

Result<std::optional<LedgerEntry>> ReadLedger(sqlite3_stmt* s, SqliteConn& conn) {
  int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) return std::optional<LedgerEntry>();
  if (rc != SQLITE_ROW) return tl::unexpected(conn.Fail("read the ledger", rc));
  LedgerEntry e;
  e.chunk = sqlite3_column_int64(s, 0);
  e.source = reinterpret_cast<const char*>(sqlite3_column_text(s, 1));
  e.first_line = sqlite3_column_int64(s, 2);
  e.last_line = sqlite3_column_int64(s, 3);
  e.rows = sqlite3_column_int64(s, 4);
  e.rejected = sqlite3_column_int64(s, 5);
  e.checksum = reinterpret_cast<const char*>(sqlite3_column_text(s, 6));
  return std::optional<LedgerEntry>(std::move(e));
}

std::string LedgerSelect(const TableSpec& spec) {
  return fmt::format(
      "SELECT chunk, source, first_line, last_line, rows, rejected, checksum FROM "
      "{}forklift_load_chunks WHERE load_id = ?1",
      Prefix(spec));
}

class SqliteSink final : public Sink {
 public:
  static Result<std::unique_ptr<SqliteSink>> Open(const TargetAddress& address,
                                                  const TableSpec& spec,
                                                  std::vector<Affinity> affinity) {
    FORKLIFT_ASSIGN_OR_RETURN(SqliteConn conn, SqliteConn::Open(address));
    auto sink = std::unique_ptr<SqliteSink>(new SqliteSink(address, spec, std::move(conn)));
    sink->affinity_ = std::move(affinity);
    FORKLIFT_RETURN_IF_ERROR(sink->PrepareStatements());
    return sink;
  }

  Result<ChunkWriteResult> WriteChunk(const Chunk& chunk,
                                      const BeforeCommit& before_commit) override {
    ChunkWriteResult result;
    // IMMEDIATE takes the write lock now, so a busy file fails here, not mid-chunk.
    FORKLIFT_RETURN_IF_ERROR(conn_.Exec("BEGIN IMMEDIATE"));
    Status st = WriteRows(chunk, &result);
    if (st) st = before_commit(result.rejected);
    if (st) st = InsertLedger(chunk, result);
    if (st) st = conn_.Exec("COMMIT");
    if (!st) {
      (void)conn_.Exec("ROLLBACK");
      return tl::unexpected(st.error());
    }
    return result;
  }

  Status Reconnect() override {
    FORKLIFT_ASSIGN_OR_RETURN(SqliteConn conn, SqliteConn::Open(address_));
    insert_.reset();
    ledger_insert_.reset();
    ledger_find_.reset();
    {
      // Cancel() may run on another thread at any time: sqlite3_interrupt on the handle
      // being closed here would be a use after free.
      std::lock_guard lock(cancel_mu_);
      conn_ = std::move(conn);
    }
    return PrepareStatements();
  }

  Result<std::optional<LedgerEntry>> FindChunk(int64_t chunk) override {
    sqlite3_stmt* s = ledger_find_.get();
    sqlite3_bind_text(s, 1, spec_.load_id.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, chunk);
    auto r = ReadLedger(s, conn_);
    sqlite3_reset(s);
    return r;
  }

  void Cancel() override {
    std::lock_guard lock(cancel_mu_);
    sqlite3_interrupt(conn_.db());
  }

 private:
  SqliteSink(TargetAddress address, TableSpec spec, SqliteConn conn)
      : address_(std::move(address)), spec_(std::move(spec)), conn_(std::move(conn)) {}

  Status PrepareStatements() {
    FORKLIFT_ASSIGN_OR_RETURN(insert_, conn_.Prepare(InsertSql(spec_)));
    FORKLIFT_ASSIGN_OR_RETURN(
        ledger_insert_,
        conn_.Prepare(fmt::format(
            "INSERT INTO {}forklift_load_chunks(load_id, chunk, source, first_line, last_line, "
            "rows, rejected, checksum, target_table) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            Prefix(spec_))));
    FORKLIFT_ASSIGN_OR_RETURN(ledger_find_,
                              conn_.Prepare(LedgerSelect(spec_) + " AND chunk = ?2"));
    return {};
  }

  Status WriteRows(const Chunk& chunk, ChunkWriteResult* result) {
    sqlite3_stmt* s = insert_.get();
    const int ncols = static_cast<int>(spec_.columns.size());
    for (size_t i = 0; i < chunk.rows.size(); ++i) {
      std::string reason = SplitCsvRecord(chunk.Row(i), spec_.delimiter, &fields_, &scratch_);
      if (reason.empty() && static_cast<int>(fields_.size()) != ncols) {
        reason = fmt::format("expected {} fields, found {}", ncols, fields_.size());
      }
      if (!reason.empty()) {
        result->rejected.push_back({.row = i, .sqlstate = "", .reason = std::move(reason)});
        continue;
      }
      for (int c = 0; c < ncols; ++c) {
        const CsvField& f = fields_[c];
        if (!f.quoted && f.value == spec_.null_string) {
          sqlite3_bind_null(s, c + 1);
        } else {
          BindValue(s, c + 1, affinity_[c], f.value);
        }
      }
      int rc = sqlite3_step(s);
      sqlite3_reset(s);
      if (rc == SQLITE_DONE) {
        ++result->rows_written;
      } else if (IsRowError(rc)) {
        // A conflict clause ON CONFLICT ROLLBACK or a trigger's RAISE(ROLLBACK) ends the
        // whole transaction, not just the statement: the rows before are gone, and the
        // rows after (and the ledger row) would commit one by one in autocommit mode.
        if (sqlite3_get_autocommit(conn_.db())) {
          return FailedPreconditionError(fmt::format(
              "{}: table {}, line {}: {} ({}) rolled back the whole transaction: the "
              "table's conflict clause (ON CONFLICT ROLLBACK) or a trigger's "
              "RAISE(ROLLBACK, ...) does that, and forklift cannot then narrow the bad rows "
              "out (use ABORT or FAIL there); nothing of this chunk was committed",
              address_.display, ShownTable(spec_), chunk.rows[i].line,
              sqlite3_errmsg(conn_.db()), CodeName(rc)));
        }
        result->rejected.push_back(
            {.row = i, .sqlstate = CodeName(rc), .reason = sqlite3_errmsg(conn_.db())});
      } else {
        return tl::unexpected(conn_.Fail(fmt::format("insert into {}", spec_.table), rc));
      }
    }
    return {};
  }

  Status InsertLedger(const Chunk& chunk, const ChunkWriteResult& result) {
    sqlite3_stmt* s = ledger_insert_.get();
    const std::string table = ShownTable(spec_);
    sqlite3_bind_text(s, 1, spec_.load_id.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, chunk.number);
    sqlite3_bind_text(s, 3, chunk.source.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, static_cast<int64_t>(chunk.first_line));
    sqlite3_bind_int64(s, 5, static_cast<int64_t>(chunk.last_line));
    sqlite3_bind_int64(s, 6, result.rows_written);
    sqlite3_bind_int64(s, 7,
                       static_cast<int64_t>(result.rejected.size() + chunk.parse_rejects.size()));
    sqlite3_bind_text(s, 8, chunk.checksum.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 9, table.c_str(), -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
      return tl::unexpected(conn_.Fail(fmt::format("record chunk {}", chunk.number), rc));
    }
    return {};
  }

  TargetAddress address_;
  TableSpec spec_;
  std::mutex cancel_mu_;  // guards replacing conn_ against Cancel()
  SqliteConn conn_;
  StmtPtr insert_, ledger_insert_, ledger_find_;
  std::vector<CsvField> fields_;
  std::string scratch_;
  std::vector<Affinity> affinity_;  // of spec_.columns
};

class SqliteTarget final : public Target {
 public:
  SqliteTarget(TargetAddress address, TableSpec spec, SqliteConn conn)
      : address_(std::move(address)), spec_(std::move(spec)), conn_(std::move(conn)) {}
  ~SqliteTarget() override {
    // Closed while no connection of ours is in a transaction (the sinks are gone): closing
    // a descriptor of the file drops the process's POSIX locks on it, SQLite's included.
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }
  SqliteTarget(const SqliteTarget&) = delete;
  SqliteTarget& operator=(const SqliteTarget&) = delete;

  // An flock(2) on the database file (independent of SQLite's own POSIX locks): one load
  // into a file at a time, whatever its load id, since the file has one writer anyway.
  Status ClaimLoad() override {
    if (lock_fd_ >= 0) return {};
    const int fd = ::open(address_.conninfo.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return FailedPreconditionError(
          fmt::format("{}: cannot open to lock it: {}", address_.display, std::strerror(errno)));
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) {
        return AbortedError(fmt::format(
            "another load with load id {} (or another load into this file) is running "
            "against {}: an SQLite file takes one load at a time; wait for it to end "
            "(rerunning then resumes this one)",
            spec_.load_id, address_.display));
      }
      return FailedPreconditionError(
          fmt::format("{}: cannot lock: {}", address_.display, std::strerror(err)));
    }
    lock_fd_ = fd;
    return {};
  }

  Status Check() {
    FORKLIFT_ASSIGN_OR_RETURN(
        StmtPtr info, conn_.Prepare(spec_.schema.empty()
                                        ? "SELECT name, type FROM pragma_table_info(?1)"
                                        : "SELECT name, type FROM pragma_table_info(?1, ?2)"));
    sqlite3_bind_text(info.get(), 1, spec_.table.c_str(), -1, SQLITE_STATIC);
    if (!spec_.schema.empty()) {
      sqlite3_bind_text(info.get(), 2, spec_.schema.c_str(), -1, SQLITE_STATIC);
    }
    std::vector<std::string> have;
    std::vector<std::string> types;
    int rc;
    while ((rc = sqlite3_step(info.get())) == SQLITE_ROW) {
      have.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(info.get(), 0)));
      const unsigned char* t = sqlite3_column_text(info.get(), 1);
      types.emplace_back(t ? reinterpret_cast<const char*>(t) : "");
    }
    if (rc != SQLITE_DONE) return tl::unexpected(conn_.Fail("read the table's columns", rc));
    const std::string shown = ShownTable(spec_);
    if (have.empty()) {
      return FailedPreconditionError(
          fmt::format("--table {}: no such table in {}", shown, address_.display));
    }
    for (const std::string& c : spec_.columns) {
      auto it = std::find(have.begin(), have.end(), c);
      if (it == have.end()) {
        return FailedPreconditionError(fmt::format("column '{}' is not in table {} (it has {})",
                                                   c, shown, fmt::join(have, ", ")));
      }
      affinity_.push_back(AffinityOf(types[static_cast<size_t>(it - have.begin())]));
    }
    return {};
  }

  Status EnsureLedger() override { return conn_.Exec(fmt::format(kLedgerDdl, Prefix(spec_))); }

  const TargetAddress& address() const override { return address_; }
  Result<int> MaxWorkers() override { return 1; }

  Result<std::vector<LedgerEntry>> CommittedChunks() override {
    FORKLIFT_ASSIGN_OR_RETURN(StmtPtr s, conn_.Prepare(LedgerSelect(spec_) + " ORDER BY chunk"));
    sqlite3_bind_text(s.get(), 1, spec_.load_id.c_str(), -1, SQLITE_STATIC);
    std::vector<LedgerEntry> out;
    for (;;) {
      FORKLIFT_ASSIGN_OR_RETURN(std::optional<LedgerEntry> e, ReadLedger(s.get(), conn_));
      if (!e) break;
      out.push_back(std::move(*e));
    }
    return out;
  }

  Result<std::unique_ptr<Sink>> OpenSink() override {
    FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<SqliteSink> sink,
                              SqliteSink::Open(address_, spec_, affinity_));
    return std::unique_ptr<Sink>(std::move(sink));
  }

 private:
  TargetAddress address_;
  TableSpec spec_;
  SqliteConn conn_;
  std::vector<Affinity> affinity_;  // of spec_.columns
  int lock_fd_ = -1;                // ClaimLoad's flock, held until destruction
};

}  // namespace

Result<std::unique_ptr<Target>> OpenSqliteTarget(const TargetAddress& address,
                                                 const TableSpec& spec) {
  FORKLIFT_ASSIGN_OR_RETURN(SqliteConn conn, SqliteConn::Open(address));
  auto target = std::make_unique<SqliteTarget>(address, spec, std::move(conn));
  FORKLIFT_RETURN_IF_ERROR(target->Check());
  return std::unique_ptr<Target>(std::move(target));
}

Result<std::vector<std::string>> ReadSqliteTableColumns(const TargetAddress& address,
                                                        const std::string& schema,
                                                        const std::string& table) {
  FORKLIFT_ASSIGN_OR_RETURN(SqliteConn conn, SqliteConn::Open(address));
  FORKLIFT_ASSIGN_OR_RETURN(StmtPtr info,
                            conn.Prepare(schema.empty()
                                             ? "SELECT name FROM pragma_table_info(?1)"
                                             : "SELECT name FROM pragma_table_info(?1, ?2)"));
  sqlite3_bind_text(info.get(), 1, table.c_str(), -1, SQLITE_STATIC);
  if (!schema.empty()) sqlite3_bind_text(info.get(), 2, schema.c_str(), -1, SQLITE_STATIC);
  std::vector<std::string> out;
  int rc;
  while ((rc = sqlite3_step(info.get())) == SQLITE_ROW) {
    out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(info.get(), 0)));
  }
  if (rc != SQLITE_DONE) return tl::unexpected(conn.Fail("read the table's columns", rc));
  if (out.empty()) {
    return FailedPreconditionError(fmt::format(
        "--table {}: no such table in {}", schema.empty() ? table : schema + "." + table,
        address.display));
  }
  return out;
}

}  // namespace forklift::sinks
