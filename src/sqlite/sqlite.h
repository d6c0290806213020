// The one SQLite wrapper: a connection (Db), an owned prepared statement (Statement), one
// use of a statement (StatementUse: typed binds, columns, reset on the way out) and a
// write transaction (Transaction). The journal (journal/), the SQLite load target
// (sinks/) and SQL tasks on SQLite (flow/) all talk to SQLite through it, so busy
// handling, the classification of SQLite's result codes and the wording of errors
// ("<label>: <what or SQL>: <SQLite's message>") are the same everywhere.
//
// Errors: Unavailable for SQLITE_BUSY/SQLITE_LOCKED (another writer held the file past
// the busy timeout; worth a retry), DataLoss for SQLITE_CORRUPT/SQLITE_NOTADB, Internal
// for the rest. Each names the Db's label (the caller's name for the file: "journal
// 'x.db'", "sqlite:x.db") and what was being done, or the first 60 bytes of the SQL.
//
// Thread safety: none, like the connection (opened SQLITE_OPEN_NOMUTEX by default): use a
// Db, its statements and transactions from one thread at a time. The one exception is
// Db::Interrupt, which SQLite allows from any thread while the Db is alive.
#ifndef FORKLIFT_SQLITE_SQLITE_H_
#define FORKLIFT_SQLITE_SQLITE_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "forklift/result.h"

namespace forklift::sqlite {

// The ErrorCode for an SQLite result code (primary or extended), as the header says.
ErrorCode CodeOf(int rc);
// Whether rc (primary or extended) is SQLITE_BUSY or SQLITE_LOCKED.
bool IsBusy(int rc);

struct OpenOptions {
  // sqlite3_open_v2 flags. Default: SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX (no
  // CREATE: a mistyped path must not become an empty database; NOMUTEX: one thread at a
  // time, so SQLite's own locking is waste).
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  // How long a statement waits for another connection's lock before SQLITE_BUSY.
  // Default: 5000 ms.
  int busy_timeout_ms = 5000;
  // How errors name the database. Default (""): the path.
  std::string label;
};

class Statement;

// An open connection with extended result codes on and the busy timeout set. Move-only;
// closed (sqlite3_close_v2) on destruction.
class Db {
 public:
  // Opens `path`. Failure: an Error (classified as above) whose message is SQLite's
  // reason alone ("unable to open database file"), for the caller to say what it was
  // opening and why; nothing stays open.
  static Result<Db> Open(const std::string& path, const OpenOptions& options = {});
  Db(Db&&) noexcept = default;
  Db& operator=(Db&&) noexcept = default;
  ~Db() = default;

  sqlite3* get() const { return db_.get(); }
  const std::string& label() const { return label_; }
  int busy_timeout_ms() const { return busy_timeout_ms_; }

  // Runs `sql` (one or more statements, no results wanted). Failure: as the header says,
  // naming the SQL.
  Status Exec(std::string_view sql);
  // The first column of the first row of `sql` as text ("" for NULL; nullopt when there
  // is no row). Failure: as Exec.
  Result<std::optional<std::string>> QueryText(std::string_view sql);
  // The same as an integer (0 for NULL); nullopt when there is no row.
  Result<std::optional<int64_t>> QueryInt64(std::string_view sql);

  // "PRAGMA journal_mode=WAL" and the mode now in force ("wal", or the old mode where WAL
  // is impossible, e.g. ":memory:"). Switching a new file to WAL takes an exclusive lock
  // and may answer SQLITE_BUSY at once, without the busy handler, while another process
  // does the same: that is retried for as long as the busy timeout allows.
  Result<std::string> EnableWal();

  // A prepared statement; `persistent` for one kept for the connection's life
  // (SQLITE_PREPARE_PERSISTENT). Failure: as Exec, naming "prepare" and the SQL.
  Result<Statement> Prepare(std::string_view sql, bool persistent = false);

  // The error for the connection's last failure: "<label>: <what>: <message>", classified
  // by the connection's extended result code.
  Error LastError(std::string_view what) const;
  // SQLite's message for the last failure (sqlite3_errmsg).
  std::string Message() const;
  // sqlite3_changes64: rows changed by the last INSERT, UPDATE or DELETE.
  int64_t Changes() const;
  int64_t LastInsertRowid() const;
  // Whether no transaction is open (sqlite3_get_autocommit): a conflict clause ON
  // CONFLICT ROLLBACK or a failed COMMIT may end one without being asked.
  bool Autocommit() const;
  // Whether the main database is read-only: SQLite silently opens a file it may not write
  // read-only, even when asked for SQLITE_OPEN_READWRITE.
  bool ReadOnly() const;
  // Makes the running statement fail with SQLITE_INTERRUPT soon. Thread-safe while the
  // Db is alive (the caller guards against closing it meanwhile).
  void Interrupt() const;

 private:
  struct Closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  Db(std::unique_ptr<sqlite3, Closer> db, std::string label, int busy_timeout_ms)
      : db_(std::move(db)), label_(std::move(label)), busy_timeout_ms_(busy_timeout_ms) {}

  std::unique_ptr<sqlite3, Closer> db_;
  std::string label_;
  int busy_timeout_ms_ = 0;
};

// An owned prepared statement, finalized on destruction. Move-only. Used through a
// StatementUse. A default-constructed one holds nothing.
class Statement {
 public:
  Statement() = default;
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  sqlite3_stmt* get() const { return stmt_.get(); }
  explicit operator bool() const { return stmt_ != nullptr; }

 private:
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
  };
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
};

