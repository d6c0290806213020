#include "sinks/pg_table.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>

#include "sinks/pg_dsn.h"
#include "sinks/pg_ledger.h"
#include "sinks/pg_sink.h"

namespace forklift::sinks {
namespace {

// Types whose values an upsert's `IS DISTINCT FROM` cannot compare: json, xml, point,
// path and polygon have no `=` (42883), and box's and circle's `=` compare areas, so a
// box moved elsewhere would count as unchanged. Their text forms compare exactly.
bool CompareAsText(std::string_view typname) {
  for (std::string_view t :
       {"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"}) {
    if (typname == t) return true;
  }
  return false;
}

}  // namespace

Result<PgTableInfo> ReadPgTable(PgConnection& conn, const TableSpec& spec,
                                const TargetAddress& address) {
  const std::optional<std::string> p[] = {QuoteQualified(spec.schema, spec.table)};
  // The third column is the type that decides the comparison: a domain's base type (one
  // level), an array's element type. The fifth and sixth, the base type and its typmod,
  // decide a key's routing form.
  auto cols = conn.Query(
      "SELECT a.attname, t.typname, COALESCE(e.typname, b.typname), a.attnotnull, "
      "b.typname, CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END "
      "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
      "JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END "
      "LEFT JOIN pg_type e ON e.oid = b.typelem AND b.typcategory = 'A' "
      "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped "
      "ORDER BY a.attnum",
      p);
  if (!cols) return tl::unexpected(OnTarget(address, cols.error()));
  struct Column {
    std::string type, compare_type;
    bool not_null = false;
    std::string base_type;
    int32_t typmod = -1;
  };
  std::vector<std::string> have;
  std::map<std::string, Column> column;
  for (const auto& r : *cols) {
    have.push_back(r[0].value_or(""));
    column[have.back()] = {r[1].value_or(""), r[2].value_or(""), r[3].value_or("") == "t",
                           r[4].value_or(""), std::stoi(r[5].value_or("-1"))};
  }
  if (have.empty()) {
    return FailedPreconditionError(
        fmt::format("--table {}: no such table in {}", ShownTable(spec), address.display));
  }
  PgTableInfo info;
  for (const std::string& c : spec.columns) {
    if (std::find(have.begin(), have.end(), c) == have.end()) {
      return FailedPreconditionError(fmt::format("column '{}' is not in table {} (it has {})", c,
                                                 ShownTable(spec), fmt::join(have, ", ")));
    }
    info.types.push_back(PgTypeFromName(column[c].type));
    info.compare_as_text.push_back(CompareAsText(column[c].compare_type));
  }
  for (const std::string& k : spec.key) {
    const auto it = column.find(k);
    info.key_typnames.push_back(it == column.end() ? "" : it->second.base_type);
    info.key_typmods.push_back(it == column.end() ? -1 : it->second.typmod);
  }
  if (!spec.upsert) return info;

  // ON CONFLICT (key) needs a unique index or constraint on exactly the key's columns. Its
  // INCLUDE columns (past indnkeyatts) are not part of the key; a deferrable one is
  // inferred as an arbiter and then refused by the executor, so it must not be there at
  // all; an invalid one (a failed CREATE INDEX CONCURRENTLY) is not inferred.
  // indnullsnotdistinct exists from PostgreSQL 15 on; before, NULLs are always distinct.
  const char* nulls_not_distinct =
      conn.server_version() >= 150000 ? "i.indnullsnotdistinct" : "false";
  auto idx = conn.Query(
      fmt::format("SELECT c.relname, i.indimmediate, i.indisvalid, {}, "
                  "array_to_string(ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY "
                  "AS k(attnum, n) JOIN pg_attribute a ON a.attrelid = i.indrelid AND "
                  "a.attnum = k.attnum WHERE k.n <= i.indnkeyatts ORDER BY a.attname), chr(1)) "
                  "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                  "WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indpred IS NULL AND "
                  "i.indexprs IS NULL",
                  nulls_not_distinct),
      p);
  if (!idx) return tl::unexpected(OnTarget(address, idx.error()));
  std::vector<std::string> sorted = spec.key;
  std::sort(sorted.begin(), sorted.end());
  const std::string want = fmt::format("{}", fmt::join(sorted, "\x01"));
  std::string deferrable, invalid;
  bool nulls_equal = false;
  for (const auto& r : *idx) {
    if (r[4].value_or("") != want) continue;
    const std::string name = r[0].value_or("");
    if (r[2].value_or("") != "t") {
      invalid = name;
    } else if (r[1].value_or("") != "t") {
      deferrable = name;
    } else {
      info.unique_key = true;
      nulls_equal = nulls_equal || r[3].value_or("") == "t";
    }
  }
  const std::string key = fmt::format("{}", fmt::join(spec.key, ","));
  if (!deferrable.empty()) {
    return FailedPreconditionError(fmt::format(
        "--key {}: the unique index or constraint \"{}\" on table {} is DEFERRABLE, and "
        "PostgreSQL does not let an upsert's ON CONFLICT use a deferrable one; make it NOT "
        "DEFERRABLE, or load with --mode insert",
        key, deferrable, ShownTable(spec)));
  }
  if (!info.unique_key) {
    return FailedPreconditionError(fmt::format(
        "--key {}: table {} has no unique index or constraint on exactly these columns, "
        "which an upsert (ON CONFLICT) needs{}",
        key, ShownTable(spec),
        invalid.empty() ? ""
                        : fmt::format(" (index \"{}\" is, but it is not valid: a CREATE INDEX "
                                      "CONCURRENTLY that failed; REINDEX it)",
                                      invalid)));
  }
  const bool nullable_key = std::any_of(spec.key.begin(), spec.key.end(),
                                        [&](const std::string& k) { return !column[k].not_null; });
  info.null_keys_distinct = nullable_key && !nulls_equal;
  return info;
}

Result<std::vector<std::string>> ReadPgTableColumns(const TargetAddress& address,
                                                    const std::string& schema,
                                                    const std::string& table) {
  FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn, ConnectPg(address));
  const std::optional<std::string> p[] = {QuoteQualified(schema, table)};
  // Generated columns cannot be written (COPY refuses them), so they are not the input's.
  auto rows = conn->Query(
      "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 "
      "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
      p);
  if (!rows) return tl::unexpected(OnTarget(address, rows.error()));
  std::vector<std::string> out;
  for (const auto& r : *rows) out.push_back(r[0].value_or(""));
  if (out.empty()) {
    return FailedPreconditionError(fmt::format("--table {}: no such table in {}",
                                               schema.empty() ? table : schema + "." + table,
                                               address.display));
  }
  return out;
}

