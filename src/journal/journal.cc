#include "journal/journal.h"

#include <sqlite3.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>
#include <system_error>
#include <utility>

#include "journal/sqlite.h"

namespace forklift::journal {
namespace {

// user_version of the schema below. Open refuses a newer file (its tables may mean
// something this build does not know) and brings an older one up to date.
// 2: dead_letters.chunk (version 1 files get the column, NULL on their letters).
// 3: items.detail (a front door's JSON about the outcome: a flow task's state, exit
//    status and times; NULL elsewhere and on older rows).
constexpr int kSchemaVersion = 3;

// Only CREATE ... IF NOT EXISTS, so running it again on an up-to-date file is a no-op.
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
CREATE INDEX IF NOT EXISTS runs_by_start ON runs(started_at, run_id);
CREATE TABLE IF NOT EXISTS items(
  run_id TEXT NOT NULL,
  key BLOB NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  error_code TEXT,
  error_message TEXT,
  elapsed_us INTEGER NOT NULL,
  finished_at REAL NOT NULL,
  detail TEXT,
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
  retried_at REAL,
  chunk INTEGER
);
CREATE INDEX IF NOT EXISTS dead_letters_by_run ON dead_letters(run_id);
CREATE INDEX IF NOT EXISTS dead_letters_by_key ON dead_letters(run_id, key);
)sql";

// Run after kSchema and the upgrade of an older file, which may lack the indexed column.
constexpr const char* kSchemaIndexes = R"sql(
CREATE INDEX IF NOT EXISTS dead_letters_by_chunk ON dead_letters(run_id, chunk);
)sql";

// The columns of RunInfo, in ReadRun's order. Correlated subqueries count only the items
// of the rows actually returned, so a LIMIT keeps `forklift runs` cheap on a big journal.
#define FORKLIFT_RUN_COLUMNS                                                              \
  "SELECT r.run_id, r.kind, r.name, r.started_at, r.finished_at, r.status, "             \
  "r.invocations, r.summary, "                                                           \
  "(SELECT count(*) FROM items i WHERE i.run_id = r.run_id AND i.status = 'succeeded'), " \
  "(SELECT count(*) FROM items i WHERE i.run_id = r.run_id AND i.status = 'failed') "    \
  "FROM runs r "

#define FORKLIFT_DEAD_LETTER_COLUMNS                                                      \
  "SELECT id, run_id, key, source, position, payload, reason, error_code, attempts, "    \
  "created_at, retried_at, chunk FROM dead_letters "

// Every statement the journal runs, prepared once per connection on first use.
enum Slot {
  kBeginRunSlot,
  kFinishRunSlot,
  kGetRunSlot,
  kListRunsSlot,
  kLatestFinishedSlot,
  kRecordItemSlot,
  kItemStateSlot,
  kClearItemsSlot,
  kCountAllSlot,
  kCountByStatusSlot,
  kAddDeadLetterSlot,
  kListDeadLettersSlot,
  kListRunDeadLettersSlot,
  kMarkRetriedSlot,
  kUpdatePendingByKeySlot,
  kChunkHasPendingSlot,
  kListChunkPendingSlot,
  kDeleteDeadLetterSlot,
  kListItemsSlot,
  kSlotCount,
};

