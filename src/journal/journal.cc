#include "journal/journal.h"

#include "core/enum_names.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

namespace forklift::journal {
namespace {

using sqlite::StatementUse;

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
  "SELECT r.run_id, r.kind, r.name, r.started_at, r.finished_at, r.status, "              \
  "r.invocations, r.summary, "                                                            \
  "(SELECT count(*) FROM items i WHERE i.run_id = r.run_id AND i.status = 'succeeded'), " \
  "(SELECT count(*) FROM items i WHERE i.run_id = r.run_id AND i.status = 'failed') "     \
  "FROM runs r "

#define FORKLIFT_DEAD_LETTER_COLUMNS                                                  \
  "SELECT id, run_id, key, source, position, payload, reason, error_code, attempts, " \
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
  kListRunStatesSlot,
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
    FORKLIFT_RUN_COLUMNS
    "WHERE ?1 = '' OR r.kind = ?1 "
    "ORDER BY r.started_at DESC, r.run_id DESC LIMIT ?2",
    // kLatestFinishedSlot
    FORKLIFT_RUN_COLUMNS
    "WHERE r.kind = ?1 AND r.name = ?2 AND r.summary IS NOT NULL "
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
    // kListRunStatesSlot
    "SELECT run_id, status FROM runs WHERE kind = ?1 AND name = ?2 "
    "ORDER BY started_at DESC, run_id DESC",
};

#undef FORKLIFT_RUN_COLUMNS
#undef FORKLIFT_DEAD_LETTER_COLUMNS

// The SQL above spells these states too ('succeeded', 'cancelled', 'failed', 'running'),
// as literals the statements compare with; they must match these tables.
constexpr core::EnumNames<ItemState, 3> kItemStates{{
    {ItemState::kSucceeded, "succeeded"},
    {ItemState::kFailed, "failed"},
    {ItemState::kCancelled, "cancelled"},
}};

constexpr core::EnumNames<RunStatus, 5> kRunStatuses{{
    {RunStatus::kRunning, "running"},
    {RunStatus::kSucceeded, "succeeded"},
    {RunStatus::kFailed, "failed"},
    {RunStatus::kCancelled, "cancelled"},
    {RunStatus::kKilled, "killed"},
}};

// Error codes are stored by name (ErrorCodeName's static strings), NULL for none.
void BindCode(StatementUse& s, int i, std::optional<ErrorCode> code) {
  if (code) {
    s.BindText(i, ErrorCodeName(*code));
  } else {
    s.BindNull(i);
  }
}

std::optional<ErrorCode> ColumnCode(const StatementUse& s, int col) {
  if (s.ColumnIsNull(col)) return std::nullopt;
  return ErrorCodeFromName(s.ColumnString(col));
}

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A row of FORKLIFT_RUN_COLUMNS.
RunInfo ReadRun(const StatementUse& s) {
  RunInfo r;
  s.Read(0, r.run_id, r.kind, r.name, r.started_at, r.finished_at, r.status, r.invocations,
         r.summary_json, r.items_succeeded, r.items_failed);
  return r;
}

// A row of FORKLIFT_DEAD_LETTER_COLUMNS.
DeadLetter ReadDeadLetter(const StatementUse& s) {
  DeadLetter d;
  s.Read(0, d.id, d.run_id, d.key, d.source, d.position, d.payload, d.reason);
  d.code = ColumnCode(s, 7);
  s.Read(8, d.attempts, d.created_at, d.retried_at, d.chunk);
  return d;
}

}  // namespace

std::string_view ToString(ItemState state) { return core::NameOf(kItemStates, state); }
std::optional<ItemState> ParseItemState(std::string_view text) {
  return core::ValueOf(kItemStates, text);
}
std::string_view ToString(RunStatus status) { return core::NameOf(kRunStatuses, status); }
std::optional<RunStatus> ParseRunStatus(std::string_view text) {
  return core::ValueOf(kRunStatuses, text);
}

std::string ResolveJournalPath(std::string_view flag) {
  if (!flag.empty()) return std::string(flag);
  if (const char* env = std::getenv("FORKLIFT_JOURNAL"); env && *env) return env;
  return ".forklift/journal.db";
}

Journal::Journal(std::string path, sqlite::Db db)
    : path_(std::move(path)), db_(std::move(db)), stmts_(kSlotCount) {}

