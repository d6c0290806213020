#include "sinks/sqlite_sink.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/fd.h"
#include "sinks/pg_dsn.h"
#include "sources/csv_reader.h"
#include "sqlite/sqlite.h"

namespace forklift::sinks {
namespace {

using sources::CsvField;
using sources::SplitCsvRecord;
using sqlite::Statement;
using sqlite::StatementUse;

constexpr int kBusyTimeoutMs = 10000;

constexpr const char* kLedgerDdl =
    "CREATE TABLE IF NOT EXISTS {}forklift_load_chunks("
    "load_id TEXT NOT NULL, chunk INTEGER NOT NULL, source TEXT NOT NULL, "
    "first_line INTEGER NOT NULL, last_line INTEGER NOT NULL, rows INTEGER NOT NULL, "
    "rejected INTEGER NOT NULL, checksum TEXT NOT NULL, target_table TEXT NOT NULL, "
    "committed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), "
    "last_key TEXT, PRIMARY KEY(load_id, chunk))";

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
void BindValue(StatementUse& s, int i, Affinity a, std::string_view v) {
  if (a == Affinity::kInteger && !v.empty() && v.size() <= 19) {
    int64_t n = 0;
    const bool digits = std::all_of(v.begin() + (v[0] == '-' ? 1 : 0), v.end(),
                                    [](char c) { return c >= '0' && c <= '9'; });
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (digits && v != "-" && ec == std::errc() && p == v.data() + v.size()) {
      s.BindInt64(i, n);
      return;
    }
  } else if (a == Affinity::kReal && !v.empty() && v.size() <= 32) {
    const bool plain = std::all_of(
        v.begin(), v.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.' || c == '-'; });
    double x = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (plain && ec == std::errc() && p == v.data() + v.size()) {
      s.BindDouble(i, x);
      return;
    }
  }
  s.BindText(i, v);
}

// A connection to the target: no CREATE (a mistyped path must not become an empty
// database), WAL, and errors that name the file as the user wrote it.
Result<sqlite::Db> OpenTargetDb(const TargetAddress& address) {
  auto db = sqlite::Db::Open(address.conninfo,
                             {.busy_timeout_ms = kBusyTimeoutMs, .label = address.display});
  if (!db) {
    return FailedPreconditionError(
        fmt::format("{}: cannot open: {}", address.display, db.error().message));
  }
  FORKLIFT_RETURN_IF_ERROR(db->EnableWal());
  FORKLIFT_RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=NORMAL"));
  FORKLIFT_RETURN_IF_ERROR(db->Exec("PRAGMA wal_autocheckpoint=16384"));
  return db;
}

// A table's columns with their declared types (generated columns left out, as
// pragma table_info does). Failure: FailedPrecondition when there is no such table.
struct TableColumns {
  std::vector<std::string> names, types;
};
Result<TableColumns> ReadColumns(sqlite::Db& db, const TargetAddress& address,
                                 const std::string& schema, const std::string& table) {
  FORKLIFT_ASSIGN_OR_RETURN(
      Statement info,
      db.Prepare(schema.empty() ? "SELECT name, type FROM pragma_table_info(?1)"
                                : "SELECT name, type FROM pragma_table_info(?1, ?2)"));
  StatementUse s(info);
  s.BindText(1, table);
  if (!schema.empty()) s.BindText(2, schema);
  TableColumns out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    out.names.push_back(s.ColumnString(0));
    out.types.push_back(s.ColumnString(1));
  }
  if (rc != SQLITE_DONE) return tl::unexpected(db.LastError("read the table's columns"));
  if (out.names.empty()) {
    return FailedPreconditionError(fmt::format("--table {}: no such table in {}",
                                               schema.empty() ? table : schema + "." + table,
                                               address.display));
  }
  return out;
}

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
  std::string sql =
      fmt::format("INSERT INTO {} ({}) VALUES ({})", QualifiedTable(spec), cols, params);
  // Not INSERT OR IGNORE: that would also skip NOT NULL and CHECK failures, which are bad
  // rows (dead letters), not duplicates.
  if (spec.ignore_duplicates) return sql + " ON CONFLICT DO NOTHING";
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

// The next ledger row of a statement over LedgerSelect's columns; nullopt after the last.
Result<std::optional<LedgerEntry>> ReadLedger(StatementUse& s, const sqlite::Db& db,
                                              bool last_key = false) {
  const int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<LedgerEntry>();
  if (rc != SQLITE_ROW) return tl::unexpected(db.LastError("read the ledger"));
  LedgerEntry e;
  s.Read(0, e.chunk, e.source, e.first_line, e.last_line, e.rows, e.rejected, e.checksum);
  if (last_key && !s.ColumnIsNull(7)) e.last_key = s.ColumnString(7);
  return std::optional<LedgerEntry>(std::move(e));
}

std::string LedgerSelect(const TableSpec& spec) {
  return fmt::format(
      "SELECT chunk, source, first_line, last_line, rows, rejected, checksum{} FROM "
      "{}forklift_load_chunks WHERE load_id = ?1 AND chunk >= 0",
      spec.ledger_last_key ? ", last_key" : "", Prefix(spec));
}

// --- Table lifecycle and dialect ------------------------------------------------------------

// The end of the SQL identifier at sql[pos] ("x", [x], `x`, 'x' or a bare word), npos when
// there is none.
size_t IdentEnd(std::string_view sql, size_t pos) {
  if (pos >= sql.size()) return std::string_view::npos;
  const char open = sql[pos];
  const char close = open == '[' ? ']' : open;
  if (open == '"' || open == '[' || open == '`' || open == '\'') {
    for (size_t i = pos + 1; i < sql.size(); ++i) {
      if (sql[i] != close) continue;
      if (close != ']' && i + 1 < sql.size() && sql[i + 1] == close) {
        ++i;  // a doubled quote inside the name
        continue;
      }
      return i + 1;
    }
    return std::string_view::npos;
  }
  size_t i = pos;
  while (i < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[i])) || sql[i] == '_' ||
                            static_cast<unsigned char>(sql[i]) >= 0x80)) {
    ++i;
  }
  return i == pos ? std::string_view::npos : i;
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

