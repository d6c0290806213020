// The journal: forklift's durable ledger in one SQLite file (WAL mode). It holds runs,
// per-item outcomes (checkpoints) and dead letters for every front door (batch, map, flow,
// load); `forklift runs` and `forklift dlq` read it.
//
// Durability: journal_mode=WAL with synchronous=NORMAL, so a transaction whose commit has
// returned survives a SIGKILL of the process (our target), though not necessarily a power
// cut (the last commits may roll back then; the database itself stays consistent).
//
// Thread safety: a Journal is one SQLite connection and is NOT thread-safe: use each object
// from one thread at a time. Several Journal objects, in one process or many, may use the
// same file at once: WAL readers never block the writer, and a writer waits for another up
// to the busy timeout before failing with Unavailable.
//
// Errors: Open fails with InvalidArgument; the other calls, besides the errors their own
// comments name, fail with Unavailable (another writer held the file past the busy
// timeout), DataLoss (the file is corrupt) or Internal, each naming the journal's path,
// the operation and SQLite's message. A failed write changes nothing: each call that
// writes is one transaction.
#ifndef FORKLIFT_JOURNAL_JOURNAL_H_
#define FORKLIFT_JOURNAL_JOURNAL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/result.h"
#include "sqlite/sqlite.h"

namespace forklift::journal {

struct RunInfo {
  std::string run_id;
  std::string kind;  // "batch", "map", "flow", "load"
  std::string name;
  double started_at = 0;              // unix seconds, start of the first invocation
  std::optional<double> finished_at;  // unix seconds; nullopt while running
  std::string status;                 // a RunStatus, as ToString spells it
  int64_t invocations = 0;            // how many times the run was (re)started
  std::string summary_json;           // "" until finished
  int64_t items_succeeded = 0;
  int64_t items_failed = 0;
};

// A run's id and status, without its item counts.
struct RunState {
  std::string run_id;
  std::string status;  // a RunStatus, as ToString spells it
};

// The outcome of one item, as a front door records it.
struct ItemRecord {
  std::string key;  // arbitrary bytes, NULs included
  bool ok = false;
  std::optional<ErrorCode> code;  // when !ok
  std::string message;            // when !ok
  // When !ok: the item was interrupted by a stop (killed, or it saw the cancellation)
  // rather than failing on its own; recorded as cancelled, which no resume skips.
  bool cancelled = false;
  int attempts = 0;
  int64_t elapsed_us = 0;
  // The front door's own JSON about the outcome (a flow task's state, exit status, start
  // and attempts); "" stores none.
  std::string detail;
};

// What the journal knows of one item of a run: nothing (it never ran, or never finished
// before a SIGKILL), succeeded, failed on its own, or cancelled while running (it did not
// finish; resumes run it again).
enum class ItemState { kUnknown, kSucceeded, kFailed, kCancelled };

// "succeeded", "failed", "cancelled" (items.status); "unknown" for kUnknown, which is
// never stored. Thread-safe.
std::string_view ToString(ItemState state);
// The inverse of ToString for the stored states; nullopt for any other text ("unknown"
// included). Thread-safe.
std::optional<ItemState> ParseItemState(std::string_view text);

// How a run of any front door stands (runs.status): every report of a run (`forklift
// runs`, a flow's report, its hooks) says what the journal says.
enum class RunStatus {
  kRunning,
  kSucceeded,  // it finished and nothing it needed failed
  kFailed,     // something it needed failed, was blocked, or never ran
  kCancelled,  // interrupted by a signal: what was running was waited for (or killed)
  kKilled,     // the process died (SIGKILL, a crash); found so by a later invocation
};

// "running", "succeeded", "failed", "cancelled", "killed" (as the journal stores them).
// Thread-safe.
std::string_view ToString(RunStatus status);
// The inverse of ToString; nullopt for any other text. Thread-safe.
std::optional<RunStatus> ParseRunStatus(std::string_view text);

// One recorded item of a run, as ListItems returns it.
struct ItemRow {
  std::string key;
  ItemState state = ItemState::kUnknown;  // never kUnknown in a listed row
  int attempts = 0;
  std::optional<ErrorCode> code;
  std::string message;
  int64_t elapsed_us = 0;
  std::string detail;  // "" when none was recorded
};

// Something that failed for good (a bad row, an item out of retries), kept to be listed
// and retried. Empty source/position/payload are stored as NULL.
struct DeadLetter {
  int64_t id = 0;  // assigned by PutDeadLetters; ignored on input
  std::string run_id;
  std::string key;       // arbitrary bytes
  std::string source;    // e.g. a file name
  std::string position;  // e.g. "line 17"
  std::string payload;   // the raw input, arbitrary bytes
  std::string reason;
  std::optional<ErrorCode> code;
  int attempts = 0;
  // The unit of work whose attempt rejected it (a load's chunk number), so that a retry
  // can tell letters of committed work from those of an attempt that never committed.
  // nullopt for letters of other kinds, and for those written before journal schema 2.
  std::optional<int64_t> chunk;
  double created_at = 0;             // set by PutDeadLetters; ignored on input
  std::optional<double> retried_at;  // set by MarkDeadLettersRetried; ignored on input
};

struct JournalOptions {
  // How long a write waits for another connection's write transaction before it fails
  // with Unavailable. Default: 5000 ms.
  int busy_timeout_ms = 5000;
};

// Where the journal is: `flag` (a --journal option or BatchOptions.journal_path) when not
// empty, else $FORKLIFT_JOURNAL, else .forklift/journal.db. Thread-safe.
std::string ResolveJournalPath(std::string_view flag);

class Journal {
 public:
  // Opens or creates the journal at `path`, creating missing parent directories, switches
  // it to WAL mode and creates or upgrades the schema inside a write transaction, so that a
  // read-only file or directory is refused here rather than at the first checkpoint.
  // On success, a journal ready for use. On failure (empty path, a parent that is a file, an
  // unwritable directory or file, a file that is not a database, a journal written by a
  // newer forklift), InvalidArgument "journal: cannot open '<path>' for writing: <reason>";
  // the caller prefixes the option that named the path.
  static Result<std::unique_ptr<Journal>> Open(const std::string& path);
  static Result<std::unique_ptr<Journal>> Open(const std::string& path,
                                               const JournalOptions& options);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // The path given to Open.
  const std::string& path() const { return path_; }