constexpr const char* kSql[kSlotCount] = {
    // kBeginRunSlot
    "INSERT INTO runs(run_id, kind, name, started_at, status, invocations) "
    "VALUES(?1, ?2, ?3, ?4, 'running', 1) "
    "ON CONFLICT(run_id) DO UPDATE SET status = 'running', finished_at = NULL, "
    "invocations = invocations + 1, summary = NULL",
    // kFinishRunSlot
    "UPDATE runs SET status = ?2, summary = ?3, finished_at = ?4 WHERE run_id = ?1",
    // kGetRunSlot
    FORKLIFT_RUN_COLUMNS "WHERE r.run_id = ?1",
    // kListRunsSlot: the order matches runs_by_start, so no sort and LIMIT stops early.
    FORKLIFT_RUN_COLUMNS "WHERE ?1 = '' OR r.kind = ?1 "
                         "ORDER BY r.started_at DESC, r.run_id DESC LIMIT ?2",
    // kLatestFinishedSlot
    FORKLIFT_RUN_COLUMNS "WHERE r.kind = ?1 AND r.name = ?2 AND r.summary IS NOT NULL "
                         "ORDER BY r.started_at DESC, r.run_id DESC LIMIT 1",
    // kRecordItemSlot: the WHERE keeps a succeeded row from being downgraded.
    "INSERT INTO items(run_id, key, status, attempts, error_code, error_message, "
    "elapsed_us, finished_at, detail) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
    "ON CONFLICT(run_id, key) DO UPDATE SET status = excluded.status, "
    "detail = excluded.detail, "
    "attempts = excluded.attempts, error_code = excluded.error_code, "
    "error_message = excluded.error_message, elapsed_us = excluded.elapsed_us, "
    "finished_at = excluded.finished_at "
    "WHERE items.status <> 'succeeded' OR excluded.status = 'succeeded'",
    // kItemStateSlot: an integer, not the text, so the hot lookup copies nothing.
    "SELECT CASE status WHEN 'succeeded' THEN 1 WHEN 'cancelled' THEN 2 ELSE 0 END "
    "FROM items WHERE run_id = ?1 AND key = ?2",
    // kClearItemsSlot
    "DELETE FROM items WHERE run_id = ?1",
    // kCountAllSlot
    "SELECT count(*) FROM items WHERE run_id = ?1",
    // kCountByStatusSlot
    "SELECT count(*) FROM items WHERE run_id = ?1 AND status = ?2",
    // kAddDeadLetterSlot
    "INSERT INTO dead_letters(run_id, key, source, position, payload, reason, error_code, "
    "attempts, created_at, chunk) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    // kListDeadLettersSlot
    FORKLIFT_DEAD_LETTER_COLUMNS "WHERE ?1 OR retried_at IS NULL ORDER BY id",
    // kListRunDeadLettersSlot: a separate statement so that dead_letters_by_run is used.
    FORKLIFT_DEAD_LETTER_COLUMNS "WHERE run_id = ?2 AND (?1 OR retried_at IS NULL) ORDER BY id",
    // kMarkRetriedSlot
    "UPDATE dead_letters SET retried_at = ?2 WHERE id = ?1",
    // kUpdatePendingByKeySlot: PutDeadLetters updates a pending letter with the same key in
    // place, so its id stays (ids are never freed, hence never reused).
    "UPDATE dead_letters SET source = ?3, position = ?4, payload = ?5, reason = ?6, "
    "error_code = ?7, attempts = ?8, created_at = ?9, chunk = ?10 "
    "WHERE run_id = ?1 AND key = ?2 AND retried_at IS NULL RETURNING id",
    // kChunkHasPendingSlot: a read, so that a clean chunk takes no write lock.
    "SELECT 1 FROM dead_letters WHERE run_id = ?1 AND chunk = ?2 AND retried_at IS NULL "
    "LIMIT 1",
    // kListChunkPendingSlot
    "SELECT id FROM dead_letters WHERE run_id = ?1 AND chunk = ?2 AND retried_at IS NULL",
    // kDeleteDeadLetterSlot
    "DELETE FROM dead_letters WHERE id = ?1",
    // kListItemsSlot
    "SELECT key, status, attempts, error_code, error_message, elapsed_us, detail "
    "FROM items WHERE run_id = ?1",
};

#undef FORKLIFT_RUN_COLUMNS
#undef FORKLIFT_DEAD_LETTER_COLUMNS

constexpr std::string_view kSucceeded = "succeeded";
constexpr std::string_view kFailed = "failed";
constexpr std::string_view kCancelled = "cancelled";

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