// sqlite_schema.sql of a table, "CREATE TABLE name ...", for another name; of an index,
// "CREATE [UNIQUE] INDEX name ON table ...", for another index name and table. SQLite
// normalises the text this way (no schema, no IF NOT EXISTS). nullopt when it does not
// read as that.
std::optional<std::string> RenamedTableSql(std::string_view sql, std::string_view name) {
  constexpr std::string_view kCreate = "CREATE TABLE ";
  if (!sql.starts_with(kCreate)) return std::nullopt;
  const size_t end = IdentEnd(sql, kCreate.size());
  if (end == std::string_view::npos) return std::nullopt;
  return std::string(kCreate) + QuoteIdent(name) + std::string(sql.substr(end));
}
std::optional<std::string> RenamedIndexSql(std::string_view sql, std::string_view index,
                                           std::string_view table) {
  std::string_view head = sql.starts_with("CREATE UNIQUE INDEX ") ? "CREATE UNIQUE INDEX "
                          : sql.starts_with("CREATE INDEX ")      ? "CREATE INDEX "
                                                                  : "";
  if (head.empty()) return std::nullopt;
  size_t pos = IdentEnd(sql, head.size());
  if (pos == std::string_view::npos) return std::nullopt;
  while (pos < sql.size() && std::isspace(static_cast<unsigned char>(sql[pos]))) ++pos;
  if (!StartsWithNoCase(sql.substr(pos), "ON")) return std::nullopt;
  pos += 2;
  while (pos < sql.size() && std::isspace(static_cast<unsigned char>(sql[pos]))) ++pos;
  const size_t end = IdentEnd(sql, pos);
  if (end == std::string_view::npos) return std::nullopt;
  return std::string(head) + QuoteIdent(index) + " ON " + QuoteIdent(table) +
         std::string(sql.substr(end));
}

struct SqliteLedgerState {
  bool truncated = false, shadow = false, swapped = false, chunks = false;
};

