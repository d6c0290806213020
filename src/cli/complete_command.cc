// `forklift __complete WHAT ARGS...`: what the shell completions (completions/) ask the
// binary for, so that they never parse a flow file themselves. Not listed in --help.
//
//   forklift __complete tasks FLOW   the flow's task names, one a line, in file order
//
// Exit status 0 with the words on stdout, 1 (nothing printed) when there are none to
// offer: an unreadable or invalid flow file is no error while completing a word.
#include <fmt/format.h>

#include "cli/commands.h"
#include "flow/flow_file.h"

namespace forklift::cli {

int CompleteCommand(const std::vector<std::string>& args) {
  if (args.size() == 2 && args[0] == "tasks") {
    auto spec = flow::LoadFlowFile(args[1]);
    if (!spec) return 1;
    for (const flow::TaskSpec& t : spec->tasks) fmt::print("{}\n", t.name);
    return 0;
  }
  fmt::print(stderr, "usage: forklift __complete tasks FLOW\n");
  return 2;
}

}  // namespace forklift::cli