// --- Table lifecycle and dialect ------------------------------------------------------------

namespace {

// The lifecycle markers of `spec`'s load in its ledger, and whether it holds ordinary chunks.
struct LedgerState {
  bool truncated = false, shadow = false, swapped = false, chunks = false;
};

Result<LedgerState> ReadLedgerState(PgConnection& conn, const TableSpec& spec,
                                    const TargetAddress& address) {
  const std::optional<std::string> p[] = {spec.load_id};
  auto rows = conn.Query(fmt::format("SELECT chunk FROM {} WHERE load_id = $1 AND chunk < 0 "
                                     "UNION ALL (SELECT 0 FROM {} WHERE load_id = $1 AND "
                                     "chunk >= 0 LIMIT 1)",
                                     PgLedgerTable(spec), PgLedgerTable(spec)),
                         p);
  if (!rows) return tl::unexpected(OnTarget(address, rows.error()));
  LedgerState st;
  for (const auto& r : *rows) {
    const int64_t c = std::stoll(r[0].value_or("0"));
    st.truncated |= c == kLedgerTruncated;
    st.shadow |= c == kLedgerShadow;
    st.swapped |= c == kLedgerSwapped;
    st.chunks |= c >= 0;
  }
  return st;
}

Status InsertMarker(PgConnection& conn, const TableSpec& spec, const TargetAddress& address,
                    int64_t marker, std::string_view what) {
  const std::optional<std::string> p[] = {spec.load_id, std::to_string(marker), std::string(what),
                                          ShownTable(spec)};
  auto ins = conn.Query(fmt::format("INSERT INTO {} (load_id, chunk, source, first_line, "
                                    "last_line, rows, rejected, checksum, target_table) VALUES "
                                    "($1, $2, '', 0, 0, 0, 0, $3, $4)",
                                    PgLedgerTable(spec)),
                        p);
  if (!ins) return tl::unexpected(OnTarget(address, ins.error()));
  return {};
}

// Runs `sql` in the open transaction; on failure rolls it back and returns the error.
Status ExecOrRollback(PgConnection& conn, std::string_view sql, const TargetAddress& address) {
  if (Status st = conn.Exec(sql); !st) {
    Error e = OnTarget(address, st.error());
    if (conn.ok()) (void)conn.Exec("ROLLBACK");
    return tl::unexpected(e);
  }
  return {};
}

tl::unexpected<Error> Rollback(PgConnection& conn, Error e) {
  if (conn.ok()) (void)conn.Exec("ROLLBACK");
  return tl::unexpected(std::move(e));
}

Error LoadedWithout(const TableSpec& spec, std::string_view option) {
  return InvalidArgumentError(
             fmt::format("{}: load {} already committed chunks into {} without {}: emptying the "
                         "table now would "
                         "lose them. Rerun it without {} to resume it, or give another --load-id",
                         option, spec.load_id, ShownTable(spec), option, option))
      .value();
}

// What depends on the table so that DROP TABLE would fail: views (and materialized views)
// and other tables' foreign keys, as "view s.v" / "foreign key c of table s.t".
Result<std::vector<std::string>> Dependents(PgConnection& conn, const std::string& table_sql,
                                            const TargetAddress& address) {
  const std::optional<std::string> p[] = {table_sql};
  auto rows = conn.Query(
      "SELECT DISTINCT 'view ' || v.oid::regclass::text FROM pg_depend d "
      "JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class "
      "WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = to_regclass($1) "
      "AND v.oid <> to_regclass($1) "
      "UNION SELECT 'foreign key ' || quote_ident(conname) || ' of table ' || "
      "conrelid::regclass::text FROM pg_constraint WHERE contype = 'f' AND "
      "confrelid = to_regclass($1) AND conrelid <> to_regclass($1) ORDER BY 1",
      p);
  if (!rows) return tl::unexpected(OnTarget(address, rows.error()));
  std::vector<std::string> out;
  for (const auto& r : *rows) out.push_back(r[0].value_or(""));
  return out;
}

}  // namespace