Result<SqliteLedgerState> ReadSqliteLedgerState(sqlite::Db& db, const TableSpec& spec) {
  FORKLIFT_ASSIGN_OR_RETURN(
      Statement stmt,
      db.Prepare(fmt::format("SELECT chunk FROM {0}forklift_load_chunks WHERE load_id = ?1 AND "
                             "chunk < 0 UNION ALL SELECT * FROM (SELECT 0 FROM "
                             "{0}forklift_load_chunks WHERE load_id = ?1 AND chunk >= 0 LIMIT 1)",
                             Prefix(spec))));
  StatementUse s(stmt);
  s.BindText(1, spec.load_id);
  SqliteLedgerState st;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    const int64_t c = s.ColumnInt64(0);
    st.truncated |= c == kLedgerTruncated;
    st.shadow |= c == kLedgerShadow;
    st.swapped |= c == kLedgerSwapped;
    st.chunks |= c >= 0;
  }
  if (rc != SQLITE_DONE) return tl::unexpected(db.LastError("read the ledger"));
  return st;
}

Status InsertSqliteMarker(sqlite::Db& db, const TableSpec& spec, int64_t marker,
                          const std::string& what) {
  FORKLIFT_ASSIGN_OR_RETURN(
      Statement stmt,
      db.Prepare(fmt::format("INSERT INTO {}forklift_load_chunks(load_id, chunk, source, "
                             "first_line, last_line, rows, rejected, checksum, target_table) "
                             "VALUES(?1, ?2, '', 0, 0, 0, 0, ?3, ?4)",
                             Prefix(spec))));
  const std::string table = ShownTable(spec);  // bound below: alive until the step
  StatementUse s(stmt);
  s.Bind(1, spec.load_id, marker, what, table);
  if (s.Step() != SQLITE_DONE) return tl::unexpected(db.LastError("record " + what));
  return {};
}

// The SQL of the table's own schema rows of `type` ("table", "index", "trigger"), with
// their names; autoindexes (sql NULL) left out.
Result<std::vector<std::pair<std::string, std::string>>> SchemaSql(sqlite::Db& db,
                                                                   const TableSpec& spec,
                                                                   const std::string& table,
                                                                   const char* type) {
  FORKLIFT_ASSIGN_OR_RETURN(
      Statement stmt,
      db.Prepare(fmt::format("SELECT name, sql FROM {}sqlite_schema WHERE type = ?1 AND "
                             "tbl_name = ?2 AND sql IS NOT NULL ORDER BY rowid",
                             Prefix(spec))));
  const std::string type_text = type;
  StatementUse s(stmt);
  s.Bind(1, type_text, table);
  std::vector<std::pair<std::string, std::string>> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.emplace_back(s.ColumnString(0), s.ColumnString(1));
  if (rc != SQLITE_DONE) return tl::unexpected(db.LastError("read the schema"));
  return out;
}

Error SqliteLoadedWithout(const TableSpec& spec, std::string_view option) {
  return InvalidArgumentError(
             fmt::format("{}: load {} already committed chunks into {} without {}: emptying the "
                         "table now would "
                         "lose them. Rerun it without {} to resume it, or give another --load-id",
                         option, spec.load_id, ShownTable(spec), option, option))
      .value();
}

