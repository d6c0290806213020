// QueueCoordinator: the coordinator's side of the queue (`map --queue`). Job attempts
// submitted from any number of threads are enqueued in slices (what arrives within a few
// milliseconds, up to `slice_items`, is one slice: one INSERT, one commit), and their
// outcomes are followed by polling; each caller blocks until its job has an outcome, so
// map's engine (retries, --halt, -k, the journal) works on them as on local processes.
//
// One thread (the pump) owns the connection: enqueues, polls, reconnects after a loss
// (the run's advisory lock is taken again), and says on stderr when no worker is attached.
//
// Thread safety: Run() is thread-safe; Start and Finish are for the owning thread.
#ifndef FORKLIFT_QUEUE_QUEUE_COORDINATOR_H_
#define FORKLIFT_QUEUE_QUEUE_COORDINATOR_H_

#include <functional>
#include <memory>
#include <stop_token>
#include <string>

#include "forklift/clock.h"
#include "forklift/result.h"
#include "process/subprocess.h"
#include "queue/queue_store.h"

namespace forklift::queue {

struct CoordinatorOptions {
  sinks::PgDsn dsn;                 // --queue; required
  std::string schema = "forklift";  // --queue-schema
  RunSpec run;                      // the journal's run id and kind
  // A rerun of a run the queue may still hold (a resume): its items are found, not
  // enqueued again. False (default): a fresh run (an old one of that name is dropped).
  bool adopt = false;
  size_t slice_items = 100;            // --slice: most items per slice; >= 1
  std::string label = "forklift map";  // prefix of messages
  int stderr_fd = 2;
};

class QueueCoordinator {
 public:
  // Opens the queue (creating or migrating its schema) and the run. On failure, the
  // store's errors (FailedPrecondition: another coordinator follows the run).
  static Result<std::unique_ptr<QueueCoordinator>> Start(const CoordinatorOptions& options);
  // Finish(false) when still running.
  ~QueueCoordinator();
  QueueCoordinator(const QueueCoordinator&) = delete;
  QueueCoordinator& operator=(const QueueCoordinator&) = delete;

  // Enqueues attempt `attempt` of job `key` (argv, timeout and termseq of `spawn`) and
  // blocks until a worker recorded its outcome. kCallback and kInherit output modes get
  // the job's output when it ends (on_output, or fd 1 and 2), kCapture in the Completion.
  // On success, the worker's Completion; `stop` makes it return at once with a Completion
  // marked cancelled (the worker's job is ended by Finish). On failure, Internal with the
  // reason for a dead-lettered job ("lost its worker 3 times ..."), DataLoss for an outcome
  // that does not decode. Thread-safe.
  Result<process::Completion> Run(const std::string& key, int attempt,
                                  const process::SpawnOptions& spawn, const std::stop_token& stop);

  // Enqueues `item` (its key and attempt unique in the run) and returns at once; `done`
  // gets its outcome once a worker recorded it, or Cancelled from CancelAll or Finish.
  // Called exactly once, on the pump thread (or on this one when the run is over), with
  // no lock held. Thread-safe.
  using Done = std::function<void(Result<ItemOutcome>)>;
  void Submit(QueueItem item, Done done);
  // Every item Submit gave that has no outcome yet gets Cancelled now. Thread-safe.
  void CancelAll();

  // Ends the run in the queue: cancels it (workers kill what they still run of it) and
  // drops its partitions. Idempotent.
  void Finish();

 private:
  struct State;
  explicit QueueCoordinator(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace forklift::queue

#endif  // FORKLIFT_QUEUE_QUEUE_COORDINATOR_H_