  // Starts a run, or restarts one: inserted as running with invocations 1, or set back to
  // running with invocations + 1 and no finished_at or summary; a restart keeps the
  // run's first started_at (the run began then; `forklift runs` shows that).
  // Item outcomes of earlier invocations are kept (that is what resume reads).
  Status BeginRun(std::string_view run_id, std::string_view kind, std::string_view name);

  // Records `status` for a run now (kRunning too: a load records its configuration that
  // way before it writes) with its summary, a JSON object ("" stores none). kKilled: a
  // later invocation found it running with no process left. Fails with NotFound when
  // there is no such run.
  Status FinishRun(std::string_view run_id, RunStatus status, std::string_view summary_json);

  // The run with its item counts, or nullopt when there is no such run.
  Result<std::optional<RunInfo>> GetRun(std::string_view run_id);
  // The newest finished run (one with a summary) of this kind and name; nullopt when there
  // is none. One indexed-order query, whatever the journal's history.
  Result<std::optional<RunInfo>> LatestFinishedRun(std::string_view kind, std::string_view name);

  // Runs with their item counts, newest started_at first. kind "" lists every kind;
  // limit <= 0 means no limit.
  Result<std::vector<RunInfo>> ListRuns(std::string_view kind, int limit);

  // The runs of this kind and name, newest started_at first, without item counts: what a
  // front door scans as it starts (a flow: its killed runs, `--resume last`), so its cost
  // follows the number of runs, not of their items (ListRuns counts every run's items).
  Result<std::vector<RunState>> ListRunStates(std::string_view kind, std::string_view name);