// Target::PrepareTable for SQLite: --truncate is a DELETE; --replace's shadow is made from
// the table's CREATE TABLE text (and its indexes', renamed), in one transaction with the
// marker. Triggers are not copied to the shadow: they are recreated at the swap.
Result<TableSpec> SqlitePrepareTable(sqlite::Db& db, const TableSpec& spec,
                                     const TargetAddress& address) {
  using L = TableSpec::Lifecycle;
  if (spec.lifecycle == L::kAppend) return spec;
  sqlite::Transaction txn(db, "prepare the table");
  FORKLIFT_RETURN_IF_ERROR(txn.Begin());
  FORKLIFT_ASSIGN_OR_RETURN(SqliteLedgerState state, ReadSqliteLedgerState(db, spec));
  if (spec.lifecycle == L::kTruncate) {
    if (state.truncated) return spec;  // emptied by an earlier run of this load: never again
    if (state.chunks) return tl::unexpected(SqliteLoadedWithout(spec, "--truncate"));
    FORKLIFT_RETURN_IF_ERROR(db.Exec("DELETE FROM " + QualifiedTable(spec)));
    FORKLIFT_RETURN_IF_ERROR(InsertSqliteMarker(db, spec, kLedgerTruncated, "truncate"));
    FORKLIFT_RETURN_IF_ERROR(txn.Commit());
    return spec;
  }
  TableSpec shadow = spec;
  shadow.table = ShadowTableName(spec);
  if (state.swapped) return spec;
  if (state.shadow) {
    FORKLIFT_ASSIGN_OR_RETURN(auto have, SchemaSql(db, spec, shadow.table, "table"));
    if (have.empty()) {
      return FailedPreconditionError(fmt::format(
          "--replace: load {} records its shadow table {} in {}, which is gone: the rows its "
          "committed chunks wrote there are lost. Give another --load-id to start over",
          spec.load_id, shadow.table, address.display));
    }
    return shadow;  // resume the shadow
  }
  if (state.chunks) return tl::unexpected(SqliteLoadedWithout(spec, "--replace"));
  FORKLIFT_ASSIGN_OR_RETURN(auto tables, SchemaSql(db, spec, spec.table, "table"));
  FORKLIFT_ASSIGN_OR_RETURN(auto indexes, SchemaSql(db, spec, spec.table, "index"));
  std::optional<std::string> ddl =
      tables.empty() ? std::nullopt : RenamedTableSql(tables[0].second, shadow.table);
  if (!ddl) {
    return FailedPreconditionError(
        fmt::format("--replace: cannot read the CREATE TABLE statement of {} in {}",
                    ShownTable(spec), address.display));
  }
  FORKLIFT_RETURN_IF_ERROR(db.Exec("DROP TABLE IF EXISTS " + QualifiedTable(shadow)));
  FORKLIFT_RETURN_IF_ERROR(db.Exec(*ddl));
  for (size_t i = 0; i < indexes.size(); ++i) {
    auto idx =
        RenamedIndexSql(indexes[i].second, fmt::format("{}_{}", shadow.table, i), shadow.table);
    if (!idx) {
      return FailedPreconditionError(
          fmt::format("--replace: cannot read the CREATE INDEX statement of index {} of {} in {}",
                      indexes[i].first, ShownTable(spec), address.display));
    }
    FORKLIFT_RETURN_IF_ERROR(db.Exec(*idx));
  }
  FORKLIFT_RETURN_IF_ERROR(InsertSqliteMarker(db, spec, kLedgerShadow, "shadow"));
  FORKLIFT_RETURN_IF_ERROR(txn.Commit());
  return shadow;
}

// Target::FinishTable for SQLite: drop the old table, rename the shadow, rebuild the old
// table's indexes and triggers by their own SQL (so they keep their names), record the
// swap, all in one transaction. legacy_alter_table keeps RENAME from rewriting or checking
// views: a view names the table by name and reads the new one after the swap.
Result<bool> SqliteFinishTable(sqlite::Db& db, const TableSpec& spec, const TableSpec& written) {
  if (spec.lifecycle != TableSpec::Lifecycle::kReplace || written.table == spec.table) {
    return false;
  }
  FORKLIFT_RETURN_IF_ERROR(db.Exec("PRAGMA legacy_alter_table=ON"));
  Result<bool> st = [&]() -> Result<bool> {
    sqlite::Transaction txn(db, "swap the new table in");
    FORKLIFT_RETURN_IF_ERROR(txn.Begin());
    FORKLIFT_ASSIGN_OR_RETURN(SqliteLedgerState state, ReadSqliteLedgerState(db, spec));
    if (state.swapped) return false;
    FORKLIFT_ASSIGN_OR_RETURN(auto indexes, SchemaSql(db, spec, spec.table, "index"));
    FORKLIFT_ASSIGN_OR_RETURN(auto triggers, SchemaSql(db, spec, spec.table, "trigger"));
    FORKLIFT_ASSIGN_OR_RETURN(auto shadow_indexes, SchemaSql(db, spec, written.table, "index"));
    FORKLIFT_RETURN_IF_ERROR(db.Exec("DROP TABLE " + QualifiedTable(spec)));
    for (const auto& [name, sql] : shadow_indexes) {
      FORKLIFT_RETURN_IF_ERROR(db.Exec("DROP INDEX " + Prefix(spec) + QuoteIdent(name)));
    }
    FORKLIFT_RETURN_IF_ERROR(db.Exec(fmt::format("ALTER TABLE {} RENAME TO {}",
                                                 QualifiedTable(written), QuoteIdent(spec.table))));
    for (const auto& [name, sql] : indexes) FORKLIFT_RETURN_IF_ERROR(db.Exec(sql));
    for (const auto& [name, sql] : triggers) FORKLIFT_RETURN_IF_ERROR(db.Exec(sql));
    FORKLIFT_RETURN_IF_ERROR(InsertSqliteMarker(db, spec, kLedgerSwapped, "swapped"));
    FORKLIFT_RETURN_IF_ERROR(txn.Commit());
    return true;
  }();
  (void)db.Exec("PRAGMA legacy_alter_table=OFF");
  return st;
}