// The statements go first (they are finalized before the connection closes).
Journal::~Journal() { stmts_.clear(); }

Error Journal::SqlError(std::string_view operation) const { return db_.LastError(operation); }

Result<const sqlite::Statement*> Journal::Cached(int slot) {
  if (!stmts_[slot]) {
    FORKLIFT_ASSIGN_OR_RETURN(stmts_[slot], db_.Prepare(kSql[slot], /*persistent=*/true));
  }
  return &stmts_[slot];
}

namespace {

// Open's steps. Each fails with the reason alone (SQLite's message, or what is wrong), which
// Open puts after "journal: cannot open '<path>' for writing: ".
Status Reason(std::string why) { return InternalError(std::move(why)); }
Status Reason(const sqlite::Db& db) { return Reason(db.Message()); }

// SQLite creates the file but not its directory.
Status CreateParentDirectories(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) return OkStatus();
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec) return Reason("cannot create directory '" + parent.string() + "': " + ec.message());
  return OkStatus();
}

Result<sqlite::Db> OpenWritable(const std::string& path, const JournalOptions& options) {
  auto db = sqlite::Db::Open(
      path, {.flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
             .busy_timeout_ms = options.busy_timeout_ms,
             .label = "journal '" + path + "'"});
  if (!db) return tl::unexpected(db.error());
  if (db->ReadOnly()) {
    return tl::unexpected(Reason("the file is read-only").error());
  }
  return db;
}

// WAL, and commits that survive the death of the process without an fsync each.
Status UseWal(sqlite::Db& db) {
  auto mode = db.EnableWal();
  if (!mode) return Reason(db);
  if (*mode != "wal") return Reason("cannot use WAL mode (journal_mode is '" + *mode + "')");
  // NORMAL in WAL mode: a commit does not fsync, yet survives the death of the process.
  if (!db.Exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON")) return Reason(db);
  return OkStatus();
}

// An upgrade in place from a file older than `column` (see kSchemaVersion). A file kSchema
// has just created already has the column (and says version 0), so the column is looked
// for rather than assumed from the version.
Status AddColumnIfMissing(sqlite::Db& db, int version, std::string_view table,
                          std::string_view column, std::string_view type) {
  auto has = db.QueryInt64(
      fmt::format("SELECT count(*) FROM pragma_table_info('{}') WHERE name = '{}'", table, column));
  if (!has) return Reason(db);
  if (has->value_or(0) > 0) return OkStatus();
  if (!db.Exec(fmt::format("ALTER TABLE {} ADD COLUMN {} {}", table, column, type))) {
    return Reason("upgrading its schema from version " + std::to_string(version) + ": " +
                  db.Message());
  }
  return OkStatus();
}

// The schema is checked and created inside a write transaction, which proves the file, its
// directory (for -wal and -shm) and the lock all writable now, not at the first
// checkpoint, and serializes two processes creating the same journal.
Status CreateOrUpgradeSchema(sqlite::Db& db) {
  sqlite::Transaction txn(db, "open");
  if (!txn.Begin()) return Reason(db);
  auto read = db.QueryInt64("PRAGMA user_version");
  if (!read) return Reason(db);
  const int version = static_cast<int>(read->value_or(-1));
  if (version > kSchemaVersion) {
    return Reason("its schema version " + std::to_string(version) +
                  " is newer than this forklift's " + std::to_string(kSchemaVersion));
  }
  if (!db.Exec(kSchema)) return Reason(db);
  if (version < 2) {
    FORKLIFT_RETURN_IF_ERROR(AddColumnIfMissing(db, version, "dead_letters", "chunk", "INTEGER"));
  }
  if (version < 3) {
    FORKLIFT_RETURN_IF_ERROR(AddColumnIfMissing(db, version, "items", "detail", "TEXT"));
  }
  if (!db.Exec(kSchemaIndexes)) return Reason(db);
  if (version < kSchemaVersion &&
      !db.Exec("PRAGMA user_version=" + std::to_string(kSchemaVersion))) {
    return Reason(db);
  }
  // Not txn.Commit(): its error names the path and the operation, and Open names them
  // already. The message is read here, before txn rolls back.
  if (!db.Exec("COMMIT")) return Reason(db);
  return OkStatus();
}

}  // namespace

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& path) {
  return Open(path, JournalOptions{});
}

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& path,
                                               const JournalOptions& options) {
  auto fail = [&](const Error& why) {
    return InvalidArgumentError("journal: cannot open '" + path + "' for writing: " + why.message);
  };
  // SQLite would open "" as a private temporary database and lose everything on close.
  if (path.empty()) return fail(Error{ErrorCode::kInvalidArgument, "the path is empty"});
  if (auto made = CreateParentDirectories(path); !made) return fail(made.error());
  auto db = OpenWritable(path, options);
  if (!db) return fail(db.error());
  if (auto wal = UseWal(*db); !wal) return fail(wal.error());
  if (auto schema = CreateOrUpgradeSchema(*db); !schema) return fail(schema.error());
  return std::unique_ptr<Journal>(new Journal(path, std::move(*db)));
}