  // Records outcomes in one transaction (group commit): all or none are stored. An outcome
  // replaces the item's earlier one, except that a succeeded item is never set back to
  // failed. The run need not exist. Hot path: prepared once per Journal; batches of about
  // a thousand records amortize the commit.
  Status RecordItems(std::string_view run_id, std::span<const ItemRecord> records);

  // Forgets every item outcome of a run (a fresh, non-resuming invocation).
  Status ClearItems(std::string_view run_id);

  // What the journal knows of one item. Hot path: one indexed lookup, a few microseconds.
  Result<ItemState> GetItemState(std::string_view run_id, std::string_view key);

  // Every recorded item of a run, in key order. For front doors with few items per run
  // (a flow's tasks); a batch's millions are read with GetItemState instead.
  Result<std::vector<ItemRow>> ListItems(std::string_view run_id);

  // Items of a run with a recorded outcome: ok = true counts the succeeded, false the
  // failed (not the cancelled), nullopt all.
  Result<uint64_t> CountItems(std::string_view run_id, std::optional<bool> ok);

  // Adds dead letters in one transaction (all or none), idempotent by (run_id, key): a
  // pending (not yet retried) letter with the same key is updated in place (it keeps its
  // id; ids are never reused), so a front door that redoes a unit of work after a crash (a
  // load chunk whose commit was lost) records its dead letters once. Each letter's `chunk`
  // is stored as given. Returns the ids, in order.
  Result<std::vector<int64_t>> PutDeadLetters(std::span<const DeadLetter> letters);

  // The dead letters of one attempt of unit `chunk` of run `run_id` (a load's chunk), in
  // one transaction: like PutDeadLetters with each letter's chunk set to `chunk`, and the
  // run's other pending letters of that chunk — left by an attempt that never committed or
  // that rejected more — are deleted. So the chunk's pending letters are always those of
  // its latest attempt; retried letters are history and stay. A letter recorded again
  // keeps its id; a deleted letter's id may be given again (SQLite reuses the largest),
  // so callers must not have used it outside the journal (`dlq retry` only numbers letters
  // of committed chunks, which no later attempt replaces). An empty `letters` clears the
  // chunk's pending letters, and when there are none it only reads (no write lock).
  // Returns the ids, in order. Fails with InvalidArgument, writing nothing, when a letter's
  // run_id is not `run_id`.
  Result<std::vector<int64_t>> PutChunkDeadLetters(std::string_view run_id, int64_t chunk,
                                                   std::span<const DeadLetter> letters);

  // Dead letters of a run ("" = of every run) in the order they were added; those already
  // retried only when include_retried.
  Result<std::vector<DeadLetter>> ListDeadLetters(std::string_view run_id, bool include_retried);

  // Sets retried_at to now on these dead letters, in one transaction. Unknown ids are
  // ignored, so a retry that races another is harmless.
  Status MarkDeadLettersRetried(std::span<const int64_t> ids);

  // Deletes the pending (not yet retried) dead letters of run `run_id`, or only its letter
  // `id` when given, in one statement (`forklift dlq discard`). Returns how many were
  // deleted: 0 when none matched (no such run, letter, or a letter already retried).
  Result<int64_t> DiscardDeadLetters(std::string_view run_id, std::optional<int64_t> id);

 private:
  struct ChunkToReplace {
    std::string_view run_id;
    int64_t chunk = 0;
  };
  Journal(std::string path, sqlite::Db db);
  // The cached statement for `slot`, prepared on first use.
  Result<const sqlite::Statement*> Cached(int slot);
  // PutDeadLetters, or PutChunkDeadLetters when `chunk` is given.
  Result<std::vector<int64_t>> InsertDeadLetters(std::span<const DeadLetter> letters,
                                                 std::optional<ChunkToReplace> chunk);
  // An error for the connection's last failure, classified by SQLite's result code.
  Error SqlError(std::string_view operation) const;

  std::string path_;
  sqlite::Db db_;
  std::vector<sqlite::Statement> stmts_;  // cached prepared statements, by slot
};

}  // namespace forklift::journal

#endif  // FORKLIFT_JOURNAL_JOURNAL_H_