RunInfo ReadRun(const Stmt& s) {
  RunInfo r;
  r.run_id = s.ColumnString(0);
  r.kind = s.ColumnString(1);
  r.name = s.ColumnString(2);
  r.started_at = s.ColumnDouble(3);
  r.finished_at = s.ColumnOptDouble(4);
  r.status = s.ColumnString(5);
  r.invocations = s.ColumnInt64(6);
  r.summary_json = s.ColumnString(7);
  r.items_succeeded = s.ColumnInt64(8);
  r.items_failed = s.ColumnInt64(9);
  return r;
}

DeadLetter ReadDeadLetter(const Stmt& s) {
  DeadLetter d;
  d.id = s.ColumnInt64(0);
  d.run_id = s.ColumnString(1);
  d.key = s.ColumnString(2);
  d.source = s.ColumnString(3);
  d.position = s.ColumnString(4);
  d.payload = s.ColumnString(5);
  d.reason = s.ColumnString(6);
  d.code = s.ColumnCode(7);
  d.attempts = static_cast<int>(s.ColumnInt64(8));
  d.created_at = s.ColumnDouble(9);
  d.retried_at = s.ColumnOptDouble(10);
  if (!s.ColumnIsNull(11)) d.chunk = s.ColumnInt64(11);
  return d;
}

}  // namespace

std::string ResolveJournalPath(std::string_view flag) {
  if (!flag.empty()) return std::string(flag);
  if (const char* env = std::getenv("FORKLIFT_JOURNAL"); env && *env) return env;
  return ".forklift/journal.db";
}

// BEGIN IMMEDIATE ... COMMIT, rolled back unless committed. IMMEDIATE takes the write lock
// up front, so a busy file makes Begin wait (busy_timeout) instead of failing midway.
class Journal::Transaction {
 public:
  Transaction(Journal* journal, std::string_view operation)
      : journal_(journal), operation_(operation) {}
  ~Transaction() { Rollback(); }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  Status Begin() {
    if (sqlite3_exec(journal_->db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) !=
        SQLITE_OK) {
      return tl::unexpected(journal_->SqlError(std::string(operation_) + ": begin"));
    }
    open_ = true;
    return OkStatus();
  }

  // The error of a failed statement inside the transaction, captured before the rollback
  // overwrites the connection's error state.
  Error Fail(std::string_view what) {
    Error e = journal_->SqlError(std::string(operation_).append(what));
    Rollback();
    return e;
  }

