#include "journal/journal.h"

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <system_error>

namespace forklift::journal {
namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS runs(
  run_id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  started_at REAL NOT NULL,
  finished_at REAL,
  status TEXT NOT NULL,
  invocations INTEGER NOT NULL DEFAULT 1,
  summary TEXT
);
CREATE TABLE IF NOT EXISTS items(
  run_id TEXT NOT NULL,
  key BLOB NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  error_code TEXT,
  error_message TEXT,
  elapsed_us INTEGER NOT NULL,
  finished_at REAL NOT NULL,
  PRIMARY KEY(run_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters(
  id INTEGER PRIMARY KEY,
  run_id TEXT NOT NULL,
  key BLOB,
  source TEXT,
  position TEXT,
  payload BLOB,
  reason TEXT NOT NULL,
  error_code TEXT,
  attempts INTEGER NOT NULL,
  created_at REAL NOT NULL,
  retried_at REAL
);
CREATE INDEX IF NOT EXISTS dead_letters_run ON dead_letters(run_id);
)sql";

// Statement slots of the cache.
enum Slot {
  kBeginRun,
  kFinishRun,
  kRecordItem,
  kItemState,
  kClearItems,
  kAddDeadLetter,
  kMarkRetried,
  kSlotCount,
};

double UnixNow() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string Text(sqlite3_stmt* s, int col) {
  const auto* p = sqlite3_column_blob(s, col);
  int n = sqlite3_column_bytes(s, col);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

std::optional<double> OptReal(sqlite3_stmt* s, int col) {
  if (sqlite3_column_type(s, col) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_double(s, col);
}

std::optional<ErrorCode> OptCode(sqlite3_stmt* s, int col) {
  if (sqlite3_column_type(s, col) == SQLITE_NULL) return std::nullopt;
  return ErrorCodeFromName(Text(s, col));
}

void BindText(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
void BindBlob(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
void BindCode(sqlite3_stmt* s, int i, std::optional<ErrorCode> code) {
  if (code) {
    BindText(s, i, ErrorCodeName(*code));
  } else {
    sqlite3_bind_null(s, i);
  }
}

}  // namespace

// Resets a cached statement when it goes out of scope, so the next use starts clean and a
// read statement never holds its snapshot open.
class Journal::Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  ~Stmt() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  sqlite3_stmt* get() const { return s_; }

 private:
  sqlite3_stmt* s_;
};

Journal::Journal(std::string path, sqlite3* db)
    : path_(std::move(path)), db_(db), stmts_(kSlotCount, nullptr) {}

Journal::~Journal() {
  for (sqlite3_stmt* s : stmts_) sqlite3_finalize(s);
  sqlite3_close_v2(db_);
}

Error Journal::SqlError(const char* what) const {
  int code = sqlite3_errcode(db_);
  std::string msg = std::string("journal '") + path_ + "': " + what + ": " + sqlite3_errmsg(db_);
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error{ErrorCode::kUnavailable, msg};
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Error{ErrorCode::kDataLoss, msg};
    default:
      return Error{ErrorCode::kInternal, msg};
  }
}

Status Journal::Exec(const char* sql, const char* what) {
  if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return tl::unexpected(SqlError(what));
  }
  return OkStatus();
}

Result<sqlite3_stmt*> Journal::Prepare(int slot, const char* sql) {
  if (!stmts_[slot]) {
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmts_[slot], nullptr) !=
        SQLITE_OK) {
      return tl::unexpected(SqlError("prepare"));
    }
  }
  return stmts_[slot];
}

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& path) {
  auto fail = [&](const std::string& why) {
    return InvalidArgumentError("cannot open journal '" + path + "' for writing: " + why);
  };
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) return fail(ec.message());
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return fail(why);
  }
  std::unique_ptr<Journal> j(new Journal(path, db));
  sqlite3_busy_timeout(db, 5000);
  sqlite3_extended_result_codes(db, 1);
  // The schema is created inside a write transaction so a read-only file or directory is
  // refused here, not at the first checkpoint.
  const char* setup =
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;";
  if (sqlite3_exec(db, setup, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return fail(sqlite3_errmsg(db));
  }
  std::string schema = std::string("BEGIN IMMEDIATE;") + kSchema +
                       "PRAGMA user_version=" + std::to_string(kSchemaVersion) + ";COMMIT;";
  if (sqlite3_exec(db, schema.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    std::string why = sqlite3_errmsg(db);
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return fail(why);
  }
  return j;
}

Status Journal::BeginRun(std::string_view run_id, std::string_view kind, std::string_view name) {
  FORKLIFT_ASSIGN_OR_RETURN(
      sqlite3_stmt * raw,
      Prepare(kBeginRun,
              "INSERT INTO runs(run_id, kind, name, started_at, status, invocations) "
              "VALUES(?1, ?2, ?3, ?4, 'running', 1) "
              "ON CONFLICT(run_id) DO UPDATE SET status = 'running', finished_at = NULL, "
              "started_at = ?4, invocations = invocations + 1, summary = NULL"));
  Stmt s(raw);
  BindText(raw, 1, run_id);
  BindText(raw, 2, kind);
  BindText(raw, 3, name);
  sqlite3_bind_double(raw, 4, UnixNow());
  if (sqlite3_step(raw) != SQLITE_DONE) return tl::unexpected(SqlError("begin run"));
  return OkStatus();
}

Status Journal::FinishRun(std::string_view run_id, std::string_view status,
                          std::string_view summary_json) {
  FORKLIFT_ASSIGN_OR_RETURN(
      sqlite3_stmt * raw,
      Prepare(kFinishRun,
              "UPDATE runs SET status = ?2, summary = ?3, finished_at = ?4 WHERE run_id = ?1"));
  Stmt s(raw);
  BindText(raw, 1, run_id);
  BindText(raw, 2, status);
  BindText(raw, 3, summary_json);
  sqlite3_bind_double(raw, 4, UnixNow());
  if (sqlite3_step(raw) != SQLITE_DONE) return tl::unexpected(SqlError("finish run"));
  if (sqlite3_changes(db_) == 0) {
    return NotFoundError("journal '" + path_ + "': no run '" + std::string(run_id) + "'");
  }
  return OkStatus();
}

Result<std::vector<RunInfo>> Journal::ListRuns(std::string_view kind, int limit) {
  // Ad-hoc and rare: not worth a cached statement.
  const char* sql =
      "SELECT r.run_id, r.kind, r.name, r.started_at, r.finished_at, r.status, "
      "r.invocations, coalesce(r.summary, ''), "
      "(SELECT count(*) FROM items i WHERE i.run_id = r.run_id AND i.status = 'succeeded'), "
      "(SELECT count(*) FROM items i WHERE i.run_id = r.run_id AND i.status = 'failed') "
      "FROM runs r WHERE (?1 = '' OR r.kind = ?1) ORDER BY r.started_at DESC, r.run_id "
      "LIMIT ?2";
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db_, sql, -1, &raw, nullptr) != SQLITE_OK) {
    return tl::unexpected(SqlError("list runs"));
  }
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> owner(raw, sqlite3_finalize);
  BindText(raw, 1, kind);
  sqlite3_bind_int64(raw, 2, limit > 0 ? limit : -1);
  std::vector<RunInfo> runs;
  int rc;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    RunInfo r;
    r.run_id = Text(raw, 0);
    r.kind = Text(raw, 1);
    r.name = Text(raw, 2);
    r.started_at = sqlite3_column_double(raw, 3);
    r.finished_at = OptReal(raw, 4);
    r.status = Text(raw, 5);
    r.invocations = sqlite3_column_int64(raw, 6);
    r.summary_json = Text(raw, 7);
    r.items_succeeded = sqlite3_column_int64(raw, 8);
    r.items_failed = sqlite3_column_int64(raw, 9);
    runs.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return tl::unexpected(SqlError("list runs"));
  return runs;
}

