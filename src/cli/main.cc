// forklift: the command-line front doors over the engine.
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return forklift::cli::Dispatch(args);
}