  Status Commit() {
    if (sqlite3_exec(journal_->db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return tl::unexpected(Fail(": commit"));
    }
    open_ = false;
    return OkStatus();
  }

 private:
  void Rollback() {
    // A failed COMMIT may have ended the transaction already; get_autocommit says.
    if (open_ && !sqlite3_get_autocommit(journal_->db_)) {
      sqlite3_exec(journal_->db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    open_ = false;
  }

  Journal* journal_;
  std::string_view operation_;
  bool open_ = false;
};

Journal::Journal(std::string path, sqlite3* db)
    : path_(std::move(path)), db_(db), stmts_(kSlotCount, nullptr) {}

Journal::~Journal() {
  for (sqlite3_stmt* s : stmts_) sqlite3_finalize(s);
  sqlite3_close_v2(db_);
}

Error Journal::SqlError(std::string_view operation) const {
  std::string msg = "journal '" + path_ + "': " + std::string(operation) + ": " +
                    sqlite3_errmsg(db_);
  switch (sqlite3_errcode(db_) & 0xff) {
    case SQLITE_BUSY:    // another writer held the file past busy_timeout
    case SQLITE_LOCKED:  // a conflict inside this process; also passes
      return Error{ErrorCode::kUnavailable, std::move(msg)};
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Error{ErrorCode::kDataLoss, std::move(msg)};
    default:
      return Error{ErrorCode::kInternal, std::move(msg)};
  }
}

Result<sqlite3_stmt*> Journal::Cached(int slot) {
  if (!stmts_[slot]) {
    if (sqlite3_prepare_v3(db_, kSql[slot], -1, SQLITE_PREPARE_PERSISTENT, &stmts_[slot],
                           nullptr) != SQLITE_OK) {
      return tl::unexpected(SqlError("prepare"));
    }
  }
  return stmts_[slot];
}

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& path) {
  return Open(path, JournalOptions{});
}

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& path,
                                               const JournalOptions& options) {
  auto fail = [&](const std::string& why) {
    return InvalidArgumentError("journal: cannot open '" + path + "' for writing: " + why);
  };
  // SQLite would open "" as a private temporary database and lose everything on close.
  if (path.empty()) return fail("the path is empty");
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) return fail("cannot create directory '" + parent.string() + "': " + ec.message());
  }
  sqlite3* db = nullptr;
  // NOMUTEX: a Journal is used by one thread at a time, so SQLite's own locking is waste.
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return fail(why);
  }
  std::unique_ptr<Journal> j(new Journal(path, db));  // closes db on every return below
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  // SQLite silently falls back to read-only when the file is not writable.
  if (sqlite3_db_readonly(db, "main") == 1) return fail("the file is read-only");

  // journal_mode answers with the mode in force, which stays the old one (not an error)
  // where WAL is impossible, e.g. for ":memory:".
  // Switching a new file to WAL takes an exclusive lock and may answer SQLITE_BUSY at once,
  // without the busy handler, while another process does the same: retry for as long as
  // the busy timeout allows.
  std::string mode;
  for (int waited_ms = 0;; waited_ms += 5) {
    rc = sqlite3_exec(
        db, "PRAGMA journal_mode=WAL",
        [](void* out, int n, char** values, char**) {
          if (n > 0 && values[0]) *static_cast<std::string*>(out) = values[0];
          return 0;
        },
        &mode, nullptr);
    const int primary = rc & 0xff;
    if ((primary != SQLITE_BUSY && primary != SQLITE_LOCKED) ||
        waited_ms >= options.busy_timeout_ms) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (rc != SQLITE_OK) return fail(sqlite3_errmsg(db));
  if (mode != "wal") return fail("cannot use WAL mode (journal_mode is '" + mode + "')");
  // NORMAL in WAL mode: a commit does not fsync, yet survives the death of the process.
  if (sqlite3_exec(db, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON", nullptr, nullptr,
                   nullptr) != SQLITE_OK) {
    return fail(sqlite3_errmsg(db));
  }

  // The schema is checked and created inside a write transaction, which proves the file,
  // its directory (for -wal and -shm) and the lock all writable now, not at the first
  // checkpoint, and serializes two processes creating the same journal.
  Transaction txn(j.get(), "open");
  if (!txn.Begin()) return fail(sqlite3_errmsg(db));
  int version = -1;
  rc = sqlite3_exec(
      db, "PRAGMA user_version",
      [](void* out, int n, char** values, char**) {
        if (n > 0 && values[0]) *static_cast<int*>(out) = std::atoi(values[0]);
        return 0;
      },
      &version, nullptr);
  if (rc != SQLITE_OK) return fail(sqlite3_errmsg(db));
  if (version > kSchemaVersion) {
    return fail("its schema version " + std::to_string(version) +
                " is newer than this forklift's " + std::to_string(kSchemaVersion));
  }
  if (sqlite3_exec(db, kSchema, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return fail(sqlite3_errmsg(db));
  }
  // Upgrades in place. A file kSchema has just created already has the column (and says
  // version 0), so the column is looked for rather than assumed from the version.
  if (version < 2) {
    int has_chunk = 0;
    rc = sqlite3_exec(
        db, "SELECT count(*) FROM pragma_table_info('dead_letters') WHERE name = 'chunk'",
        [](void* out, int n, char** values, char**) {
          if (n > 0 && values[0]) *static_cast<int*>(out) = std::atoi(values[0]);
          return 0;
        },
        &has_chunk, nullptr);
    if (rc != SQLITE_OK) return fail(sqlite3_errmsg(db));
    if (!has_chunk && sqlite3_exec(db, "ALTER TABLE dead_letters ADD COLUMN chunk INTEGER",
                                   nullptr, nullptr, nullptr) != SQLITE_OK) {
      return fail("upgrading its schema from version " + std::to_string(version) + ": " +
                  sqlite3_errmsg(db));
    }
  }
  if (version < 3) {
    int has_detail = 0;
    rc = sqlite3_exec(
        db, "SELECT count(*) FROM pragma_table_info('items') WHERE name = 'detail'",
        [](void* out, int n, char** values, char**) {
          if (n > 0 && values[0]) *static_cast<int*>(out) = std::atoi(values[0]);
          return 0;
        },
        &has_detail, nullptr);
    if (rc != SQLITE_OK) return fail(sqlite3_errmsg(db));
    if (!has_detail && sqlite3_exec(db, "ALTER TABLE items ADD COLUMN detail TEXT", nullptr,
                                    nullptr, nullptr) != SQLITE_OK) {
      return fail("upgrading its schema from version " + std::to_string(version) + ": " +
                  sqlite3_errmsg(db));
    }
  }
  if (sqlite3_exec(db, kSchemaIndexes, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return fail(sqlite3_errmsg(db));
  }
  if (version < kSchemaVersion) {
    std::string set = "PRAGMA user_version=" + std::to_string(kSchemaVersion);
    if (sqlite3_exec(db, set.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
      return fail(sqlite3_errmsg(db));
    }
  }
  // Not txn.Commit(): its error names the path again, and fail() names it already.
  if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return fail(sqlite3_errmsg(db));  // txn rolls back
  }
  return j;
}

Status Journal::BeginRun(std::string_view run_id, std::string_view kind, std::string_view name) {
  FORKLIFT_ASSIGN_OR_RETURN(sqlite3_stmt * raw, Cached(kBeginRunSlot));
  Stmt s(raw);
  s.BindText(1, run_id);
  s.BindText(2, kind);
  s.BindText(3, name);
  s.BindDouble(4, UnixNow());
  if (s.Step() != SQLITE_DONE) return tl::unexpected(SqlError("begin run"));
  return OkStatus();
}

Status Journal::FinishRun(std::string_view run_id, std::string_view status,
                          std::string_view summary_json) {
  if (status != kSucceeded && status != kFailed && status != "cancelled" &&
      status != "killed" && status != "running") {
    return InvalidArgumentError("journal '" + path_ + "': finish run: unknown status '" +
                                std::string(status) + "'");
  }
  FORKLIFT_ASSIGN_OR_RETURN(sqlite3_stmt * raw, Cached(kFinishRunSlot));
  Stmt s(raw);
  s.BindText(1, run_id);
  s.BindText(2, status);
  s.BindTextOrNull(3, summary_json);
  s.BindDouble(4, UnixNow());
  if (s.Step() != SQLITE_DONE) return tl::unexpected(SqlError("finish run"));
  if (sqlite3_changes(db_) == 0) {
    return NotFoundError("journal '" + path_ + "': finish run: no run '" +
                         std::string(run_id) + "'");
  }
  return OkStatus();
}

Result<std::optional<RunInfo>> Journal::LatestFinishedRun(std::string_view kind,
                                                          std::string_view name) {
  FORKLIFT_ASSIGN_OR_RETURN(sqlite3_stmt * raw, Cached(kLatestFinishedSlot));
  Stmt s(raw);
  s.BindText(1, kind);
  s.BindText(2, name);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<RunInfo>();
  if (rc != SQLITE_ROW) return tl::unexpected(SqlError("latest run"));
  return std::optional<RunInfo>(ReadRun(s));
}

Result<std::optional<RunInfo>> Journal::GetRun(std::string_view run_id) {
  FORKLIFT_ASSIGN_OR_RETURN(sqlite3_stmt * raw, Cached(kGetRunSlot));
  Stmt s(raw);
  s.BindText(1, run_id);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<RunInfo>();
  if (rc != SQLITE_ROW) return tl::unexpected(SqlError("get run"));
  return std::optional<RunInfo>(ReadRun(s));
}

Result<std::vector<RunInfo>> Journal::ListRuns(std::string_view kind, int limit) {
  FORKLIFT_ASSIGN_OR_RETURN(sqlite3_stmt * raw, Cached(kListRunsSlot));
  Stmt s(raw);
  s.BindText(1, kind);
  s.BindInt64(2, limit > 0 ? limit : -1);  // a negative LIMIT is none
  std::vector<RunInfo> runs;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) runs.push_back(ReadRun(s));
  if (rc != SQLITE_DONE) return tl::unexpected(SqlError("list runs"));
  return runs;
}

Status Journal::RecordItems(std::string_view run_id, std::span<const ItemRecord> records) {
  if (records.empty()) return OkStatus();
  FORKLIFT_ASSIGN_OR_RETURN(sqlite3_stmt * raw, Cached(kRecordItemSlot));
  Transaction txn(this, "record items");
  FORKLIFT_RETURN_IF_ERROR(txn.Begin());
  const double now = UnixNow();
  for (const ItemRecord& r : records) {
    Stmt s(raw);
    s.BindText(1, run_id);
    s.BindBlob(2, r.key);
    s.BindText(3, r.ok ? kSucceeded : r.cancelled ? kCancelled : kFailed);
    s.BindInt64(4, r.attempts);
    s.BindCode(5, r.ok ? std::nullopt : r.code);
    if (r.ok) {
      s.BindNull(6);
    } else {
      s.BindText(6, r.message);
    }
    s.BindInt64(7, r.elapsed_us);
    s.BindDouble(8, now);
    s.BindTextOrNull(9, r.detail);
    if (s.Step() != SQLITE_DONE) return tl::unexpected(txn.Fail(""));
  }
  return txn.Commit();
}

Status Journal::ClearItems(std::string_view run_id) {
  FORKLIFT_ASSIGN_OR_RETURN(sqlite3_stmt * raw, Cached(kClearItemsSlot));
  Stmt s(raw);
  s.BindText(1, run_id);
  if (s.Step() != SQLITE_DONE) return tl::unexpected(SqlError("clear items"));
  return OkStatus();
}

Result<ItemState> Journal::GetItemState(std::string_view run_id, std::string_view key) {
  FORKLIFT_ASSIGN_OR_RETURN(sqlite3_stmt * raw, Cached(kItemStateSlot));
  Stmt s(raw);
  s.BindText(1, run_id);
  s.BindBlob(2, key);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return ItemState::kUnknown;
  if (rc != SQLITE_ROW) return tl::unexpected(SqlError("look up item"));
  switch (s.ColumnInt64(0)) {
    case 1: return ItemState::kSucceeded;
    case 2: return ItemState::kCancelled;
    default: return ItemState::kFailed;
  }
}

Result<bool> Journal::IsSucceeded(std::string_view run_id, std::string_view key) {
  FORKLIFT_ASSIGN_OR_RETURN(ItemState state, GetItemState(run_id, key));
  return state == ItemState::kSucceeded;
}

Result<std::vector<ItemRow>> Journal::ListItems(std::string_view run_id) {
  FORKLIFT_ASSIGN_OR_RETURN(sqlite3_stmt * raw, Cached(kListItemsSlot));
  Stmt s(raw);
  s.BindText(1, run_id);
  std::vector<ItemRow> rows;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    ItemRow row;
    row.key = s.ColumnString(0);
    std::string status = s.ColumnString(1);
    row.state = status == kSucceeded   ? ItemState::kSucceeded
                : status == "cancelled" ? ItemState::kCancelled
                                        : ItemState::kFailed;
    row.attempts = static_cast<int>(s.ColumnInt64(2));
    row.code = s.ColumnCode(3);
    row.message = s.ColumnString(4);
    row.elapsed_us = s.ColumnInt64(5);
    row.detail = s.ColumnString(6);
    rows.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) return tl::unexpected(SqlError("list items"));
  return rows;
}

