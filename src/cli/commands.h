// Subcommand dispatch for the forklift CLI.
#ifndef FORKLIFT_CLI_COMMANDS_H_
#define FORKLIFT_CLI_COMMANDS_H_

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace forklift::cli {

// Parses a subcommand's arguments with CLI11. Returns -1 when the command should go on,
// else the exit status to return (after --help, or a usage error CLI11 has printed).
int ParseCli(CLI::App& app, const std::vector<std::string>& args);

// "2026-12-01 23:10:05": unix seconds in local time, as `runs` and `dlq list` show them.
std::string LocalTime(double unix_seconds);

// The git revision forklift was built from ("0123456789ab", "...-dirty" or "unknown");
// defined in a source the build generates (cmake/git_revision.cmake).
const char* GitRevision();

// Runs `forklift ARGS...` and returns the process exit status.
int Dispatch(const std::vector<std::string>& args);

// `forklift map [options] command [::: args | :::: files]...` (GNU parallel's syntax)
int MapCommand(const std::vector<std::string>& args);

// `forklift worker --queue DSN [-j N] [--run RUN_ID] [--max-idle DUR] [--lease DUR]`
int WorkerCommand(const std::vector<std::string>& args);

// `forklift run flow.toml [--jobs N] [--resume RUN_ID] [--only TASK] [--force] [--dry-run]`
int RunCommand(const std::vector<std::string>& args);
// `forklift report RUN_ID -o report.html`
int ReportCommand(const std::vector<std::string>& args);

// `forklift load FILE... --to TARGET --table TABLE [--mode insert|upsert] [--key ...] ...`
int LoadCommand(const std::vector<std::string>& args);
// `forklift dlq list|show|retry [LOAD_ID]`
int DlqCommand(const std::vector<std::string>& args);

// `forklift __complete tasks FLOW`: words for the shell completions (completions/).
int CompleteCommand(const std::vector<std::string>& args);
// `forklift __end-survivors NAME VALUE`: ends (TermSeq) every process whose environment
// holds NAME=VALUE; what the orphan watchdog runs when a map dies (map_command.cc). Exit 0,
// or 2 for bad arguments.
int EndSurvivorsCommand(const std::vector<std::string>& args);

// `forklift runs [--journal PATH] [--kind KIND] [--limit N] [--json]`
int RunsCommand(const std::vector<std::string>& args);

}  // namespace forklift::cli

#endif  // FORKLIFT_CLI_COMMANDS_H_
