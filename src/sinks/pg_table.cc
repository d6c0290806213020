#include "sinks/pg_table.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>

#include "sinks/pg_dsn.h"
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

}  // namespace forklift::sinks
