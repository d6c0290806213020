// `forklift map`: GNU parallel's job on the engine. Parses the arguments, wires the
// signals (first: no new jobs; second: kill running ones) and runs the map.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stop_token>

#include "cli/commands.h"
#include "cli/signal_thread.h"
#include "map/map_options.h"
#include "map/map_runner.h"
#include "process/orphan_watchdog.h"
#include "process/process_registry.h"
#include "process/survivors.h"

namespace forklift::cli {

int MapCommand(const std::vector<std::string>& args) {
  // Before any thread exists (the watchdog's included), so that only the signal thread
  // takes SIGINT, SIGTERM and SIGHUP.
  SignalThread::BlockSignals(/*hangup=*/true);
  auto options = map::ParseMapArgs(args);
  if (!options) {
    fmt::print(stderr, "{}\n", options.error().message);
    return 255;  // GNU parallel's "other error"
  }
  if (options->help) {
    std::fputs(map::MapHelpText().c_str(), stdout);
    return 0;
  }
  std::stop_source graceful, force;
  process::ProcessRegistry registry;
  // Ends the running jobs' groups if forklift is SIGKILLed; without one (no fork) the jobs
  // still run, as before.
  // Every job carries FORKLIFT_MAP_ID=<this run's mark> in its environment, from its first
  // instruction: when forklift dies, the watchdog ends the groups it was told of and then
  // sweeps by the mark, which also finds a job started the moment before its announcement
  // (and what it started in a group of its own).
  const std::string mark =
      fmt::format("{}-{}", getpid(), std::chrono::steady_clock::now().time_since_epoch().count());
  auto watchdog = process::OrphanWatchdog::Start(
      {.then_exec = {"/proc/self/exe", "__end-survivors", "FORKLIFT_MAP_ID", mark}});
  if (watchdog) {
    registry.Watch(watchdog->get());
  } else {
    fmt::print(stderr, "forklift map: warning: {}\n", watchdog.error().message);
  }
  SignalThread signals(
      [&](int sig) {
        if (registry.size() == 0) {
          // Nothing is running (forklift waits for input, say from a terminal): there is
          // nothing to wait for, and the reading thread may be blocked in read(2). What
          // finished is recorded; leaving now is like a SIGKILL between jobs.
          fmt::print(stderr, "forklift map: {}: no job running, exiting\n", sigabbrev_np(sig));
          std::fflush(stderr);
          std::_Exit(128 + sig);
        }
        fmt::print(stderr,
                   "forklift map: {}: starting no new jobs, waiting for running ones "
                   "(send it again to kill them)\n",
                   sigabbrev_np(sig));
        graceful.request_stop();
      },
      [&](int) {
        force.request_stop();
        registry.Shutdown(SIGTERM);
      },
      /*hangup=*/true);
  map::MapIo io;
  io.job_env = {{"FORKLIFT_MAP_ID", mark}};
  int status = map::RunMap(*options, {graceful.get_token(), force.get_token()}, registry, io);
  if (int sig = signals.first_signal(); sig != 0) return 128 + sig;
  return status;
}

int EndSurvivorsCommand(const std::vector<std::string>& args) {
  if (args.size() != 2 || args[0].empty() || args[1].empty()) {
    fmt::print(stderr, "usage: forklift __end-survivors NAME VALUE\n");
    return 2;
  }
  std::vector<pid_t> pids = process::FindProcessesWithEnv(args[0], args[1]);
  process::EndProcesses(pids, process::TermSeq::Default());
  return 0;
}

}  // namespace forklift::cli
