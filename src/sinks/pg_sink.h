// The PostgreSQL Sink: one connection writing chunks, each in its own transaction with its
// ledger row. Insert mode sends a chunk's CSV records as they were read through one COPY
// (FORMAT csv, or binary when every column converts exactly) into the table; upsert mode
// COPYs them into a per-session temporary staging table and applies
//   INSERT INTO t (cols) SELECT DISTINCT ON (key) cols FROM stage
//   ORDER BY key, ord DESC ON CONFLICT (key) DO UPDATE SET non-key cols = EXCLUDED...
// so a key repeated in the chunk ends with its last row (never "cannot affect row a second
// time") and rows are locked in key order; under a NULLS DISTINCT unique index (the
// default) each row with a NULL in its key is kept, as the index would. Rows the server
// refuses are narrowed out inside the chunk's transaction with savepoints: by the COPY line
// the error names, by bisection when it names none. When the chunk's ledger row turns out
// committed by an earlier attempt (a lost COMMIT reply), this attempt rolls back and
// reports the chunk already committed.
//
// Internal to the sinks module: loads reach it through Target::Open (pg_target.h).
#ifndef FORKLIFT_SINKS_PG_SINK_H_
#define FORKLIFT_SINKS_PG_SINK_H_

#include <memory>

#include "sinks/pg_connection.h"
#include "sinks/pg_table.h"
#include "sinks/sink.h"

namespace forklift::sinks {

// A connection to `address`. Failure: the connection's error, "--to: " first, the
// password masked.
Result<std::unique_ptr<PgConnection>> ConnectPg(const TargetAddress& address);

// A connected Sink for `spec` on a table `table` describes (ReadPgTable). Failure: as
// ConnectPg, or preparing the session (the staging table) failed.
Result<std::unique_ptr<Sink>> OpenPgSink(const TargetAddress& address, const TableSpec& spec,
                                         const PgTableInfo& table);

}  // namespace forklift::sinks

#endif  // FORKLIFT_SINKS_PG_SINK_H_
