// `forklift load --transform CMD`: each chunk's rows pass through a command, CSV with a
// header on its stdin, CSV with a header on its stdout. The command runs as
// `/bin/sh -c CMD` in a process group of its own (process/subprocess.h: a deadline, then
// SIGTERM and SIGKILL to the whole group; nothing of it outlives the chunk), with stdin
// fed and stdout/stderr drained by one ppoll loop, so a command that writes before it has
// read everything cannot deadlock.
//
// The output's header names the columns loaded, which may differ from the input's. A
// chunk whose command exits non-zero, is killed, runs past the timeout, or writes output
// that is not CSV with that header (another header, a wrong field count, broken quoting,
// invalid UTF-8, more than max_output_bytes) keeps its identity (number, lines, checksum)
// but has all its rows turned into dead letters (ParseReject: the input row, the reason
// with the command's stderr tail), so the ledger records it as done and the load goes on.
//
// Thread safety: a CommandTransform is immutable once made; Apply runs on any number of
// threads at once.
#ifndef FORKLIFT_LOAD_COMMAND_TRANSFORM_H_
#define FORKLIFT_LOAD_COMMAND_TRANSFORM_H_

#include <cstddef>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "forklift/clock.h"
#include "forklift/result.h"
#include "sinks/chunk.h"

namespace forklift::process {
class ProcessRegistry;
}  // namespace forklift::process

namespace forklift::load {

struct CommandTransformOptions {
  std::string command;                     // run by /bin/sh -c; required
  Duration timeout{0};                     // per chunk; 0 = none. Default 0.
  char delimiter = ',';                    // of the input and the output. Default ','.
  std::vector<std::string> input_columns;  // the header line written first on stdin
  bool fold_header_case = false;           // read the output header as HeaderName does
  // A larger output fails the chunk (its rows are dead-lettered). Default 64 MiB.
  size_t max_output_bytes = size_t{64} << 20;
  size_t stderr_tail_bytes = 1024;  // of stderr kept in a dead letter's reason
  // Each run's process group is registered here while it runs (the probe's too), so an
  // OrphanWatchdog watching it (process/orphan_watchdog.h) ends the groups left running
  // when this program is SIGKILLed. Default nullptr: not registered. Must outlive Apply.
  process::ProcessRegistry* registry = nullptr;
  // Variables set on top of this program's environment for the command (e.g. the mark
  // `forklift __end-survivors` sweeps by). Default: none.
  std::vector<std::pair<std::string, std::string>> env;
};

// The rows of a transform's output as a chunk's `data` and `rows`; columns is the header.
struct TransformOutput {
  std::vector<std::string> columns;
  std::string data;  // each record followed by '\n'
  std::vector<sinks::ChunkRow> rows;
};

// Splits `output` (CSV with a header) into records. `expected_columns`, when not empty,
// is what the header must say. Empty lines are skipped; CRLF is accepted. Failure:
// InvalidArgument "line N: why" for no header, an empty or duplicate header name, a
// header other than expected_columns, broken quoting, a wrong field count or invalid
// UTF-8. Row lines are 0 (the caller maps them to input lines). Pure.
Result<TransformOutput> ParseTransformOutput(std::string_view output, char delimiter,
                                             bool fold_header_case,
                                             const std::vector<std::string>& expected_columns);

class CommandTransform {
 public:
  // Runs the command on the header alone (no rows), before anything is written, to learn
  // the output's columns and to find a command that cannot run.
  // Success: the transform, whose output_columns() are the probe's header.
  // Failure: InvalidArgument "--transform 'CMD': ..." for a command that is not found or
  // not executable (exit status 127/126), exits non-zero, is killed, times out, or writes
  // no header (or a malformed one) for a header alone; it quotes the stderr tail.
  // Cancelled when `stop` is requested meanwhile.
  static Result<CommandTransform> Probe(CommandTransformOptions options,
                                        const std::stop_token& stop);

  const std::vector<std::string>& output_columns() const { return output_columns_; }

  // The chunk, its rows replaced by the command's output rows (a row's line is its input
  // row's when the command wrote as many rows as it read, else the chunk's first line),
  // or with every row dead-lettered when the command failed (see above). nullopt when
  // `stop` was requested while it ran (the chunk is dropped: never committed). A chunk
  // without rows (only parse rejects) is returned as it is, without running the command.
  std::optional<sinks::Chunk> Apply(sinks::Chunk&& chunk, const std::stop_token& stop) const;

 private:
  explicit CommandTransform(CommandTransformOptions options) : options_(std::move(options)) {}

  struct RunResult;
  RunResult RunOnce(std::string input, const std::stop_token& stop) const;

  CommandTransformOptions options_;
  std::string header_line_;  // the input header, CSV-quoted, with its '\n'
  std::vector<std::string> output_columns_;
};

}  // namespace forklift::load

#endif  // FORKLIFT_LOAD_COMMAND_TRANSFORM_H_
