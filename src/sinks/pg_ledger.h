// The exactly-once ledger in PostgreSQL: one row per committed chunk, in the table's schema,
//   forklift_load_chunks(load_id, chunk, source, first_line, last_line, rows, rejected,
//                        checksum, target_table, committed_at, PRIMARY KEY (load_id, chunk))
// written in each chunk's own transaction (PgSink) and read to resume (PgTarget).
//
// Thread safety: plain functions.
#ifndef FORKLIFT_SINKS_PG_LEDGER_H_
#define FORKLIFT_SINKS_PG_LEDGER_H_

#include <string>

#include "sinks/pg_connection.h"
#include "sinks/sink.h"

namespace forklift::sinks {

// The ledger's quoted name for `spec`'s table: forklift_load_chunks in spec.ledger_schema,
// else in the table's schema (the connection's default when that is empty too).
std::string PgLedgerTable(const TableSpec& spec);

// CREATE TABLE IF NOT EXISTS for the ledger.
std::string PgLedgerDdl(const TableSpec& spec);

// The columns a LedgerEntry is read from, in the order PgLedgerEntry expects.
inline constexpr const char* kPgLedgerColumns =
    "chunk, source, first_line, last_line, rows, rejected, checksum";

// The columns of a query load that resumes by key: kPgLedgerColumns and last_key (nullable,
// absent from ledgers made before it: EnsureLedger adds it for such loads).
inline constexpr const char* kPgLedgerKeyColumns =
    "chunk, source, first_line, last_line, rows, rejected, checksum, last_key";

// A row of kPgLedgerColumns or kPgLedgerKeyColumns. The columns but last_key are NOT NULL
// bigints and text, written by forklift.
LedgerEntry PgLedgerEntry(const PgConnection::Row& row);

}  // namespace forklift::sinks

#endif  // FORKLIFT_SINKS_PG_LEDGER_H_