class SqliteSink final : public Sink {
 public:
  static Result<std::unique_ptr<SqliteSink>> Open(const TargetAddress& address,
                                                  const TableSpec& spec,
                                                  std::vector<Affinity> affinity) {
    FORKLIFT_ASSIGN_OR_RETURN(sqlite::Db db, OpenTargetDb(address));
    auto sink = std::unique_ptr<SqliteSink>(new SqliteSink(address, spec, std::move(db)));
    sink->affinity_ = std::move(affinity);
    FORKLIFT_RETURN_IF_ERROR(sink->PrepareStatements());
    return sink;
  }

  Result<ChunkWriteResult> WriteChunk(const Chunk& chunk,
                                      const BeforeCommit& before_commit) override {
    ChunkWriteResult result;
    // IMMEDIATE takes the write lock now, so a busy file fails here, not mid-chunk.
    sqlite::Transaction txn(db_, "write chunk");
    FORKLIFT_RETURN_IF_ERROR(txn.Begin());
    FORKLIFT_RETURN_IF_ERROR(WriteRows(chunk, &result));
    FORKLIFT_RETURN_IF_ERROR(before_commit(result.rejected));
    FORKLIFT_RETURN_IF_ERROR(InsertLedger(chunk, result));
    FORKLIFT_RETURN_IF_ERROR(txn.Commit());
    return result;
  }

  Status Reconnect() override {
    FORKLIFT_ASSIGN_OR_RETURN(sqlite::Db db, OpenTargetDb(address_));
    insert_ = Statement();
    ledger_insert_ = Statement();
    ledger_find_ = Statement();
    {
      // Cancel() may run on another thread at any time: sqlite3_interrupt on the handle
      // being closed here would be a use after free.
      std::lock_guard lock(cancel_mu_);
      db_ = std::move(db);
    }
    return PrepareStatements();
  }

  Result<std::optional<LedgerEntry>> FindChunk(int64_t chunk) override {
    StatementUse s(ledger_find_);
    s.BindText(1, spec_.load_id);
    s.BindInt64(2, chunk);
    return ReadLedger(s, db_);
  }

  void Cancel() override {
    std::lock_guard lock(cancel_mu_);
    db_.Interrupt();
  }

 private:
  SqliteSink(TargetAddress address, TableSpec spec, sqlite::Db db)
      : address_(std::move(address)), spec_(std::move(spec)), db_(std::move(db)) {}

