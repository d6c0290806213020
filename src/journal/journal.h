// The journal: forklift's durable ledger in one SQLite file (WAL mode). It holds runs,
// per-item outcomes (checkpoints) and dead letters for every front door.
//
// Durability: synchronous=NORMAL in WAL mode, so a committed transaction survives a
// SIGKILL of the process (our target), though not necessarily a power cut.
//
// Thread safety: a Journal is one SQLite connection: use each object from one thread at a
// time. Several Journal objects, in one process or many, may use the same file at once
// (WAL readers never block the writer; writers wait up to busy_timeout).
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

struct sqlite3;
struct sqlite3_stmt;

namespace forklift::journal {

struct RunInfo {
  std::string run_id;
  std::string kind;  // "batch", "map", "flow", "load"
  std::string name;
  double started_at = 0;                  // unix seconds
  std::optional<double> finished_at;      // unix seconds
  std::string status;                     // running, succeeded, failed, cancelled
  int64_t invocations = 0;                // how many times the run was (re)started
  std::string summary_json;               // "" until finished
  int64_t items_succeeded = 0;
  int64_t items_failed = 0;
};

struct ItemRecord {
  std::string key;  // arbitrary bytes
  bool ok = false;
  std::optional<ErrorCode> code;  // when !ok
  std::string message;            // when !ok
  int attempts = 0;
  int64_t elapsed_us = 0;
};

// What the journal knows of one item of a run.
enum class ItemState { kUnknown, kSucceeded, kFailed };

struct DeadLetter {
  int64_t id = 0;  // assigned by AddDeadLetters
  std::string run_id;
  std::string key;
  std::string source;    // e.g. a file name
  std::string position;  // e.g. "line 17"
  std::string payload;   // the raw input
  std::string reason;
  std::optional<ErrorCode> code;
  int attempts = 0;
  double created_at = 0;
  std::optional<double> retried_at;
};

class Journal {
 public:
  // Opens or creates the journal at `path`, creating missing parent directories, and
  // proves it writable by creating the schema in a write transaction. On failure,
  // InvalidArgument "cannot open journal '<path>' for writing: <reason>".
  static Result<std::unique_ptr<Journal>> Open(const std::string& path);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  const std::string& path() const { return path_; }

  // Starts (or restarts) a run: inserted as running with invocations 1, or set back to
  // running with invocations + 1.
  Status BeginRun(std::string_view run_id, std::string_view kind, std::string_view name);
  // Marks a run finished with `status` and its summary (a JSON object).
  Status FinishRun(std::string_view run_id, std::string_view status,
                   std::string_view summary_json);
  // nullopt when there is no such run.
  Result<std::optional<RunInfo>> GetRun(std::string_view run_id);
  // Newest first; kind "" lists every kind; limit <= 0 means no limit.
  Result<std::vector<RunInfo>> ListRuns(std::string_view kind, int limit);

  // Records outcomes in one transaction (group commit). A succeeded item is never set back
  // to failed by a later record.
  Status RecordItems(std::string_view run_id, std::span<const ItemRecord> records);
  // Forgets every item outcome of a run (a fresh, non-resuming invocation).
  Status ClearItems(std::string_view run_id);
  Result<ItemState> GetItemState(std::string_view run_id, std::string_view key);
  Result<bool> IsSucceeded(std::string_view run_id, std::string_view key);
  // Items of a run; ok = nullopt counts all.
  Result<uint64_t> CountItems(std::string_view run_id, std::optional<bool> ok);

  // Adds dead letters in one transaction; their ids are assigned in order.
  Result<std::vector<int64_t>> AddDeadLetters(std::span<const DeadLetter> letters);
  Result<std::vector<DeadLetter>> ListDeadLetters(std::string_view run_id, bool include_retried);
  Status MarkDeadLettersRetried(std::span<const int64_t> ids);

 private:
  class Stmt;
  Journal(std::string path, sqlite3* db);
  Status Exec(const char* sql, const char* what);
  Result<sqlite3_stmt*> Prepare(int slot, const char* sql);
  Error SqlError(const char* what) const;

  std::string path_;
  sqlite3* db_;
  std::vector<sqlite3_stmt*> stmts_;  // cached prepared statements, by slot
};

}  // namespace forklift::journal

#endif  // FORKLIFT_JOURNAL_JOURNAL_H_
