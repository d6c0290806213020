// QueueStore: the work-queue protocol on PostgreSQL, one statement (or one transaction)
// per step, for the coordinator (`map --queue`) and for `forklift worker`.
//
// Model (docs/queue.md). A run holds items (one job attempt each, keyed by the journal's
// key and the attempt) grouped in slices; a worker leases a whole slice (FOR UPDATE SKIP
// LOCKED), so a million items are thousands of row updates. A lease has a token (a
// sequence value, never reused) and an expiry on the database's clock; every write a
// worker makes (an outcome, a renewal, the slice's end) is a compare-and-set on the
// slice's state and token, so a worker that lost its lease changes nothing. Outcomes are
// insert-only with the item as primary key: an item has at most one. The reaper returns
// expired slices (a "loss"); a lost slice with more than one item left is split into
// one-item slices, and a one-item slice lost `max_losses` times is dead-lettered (an
// outcome with the reason). Each run's slices, items and outcomes live in partitions of
// their own, dropped with the run (no row deletes, no bloat).
//
// Lease times: every expiry is computed and compared by the server (clock_timestamp()),
// never on a host's clock.
//
// Errors: the PgConnection's (Unavailable for a lost connection: reconnect and go on).
// Thread safety: a QueueStore is not thread-safe (one connection); use one per thread.
#ifndef FORKLIFT_QUEUE_QUEUE_STORE_H_
#define FORKLIFT_QUEUE_QUEUE_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/clock.h"
#include "forklift/result.h"
#include "sinks/pg_connection.h"
#include "sinks/pg_dsn.h"

namespace forklift::queue {

// The schema version this build creates and reads (queue_meta.version).
inline constexpr int kSchemaVersion = 1;
// A one-item slice lost this many times is dead-lettered. Default of RunSpec::max_losses.
inline constexpr int kDefaultMaxLosses = 3;

struct RunSpec {
  std::string name;  // the journal's run id ("map-0123abcd..."); unique in the queue
  std::string kind;  // "map"
  int max_losses = kDefaultMaxLosses;
};

// One item as enqueued and as a worker claims it.
struct QueueItem {
  int64_t id = 0;       // assigned by Enqueue
  std::string key;      // the journal's key
  int attempt = 1;      // the coordinator's attempt number
  std::string payload;  // opaque bytes (queue_codec.h)
};

// A slice a worker holds: its lease token fences every write.
struct Lease {
  int64_t run_id = 0;
  int64_t slice_id = 0;
  int64_t token = 0;
  std::vector<QueueItem> items;  // those without an outcome yet, in id order
};

enum class OutcomeStatus { kDone, kDead };

struct ItemOutcome {
  int64_t item_id = 0;
  OutcomeStatus status = OutcomeStatus::kDone;
  std::string result;  // kDone: the worker's result bytes; kDead: the reason (text)
};

// What one Reap did.
struct ReapReport {
  int expired = 0;        // leases returned
  int split = 0;          // slices split into one-item slices
  int dead_lettered = 0;  // items given up
};

class QueueStore {
 public:
  // Connects to `dsn` and, unless it is there at kSchemaVersion, creates or migrates the
  // queue's schema `schema` (under an advisory lock, so that concurrent first starts do
  // not race). On failure: the connection's errors; FailedPrecondition when the schema
  // holds a newer version than this build knows ("upgrade forklift"), InvalidArgument for
  // an empty schema name.
  static Result<std::unique_ptr<QueueStore>> Open(const sinks::PgDsn& dsn, std::string schema);

  // --- coordinator ---

  // Creates the run, or returns the id of the unfinished run of that name when `adopt`
  // (a coordinator's rerun: what it enqueued before is found, not enqueued twice). A
  // fresh start (`adopt` false) drops an old run of that name first. Takes the run's
  // session advisory lock, held for this connection's life: a second coordinator of the
  // run gets FailedPrecondition ("another coordinator is following run NAME").
  Result<int64_t> OpenRun(const RunSpec& spec, bool adopt);
  // Enqueues `items` as one slice of run `run_id`. An item whose (key, attempt) the run
  // already holds is not inserted again: its existing id is returned. On success, the
  // ids in the order of `items`.
  Result<std::vector<int64_t>> Enqueue(int64_t run_id, const std::vector<QueueItem>& items);
  // The outcomes recorded for those of `item_ids` that have one. Read-only.
  Result<std::vector<ItemOutcome>> Outcomes(int64_t run_id, const std::vector<int64_t>& item_ids);
  // How many workers renewed their registration within `within` (the database's clock).
  Result<int64_t> LiveWorkers(Duration within);
  // Marks the run cancelled (workers stop its items at their next heartbeat).
  Status CancelRun(int64_t run_id);
  // Drops the run's partitions and its row: its rows leave without a row delete.
  Status DropRun(int64_t run_id);