Result<std::optional<RunInfo>> Journal::GetRun(std::string_view run_id) {
  FORKLIFT_ASSIGN_OR_RETURN(std::vector<RunInfo> all, ListRuns("", 0));
  for (auto& r : all) {
    if (r.run_id == run_id) return std::optional<RunInfo>(std::move(r));
  }
  return std::optional<RunInfo>();
}

Status Journal::RecordItems(std::string_view run_id, std::span<const ItemRecord> records) {
  if (records.empty()) return OkStatus();
  FORKLIFT_ASSIGN_OR_RETURN(
      sqlite3_stmt * raw,
      Prepare(kRecordItem,
              "INSERT INTO items(run_id, key, status, attempts, error_code, error_message, "
              "elapsed_us, finished_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
              "ON CONFLICT(run_id, key) DO UPDATE SET status = excluded.status, "
              "attempts = excluded.attempts, error_code = excluded.error_code, "
              "error_message = excluded.error_message, elapsed_us = excluded.elapsed_us, "
              "finished_at = excluded.finished_at "
              "WHERE items.status <> 'succeeded' OR excluded.status = 'succeeded'"));
  FORKLIFT_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE", "record items: begin"));
  double now = UnixNow();
  for (const ItemRecord& r : records) {
    Stmt s(raw);
    BindText(raw, 1, run_id);
    BindBlob(raw, 2, r.key);
    BindText(raw, 3, r.ok ? "succeeded" : "failed");
    sqlite3_bind_int(raw, 4, r.attempts);
    BindCode(raw, 5, r.ok ? std::nullopt : r.code);
    if (r.ok) {
      sqlite3_bind_null(raw, 6);
    } else {
      BindText(raw, 6, r.message);
    }
    sqlite3_bind_int64(raw, 7, r.elapsed_us);
    sqlite3_bind_double(raw, 8, now);
    if (sqlite3_step(raw) != SQLITE_DONE) {
      Error e = SqlError("record items");
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return tl::unexpected(e);
    }
  }
  return Exec("COMMIT", "record items: commit");
}