Status Journal::BeginRun(std::string_view run_id, std::string_view kind, std::string_view name) {
  FORKLIFT_ASSIGN_OR_RETURN(const sqlite::Statement* raw, Cached(kBeginRunSlot));
  StatementUse s(*raw);
  s.Bind(1, run_id, kind, name, UnixNow());
  if (s.Step() != SQLITE_DONE) return tl::unexpected(SqlError("begin run"));
  return OkStatus();
}

Status Journal::FinishRun(std::string_view run_id, RunStatus status,
                          std::string_view summary_json) {
  FORKLIFT_ASSIGN_OR_RETURN(const sqlite::Statement* raw, Cached(kFinishRunSlot));
  StatementUse s(*raw);
  s.Bind(1, run_id, ToString(status));
  s.BindTextOrNull(3, summary_json);
  s.Bind(4, UnixNow());
  if (s.Step() != SQLITE_DONE) return tl::unexpected(SqlError("finish run"));
  if (db_.Changes() == 0) {
    return NotFoundError("journal '" + path_ + "': finish run: no run '" + std::string(run_id) +
                         "'");
  }
  return OkStatus();
}

Result<std::optional<RunInfo>> Journal::LatestFinishedRun(std::string_view kind,
                                                          std::string_view name) {
  FORKLIFT_ASSIGN_OR_RETURN(const sqlite::Statement* raw, Cached(kLatestFinishedSlot));
  StatementUse s(*raw);
  s.BindText(1, kind);
  s.BindText(2, name);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<RunInfo>();
  if (rc != SQLITE_ROW) return tl::unexpected(SqlError("latest run"));
  return std::optional<RunInfo>(ReadRun(s));
}

Result<std::optional<RunInfo>> Journal::GetRun(std::string_view run_id) {
  FORKLIFT_ASSIGN_OR_RETURN(const sqlite::Statement* raw, Cached(kGetRunSlot));
  StatementUse s(*raw);
  s.BindText(1, run_id);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<RunInfo>();
  if (rc != SQLITE_ROW) return tl::unexpected(SqlError("get run"));
  return std::optional<RunInfo>(ReadRun(s));
}

Result<std::vector<RunInfo>> Journal::ListRuns(std::string_view kind, int limit) {
  FORKLIFT_ASSIGN_OR_RETURN(const sqlite::Statement* raw, Cached(kListRunsSlot));
  StatementUse s(*raw);
  s.BindText(1, kind);
  s.BindInt64(2, limit > 0 ? limit : -1);  // a negative LIMIT is none
  std::vector<RunInfo> runs;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) runs.push_back(ReadRun(s));
  if (rc != SQLITE_DONE) return tl::unexpected(SqlError("list runs"));
  return runs;
}

Result<std::vector<RunState>> Journal::ListRunStates(std::string_view kind, std::string_view name) {
  FORKLIFT_ASSIGN_OR_RETURN(const sqlite::Statement* raw, Cached(kListRunStatesSlot));
  StatementUse s(*raw);
  s.BindText(1, kind);
  s.BindText(2, name);
  std::vector<RunState> runs;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    RunState r;
    s.Read(0, r.run_id, r.status);
    runs.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return tl::unexpected(SqlError("list run states"));
  return runs;
}