  // --- worker ---

  // Registers a worker identity (unique per process start; never reused).
  Status RegisterWorker(std::string_view worker_id, std::string_view host, int pid, int slots);
  // Marks the worker gone (a clean exit).
  Status UnregisterWorker(std::string_view worker_id);
  // Leases up to `max_slices` ready slices of open runs (of run `run_name` when not
  // empty) for `lease` from now on the server's clock, with fresh tokens, and reads their
  // items that have no outcome yet, in one statement. Skips slices other transactions hold
  // (SKIP LOCKED).
  Result<std::vector<Lease>> Claim(std::string_view worker_id, int max_slices, Duration lease,
                                   std::string_view run_name = {});
  // Records outcomes of items of one leased slice in one transaction, fenced: nothing is
  // written unless the slice is still leased with `token`. An item that already has an
  // outcome keeps it. On success, true when the lease held (the outcomes are recorded),
  // false when it was lost (nothing written). `finish`: also end the lease (the slice is
  // done) in the same statement, as FinishSlice would, when the lease held.
  Result<bool> RecordOutcomes(const Lease& lease, const std::vector<ItemOutcome>& outcomes,
                              bool finish = false);
  // Outcomes of one leased slice for Exchange; `finish`: its last ones (end the lease).
  struct SliceOutcomes {
    const Lease* lease = nullptr;
    std::vector<ItemOutcome> outcomes;
    bool finish = false;
  };
  struct Exchanged {
    std::vector<int64_t> held;  // slice ids of `records` whose lease held (recorded)
    std::vector<Lease> claimed;
  };
  // RecordOutcomes of several slices (one statement, each fenced by its own slice's token
  // and lease as RecordOutcomes is), then, when `claim_slices` > 0, Claim(worker_id,
  // claim_slices, lease, run_name), in one transaction: one commit (one WAL flush) for a
  // worker's round of outcomes and its next claim. A slice of `records` missing from
  // `held` was lost (nothing of it written).
  Result<Exchanged> Exchange(const std::vector<SliceOutcomes>& records, std::string_view worker_id,
                             int claim_slices, Duration lease, std::string_view run_name = {});
  // Ends the lease (the slice is done), fenced like RecordOutcomes. False: lease lost.
  Result<bool> FinishSlice(const Lease& lease);
  // Extends every lease in `held` that is still this worker's with its token by `lease`
  // and refreshes the worker's registration. On success, the slice ids of `held` whose
  // lease held; a missing one was lost (reaped, its run cancelled or dropped).
  Result<std::vector<int64_t>> Renew(std::string_view worker_id, const std::vector<Lease>& held,
                                     Duration lease);
  // Gives leases back unfinished (a forced stop): not counted as a loss. Fenced.
  Status Release(const std::vector<Lease>& held);
  // Returns every lease expired on the server's clock to the ready state, counting a loss,
  // splitting lost slices with several items left, dead-lettering a one-item slice at its
  // run's max_losses. Safe to run from any number of processes at once.
  Result<ReapReport> Reap();

  sinks::PgConnection& connection() { return *conn_; }
  const std::string& schema() const { return schema_; }

 private:
  QueueStore(std::unique_ptr<sinks::PgConnection> conn, std::string schema);
  Status Migrate();
  // schema_ quoted, then "." and `table`: "\"forklift\".runs".
  std::string T(std::string_view table) const;

  std::unique_ptr<sinks::PgConnection> conn_;
  std::string schema_;
};

// Milliseconds of `d`, at least 1, for the interval arithmetic on the server.
int64_t Millis(Duration d);

}  // namespace forklift::queue

#endif  // FORKLIFT_QUEUE_QUEUE_STORE_H_