Result<TableSpec> PgPrepareTable(PgConnection& conn, const TableSpec& spec,
                                 const TargetAddress& address) {
  using L = TableSpec::Lifecycle;
  if (spec.lifecycle == L::kAppend) return spec;
  const std::string table_sql = QuoteQualified(spec.schema, spec.table);
  // One transaction: the step and its marker commit together, or neither does. The load's
  // advisory lock keeps another load of this id out meanwhile.
  FORKLIFT_RETURN_IF_ERROR(ExecOrRollback(conn, "BEGIN", address));
  auto state = ReadLedgerState(conn, spec, address);
  if (!state) return Rollback(conn, state.error());
  if (spec.lifecycle == L::kTruncate) {
    if (state->truncated) {
      FORKLIFT_RETURN_IF_ERROR(ExecOrRollback(conn, "ROLLBACK", address));
      return spec;  // emptied by an earlier run of this load: never again
    }
    if (state->chunks) return Rollback(conn, LoadedWithout(spec, "--truncate"));
    FORKLIFT_RETURN_IF_ERROR(ExecOrRollback(conn, "TRUNCATE TABLE " + table_sql, address));
    FORKLIFT_RETURN_IF_ERROR(InsertMarker(conn, spec, address, kLedgerTruncated, "truncate"));
    FORKLIFT_RETURN_IF_ERROR(ExecOrRollback(conn, "COMMIT", address));
    return spec;
  }
  // --replace: the shadow sits in the table's schema (resolved, when the spec names none),
  // the ledger stays where it is.
  const std::optional<std::string> p[] = {table_sql, PgLedgerTable(spec)};
  auto where = conn.Query(
      "SELECT n.nspname, (SELECT ln.nspname FROM pg_class lc JOIN pg_namespace ln ON ln.oid = "
      "lc.relnamespace WHERE lc.oid = to_regclass($2)) FROM pg_class c JOIN pg_namespace n ON "
      "n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
      p);
  if (!where) return Rollback(conn, OnTarget(address, where.error()));
  if (where->empty()) {
    return Rollback(conn, FailedPreconditionError(fmt::format("--table {}: no such table in {}",
                                                              ShownTable(spec), address.display))
                              .value());
  }
  TableSpec shadow = spec;
  shadow.schema = (*where)[0][0].value_or("");
  shadow.table = ShadowTableName(spec);
  if (shadow.ledger_schema.empty()) shadow.ledger_schema = (*where)[0][1].value_or(shadow.schema);
  const std::string shadow_sql = QuoteQualified(shadow.schema, shadow.table);
  if (state->swapped) {
    // Swapped by an earlier run: every chunk is in the ledger, and the table is the new one.
    FORKLIFT_RETURN_IF_ERROR(ExecOrRollback(conn, "ROLLBACK", address));
    return spec;
  }
  if (state->shadow) {
    const std::optional<std::string> q[] = {shadow_sql};
    auto have = conn.Query("SELECT to_regclass($1) IS NOT NULL", q);
    if (!have) return Rollback(conn, OnTarget(address, have.error()));
    FORKLIFT_RETURN_IF_ERROR(ExecOrRollback(conn, "ROLLBACK", address));
    if (have->empty() || (*have)[0][0].value_or("") != "t") {
      return FailedPreconditionError(fmt::format(
          "--replace: load {} records its shadow table {} in {}, which is gone: the rows its "
          "committed chunks wrote there are lost. Give another --load-id to start over",
          spec.load_id, ShownTable(shadow), address.display));
    }
    return shadow;  // resume the shadow
  }
  if (state->chunks) return Rollback(conn, LoadedWithout(spec, "--replace"));
  auto deps = Dependents(conn, table_sql, address);
  if (!deps) return Rollback(conn, deps.error());
  if (!deps->empty()) {
    return Rollback(
        conn,
        InvalidArgumentError(
            fmt::format("--replace: {} {} on table {}: swapping the new table in drops the old "
                        "one, and they would have to go with it; nothing loaded. Drop them "
                        "first (and recreate them after), or load with --truncate",
                        fmt::join(*deps, ", "), deps->size() == 1 ? "depends" : "depend",
                        ShownTable(spec)))
            .value());
  }
  // LIKE ... INCLUDING ALL: columns, defaults, identity, generated columns, NOT NULL and
  // CHECK constraints, indexes (unique ones included, for --mode upsert), comments.
  // Not copied: privileges, triggers, foreign keys, policies, ownership (docs/load.md).
  FORKLIFT_RETURN_IF_ERROR(ExecOrRollback(
      conn,
      fmt::format("DROP TABLE IF EXISTS {0}; CREATE TABLE {0} (LIKE {1} INCLUDING ALL)", shadow_sql,
                  table_sql),
      address));
  FORKLIFT_RETURN_IF_ERROR(InsertMarker(conn, spec, address, kLedgerShadow, "shadow"));
  FORKLIFT_RETURN_IF_ERROR(ExecOrRollback(conn, "COMMIT", address));
  return shadow;
}

