// The PostgreSQL target, on libpq. Insert mode sends a chunk's CSV records as they were read
// through one COPY (FORMAT csv) into the table; upsert mode COPYs them into a per-session
// temporary staging table and applies
//   INSERT INTO t (cols) SELECT DISTINCT ON (key) cols FROM stage
//   ORDER BY key, ord DESC ON CONFLICT (key) DO UPDATE SET non-key cols = EXCLUDED...
// so a key repeated in the chunk ends with its last row (never "cannot affect row a second
// time") and rows are locked in key order; under a NULLS DISTINCT unique index (the
// default) each row with a NULL in its key is kept, as the index would. Rows the server
// refuses are narrowed out inside the chunk's transaction with savepoints: by the COPY line
// the error names, by bisection when it names none. When the chunk's ledger row turns out
// committed by an earlier attempt (a lost COMMIT reply), this attempt rolls back and
// reports the chunk already committed.
#ifndef FORKLIFT_SINKS_PG_SINK_H_
#define FORKLIFT_SINKS_PG_SINK_H_

#include <memory>

#include "sinks/sink.h"

namespace forklift::sinks {

// The PostgreSQL Target for `address` (kind kPostgres).
// Failure: Unavailable (cannot connect), FailedPrecondition (no such table or column; for
// an upsert, no index that can serve the key, saying why: none on exactly its columns, or
// one that is DEFERRABLE or not valid), each naming the target by its display form (no
// password).
Result<std::unique_ptr<Target>> OpenPgTarget(const TargetAddress& address,
                                             const TableSpec& spec);

}  // namespace forklift::sinks

#endif  // FORKLIFT_SINKS_PG_SINK_H_