Result<uint64_t> Journal::CountItems(std::string_view run_id, std::optional<bool> ok) {
  FORKLIFT_ASSIGN_OR_RETURN(sqlite3_stmt * raw, Cached(ok ? kCountByStatusSlot : kCountAllSlot));
  Stmt s(raw);
  s.BindText(1, run_id);
  if (ok) s.BindText(2, *ok ? kSucceeded : kFailed);
  if (s.Step() != SQLITE_ROW) return tl::unexpected(SqlError("count items"));
  return static_cast<uint64_t>(s.ColumnInt64(0));
}

Result<std::vector<int64_t>> Journal::AddDeadLetters(std::span<const DeadLetter> letters) {
  if (letters.empty()) return std::vector<int64_t>();
  return InsertDeadLetters(letters, /*replace_pending=*/false, std::nullopt);
}

Result<std::vector<int64_t>> Journal::PutDeadLetters(std::span<const DeadLetter> letters) {
  if (letters.empty()) return std::vector<int64_t>();
  return InsertDeadLetters(letters, /*replace_pending=*/true, std::nullopt);
}

Result<std::vector<int64_t>> Journal::PutChunkDeadLetters(std::string_view run_id, int64_t chunk,
                                                          std::span<const DeadLetter> letters) {
  for (const DeadLetter& d : letters) {
    if (d.run_id != run_id) {
      return InvalidArgumentError("journal '" + path_ + "': put chunk dead letters: a letter of run '" +
                                  d.run_id + "' among those of run '" + std::string(run_id) + "'");
    }
  }
  if (letters.empty()) {
    // Most chunks reject nothing and have nothing pending: a read answers without taking
    // the write lock that the writers of a load would otherwise queue on, chunk after chunk.
    FORKLIFT_ASSIGN_OR_RETURN(sqlite3_stmt * raw, Cached(kChunkHasPendingSlot));
    Stmt s(raw);
    s.BindText(1, run_id);
    s.BindInt64(2, chunk);
    const int rc = s.Step();
    if (rc == SQLITE_DONE) return std::vector<int64_t>();
    if (rc != SQLITE_ROW) return tl::unexpected(SqlError("put chunk dead letters"));
  }
  return InsertDeadLetters(letters, /*replace_pending=*/true,
                           ChunkToReplace{.run_id = run_id, .chunk = chunk});
}