// One use of a statement: binds without copying and, when it goes out of scope, resets
// the statement and clears its bindings, so the next use starts clean and a read never
// holds its WAL snapshot open (which would pin the WAL against checkpoints and make a later
// write of this connection fail with SQLITE_BUSY_SNAPSHOT). The bound bytes belong to the
// caller and must outlive the use (SQLITE_STATIC).
class StatementUse {
 public:
  explicit StatementUse(const Statement& stmt) : stmt_(stmt.get()) {}
  ~StatementUse() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  StatementUse(const StatementUse&) = delete;
  StatementUse& operator=(const StatementUse&) = delete;

  // Binds are 1-based. A failed bind (a value over SQLite's size limit) is kept and
  // returned by the next Step, whose error sqlite3_errmsg then describes.
  void BindText(int i, std::string_view v) {
    Check(sqlite3_bind_text64(stmt_, i, NonNull(v), v.size(), SQLITE_STATIC, SQLITE_UTF8));
  }
  void BindBlob(int i, std::string_view v) {
    Check(sqlite3_bind_blob64(stmt_, i, NonNull(v), v.size(), SQLITE_STATIC));
  }
  // NULL for "", else the text (or blob): where an empty value means "none".
  void BindTextOrNull(int i, std::string_view v) {
    if (v.empty()) {
      BindNull(i);
    } else {
      BindText(i, v);
    }
  }
  void BindBlobOrNull(int i, std::string_view v) {
    if (v.empty()) {
      BindNull(i);
    } else {
      BindBlob(i, v);
    }
  }
  void BindNull(int i) { Check(sqlite3_bind_null(stmt_, i)); }
  void BindInt64(int i, int64_t v) { Check(sqlite3_bind_int64(stmt_, i, v)); }
  void BindDouble(int i, double v) { Check(sqlite3_bind_double(stmt_, i, v)); }
  void BindOptInt64(int i, std::optional<int64_t> v) {
    if (v) {
      BindInt64(i, *v);
    } else {
      BindNull(i);
    }
  }

  // Binds parameters first, first + 1, ... to `values...` by type: text for strings,
  // integers, doubles. e.g. s.Bind(1, run_id, attempts, started_at).
  template <class... T>
  void Bind(int first, const T&... values) {
    int i = first;
    (Put(i++, values), ...);
  }

  // SQLITE_ROW, SQLITE_DONE, or an error code (also a failed bind's).
  int Step() { return bind_rc_ != SQLITE_OK ? bind_rc_ : sqlite3_step(stmt_); }

  // Columns are 0-based. TEXT and BLOB bytes alike, unconverted; "" for NULL.
  std::string ColumnString(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    const int n = sqlite3_column_bytes(stmt_, col);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
  }
  int64_t ColumnInt64(int col) const { return sqlite3_column_int64(stmt_, col); }
  double ColumnDouble(int col) const { return sqlite3_column_double(stmt_, col); }
  bool ColumnIsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::optional<double> ColumnOptDouble(int col) const {
    if (ColumnIsNull(col)) return std::nullopt;
    return ColumnDouble(col);
  }
  std::optional<int64_t> ColumnOptInt64(int col) const {
    if (ColumnIsNull(col)) return std::nullopt;
    return ColumnInt64(col);
  }

  // Reads columns first, first + 1, ... into `out...`, each as its type says (std::string,
  // int64_t, int, double, std::optional<int64_t>, std::optional<double>): a row into a
  // struct in one line, e.g. s.Read(0, row.key, row.attempts, row.elapsed).
  template <class... T>
  void Read(int first, T&... out) const {
    int col = first;
    (Get(col++, out), ...);
  }

 private:
  void Put(int i, std::string_view v) { BindText(i, v); }
  void Put(int i, int64_t v) { BindInt64(i, v); }
  void Put(int i, int v) { BindInt64(i, v); }
  void Put(int i, double v) { BindDouble(i, v); }

  void Get(int col, std::string& out) const { out = ColumnString(col); }
  void Get(int col, int64_t& out) const { out = ColumnInt64(col); }
  void Get(int col, int& out) const { out = static_cast<int>(ColumnInt64(col)); }
  void Get(int col, double& out) const { out = ColumnDouble(col); }
  void Get(int col, std::optional<int64_t>& out) const { out = ColumnOptInt64(col); }
  void Get(int col, std::optional<double>& out) const { out = ColumnOptDouble(col); }

  // A null pointer would bind SQL NULL; an empty key or name is a value, not NULL.
  static const char* NonNull(std::string_view v) { return v.data() ? v.data() : ""; }
  void Check(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
};

// A transaction, rolled back on destruction unless committed. kImmediate (BEGIN
// IMMEDIATE) takes the write lock up front, so a busy file makes Begin wait (the busy
// timeout) instead of failing midway; kDeferred (BEGIN) takes locks as statements need
// them.
class Transaction {
 public:
  enum class Mode { kDeferred, kImmediate };
  // `what` names the operation in errors ("<label>: <what>: begin: <message>"); it must
  // outlive the transaction.
  Transaction(Db& db, std::string_view what, Mode mode = Mode::kImmediate)
      : db_(db), what_(what), mode_(mode) {}
  ~Transaction() { Rollback(); }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // Failure: as the header says; no transaction is open then.
  Status Begin();
  // The error of a statement that failed inside the transaction ("<label>: <what><suffix>:
  // <message>"), captured before the rollback, which it then does (a rollback overwrites
  // the connection's error).
  Error Fail(std::string_view suffix);
  // Failure: Fail(": commit"); the transaction is rolled back.
  Status Commit();
  // Rolls back when open (a no-op when SQLite already ended the transaction).
  void Rollback();

 private:
  Db& db_;
  std::string_view what_;
  Mode mode_;
  bool open_ = false;
};

}  // namespace forklift::sqlite

#endif  // FORKLIFT_SQLITE_SQLITE_H_