Status Journal::ClearItems(std::string_view run_id) {
  FORKLIFT_ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                            Prepare(kClearItems, "DELETE FROM items WHERE run_id = ?1"));
  Stmt s(raw);
  BindText(raw, 1, run_id);
  if (sqlite3_step(raw) != SQLITE_DONE) return tl::unexpected(SqlError("clear items"));
  return OkStatus();
}

Result<ItemState> Journal::GetItemState(std::string_view run_id, std::string_view key) {
  FORKLIFT_ASSIGN_OR_RETURN(
      sqlite3_stmt * raw,
      Prepare(kItemState, "SELECT status FROM items WHERE run_id = ?1 AND key = ?2"));
  Stmt s(raw);
  BindText(raw, 1, run_id);
  BindBlob(raw, 2, key);
  int rc = sqlite3_step(raw);
  if (rc == SQLITE_DONE) return ItemState::kUnknown;
  if (rc != SQLITE_ROW) return tl::unexpected(SqlError("look up item"));
  return Text(raw, 0) == "succeeded" ? ItemState::kSucceeded : ItemState::kFailed;
}

Result<bool> Journal::IsSucceeded(std::string_view run_id, std::string_view key) {
  FORKLIFT_ASSIGN_OR_RETURN(ItemState st, GetItemState(run_id, key));
  return st == ItemState::kSucceeded;
}

Result<uint64_t> Journal::CountItems(std::string_view run_id, std::optional<bool> ok) {
  const char* sql = ok ? "SELECT count(*) FROM items WHERE run_id = ?1 AND status = ?2"
                       : "SELECT count(*) FROM items WHERE run_id = ?1";
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db_, sql, -1, &raw, nullptr) != SQLITE_OK) {
    return tl::unexpected(SqlError("count items"));
  }
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> owner(raw, sqlite3_finalize);
  BindText(raw, 1, run_id);
  if (ok) BindText(raw, 2, *ok ? "succeeded" : "failed");
  if (sqlite3_step(raw) != SQLITE_ROW) return tl::unexpected(SqlError("count items"));
  return static_cast<uint64_t>(sqlite3_column_int64(raw, 0));
}

