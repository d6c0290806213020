#include "cli/commands.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <ctime>

#include "forklift/version.h"

namespace forklift::cli {
namespace {

constexpr const char* kUsage =
    "usage: forklift COMMAND [ARGS...]\n"
    "\n"
    "Runs batch work in parallel, bounded, isolated, resumable and observable: a command\n"
    "per input item, a DAG of tasks, a CSV load into a database. Every run is recorded in\n"
    "a journal, so an interrupted run resumes where it stopped.\n"
    "\n"
    "commands:\n"
    "  map        run a command per input item (GNU parallel's syntax)\n"
    "  worker     run the jobs of a PostgreSQL work queue (map --queue) on this host\n"
    "  run        run a flow file: a DAG of tasks with logs and a breakdown\n"
    "  report     write the HTML report of a flow run\n"
    "  load       load files (CSV, JSON Lines) or a query's rows into PostgreSQL or SQLite,\n"
    "             in parallel chunks, exactly once\n"
    "  dlq        list, show or retry the rows a load rejected\n"
    "  runs       list past runs recorded in the journal\n"
    "  version    print the version and the git revision it was built from\n"
    "\n"
    "Run 'forklift COMMAND --help' (or 'forklift help COMMAND') for a command's options;\n"
    "man pages: forklift(1), forklift-COMMAND(1), forklift-flow(5). The C++ API (run_batch)\n"
    "is the library libforklift: docs/batch.md, docs/install.md.\n";

}  // namespace

std::string LocalTime(double unix_seconds) {
  auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

int ParseCli(CLI::App& app, const std::vector<std::string>& args) {
  // One line naming the command and the option, as forklift's own errors do.
  app.failure_message([](const CLI::App* a, const CLI::Error& e) {
    std::string name = a->get_name();
    for (const CLI::App* p = a->get_parent(); p; p = p->get_parent())
      name = p->get_name() + " " + name;
    return fmt::format("{}: {} (see {} --help)\n", name, e.what(), name);
  });
  // CLI11 takes the arguments last-first when given a vector.
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    // --help exits 0; every usage error exits 2, whatever CLI11's own code for it.
    return app.exit(e) == 0 ? 0 : 2;
  }
  return -1;
}

int Dispatch(const std::vector<std::string>& args) {
  // `forklift help CMD` is `forklift CMD --help`, so the two texts cannot differ.
  if (args.size() >= 2 && args[0] == "help") return Dispatch({args[1], "--help"});
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string& cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "version" || cmd == "--version") {
    if (rest.size() == 1 && (rest[0] == "-h" || rest[0] == "--help")) {
      std::fputs(
          "usage: forklift version\n"
          "\n"
          "Prints forklift's version and the git revision it was built from\n"
          "(\"-dirty\": with uncommitted changes; \"unknown\": not built from a checkout).\n",
          stdout);
      return 0;
    }
    if (!rest.empty()) {
      fmt::print(stderr, "forklift version: takes no arguments (see forklift version --help)\n");
      return 2;
    }
    fmt::print("forklift {} (git {})\n", FORKLIFT_VERSION_STRING, GitRevision());
    return 0;
  }
  if (cmd == "map") return MapCommand(rest);
  if (cmd == "worker") return WorkerCommand(rest);
  if (cmd == "run") return RunCommand(rest);
  if (cmd == "report") return ReportCommand(rest);
  if (cmd == "runs") return RunsCommand(rest);
  if (cmd == "load") return LoadCommand(rest);
  if (cmd == "dlq") return DlqCommand(rest);
  if (cmd == "__complete") return CompleteCommand(rest);
  if (cmd == "__end-survivors") return EndSurvivorsCommand(rest);
  fmt::print(stderr, "forklift: unknown command '{}' (try 'forklift --help')\n", cmd);
  return 2;
}

}  // namespace forklift::cli
