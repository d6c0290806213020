// What `forklift load` must know about a PostgreSQL table before it writes to it, read from
// the catalogue: each loaded column's type (binary COPY; how an upsert tells a changed value
// from an unchanged one) and whether a unique index can be an upsert's ON CONFLICT arbiter
// on exactly the key, and how that index treats NULL keys.
//
// Thread safety: a plain function over a connection that the caller uses from one thread.
#ifndef FORKLIFT_SINKS_PG_TABLE_H_
#define FORKLIFT_SINKS_PG_TABLE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/result.h"
#include "sinks/pg_binary.h"
#include "sinks/pg_connection.h"
#include "sinks/sink.h"

namespace forklift::sinks {

struct PgTableInfo {
  std::vector<PgType> types;  // of spec.columns: binary COPY when all have a form
  // Of spec.columns: the type has no `=` fit to tell "changed" (json, xml, the geometric
  // types, arrays and domains of them; box and circle's `=` compares areas), so an upsert
  // compares the column's text form instead.
  std::vector<bool> compare_as_text;
  bool unique_key = false;  // upsert: an immediate unique index on exactly the key's columns
  // upsert: a key column may be NULL and no such index is NULLS NOT DISTINCT (PostgreSQL
  // 15+), so rows with a NULL in their key never conflict: each is a row of its own.
  bool null_keys_distinct = false;
  // Of spec.key: the base type's pg_type.typname (a domain's base, one level) and its
  // typmod (-1 = none), which decide the key's routing form (pg_key_form.h).
  std::vector<std::string> key_typnames;
  std::vector<int32_t> key_typmods;
};

// Reads `spec`'s table (spec.schema, spec.table) through `conn`. On success, its info for
// spec.columns and, when spec.upsert, for spec.key. On failure, FailedPrecondition naming
// the table and `address`'s display form when there is no such table, the column the table
// lacks, or (upsert) why no index can serve the key: none is unique on exactly these
// columns (INCLUDE columns aside), one is DEFERRABLE (PostgreSQL refuses a deferrable
// arbiter), or the one there is not valid; a failing query's error with the address
// (password masked).
Result<PgTableInfo> ReadPgTable(PgConnection& conn, const TableSpec& spec,
                                const TargetAddress& address);

// ReadTableColumns for PostgreSQL: connects, reads the catalogue, disconnects.
Result<std::vector<std::string>> ReadPgTableColumns(const TargetAddress& address,
                                                    const std::string& schema,
                                                    const std::string& table);

// Table lifecycle (Target::PrepareTable and FinishTable for PostgreSQL; sink.h says what
// each does and how it fails). PgPrepareTable runs its step in one transaction on `conn`
// and returns the spec the sinks write with: `spec` itself, or for --replace the shadow
// table, in the table's schema, with the ledger where `spec` keeps it. --replace refuses
// (InvalidArgument, before anything is written) a table that views or other tables'
// foreign keys depend on: the swap would have to drop them.
Result<TableSpec> PgPrepareTable(PgConnection& conn, const TableSpec& spec,
                                 const TargetAddress& address);
Result<bool> PgFinishTable(PgConnection& conn, const TableSpec& spec, const TableSpec& written,
                           const TargetAddress& address);

}  // namespace forklift::sinks

#endif  // FORKLIFT_SINKS_PG_TABLE_H_