Result<bool> PgFinishTable(PgConnection& conn, const TableSpec& spec, const TableSpec& written,
                           const TargetAddress& address) {
  if (spec.lifecycle != TableSpec::Lifecycle::kReplace || written.table == spec.table) {
    return false;
  }
  const std::string table_sql = QuoteQualified(spec.schema, spec.table);
  const std::string shadow_sql = QuoteQualified(written.schema, written.table);
  FORKLIFT_RETURN_IF_ERROR(ExecOrRollback(conn, "BEGIN", address));
  auto state = ReadLedgerState(conn, spec, address);
  if (!state) return Rollback(conn, state.error());
  if (state->swapped) {
    FORKLIFT_RETURN_IF_ERROR(ExecOrRollback(conn, "ROLLBACK", address));
    return false;
  }
  // A sequence the old table owns (a serial column's) is used by the shadow's default
  // too: hand it to the shadow, or DROP TABLE would drop it (or refuse).
  const std::optional<std::string> p[] = {table_sql, shadow_sql};
  auto owned = conn.Query(
      "SELECT format('ALTER SEQUENCE %s OWNED BY %s.%I', d.objid::regclass, $2::text, a.attname) "
      "FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = "
      "d.refobjsubid WHERE d.classid = 'pg_class'::regclass AND d.refclassid = "
      "'pg_class'::regclass AND d.refobjid = to_regclass($1) AND d.deptype = 'a' AND "
      "(SELECT relkind FROM pg_class WHERE oid = d.objid) = 'S'",
      p);
  if (!owned) return Rollback(conn, OnTarget(address, owned.error()));
  for (const auto& r : *owned) {
    FORKLIFT_RETURN_IF_ERROR(ExecOrRollback(conn, r[0].value_or(""), address));
  }
  FORKLIFT_RETURN_IF_ERROR(
      ExecOrRollback(conn,
                     fmt::format("DROP TABLE {}; ALTER TABLE {} RENAME TO {}", table_sql,
                                 shadow_sql, QuoteIdent(spec.table)),
                     address));
  FORKLIFT_RETURN_IF_ERROR(InsertMarker(conn, spec, address, kLedgerSwapped, "swapped"));
  FORKLIFT_RETURN_IF_ERROR(ExecOrRollback(conn, "COMMIT", address));
  return true;
}

}  // namespace forklift::sinks
