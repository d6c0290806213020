// `forklift run flow.toml` and `forklift report RUN_ID -o report.html`.
#include <fmt/format.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <stop_token>

#include "cli/commands.h"
#include "cli/signal_thread.h"
#include "core/duration_parse.h"
#include "flow/flow_file.h"
#include "flow/flow_report.h"
#include "flow/flow_runner.h"
#include "forklift/batch.h"
#include "journal/journal.h"

namespace forklift::cli {

int RunCommand(const std::vector<std::string>& args) {
  CLI::App app(
      "Run a flow: a DAG of shell tasks with logs, retries and a breakdown.\n"
      "A flow's journal and logs live beside its flow file (.forklift/), whatever\n"
      "directory forklift starts in; one invocation of a flow runs at a time.\n"
      "Exit status: 0 succeeded, 1 a critical task failed, 2 bad input or state,\n"
      "75 the flow is already running, 128+N after signal N.",
      "forklift run");
  std::string flow_path, journal, resume, only, wait;
  int jobs = static_cast<int>(BatchOptions::DefaultWorkerCount());
  bool force = false, dry_run = false;
  app.add_option("flow", flow_path, "the flow file (TOML)")->required();
  const char* kWhat = "What runs";
  const char* kState = "State and resume";
  app.add_option("--jobs,-j", jobs, "tasks running at once (default: one per core)")
      ->check(CLI::Range(1, 1 << 30))
      ->group(kWhat);
  app.add_option("--only", only, "run this task and what it needs")->group(kWhat);
  app.add_flag("--force", force, "run tasks even when their outputs are up to date")->group(kWhat);
  app.add_flag("--dry-run", dry_run, "print the plan by levels, run nothing")->group(kWhat);
  bool progress = false;
  app.add_flag("--progress", progress,
               "a progress line on stderr every 10s (done/total tasks, failed, rate, ETA)")
      ->group("Output");
  app.add_option("--resume", resume,
                 "rerun only what failed, was cancelled, blocked or never ran in RUN_ID "
                 "('last': the flow's latest run that did not succeed)")
      ->group(kState);
  app.add_option("--journal", journal,
                 "journal file (default $FORKLIFT_JOURNAL, else .forklift/journal.db beside "
                 "the flow file)")
      ->group(kState);
  app.add_option("--wait", wait,
                 "when the flow is already running, wait up to DUR (e.g. 10m) for it to end "
                 "instead of exiting 75")
      ->group(kState);
  if (int rc = ParseCli(app, args); rc >= 0) return rc;

  std::optional<Duration> wait_for;
  if (!wait.empty()) {
    // As map's options: a bare number is seconds ("--wait 30").
    auto d = core::ParseDuration(wait, core::BareNumber::kSeconds);
    if (!d) {
      fmt::print(stderr, "forklift run: --wait: {}\n", d.error().message);
      return 2;
    }
    wait_for = *d;
  }
  auto spec = flow::LoadFlowFile(flow_path);
  if (!spec) {
    fmt::print(stderr, "forklift run: {}\n", spec.error().message);
    return 2;
  }
  for (const std::string& w : spec->warnings) fmt::print(stderr, "forklift run: warning: {}\n", w);
  StopSignals signals("forklift run",
                      "starting no new tasks, waiting for running ones (send it again to "
                      "kill them)");
  flow::FlowRunOptions options;
  options.jobs = jobs;
  options.journal_path = flow::ResolveFlowJournalPath(journal, flow_path);
  options.wait_for_lock = wait_for;
  if (!resume.empty()) options.resume_run_id = resume;
  if (!only.empty()) options.only = only;
  options.force = force;
  options.dry_run = dry_run;
  options.progress = progress;
  options.graceful = signals.graceful();
  options.force_stop = signals.force();
  auto result = flow::RunFlow(*spec, options);
  if (!result) {
    fmt::print(stderr, "forklift run: {}\n", result.error().message);
    // Another invocation holds the flow's lock: EX_TEMPFAIL, "try again later".
    return result.error().code == ErrorCode::kAborted ? 75 : 2;
  }
  if (int sig = signals.first_signal(); sig != 0) return 128 + sig;
  return result->succeeded ? 0 : 1;
}

int ReportCommand(const std::vector<std::string>& args) {
  CLI::App app("Write the HTML report of a flow run.", "forklift report");
  std::string run_id, out = "report.html", journal, flow_path;
  app.add_option("run_id", run_id, "the run (see forklift runs --kind flow)")->required();
  app.add_option("-o,--output", out, "the HTML file to write (default report.html)");
  app.add_option("--flow", flow_path, "the run's flow file: read the journal beside it");
  app.add_option("--journal", journal,
                 "journal file (default $FORKLIFT_JOURNAL, else .forklift/journal.db beside "
                 "--flow, else in the current directory)");
  if (int rc = ParseCli(app, args); rc >= 0) return rc;
  std::string path = flow_path.empty() ? journal::ResolveJournalPath(journal)
                                       : flow::ResolveFlowJournalPath(journal, flow_path);
  auto report = flow::LoadRunReport(path, run_id);
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