  Status PrepareStatements() {
    FORKLIFT_ASSIGN_OR_RETURN(insert_, db_.Prepare(InsertSql(spec_), /*persistent=*/true));
    FORKLIFT_ASSIGN_OR_RETURN(
        ledger_insert_,
        db_.Prepare(
            fmt::format(
                "INSERT INTO {}forklift_load_chunks(load_id, chunk, source, first_line, last_line, "
                "rows, rejected, checksum, target_table{}) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                "?8, ?9{})",
                Prefix(spec_), spec_.ledger_last_key ? ", last_key" : "",
                spec_.ledger_last_key ? ", ?10" : ""),
            /*persistent=*/true));
    FORKLIFT_ASSIGN_OR_RETURN(ledger_find_,
                              db_.Prepare(LedgerSelect(spec_) + " AND chunk = ?2", true));
    return {};
  }

  Status WriteRows(const Chunk& chunk, ChunkWriteResult* result) {
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
      int rc;
      {
        StatementUse s(insert_);
        for (int c = 0; c < ncols; ++c) {
          const CsvField& f = fields_[c];
          if (!f.quoted && f.value == spec_.null_string) {
            s.BindNull(c + 1);
          } else {
            BindValue(s, c + 1, affinity_[c], f.value);
          }
        }
        rc = s.Step();
      }
      if (rc == SQLITE_DONE && spec_.ignore_duplicates && db_.Changes() == 0) {
        ++result->rows_duplicate;  // ON CONFLICT DO NOTHING skipped it
      } else if (rc == SQLITE_DONE) {
        ++result->rows_written;
      } else if (IsRowError(rc)) {
        // A conflict clause ON CONFLICT ROLLBACK or a trigger's RAISE(ROLLBACK) ends the
        // whole transaction, not just the statement: the rows before are gone, and the
        // rows after (and the ledger row) would commit one by one in autocommit mode.
        if (db_.Autocommit()) {
          return FailedPreconditionError(fmt::format(
              "{}: table {}, line {}: {} ({}) rolled back the whole transaction: the "
              "table's conflict clause (ON CONFLICT ROLLBACK) or a trigger's "
              "RAISE(ROLLBACK, ...) does that, and forklift cannot then narrow the bad rows "
              "out (use ABORT or FAIL there); nothing of this chunk was committed",
              address_.display, ShownTable(spec_), chunk.rows[i].line, db_.Message(),
              CodeName(rc)));
        }
        result->rejected.push_back({.row = i, .sqlstate = CodeName(rc), .reason = db_.Message()});
      } else {
        return tl::unexpected(db_.LastError(fmt::format("insert into {}", spec_.table)));
      }
    }
    return {};
  }

  Status InsertLedger(const Chunk& chunk, const ChunkWriteResult& result) {
    const std::string table = ShownTable(spec_);
    StatementUse s(ledger_insert_);
    s.Bind(1, spec_.load_id, static_cast<int64_t>(chunk.number), chunk.source,
           static_cast<int64_t>(chunk.first_line), static_cast<int64_t>(chunk.last_line),
           static_cast<int64_t>(result.rows_written),
           static_cast<int64_t>(result.rejected.size() + chunk.parse_rejects.size()),
           chunk.checksum, table);
    if (spec_.ledger_last_key) {
      if (chunk.last_key) {
        s.BindText(10, *chunk.last_key);
      } else {
        s.BindNull(10);
      }
    }
    if (s.Step() != SQLITE_DONE) {
      return tl::unexpected(db_.LastError(fmt::format("record chunk {}", chunk.number)));
    }
    return {};
  }

  TargetAddress address_;
  TableSpec spec_;
  std::mutex cancel_mu_;  // guards replacing db_ against Cancel()
  sqlite::Db db_;
  Statement insert_, ledger_insert_, ledger_find_;
  std::vector<CsvField> fields_;
  std::string scratch_;
  std::vector<Affinity> affinity_;  // of spec_.columns
};

class SqliteTarget final : public Target {
 public:
  SqliteTarget(TargetAddress address, TableSpec spec, sqlite::Db db)
      : address_(std::move(address)), spec_(std::move(spec)), db_(std::move(db)) {}
  SqliteTarget(const SqliteTarget&) = delete;
  SqliteTarget& operator=(const SqliteTarget&) = delete;

  // An flock(2) on the database file (independent of SQLite's own POSIX locks): one load
  // into a file at a time, whatever its load id, since the file has one writer anyway.
  Status ClaimLoad() override {
    if (lock_fd_.valid()) return {};
    core::UniqueFd fd(::open(address_.conninfo.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      return FailedPreconditionError(
          fmt::format("{}: cannot open to lock it: {}", address_.display, core::ErrnoText(errno)));
    }
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      if (err == EWOULDBLOCK) {
        return AbortedError(
            fmt::format("another load with load id {} (or another load into this file) is running "
                        "against {}: an SQLite file takes one load at a time; wait for it to end "
                        "(rerunning then resumes this one)",
                        spec_.load_id, address_.display));
      }
      return FailedPreconditionError(
          fmt::format("{}: cannot lock: {}", address_.display, core::ErrnoText(err)));
    }
    lock_fd_ = std::move(fd);
    return {};
  }

