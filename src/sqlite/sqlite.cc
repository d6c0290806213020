#include "sqlite/sqlite.h"

#include <chrono>
#include <thread>
#include <utility>

namespace forklift::sqlite {
namespace {

// How much of a statement an error quotes: enough to recognize it, not a whole schema.
constexpr size_t kShownSql = 60;

std::string Shown(std::string_view sql) { return std::string(sql.substr(0, kShownSql)); }

}  // namespace

ErrorCode CodeOf(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:    // another writer held the file past the busy timeout
    case SQLITE_LOCKED:  // a conflict inside this process; also passes
      return ErrorCode::kUnavailable;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return ErrorCode::kDataLoss;
    default: return ErrorCode::kInternal;
  }
}

bool IsBusy(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

Result<Db> Db::Open(const std::string& path, const OpenOptions& options) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, options.flags, nullptr);
  std::unique_ptr<sqlite3, Closer> db(raw);  // closed on failure too (open may allocate)
  if (rc != SQLITE_OK) {
    return MakeError(CodeOf(rc), raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, options.busy_timeout_ms);
  return Db(std::move(db), options.label.empty() ? path : options.label, options.busy_timeout_ms);
}

Error Db::LastError(std::string_view what) const {
  return Error{CodeOf(sqlite3_extended_errcode(get())),
               label_ + ": " + std::string(what) + ": " + Message()};
}

std::string Db::Message() const { return sqlite3_errmsg(get()); }
int64_t Db::Changes() const { return sqlite3_changes64(get()); }
int64_t Db::LastInsertRowid() const { return sqlite3_last_insert_rowid(get()); }
bool Db::Autocommit() const { return sqlite3_get_autocommit(get()) != 0; }
bool Db::ReadOnly() const { return sqlite3_db_readonly(get(), "main") == 1; }
void Db::Interrupt() const { sqlite3_interrupt(get()); }

Status Db::Exec(std::string_view sql) {
  // sqlite3_exec needs a NUL-terminated string.
  const std::string text(sql);
  if (sqlite3_exec(get(), text.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    return tl::unexpected(LastError(Shown(sql)));
  }
  return OkStatus();
}

Result<Statement> Db::Prepare(std::string_view sql, bool persistent) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(get(), sql.data(), static_cast<int>(sql.size()),
                         persistent ? SQLITE_PREPARE_PERSISTENT : 0, &s, nullptr) != SQLITE_OK) {
    return tl::unexpected(LastError("prepare " + Shown(sql)));
  }
  return Statement(s);
}

Result<std::optional<std::string>> Db::QueryText(std::string_view sql) {
  FORKLIFT_ASSIGN_OR_RETURN(Statement stmt, Prepare(sql));
  StatementUse s(stmt);
  const int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return tl::unexpected(LastError(Shown(sql)));
  return std::optional<std::string>(s.ColumnString(0));
}

Result<std::optional<int64_t>> Db::QueryInt64(std::string_view sql) {
  FORKLIFT_ASSIGN_OR_RETURN(Statement stmt, Prepare(sql));
  StatementUse s(stmt);
  const int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<int64_t>();
  if (rc != SQLITE_ROW) return tl::unexpected(LastError(Shown(sql)));
  return std::optional<int64_t>(s.ColumnInt64(0));
}

Result<std::string> Db::EnableWal() {
  constexpr std::chrono::milliseconds kPause{5};
  for (int waited_ms = 0;; waited_ms += static_cast<int>(kPause.count())) {
    auto mode = QueryText("PRAGMA journal_mode=WAL");
    if (mode) return mode->value_or("");
    if (!IsBusy(sqlite3_extended_errcode(get())) || waited_ms >= busy_timeout_ms_) {
      return tl::unexpected(mode.error());
    }
    std::this_thread::sleep_for(kPause);
  }
}

Status Transaction::Begin() {
  const char* sql = mode_ == Mode::kImmediate ? "BEGIN IMMEDIATE" : "BEGIN";
  if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return tl::unexpected(db_.LastError(std::string(what_) + ": begin"));
  }
  open_ = true;
  return OkStatus();
}

Error Transaction::Fail(std::string_view suffix) {
  Error e = db_.LastError(std::string(what_).append(suffix));
  Rollback();
  return e;
}

Status Transaction::Commit() {
  if (sqlite3_exec(db_.get(), "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return tl::unexpected(Fail(": commit"));
  }
  open_ = false;
  return OkStatus();
}

void Transaction::Rollback() {
  // A failed COMMIT or a conflict clause may have ended the transaction already.
  if (open_ && !db_.Autocommit()) {
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  open_ = false;
}

}  // namespace forklift::sqlite
