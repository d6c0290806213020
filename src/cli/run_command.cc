// `forklift run flow.toml` and `forklift report RUN_ID -o report.html`.
#include <fmt/format.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <stop_token>

#include "forklift/batch.h"
#include "journal/journal.h"
#include "cli/commands.h"
#include "cli/signal_thread.h"
#include "flow/flow_file.h"
#include "flow/flow_report.h"
#include "flow/flow_runner.h"

namespace forklift::cli {

int RunCommand(const std::vector<std::string>& args) {
  CLI::App app("Run a flow: a DAG of shell tasks with logs, retries and a breakdown.",
               "forklift run");
  std::string flow_path, journal, resume, only;
  int jobs = static_cast<int>(BatchOptions::DefaultWorkerCount());
  bool force = false, dry_run = false;
  app.add_option("flow", flow_path, "the flow file (TOML)")->required();
  app.add_option("--jobs,-j", jobs, "tasks running at once (default: one per core)")
      ->check(CLI::Range(1, 1 << 30));
  app.add_option("--journal", journal, "journal file (default $FORKLIFT_JOURNAL or .forklift/journal.db)");
  app.add_option("--resume", resume, "rerun only what failed, was blocked or never ran in RUN_ID");
  app.add_option("--only", only, "run this task and what it needs");
  app.add_flag("--force", force, "run tasks even when their outputs are up to date");
  app.add_flag("--dry-run", dry_run, "print the plan by levels, run nothing");
  if (int rc = ParseCli(app, args); rc >= 0) return rc;

  auto spec = flow::LoadFlowFile(flow_path);
  if (!spec) {
    fmt::print(stderr, "forklift run: {}\n", spec.error().message);
    return 2;
  }
  std::stop_source graceful, force_stop;
  SignalThread signals(
      [&](int sig) {
        fmt::print(stderr, "forklift run: {}: starting no new tasks, waiting for running ones "
                           "(send it again to kill them)\n", sigabbrev_np(sig));
        graceful.request_stop();
      },
      [&](int) { force_stop.request_stop(); });
  flow::FlowRunOptions options;
  options.jobs = jobs;
  options.journal_path = journal::ResolveJournalPath(journal);
  if (!resume.empty()) options.resume_run_id = resume;
  if (!only.empty()) options.only = only;
  options.force = force;
  options.dry_run = dry_run;
  options.graceful = graceful.get_token();
  options.force_stop = force_stop.get_token();
  auto result = flow::RunFlow(*spec, options);
  if (!result) {
    fmt::print(stderr, "forklift run: {}\n", result.error().message);
    return 2;
  }
  if (int sig = signals.first_signal(); sig != 0) return 128 + sig;
  return result->succeeded ? 0 : 1;
}

int ReportCommand(const std::vector<std::string>& args) {
  CLI::App app("Write the HTML report of a flow run.", "forklift report");
  std::string run_id, out = "report.html", journal;
  app.add_option("run_id", run_id, "the run (see forklift runs --kind flow)")->required();
  app.add_option("-o,--output", out, "the HTML file to write (default report.html)");
  app.add_option("--journal", journal, "journal file (default $FORKLIFT_JOURNAL or .forklift/journal.db)");
  if (int rc = ParseCli(app, args); rc >= 0) return rc;
  auto report = flow::LoadRunReport(journal::ResolveJournalPath(journal), run_id);
  if (!report) {
    fmt::print(stderr, "forklift report: {}\n", report.error().message);
    return 2;
  }
  std::ofstream file(out, std::ios::trunc | std::ios::binary);
  file << flow::RenderReportHtml(*report);
  if (!file.flush()) {
    fmt::print(stderr, "forklift report: -o: cannot write '{}'\n", out);
    return 2;
  }
  fmt::print("wrote {}\n", out);
  return 0;
}

}  // namespace forklift::cli