Result<std::vector<int64_t>> Journal::InsertDeadLetters(std::span<const DeadLetter> letters,
                                                        bool replace_pending,
                                                        std::optional<ChunkToReplace> chunk) {
  std::vector<int64_t> ids;
  ids.reserve(letters.size());
  FORKLIFT_ASSIGN_OR_RETURN(sqlite3_stmt * upd, Cached(kUpdatePendingByKeySlot));
  FORKLIFT_ASSIGN_OR_RETURN(sqlite3_stmt * add, Cached(kAddDeadLetterSlot));
  Transaction txn(this, chunk ? "put chunk dead letters"
                        : replace_pending ? "put dead letters" : "add dead letters");
  FORKLIFT_RETURN_IF_ERROR(txn.Begin());
  // The chunk's pending letters before this attempt: those it does not record again are
  // stale (an attempt that never committed, or that rejected more rows) and go.
  std::vector<int64_t> before;
  if (chunk) {
    FORKLIFT_ASSIGN_OR_RETURN(sqlite3_stmt * list, Cached(kListChunkPendingSlot));
    Stmt s(list);
    s.BindText(1, chunk->run_id);
    s.BindInt64(2, chunk->chunk);
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) before.push_back(s.ColumnInt64(0));
    if (rc != SQLITE_DONE) return tl::unexpected(txn.Fail(""));
  }
  const double now = UnixNow();
  auto bind = [&](Stmt& s, const DeadLetter& d) {
    s.BindText(1, d.run_id);
    s.BindBlob(2, d.key);
    s.BindTextOrNull(3, d.source);
    s.BindTextOrNull(4, d.position);
    s.BindBlobOrNull(5, d.payload);
    s.BindText(6, d.reason);
    s.BindCode(7, d.code);
    s.BindInt64(8, d.attempts);
    s.BindDouble(9, now);
    const std::optional<int64_t> c = chunk ? std::optional<int64_t>(chunk->chunk) : d.chunk;
    if (c) {
      s.BindInt64(10, *c);
    } else {
      s.BindNull(10);
    }
  };
  for (const DeadLetter& d : letters) {
    if (replace_pending) {
      // Updated in place, not deleted and added again: the letter keeps its id, which
      // `dlq retry` numbers its ledger chunks by.
      Stmt s(upd);
      bind(s, d);
      const int rc = s.Step();
      if (rc == SQLITE_ROW) {
        ids.push_back(sqlite3_column_int64(upd, 0));
        if (s.Step() != SQLITE_DONE) return tl::unexpected(txn.Fail(""));
        continue;
      }
      if (rc != SQLITE_DONE) return tl::unexpected(txn.Fail(""));
    }
    Stmt s(add);
    bind(s, d);
    if (s.Step() != SQLITE_DONE) return tl::unexpected(txn.Fail(""));
    ids.push_back(sqlite3_last_insert_rowid(db_));
  }
  if (!before.empty()) {
    FORKLIFT_ASSIGN_OR_RETURN(sqlite3_stmt * del, Cached(kDeleteDeadLetterSlot));
    const std::set<int64_t> kept(ids.begin(), ids.end());
    for (int64_t id : before) {
      if (kept.count(id)) continue;
      Stmt s(del);
      s.BindInt64(1, id);
      if (s.Step() != SQLITE_DONE) return tl::unexpected(txn.Fail(""));
    }
  }
  FORKLIFT_RETURN_IF_ERROR(txn.Commit());
  return ids;
}

