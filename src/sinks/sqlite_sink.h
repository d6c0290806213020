// The embedded target: an SQLite file (WAL, one writer). Rows go through one prepared
// INSERT (or INSERT .. ON CONFLICT DO UPDATE) per row in input order, so a key repeated in
// the input ends with its last row; a row SQLite refuses (constraint, STRICT type) fails
// alone, since SQLite aborts only the failing statement, and the rest of the chunk commits
// with its ledger row. Except where the table's conflict clause (ON CONFLICT ROLLBACK) or a
// trigger (RAISE(ROLLBACK, ...)) rolls the whole transaction back: the chunk then fails
// with FailedPrecondition naming the table, and nothing of it commits.
#ifndef FORKLIFT_SINKS_SQLITE_SINK_H_
#define FORKLIFT_SINKS_SQLITE_SINK_H_

#include <memory>

#include <string>
#include <vector>

#include "sinks/sink.h"

namespace forklift::sinks {

// The SQLite Target for `address` (kind kSqlite). The file must exist and hold the table.
// Failure: FailedPrecondition naming the file, table or column; Unavailable when the file
// is locked past the busy timeout.
Result<std::unique_ptr<Target>> OpenSqliteTarget(const TargetAddress& address,
                                                 const TableSpec& spec);

// ReadTableColumns for SQLite (pragma table_info: generated columns left out).
Result<std::vector<std::string>> ReadSqliteTableColumns(const TargetAddress& address,
                                                        const std::string& schema,
                                                        const std::string& table);

}  // namespace forklift::sinks

#endif  // FORKLIFT_SINKS_SQLITE_SINK_H_
