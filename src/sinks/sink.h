// Targets of `forklift load`: a PostgreSQL database (libpq) or an SQLite file. A Target is
// the table and its ledger; a Sink is one connection writing chunks to it.
//
// The contract every target keeps: a chunk's rows and its ledger row
// (forklift_load_chunks: load id, chunk number, source, line range, rows, rejected,
// checksum) commit in one transaction, so resume is exactly-once. Rows the database
// refuses are narrowed out of the chunk and returned as RejectedRow; the good rows commit.
//
// Thread safety: a Target may be used from one thread at a time; each Sink from one thread
// at a time (one per worker), except Cancel(), which any thread may call.
#ifndef FORKLIFT_SINKS_SINK_H_
#define FORKLIFT_SINKS_SINK_H_

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/result.h"
#include "sinks/chunk.h"

namespace forklift::sinks {

// The table and how the CSV maps onto it.
struct TableSpec {
  std::string schema;  // "" = the connection's default (search_path / main)
  std::string table;
  std::vector<std::string> columns;  // target columns, in the CSV's column order
  std::vector<std::string> key;      // conflict columns (upsert); a subset of columns
  bool upsert = false;               // false: plain insert (COPY)
  char delimiter = ',';
  std::string null_string;  // an unquoted field equal to this is NULL; default ""
  std::string load_id;      // the ledger's load id
  // Where the ledger (forklift_load_chunks) lives: "" = the table's schema (the
  // connection's default when that is "" too). PostgreSQL only (--ledger-schema).
  std::string ledger_schema;
  // The ledger has a last_key column (added to an existing ledger that lacks it), each
  // chunk's row records Chunk::last_key, and CommittedChunks reads it: query loads that
  // resume by key (--resume-key).
  bool ledger_last_key = false;
};

// The table as messages name it: "schema.table", or "table" with no schema (unquoted).
std::string ShownTable(const TableSpec& spec);

// Where a load goes, parsed from --to: "postgres://...", "postgresql://...", a libpq
// key=value string, or "sqlite:PATH".
struct TargetAddress {
  enum class Kind { kPostgres, kSqlite } kind = Kind::kPostgres;
  std::string conninfo;  // libpq conninfo, or the SQLite path
  std::string password;  // "" when none; masked out of every message
  std::string display;   // for messages and logs: never holds the password
  std::string identity;  // host/port/db/user or the absolute SQLite path (for the load id)
};

// InvalidArgument "--to: ..." (password masked) for an address neither kind accepts; a URL
// of another scheme (mysql://...) is named as not supported, by its scheme alone.
Result<TargetAddress> ParseTargetAddress(std::string_view to);

// `e` with its message prefixed "--to DISPLAY: " and the address's password masked out:
// how every error from a statement against the target goes out.
Error OnTarget(const TargetAddress& address, const Error& e);

// The columns of `schema`.`table` in the table's order (PostgreSQL: attnum order, generated
// columns left out), for input that has neither a header nor --columns. One short-lived
// connection. Failure: as Target::Open's (cannot connect; FailedPrecondition "no such
// table").
Result<std::vector<std::string>> ReadTableColumns(const TargetAddress& address,
                                                  const std::string& schema,
                                                  const std::string& table);

// Called with a chunk's rejected rows just before its transaction commits; an error aborts
// the commit (the transaction rolls back and WriteChunk returns that error). The loader
// records dead letters here, so that a chunk that commits has its dead letters recorded.
using BeforeCommit = std::function<Status(std::span<const RejectedRow>)>;

// Appends to *out the routing form of `value`, the text of key column `key_index` (an index
// into TableSpec::key): bytes equal for values the database takes as equal, so that every
// spelling of a key goes through one connection. A value it cannot parse is appended as
// spelled (the database refuses it, or at worst it routes by spelling as without one).
// Giving two different values one form only costs balance; giving two equal values two
// forms is the bug this exists to prevent, so where unsure it must be coarser.
// Thread safety: callable from one thread at a time; it may outlive its Target.
using KeyCanonicalizer =
    std::function<void(size_t key_index, std::string_view value, std::string* out)>;

struct ChunkWriteResult {
  int64_t rows_written = 0;
  // Of rows_written, how many became new rows and how many changed an existing one (the
  // rest changed nothing: same values, or a later row of the same key in the chunk won).
  // Known for PostgreSQL upserts; nullopt where the target does not tell (SQLite upserts,
  // a chunk an earlier attempt committed). An insert inserts every row it writes.
  std::optional<int64_t> rows_inserted;
  std::optional<int64_t> rows_updated;
  std::vector<RejectedRow> rejected;
  // An earlier attempt of this chunk had committed (its COMMIT's reply was lost and it
  // became visible only after this attempt began): this attempt rolled back, rows_written
  // is the ledger's count, and `rejected` is what this attempt had narrowed out, if it got
  // that far (before_commit may then have seen it).
  bool already_committed = false;
};

class Sink {
 public:
  virtual ~Sink() = default;