Result<std::vector<DeadLetter>> Journal::ListDeadLetters(std::string_view run_id,
                                                         bool include_retried) {
  FORKLIFT_ASSIGN_OR_RETURN(
      sqlite3_stmt * raw, Cached(run_id.empty() ? kListDeadLettersSlot : kListRunDeadLettersSlot));
  Stmt s(raw);
  s.BindInt64(1, include_retried ? 1 : 0);
  if (!run_id.empty()) s.BindText(2, run_id);
  std::vector<DeadLetter> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadDeadLetter(s));
  if (rc != SQLITE_DONE) return tl::unexpected(SqlError("list dead letters"));
  return out;
}

Status Journal::MarkDeadLettersRetried(std::span<const int64_t> ids) {
  if (ids.empty()) return OkStatus();
  FORKLIFT_ASSIGN_OR_RETURN(sqlite3_stmt * raw, Cached(kMarkRetriedSlot));
  Transaction txn(this, "mark dead letters retried");
  FORKLIFT_RETURN_IF_ERROR(txn.Begin());
  const double now = UnixNow();
  for (int64_t id : ids) {
    Stmt s(raw);
    s.BindInt64(1, id);
    s.BindDouble(2, now);
    if (s.Step() != SQLITE_DONE) return tl::unexpected(txn.Fail(""));
  }
  return txn.Commit();
}

Result<int64_t> Journal::DiscardDeadLetters(std::string_view run_id,
                                            std::optional<int64_t> id) {
  // Prepared per call, not cached: discarding is rare and interactive.
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db_,
                         "DELETE FROM dead_letters WHERE run_id = ?1 AND retried_at IS NULL "
                         "AND (?2 IS NULL OR id = ?2)",
                         -1, &raw, nullptr) != SQLITE_OK) {
    return tl::unexpected(SqlError("discard dead letters"));
  }
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> owner(raw, sqlite3_finalize);
  Stmt s(raw);
  s.BindText(1, run_id);
  if (id) {
    s.BindInt64(2, *id);
  } else {
    s.BindNull(2);
  }
  if (s.Step() != SQLITE_DONE) return tl::unexpected(SqlError("discard dead letters"));
  return static_cast<int64_t>(sqlite3_changes(db_));
}

}  // namespace forklift::journal
