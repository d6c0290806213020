// Query sources of `forklift load --from DSN --query SQL`: a query's result, streamed as CSV
// (a header of the result's column names, then one record per row) through a
// sources::ByteSource, so that the chunker, checksums and dead letters read it as a file.
//
// PostgreSQL: `COPY (SELECT * FROM (query) AS forklift_q [WHERE ...] [ORDER BY key]) TO
// STDOUT (FORMAT csv, HEADER)` on a connection of its own, read row by row with
// PQgetCopyData: the server streams, memory is one row. SQLite: the statement is stepped
// and each row written as a CSV record (NULL an empty unquoted field, text quoted when it
// needs it, a blob as PostgreSQL's bytea hex \x...).
//
// Resume by key: with a resume key the rows come ordered by it, and a stream can start
// after a key (its values as text, as the CSV spelled them): PostgreSQL compares
// `(k1, k2) > (current_setting('forklift.after_1')::TYPE1, ...)`, the values set with bound
// parameters (set_config) so that no value is ever part of SQL text; SQLite binds them
// (an integer- or real-looking value as a number: SQLite orders numbers before text).
// Partitions: `--partition-by COL --partitions N` reads the ranges of COL between its min
// and max (range_bounds) for an integer, date or timestamp COL on PostgreSQL and an
// INTEGER-affinity COL on SQLite (bound as ?(k+i) after the k key values), else the rows whose hash
// of COL's text is p modulo N (PostgreSQL: hashtextextended; SQLite: a function forklift_partition
// over FNV-1a registered on the source's connection); NULL hashes as the empty text. Bounds travel
// as bound parameters too.
//
// Thread safety: plain functions; each stream is used from one thread at a time.
#ifndef FORKLIFT_SINKS_QUERY_SOURCE_H_
#define FORKLIFT_SINKS_QUERY_SOURCE_H_

#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/result.h"
#include "sinks/sink.h"
#include "sources/byte_source.h"

namespace forklift::sinks {

struct QuerySpec {
  TargetAddress from;                   // --from, parsed as --to is
  std::string query;                    // as given (NormalizeQuery is applied when used)
  std::vector<std::string> resume_key;  // result columns; empty = no order, no resume
  std::string partition_by;             // a result column; "" with partitions = 1
  int partitions = 1;                   // >= 1
  // Range partitions (a partition_by column for which IsRangeColumn holds): the
  // partitions - 1 bounds b1 < b2 < ... as text. Partition 0 holds the values below b1 (and
  // NULL), partition p those from b(p) up to b(p+1), the last those from its bound up. Empty:
  // hash partitions.
  std::vector<std::string> range_bounds;
};

struct QueryColumn {
  std::string name;
  std::string type;  // PostgreSQL: format_type's spelling; SQLite: the declared type or ""
};

// `query` without trailing blanks and semicolons (it is wrapped in a subquery).
std::string NormalizeQuery(std::string_view query);

// The result's columns, without running the query (PostgreSQL: describe; SQLite: prepare).
// Failure: the source's error prefixed "--from DISPLAY: --query: " (PostgreSQL: "SQLSTATE
// 42P01: relation ... does not exist"; SQLite's message), with its code (Unavailable when
// the server cannot be reached); InvalidArgument for a query with no columns or with two
// columns of one name.
Result<std::vector<QueryColumn>> DescribeQuery(const QuerySpec& spec);

// Whether a PostgreSQL partition_by column of this type (format_type's spelling) is split
// by ranges: smallint, integer, bigint, date, and timestamp [(p)] with or without time zone
// (ranges of an indexed column read only their rows; a hash partition scans everything).
// Pure.
bool IsRangeType(std::string_view type);
// The same for a SQLite column's declared type: INTEGER affinity (the type contains "INT",
// in any case; an expression without a declared type is hashed). Pure.
bool IsSqliteRangeType(std::string_view declared);
// Whether spec.partition_by, a column of `columns`, is split by ranges on spec.from (and
// spec.partitions >= 2). Pure.
bool IsRangeColumn(const QuerySpec& spec, const std::vector<QueryColumn>& columns);

// The bounds that split spec.partition_by into spec.partitions ranges of equal width between
// its min and max in the result (one aggregate query on the source, which an index on the
// column answers at once), as text the column's type reads back exactly (timestamps: the
// session's ISO spelling, with its offset for timestamptz). SQLite: of the column's integer
// values (others are placed by SQLite's order of types: text and blobs in the last range).
// Empty when the column has no such value. Failure: InvalidArgument when !IsRangeColumn;
// else as DescribeQuery.
Result<std::vector<std::string>> ComputeRangeBounds(const QuerySpec& spec,
                                                    const std::vector<QueryColumn>& columns);

// The statement that reads partition `partition` (of spec.partitions) in resume-key order,
// after a key when `after` is true. PostgreSQL: the COPY; SQLite: the SELECT (parameters
// ?1.. are the key's values). Pure; exposed for tests.
std::string PgQueryCopySql(const QuerySpec& spec, const std::vector<QueryColumn>& columns,
                           int partition, bool after);
std::string SqliteQuerySql(const QuerySpec& spec, int partition, bool after);

// Opens the stream of `partition`, starting after the resume key values `after` (empty:
// from the first row), named `name` (path() of the source). One connection per stream,
// closed with the source. A stop requested on `force`, from any thread, interrupts the
// statement (PQcancel, sqlite3_interrupt) from the moment of connecting, this call's own
// wait for a query the server computes before its first row included: the call or the read
// in progress then fails (57014, SQLITE_INTERRUPT). Success: a source whose first record
// is the header.
Result<std::unique_ptr<sources::ByteSource>> OpenQueryStream(
    const QuerySpec& spec, const std::vector<QueryColumn>& columns, int partition,
    const std::vector<std::string>& after, const std::string& name,
    const std::stop_token& force = {});

}  // namespace forklift::sinks

#endif  // FORKLIFT_SINKS_QUERY_SOURCE_H_