  // Writes the chunk's rows and its ledger row (rejected = parse rejects + database
  // rejects) in one transaction. Rows the database refuses for their data (SQLSTATE classes
  // 22 and 23, SQLite constraint and type errors) are narrowed out — by the error's COPY
  // line where there is one, by bisection otherwise — and returned, and the rest commits.
  // Failure: Unavailable for a transient failure (connection lost, server shutting down,
  // serialization failure, deadlock): nothing of the chunk is known to be committed unless
  // FindChunk says so after Reconnect. An attempt that finds the chunk's ledger row
  // committed meanwhile by an earlier attempt commits nothing and succeeds with
  // already_committed (FailedPrecondition when that ledger row is of other source bytes or
  // lines). Other errors (no such table, permissions; SQLite: a conflict clause or trigger
  // that rolls the whole transaction back) are not about one row and fail the chunk;
  // nothing of it commits.
  virtual Result<ChunkWriteResult> WriteChunk(const Chunk& chunk,
                                              const BeforeCommit& before_commit) = 0;

  // Opens a new connection after an Unavailable failure. Unavailable while the server is
  // still away.
  virtual Status Reconnect() = 0;

  // The ledger entry of `chunk` in this load, or nullopt when it has not committed.
  virtual Result<std::optional<LedgerEntry>> FindChunk(int64_t chunk) = 0;

  // Interrupts a statement running on this sink's connection. Thread-safe; a no-op when
  // the target has nothing to interrupt.
  virtual void Cancel() {}
};

class Target {
 public:
  virtual ~Target() = default;

  // Connects and checks that the table exists and has every column of the spec and that the
  // key columns are among them. Changes nothing in the target.
  // Failure: Unavailable (cannot connect), FailedPrecondition naming the missing table or
  // column and the target's display form, InvalidArgument for a bad spec.
  static Result<std::unique_ptr<Target>> Open(const TargetAddress& address, const TableSpec& spec);

  virtual const TargetAddress& address() const = 0;

  // How many connections this target takes at once: half of PostgreSQL's max_connections,
  // 1 for SQLite (one writer).
  virtual Result<int> MaxWorkers() = 0;

  // Creates the ledger table (forklift_load_chunks) if absent; an existing one is used as
  // it is, with no DDL (a role with SELECT, INSERT on it needs no CREATE on its schema).
  // Failure: FailedPrecondition naming what is missing (the ledger's schema), or starting
  // "permission denied" naming the role, the privilege and the object it lacks.
  virtual Status EnsureLedger() = 0;

  // Claims `spec.load_id` on this target for as long as the Target lives, so that two
  // loads with one load id never run at once (their counts would be wrong). Aborted
  // "another load with load id ID is running ..." when one holds it. PostgreSQL: a
  // session advisory lock, released when the connection ends (a SIGKILL included).
  virtual Status ClaimLoad() { return {}; }

  // The ledger entries of this load, in chunk order (EnsureLedger first).
  virtual Result<std::vector<LedgerEntry>> CommittedChunks() = 0;

  // A new connection for one worker.
  virtual Result<std::unique_ptr<Sink>> OpenSink() = 0;

  // How to route key values by value rather than by spelling (see KeyCanonicalizer); empty
  // when every key routes as spelled (one writer: nothing to route).
  virtual KeyCanonicalizer CanonicalKey() const { return {}; }
};

}  // namespace forklift::sinks

#endif  // FORKLIFT_SINKS_SINK_H_
