// Stmt: one use of a prepared SQLite statement, private to the journal. It does not own
// the statement (the Journal caches its statements for its lifetime); it scopes a use:
// bind, step, read columns, and reset on the way out, error or not.
//
// Thread safety: none; one thread at a time, like the connection behind the statement.
#ifndef FORKLIFT_JOURNAL_SQLITE_H_
#define FORKLIFT_JOURNAL_SQLITE_H_

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "forklift/result.h"

namespace forklift::journal {

// A cached statement in use: binds without copying and, when it goes out of scope, resets
// the statement so the next use starts clean and a read never holds its WAL snapshot open
// (which would pin the WAL against checkpoints and make a later write of this connection
// fail with SQLITE_BUSY_SNAPSHOT).
class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~Stmt() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // SQLITE_STATIC is safe: the bound bytes belong to the caller and outlive this object,
  // which resets the statement before they can go away.
  void BindText(int i, std::string_view v) {
    Check(sqlite3_bind_text64(stmt_, i, NonNull(v), v.size(), SQLITE_STATIC, SQLITE_UTF8));
  }
  void BindBlob(int i, std::string_view v) {
    Check(sqlite3_bind_blob64(stmt_, i, NonNull(v), v.size(), SQLITE_STATIC));
  }
  void BindTextOrNull(int i, std::string_view v) {
    if (v.empty()) {
      Check(sqlite3_bind_null(stmt_, i));
    } else {
      BindText(i, v);
    }
  }
  void BindBlobOrNull(int i, std::string_view v) {
    if (v.empty()) {
      Check(sqlite3_bind_null(stmt_, i));
    } else {
      BindBlob(i, v);
    }
  }
  void BindCode(int i, std::optional<ErrorCode> code) {
    if (code) {
      BindText(i, ErrorCodeName(*code));  // static storage
    } else {
      Check(sqlite3_bind_null(stmt_, i));
    }
  }
  void BindNull(int i) { Check(sqlite3_bind_null(stmt_, i)); }
  void BindInt64(int i, int64_t v) { Check(sqlite3_bind_int64(stmt_, i, v)); }
  void BindDouble(int i, double v) { Check(sqlite3_bind_double(stmt_, i, v)); }

  // SQLITE_ROW, SQLITE_DONE, or an error code (also a failed bind's, e.g. a value over
  // SQLite's size limit, which sqlite3_errmsg then describes).
  int Step() { return bind_rc_ != SQLITE_OK ? bind_rc_ : sqlite3_step(stmt_); }

  std::string ColumnString(int col) const {
    // sqlite3_column_blob returns TEXT and BLOB bytes alike, unconverted.
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
  }
  int64_t ColumnInt64(int col) const { return sqlite3_column_int64(stmt_, col); }
  double ColumnDouble(int col) const { return sqlite3_column_double(stmt_, col); }
  bool ColumnIsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::optional<double> ColumnOptDouble(int col) const {
    if (ColumnIsNull(col)) return std::nullopt;
    return ColumnDouble(col);
  }
  std::optional<ErrorCode> ColumnCode(int col) const {
    if (ColumnIsNull(col)) return std::nullopt;
    return ErrorCodeFromName(ColumnString(col));
  }

 private:
  // A null pointer would bind SQL NULL; an empty key or name is a value, not NULL.
  static const char* NonNull(std::string_view v) { return v.data() ? v.data() : ""; }
  void Check(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
};

}  // namespace forklift::journal

#endif  // FORKLIFT_JOURNAL_SQLITE_H_
