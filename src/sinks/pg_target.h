// The PostgreSQL target, on libpq: checks the table (pg_table.h), keeps the ledger
// (pg_ledger.h), and opens one Sink (pg_sink.h) per worker connection.
#ifndef FORKLIFT_SINKS_PG_TARGET_H_
#define FORKLIFT_SINKS_PG_TARGET_H_

#include <memory>

#include "sinks/sink.h"

namespace forklift::sinks {

// The PostgreSQL Target for `address` (kind kPostgres).
// Failure: Unavailable (cannot connect), FailedPrecondition (no such table or column; for
// an upsert, no index that can serve the key, saying why: none on exactly its columns, or
// one that is DEFERRABLE or not valid), each naming the target by its display form (no
// password).
// Thread safety: a Target is used from one thread; each Sink it opens from one thread.
Result<std::unique_ptr<Target>> OpenPgTarget(const TargetAddress& address, const TableSpec& spec);

}  // namespace forklift::sinks

#endif  // FORKLIFT_SINKS_PG_TARGET_H_
