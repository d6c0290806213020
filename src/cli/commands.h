// Subcommand dispatch for the forklift CLI.
#ifndef FORKLIFT_CLI_COMMANDS_H_
#define FORKLIFT_CLI_COMMANDS_H_

#include <string>
#include <vector>

namespace forklift::cli {

// Runs `forklift ARGS...` and returns the process exit status.
int Dispatch(const std::vector<std::string>& args);

// `forklift map [options] command [::: args | :::: files]...` (GNU parallel's syntax)
int MapCommand(const std::vector<std::string>& args);

// `forklift run flow.toml [--jobs N] [--resume RUN_ID] [--only TASK] [--force] [--dry-run]`
int RunCommand(const std::vector<std::string>& args);
// `forklift report RUN_ID -o report.html`
int ReportCommand(const std::vector<std::string>& args);

// `forklift runs [--journal PATH] [--kind KIND] [--limit N] [--json]`
int RunsCommand(const std::vector<std::string>& args);

}  // namespace forklift::cli

#endif  // FORKLIFT_CLI_COMMANDS_H_