Result<std::vector<int64_t>> Journal::AddDeadLetters(std::span<const DeadLetter> letters) {
  std::vector<int64_t> ids;
  if (letters.empty()) return ids;
  FORKLIFT_ASSIGN_OR_RETURN(
      sqlite3_stmt * raw,
      Prepare(kAddDeadLetter,
              "INSERT INTO dead_letters(run_id, key, source, position, payload, reason, "
              "error_code, attempts, created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
  FORKLIFT_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE", "add dead letters: begin"));
  double now = UnixNow();
  for (const DeadLetter& d : letters) {
    Stmt s(raw);
    BindText(raw, 1, d.run_id);
    BindBlob(raw, 2, d.key);
    BindText(raw, 3, d.source);
    BindText(raw, 4, d.position);
    BindBlob(raw, 5, d.payload);
    BindText(raw, 6, d.reason);
    BindCode(raw, 7, d.code);
    sqlite3_bind_int(raw, 8, d.attempts);
    sqlite3_bind_double(raw, 9, now);
    if (sqlite3_step(raw) != SQLITE_DONE) {
      Error e = SqlError("add dead letters");
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return tl::unexpected(e);
    }
    ids.push_back(sqlite3_last_insert_rowid(db_));
  }
  FORKLIFT_RETURN_IF_ERROR(Exec("COMMIT", "add dead letters: commit"));
  return ids;
}

Result<std::vector<DeadLetter>> Journal::ListDeadLetters(std::string_view run_id,
                                                         bool include_retried) {
  const char* sql =
      "SELECT id, run_id, key, source, position, payload, reason, error_code, attempts, "
      "created_at, retried_at FROM dead_letters WHERE run_id = ?1 "
      "AND (?2 OR retried_at IS NULL) ORDER BY id";
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db_, sql, -1, &raw, nullptr) != SQLITE_OK) {
    return tl::unexpected(SqlError("list dead letters"));
  }
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> owner(raw, sqlite3_finalize);
  BindText(raw, 1, run_id);
  sqlite3_bind_int(raw, 2, include_retried ? 1 : 0);
  std::vector<DeadLetter> out;
  int rc;
  while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
    DeadLetter d;
    d.id = sqlite3_column_int64(raw, 0);
    d.run_id = Text(raw, 1);
    d.key = Text(raw, 2);
    d.source = Text(raw, 3);
    d.position = Text(raw, 4);
    d.payload = Text(raw, 5);
    d.reason = Text(raw, 6);
    d.code = OptCode(raw, 7);
    d.attempts = sqlite3_column_int(raw, 8);
    d.created_at = sqlite3_column_double(raw, 9);
    d.retried_at = OptReal(raw, 10);
    out.push_back(std::move(d));
  }
  if (rc != SQLITE_DONE) return tl::unexpected(SqlError("list dead letters"));
  return out;
}

Status Journal::MarkDeadLettersRetried(std::span<const int64_t> ids) {
  if (ids.empty()) return OkStatus();
  FORKLIFT_ASSIGN_OR_RETURN(
      sqlite3_stmt * raw,
      Prepare(kMarkRetried, "UPDATE dead_letters SET retried_at = ?2 WHERE id = ?1"));
  FORKLIFT_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE", "mark dead letters: begin"));
  double now = UnixNow();
  for (int64_t id : ids) {
    Stmt s(raw);
    sqlite3_bind_int64(raw, 1, id);
    sqlite3_bind_double(raw, 2, now);
    if (sqlite3_step(raw) != SQLITE_DONE) {
      Error e = SqlError("mark dead letters");
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return tl::unexpected(e);
    }
  }
  return Exec("COMMIT", "mark dead letters: commit");
}

}  // namespace forklift::journal
