#include "load/command_transform.h"

#include <fmt/format.h>

#include <cstring>
#include <set>
#include <stdexcept>
#include <utility>

#include "core/format_duration.h"
#include "load/chunker.h"
#include "process/subprocess.h"
#include "process/termseq.h"
#include "sources/csv_reader.h"
#include "sources/utf8.h"

namespace forklift::load {
namespace {

// A header name as a CSV field: quoted when it holds what would split or fold it.
std::string QuoteField(const std::string& name, char delimiter) {
  const bool plain =
      !name.empty() && name.find_first_of(std::string("\"\r\n") + delimiter) == std::string::npos;
  if (plain && name.front() != ' ' && name.back() != ' ') return name;
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

// stderr's last bytes as one printable line: line breaks as " / ", other control bytes
// and bytes of invalid UTF-8 (a cut sequence at the start) as \xNN.
std::string OneLine(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  const bool utf8 = sources::IsValidUtf8(s);
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      out += " / ";
    } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += ch;
    }
  }
  return out;
}

// The end of the record starting at `pos`: the LF that ends it outside quotes, or npos.
size_t RecordEnd(std::string_view s, size_t pos) {
  const char* base = s.data();
  const size_t n = s.size();
  for (;;) {
    const void* lf = std::memchr(base + pos, '\n', n - pos);
    const size_t end = lf ? static_cast<size_t>(static_cast<const char*>(lf) - base) : n;
    // The common case: no quote before the LF, so it ends the record.
    if (std::memchr(base + pos, '"', end - pos) == nullptr) return lf ? end : std::string::npos;
    bool quoted = false;
    for (size_t i = pos; i < n; ++i) {
      if (base[i] == '"') quoted = !quoted;
      if (base[i] == '\n' && !quoted) return i;
    }
    return std::string::npos;
  }
}

}  // namespace

Result<TransformOutput> ParseTransformOutput(std::string_view output, char delimiter,
                                             bool fold_header_case,
                                             const std::vector<std::string>& expected_columns) {
  TransformOutput out;
  out.data.reserve(output.size());
  std::vector<sources::CsvField> fields;
  std::string scratch;
  uint64_t line = 1;
  bool have_header = false;
  size_t pos = 0;
  while (pos < output.size()) {
    const size_t end = RecordEnd(output, pos);
    std::string_view rec = output.substr(pos, end == std::string::npos ? end : end - pos);
    const uint64_t rec_line = line;
    for (char c : rec) line += c == '\n' ? 1 : 0;
    ++line;
    pos = end == std::string::npos ? output.size() : end + 1;
    if (!rec.empty() && rec.back() == '\r') rec.remove_suffix(1);
    if (rec.empty()) continue;
    if (std::string why = sources::Utf8ErrorReason(rec); !why.empty()) {
      return InvalidArgumentError(fmt::format("line {}: {}", rec_line, why));
    }
    if (std::string why = sources::SplitCsvRecord(rec, delimiter, &fields, &scratch);
        !why.empty()) {
      return InvalidArgumentError(fmt::format("line {}: {}", rec_line, why));
    }
    if (!have_header) {
      have_header = true;
      std::set<std::string> seen;
      for (const sources::CsvField& f : fields) {
        std::string name = HeaderName(f, fold_header_case, nullptr);
        if (name.empty()) {
          return InvalidArgumentError(
              fmt::format("line {}: header: an empty column name", rec_line));
        }
        if (!seen.insert(name).second) {
          return InvalidArgumentError(
              fmt::format("line {}: header: column '{}' named twice", rec_line, name));
        }
        out.columns.push_back(std::move(name));
      }
      if (!expected_columns.empty() && out.columns != expected_columns) {
        return InvalidArgumentError(
            fmt::format("line {}: header ({}) differs from the one it gave for a header alone ({})",
                        rec_line, fmt::join(out.columns, ","), fmt::join(expected_columns, ",")));
      }
      continue;
    }
    if (fields.size() != out.columns.size()) {
      return InvalidArgumentError(fmt::format("line {}: expected {} fields, found {}", rec_line,
                                              out.columns.size(), fields.size()));
    }
    out.rows.push_back(sinks::ChunkRow{.offset = static_cast<uint32_t>(out.data.size()),
                                       .size = static_cast<uint32_t>(rec.size()),
                                       .line = 0});
    out.data.append(rec);
    out.data.push_back('\n');
  }
  if (!have_header) {
    return InvalidArgumentError("no header: the output's first line must name its columns");
  }
  return out;
}

struct CommandTransform::RunResult {
  bool cancelled = false;  // a stop ended it: nothing to judge
  bool not_runnable = false;
  std::string failure;  // why it failed; "" when it exited 0 in time
  std::string stdout_data;
  std::string stderr_tail;
};