  // The table is there and has the columns; their affinities for binding.
  Status Check() {
    FORKLIFT_ASSIGN_OR_RETURN(TableColumns have,
                              ReadColumns(db_, address_, spec_.schema, spec_.table));
    for (const std::string& c : spec_.columns) {
      auto it = std::find(have.names.begin(), have.names.end(), c);
      if (it == have.names.end()) {
        return FailedPreconditionError(fmt::format("column '{}' is not in table {} (it has {})", c,
                                                   ShownTable(spec_), fmt::join(have.names, ", ")));
      }
      affinity_.push_back(AffinityOf(have.types[static_cast<size_t>(it - have.names.begin())]));
    }
    return {};
  }

  Status EnsureLedger() override {
    FORKLIFT_RETURN_IF_ERROR(db_.Exec(fmt::format(kLedgerDdl, Prefix(spec_))));
    if (!spec_.ledger_last_key) return {};
    // A ledger made before last_key existed gets it (query loads that resume by key).
    FORKLIFT_ASSIGN_OR_RETURN(
        std::optional<int64_t> has,
        db_.QueryInt64(
            fmt::format("SELECT count(*) FROM {}pragma_table_info('forklift_load_chunks') "
                        "WHERE name = 'last_key'",
                        Prefix(spec_))));
    if (has && *has > 0) return {};
    return db_.Exec(
        fmt::format("ALTER TABLE {}forklift_load_chunks ADD COLUMN last_key TEXT", Prefix(spec_)));
  }

  const TargetAddress& address() const override { return address_; }
  Result<int> MaxWorkers() override { return 1; }

  Result<std::vector<LedgerEntry>> CommittedChunks() override {
    FORKLIFT_ASSIGN_OR_RETURN(Statement stmt, db_.Prepare(LedgerSelect(spec_) + " ORDER BY chunk"));
    StatementUse s(stmt);
    s.BindText(1, spec_.load_id);
    std::vector<LedgerEntry> out;
    for (;;) {
      FORKLIFT_ASSIGN_OR_RETURN(std::optional<LedgerEntry> e,
                                ReadLedger(s, db_, spec_.ledger_last_key));
      if (!e) break;
      out.push_back(std::move(*e));
    }
    return out;
  }

  Result<std::unique_ptr<Sink>> OpenSink() override {
    FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<SqliteSink> sink,
                              SqliteSink::Open(address_, written_ ? *written_ : spec_, affinity_));
    return std::unique_ptr<Sink>(std::move(sink));
  }

  // Table lifecycle: the sinks write written_ (the shadow under --replace).
  Status PrepareTable() override {
    FORKLIFT_ASSIGN_OR_RETURN(written_, SqlitePrepareTable(db_, spec_, address_));
    return {};
  }
  Result<bool> FinishTable() override {
    return written_ ? SqliteFinishTable(db_, spec_, *written_) : false;
  }

 private:
  TargetAddress address_;
  TableSpec spec_;
  sqlite::Db db_;
  std::vector<Affinity> affinity_;    // of spec_.columns
  std::optional<TableSpec> written_;  // from PrepareTable()
  // ClaimLoad's flock, held until destruction. Declared last, so closed first, while no
  // connection of ours is in a transaction (the sinks are gone): closing a descriptor of
  // the file drops the process's POSIX locks on it, SQLite's included.
  core::UniqueFd lock_fd_;
};

}  // namespace

Result<std::unique_ptr<Target>> OpenSqliteTarget(const TargetAddress& address,
                                                 const TableSpec& spec) {
  FORKLIFT_ASSIGN_OR_RETURN(sqlite::Db db, OpenTargetDb(address));
  auto target = std::make_unique<SqliteTarget>(address, spec, std::move(db));
  FORKLIFT_RETURN_IF_ERROR(target->Check());
  return std::unique_ptr<Target>(std::move(target));
}

Result<std::vector<std::string>> ReadSqliteTableColumns(const TargetAddress& address,
                                                        const std::string& schema,
                                                        const std::string& table) {
  FORKLIFT_ASSIGN_OR_RETURN(sqlite::Db db, OpenTargetDb(address));
  FORKLIFT_ASSIGN_OR_RETURN(TableColumns columns, ReadColumns(db, address, schema, table));
  return std::move(columns.names);
}

}  // namespace forklift::sinks
