// `forklift worker`: runs the jobs of the PostgreSQL work queue (docs/queue.md), on any
// number of hosts, with the signals of a local map: the first SIGINT/SIGTERM claims nothing
// more and finishes what it holds; the second kills its jobs and gives their slices back.
#include <fmt/format.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "cli/signal_thread.h"
#include "core/duration_parse.h"
#include "process/orphan_watchdog.h"
#include "process/process_registry.h"
#include "queue/queue_worker.h"
#include "sinks/pg_dsn.h"

namespace forklift::cli {

int WorkerCommand(const std::vector<std::string>& args) {
  SignalThread::BlockSignals();
  CLI::App app(
      "Run the jobs of a PostgreSQL work queue that 'forklift map --queue' fills, N at a time, "
      "on this host; start one on each host, as many as wanted. Each job runs as map runs it "
      "(a process group, its --timeout and --termseq); outcomes go back to the coordinator "
      "through the queue, fenced by the lease, so a worker that lost its lease changes nothing.",
      "forklift worker");
  std::string dsn_text, schema = "forklift", run, max_idle, lease = "10s";
  int jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  app.add_option("--queue", dsn_text, "the queue's PostgreSQL DSN (postgres://user@host/db)")
      ->required();
  app.add_option("--queue-schema", schema, "the queue's schema (default forklift)");
  app.add_option("-j,--jobs", jobs, "jobs at once (default: one per core)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--run", run,
                 "only the jobs of this run (its journal id, as 'forklift runs' shows)");
  app.add_option("--max-idle", max_idle, "exit after this long without work (e.g. 30s, 5m)");
  app.add_option("--lease", lease,
                 "how long a slice's lease lasts without a heartbeat (default 10s; at least 1s): "
                 "a dead worker's jobs are taken over after about this long");
  app.footer(
      "Exit status: 0 after --max-idle or a first signal once its jobs finished; 1 after a "
      "second signal (jobs killed, slices given back); 2 for bad arguments or a queue that "
      "cannot be opened. See docs/queue.md.");
  if (int rc = ParseCli(app, args); rc >= 0) return rc;
  queue::WorkerOptions o;
  auto dsn = sinks::ParsePgDsn(dsn_text);
  if (!dsn) {
    std::string why = dsn.error().message;
    if (why.rfind("--to: ", 0) == 0) why.erase(0, 6);
    fmt::print(stderr, "forklift worker: --queue: {}\n", why);
    return 2;
  }
  o.dsn = *dsn;
  if (schema.empty()) {
    fmt::print(stderr, "forklift worker: --queue-schema: must not be empty\n");
    return 2;
  }
  o.schema = schema;
  o.slots = jobs;
  o.run = run;
  if (!max_idle.empty()) {
    auto d = core::ParseDuration(max_idle, core::BareNumber::kRefused);
    if (!d || *d <= Duration::zero()) {
      fmt::print(stderr, "forklift worker: --max-idle: bad duration '{}' (e.g. 30s, 5m)\n",
                 max_idle);
      return 2;
    }
    o.max_idle = *d;
  }
  auto l = core::ParseDuration(lease, core::BareNumber::kRefused);
  if (!l || *l < std::chrono::seconds(1)) {
    fmt::print(stderr, "forklift worker: --lease: bad duration '{}' (at least 1s, e.g. 10s)\n",
               lease);
    return 2;
  }
  o.lease = *l;
  o.worker_id = queue::NewWorkerId();
  process::ProcessRegistry registry;
  o.registry = &registry;
  // Every job carries the worker's identity: if the worker dies, its watchdog ends the
  // groups it was told of and then every process with the mark (what left its group).
  o.job_env = {{"FORKLIFT_WORKER_ID", o.worker_id}};
  auto watchdog = process::OrphanWatchdog::Start(
      {.then_exec = {"/proc/self/exe", "__end-survivors", "FORKLIFT_WORKER_ID", o.worker_id}});
  if (watchdog) {
    registry.Watch(watchdog->get());
  } else {
    fmt::print(stderr, "forklift worker: warning: {}\n", watchdog.error().message);
  }
  std::stop_source graceful, force;
  SignalThread signals(
      [&](int sig) {
        fmt::print(stderr,
                   "forklift worker: {}: claiming no more work, finishing the running jobs "
                   "(send it again to kill them and give their slices back)\n",
                   sigabbrev_np(sig));
        graceful.request_stop();
      },
      [&](int) {
        force.request_stop();
        registry.Shutdown(SIGTERM);
      });
  int status = queue::RunWorker(o, {graceful.get_token(), force.get_token()});
  if (int sig = signals.first_signal(); sig != 0 && status != 2) return 128 + sig;
  return status;
}

}  // namespace forklift::cli