CommandTransform::RunResult CommandTransform::RunOnce(std::string input,
                                                      const std::stop_token& stop) const {
  RunResult r;
  bool too_large = false;
  const size_t tail = options_.stderr_tail_bytes;
  process::SpawnOptions so{.argv = {"/bin/sh", "-c", options_.command},
                           .stdin_mode = process::InputMode::kData,
                           .stdin_data = std::move(input),
                           .stdout_mode = process::OutputMode::kCallback,
                           .stderr_mode = process::OutputMode::kCallback,
                           .timeout = options_.timeout,
                           .registry = options_.registry};
  so.env = options_.env;
  so.on_output = [&](process::Stream stream, std::string_view bytes) {
    if (stream == process::Stream::kStderr) {
      r.stderr_tail.append(bytes);
      if (r.stderr_tail.size() > 2 * tail) r.stderr_tail.erase(0, r.stderr_tail.size() - tail);
      return;
    }
    if (r.stdout_data.size() + bytes.size() > options_.max_output_bytes) {
      too_large = true;
      throw std::length_error("output too large");  // ends the job (SIGKILL to its group)
    }
    r.stdout_data.append(bytes);
  };
  Result<process::Completion> done = process::Run(so, stop);
  if (r.stderr_tail.size() > tail) r.stderr_tail.erase(0, r.stderr_tail.size() - tail);
  if (too_large) {
    r.failure = fmt::format("wrote more than {} bytes", options_.max_output_bytes);
  } else if (!done) {
    r.cancelled = done.error().code == ErrorCode::kCancelled;
    r.failure = "could not be run: " + done.error().message;
  } else if (done->cancelled) {
    r.cancelled = true;
    r.failure = "stopped";
  } else if (done->timed_out) {
    r.failure = fmt::format("timed out after {} (--transform-timeout)",
                            core::FormatDuration(options_.timeout));
  } else if (done->signal != 0) {
    r.failure = fmt::format("killed by signal {}", process::SignalName(done->signal));
  } else if (done->exit_code == 126 || done->exit_code == 127) {
    r.not_runnable = true;
    r.failure = fmt::format("exited with status {} (not found or not executable)", done->exit_code);
  } else if (done->exit_code != 0) {
    r.failure = fmt::format("exited with status {}", done->exit_code);
  }
  return r;
}

Result<CommandTransform> CommandTransform::Probe(CommandTransformOptions options,
                                                 const std::stop_token& stop) {
  if (options.command.empty()) return InvalidArgumentError("--transform: an empty command");
  CommandTransform t(std::move(options));
  const CommandTransformOptions& o = t.options_;
  for (size_t i = 0; i < o.input_columns.size(); ++i) {
    if (i > 0) t.header_line_ += o.delimiter;
    t.header_line_ += QuoteField(o.input_columns[i], o.delimiter);
  }
  t.header_line_ += '\n';
  RunResult r = t.RunOnce(t.header_line_, stop);
  const std::string err =
      r.stderr_tail.empty() ? std::string() : "; stderr: " + OneLine(r.stderr_tail);
  if (r.cancelled) return CancelledError("--transform: stopped while probing the command");
  if (!r.failure.empty()) {
    return InvalidArgumentError(fmt::format(
        "--transform '{}': {} when given the input's header alone ({}){}; nothing loaded",
        o.command, r.failure, OneLine(t.header_line_), err));
  }
  auto parsed = ParseTransformOutput(r.stdout_data, o.delimiter, o.fold_header_case, {});
  if (!parsed) {
    return InvalidArgumentError(
        fmt::format("--transform '{}': given the input's header alone, its output: {}{}; "
                    "nothing loaded",
                    o.command, parsed.error().message, err));
  }
  if (!parsed->rows.empty()) {
    return InvalidArgumentError(
        fmt::format("--transform '{}': given the input's header alone, it wrote {} rows (it "
                    "must write its output header alone); nothing loaded",
                    o.command, parsed->rows.size()));
  }
  t.output_columns_ = std::move(parsed->columns);
  return t;
}

std::optional<sinks::Chunk> CommandTransform::Apply(sinks::Chunk&& chunk,
                                                    const std::stop_token& stop) const {
  if (chunk.rows.empty()) return std::move(chunk);
  std::string input;
  input.reserve(header_line_.size() + chunk.data.size());
  input += header_line_;
  input += chunk.data;
  RunResult r = RunOnce(std::move(input), stop);
  if (r.cancelled) return std::nullopt;
  std::string failure = r.failure;
  Result<TransformOutput> parsed = InvalidArgumentError("not run");
  if (failure.empty()) {
    parsed = ParseTransformOutput(r.stdout_data, options_.delimiter, options_.fold_header_case,
                                  output_columns_);
    if (!parsed) failure = "wrote malformed CSV: output " + parsed.error().message;
  }
  if (!failure.empty()) {
    const std::string reason =
        fmt::format("transform {}{}", failure,
                    r.stderr_tail.empty() ? std::string() : "; stderr: " + OneLine(r.stderr_tail));
    for (size_t i = 0; i < chunk.rows.size(); ++i) {
      chunk.parse_rejects.push_back(sinks::ParseReject{
          .line = chunk.rows[i].line, .raw = std::string(chunk.Row(i)), .reason = reason});
    }
    chunk.rows.clear();
    chunk.data.clear();
    return std::move(chunk);
  }
  // One output row per input row: it keeps its input row's line (a dead letter of the
  // database then points at its source); otherwise the lines are the chunk's first.
  const bool one_to_one = parsed->rows.size() == chunk.rows.size();
  for (size_t i = 0; i < parsed->rows.size(); ++i) {
    parsed->rows[i].line = one_to_one ? chunk.rows[i].line : chunk.first_line;
  }
  chunk.rows = std::move(parsed->rows);
  chunk.data = std::move(parsed->data);
  return std::move(chunk);
}

}  // namespace forklift::load