Status Journal::RecordItems(std::string_view run_id, std::span<const ItemRecord> records) {
  if (records.empty()) return OkStatus();
  FORKLIFT_ASSIGN_OR_RETURN(const sqlite::Statement* raw, Cached(kRecordItemSlot));
  sqlite::Transaction txn(db_, "record items");
  FORKLIFT_RETURN_IF_ERROR(txn.Begin());
  const double now = UnixNow();
  for (const ItemRecord& r : records) {
    StatementUse s(*raw);
    s.BindText(1, run_id);
    s.BindBlob(2, r.key);
    s.BindText(3, ToString(r.ok          ? ItemState::kSucceeded
                           : r.cancelled ? ItemState::kCancelled
                                         : ItemState::kFailed));
    s.BindInt64(4, r.attempts);
    BindCode(s, 5, r.ok ? std::nullopt : r.code);
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
  FORKLIFT_ASSIGN_OR_RETURN(const sqlite::Statement* raw, Cached(kClearItemsSlot));
  StatementUse s(*raw);
  s.BindText(1, run_id);
  if (s.Step() != SQLITE_DONE) return tl::unexpected(SqlError("clear items"));
  return OkStatus();
}

Result<ItemState> Journal::GetItemState(std::string_view run_id, std::string_view key) {
  FORKLIFT_ASSIGN_OR_RETURN(const sqlite::Statement* raw, Cached(kItemStateSlot));
  StatementUse s(*raw);
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

Result<std::vector<ItemRow>> Journal::ListItems(std::string_view run_id) {
  FORKLIFT_ASSIGN_OR_RETURN(const sqlite::Statement* raw, Cached(kListItemsSlot));
  StatementUse s(*raw);
  s.BindText(1, run_id);
  std::vector<ItemRow> rows;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    ItemRow row;
    row.key = s.ColumnString(0);
    // Any other text (none is written) reads as failed: not done, so a resume reruns it.
    row.state = ParseItemState(s.ColumnString(1)).value_or(ItemState::kFailed);
    row.attempts = static_cast<int>(s.ColumnInt64(2));
    row.code = ColumnCode(s, 3);
    row.message = s.ColumnString(4);
    row.elapsed_us = s.ColumnInt64(5);
    row.detail = s.ColumnString(6);
    rows.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) return tl::unexpected(SqlError("list items"));
  return rows;
}

Result<uint64_t> Journal::CountItems(std::string_view run_id, std::optional<bool> ok) {
  FORKLIFT_ASSIGN_OR_RETURN(const sqlite::Statement* raw,
                            Cached(ok ? kCountByStatusSlot : kCountAllSlot));
  StatementUse s(*raw);
  s.BindText(1, run_id);
  if (ok) s.BindText(2, ToString(*ok ? ItemState::kSucceeded : ItemState::kFailed));
  if (s.Step() != SQLITE_ROW) return tl::unexpected(SqlError("count items"));
  return static_cast<uint64_t>(s.ColumnInt64(0));
}

Result<std::vector<int64_t>> Journal::PutDeadLetters(std::span<const DeadLetter> letters) {
  if (letters.empty()) return std::vector<int64_t>();
  return InsertDeadLetters(letters, std::nullopt);
}

Result<std::vector<int64_t>> Journal::PutChunkDeadLetters(std::string_view run_id, int64_t chunk,
                                                          std::span<const DeadLetter> letters) {
  for (const DeadLetter& d : letters) {
    if (d.run_id != run_id) {
      return InvalidArgumentError("journal '" + path_ +
                                  "': put chunk dead letters: a letter of run '" + d.run_id +
                                  "' among those of run '" + std::string(run_id) + "'");
    }
  }
  if (letters.empty()) {
    // Most chunks reject nothing and have nothing pending: a read answers without taking
    // the write lock that the writers of a load would otherwise queue on, chunk after chunk.
    FORKLIFT_ASSIGN_OR_RETURN(const sqlite::Statement* raw, Cached(kChunkHasPendingSlot));
    StatementUse s(*raw);
    s.BindText(1, run_id);
    s.BindInt64(2, chunk);
    const int rc = s.Step();
    if (rc == SQLITE_DONE) return std::vector<int64_t>();
    if (rc != SQLITE_ROW) return tl::unexpected(SqlError("put chunk dead letters"));
  }
  return InsertDeadLetters(letters, ChunkToReplace{.run_id = run_id, .chunk = chunk});
}

Result<std::vector<int64_t>> Journal::InsertDeadLetters(std::span<const DeadLetter> letters,
                                                        std::optional<ChunkToReplace> chunk) {
  std::vector<int64_t> ids;
  ids.reserve(letters.size());
  FORKLIFT_ASSIGN_OR_RETURN(const sqlite::Statement* upd, Cached(kUpdatePendingByKeySlot));
  FORKLIFT_ASSIGN_OR_RETURN(const sqlite::Statement* add, Cached(kAddDeadLetterSlot));
  sqlite::Transaction txn(db_, chunk ? "put chunk dead letters" : "put dead letters");
  FORKLIFT_RETURN_IF_ERROR(txn.Begin());
  // The chunk's pending letters before this attempt: those it does not record again are
  // stale (an attempt that never committed, or that rejected more rows) and go.
  std::vector<int64_t> before;
  if (chunk) {
    FORKLIFT_ASSIGN_OR_RETURN(const sqlite::Statement* list, Cached(kListChunkPendingSlot));
    StatementUse s(*list);
    s.BindText(1, chunk->run_id);
    s.BindInt64(2, chunk->chunk);
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) before.push_back(s.ColumnInt64(0));
    if (rc != SQLITE_DONE) return tl::unexpected(txn.Fail(""));
  }
  const double now = UnixNow();
  auto bind = [&](StatementUse& s, const DeadLetter& d) {
    s.BindText(1, d.run_id);
    s.BindBlob(2, d.key);
    s.BindTextOrNull(3, d.source);
    s.BindTextOrNull(4, d.position);
    s.BindBlobOrNull(5, d.payload);
    s.BindText(6, d.reason);
    BindCode(s, 7, d.code);
    s.BindInt64(8, d.attempts);
    s.BindDouble(9, now);
    s.BindOptInt64(10, chunk ? std::optional<int64_t>(chunk->chunk) : d.chunk);
  };
  for (const DeadLetter& d : letters) {
    {
      // Updated in place, not deleted and added again: the letter keeps its id, which
      // `dlq retry` numbers its ledger chunks by.
      StatementUse s(*upd);
      bind(s, d);
      const int rc = s.Step();
      if (rc == SQLITE_ROW) {
        ids.push_back(s.ColumnInt64(0));
        if (s.Step() != SQLITE_DONE) return tl::unexpected(txn.Fail(""));
        continue;
      }
      if (rc != SQLITE_DONE) return tl::unexpected(txn.Fail(""));
    }
    StatementUse s(*add);
    bind(s, d);
    if (s.Step() != SQLITE_DONE) return tl::unexpected(txn.Fail(""));
    ids.push_back(db_.LastInsertRowid());
  }
  if (!before.empty()) {
    FORKLIFT_ASSIGN_OR_RETURN(const sqlite::Statement* del, Cached(kDeleteDeadLetterSlot));
    const std::set<int64_t> kept(ids.begin(), ids.end());
    for (int64_t id : before) {
      if (kept.count(id)) continue;
      StatementUse s(*del);
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
      const sqlite::Statement* raw,
      Cached(run_id.empty() ? kListDeadLettersSlot : kListRunDeadLettersSlot));
  StatementUse s(*raw);
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
  FORKLIFT_ASSIGN_OR_RETURN(const sqlite::Statement* raw, Cached(kMarkRetriedSlot));
  sqlite::Transaction txn(db_, "mark dead letters retried");
  FORKLIFT_RETURN_IF_ERROR(txn.Begin());
  const double now = UnixNow();
  for (int64_t id : ids) {
    StatementUse s(*raw);
    s.BindInt64(1, id);
    s.BindDouble(2, now);
    if (s.Step() != SQLITE_DONE) return tl::unexpected(txn.Fail(""));
  }
  return txn.Commit();
}

Result<int64_t> Journal::DiscardDeadLetters(std::string_view run_id, std::optional<int64_t> id) {
  // Prepared per call, not cached: discarding is rare and interactive.
  FORKLIFT_ASSIGN_OR_RETURN(
      sqlite::Statement stmt,
      db_.Prepare("DELETE FROM dead_letters WHERE run_id = ?1 AND retried_at IS NULL "
                  "AND (?2 IS NULL OR id = ?2)"));
  StatementUse s(stmt);
  s.BindText(1, run_id);
  s.BindOptInt64(2, id);
  if (s.Step() != SQLITE_DONE) return tl::unexpected(SqlError("discard dead letters"));
  return db_.Changes();
}

}  // namespace forklift::journal
