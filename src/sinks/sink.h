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

  // Table lifecycle and dialect
  // What PrepareTable does before the first chunk: nothing, empty the table once
  // (--truncate), or create a shadow table that the chunks go to and FinishTable swaps in
  // (--replace).
  enum class Lifecycle { kAppend, kTruncate, kReplace } lifecycle = Lifecycle::kAppend;
  // Insert mode: a row that breaks a unique index or constraint is skipped and counted
  // (ChunkWriteResult::rows_duplicate), not dead-lettered (--mode insert-ignore).
  bool ignore_duplicates = false;
};

// Ledger rows with these chunk numbers mark steps of the table's lifecycle, committed in
// the step's own transaction; every lookup of ordinary chunks reads chunk >= 0.
inline constexpr int64_t kLedgerTruncated = -1;  // --truncate emptied the table
inline constexpr int64_t kLedgerShadow = -2;     // --replace created the shadow table
inline constexpr int64_t kLedgerSwapped = -3;    // --replace swapped the shadow in

// The shadow table of a --replace load: a name derived from the load id and the table
// alone (a resume finds the same one), in the table's schema. Pure.
std::string ShadowTableName(const TableSpec& spec);

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
  // insert-ignore: rows skipped because they broke a unique index or constraint (not in
  // rows_written, not dead letters).
  int64_t rows_duplicate = 0;
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

  // The ledger entries of this load, in chunk order (EnsureLedger first); lifecycle
  // markers (chunk < 0) are not among them.
  virtual Result<std::vector<LedgerEntry>> CommittedChunks() = 0;

  // Table lifecycle (spec.lifecycle), after ClaimLoad and EnsureLedger, before the first
  // chunk. kTruncate: empties the table and records kLedgerTruncated in one transaction,
  // unless that marker is there already (a resume never empties it again). kReplace:
  // creates the shadow table (ShadowTableName, with the table's columns, defaults,
  // constraints and indexes) and records kLedgerShadow in one transaction, unless
  // recorded (a resume continues the shadow); OpenSink's sinks then write the shadow.
  // Failure: InvalidArgument when the ledger holds chunks of this load id but not the
  // marker (they were loaded without the option, and emptying the table now would lose
  // them), and (PostgreSQL) a table that views or other tables' foreign keys depend on
  // under kReplace; FailedPrecondition when the shadow the ledger records is gone; the
  // database's error (a table referenced by a foreign key cannot be truncated). After a
  // recorded swap, nothing (every chunk is in the ledger). kAppend: nothing.
  virtual Status PrepareTable() { return {}; }

  // kReplace, after every chunk committed: in one transaction, the old table is dropped,
  // the shadow takes its name, and kLedgerSwapped is recorded; readers see the old table
  // or the new one, never a half-loaded one. True when this call swapped; false once
  // recorded (a rerun of a finished load) and for other lifecycles. Failure: the
  // database's error (e.g. a view depends on the old table); nothing changed, the shadow
  // and the ledger stay, and a rerun swaps.
  virtual Result<bool> FinishTable() { return false; }

  // A new connection for one worker.
  virtual Result<std::unique_ptr<Sink>> OpenSink() = 0;

  // How to route key values by value rather than by spelling (see KeyCanonicalizer); empty
  // when every key routes as spelled (one writer: nothing to route).
  virtual KeyCanonicalizer CanonicalKey() const { return {}; }
};

}  // namespace forklift::sinks

#endif  // FORKLIFT_SINKS_SINK_H_
