#include "load/load_options.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <set>

#include "sources/jsonl_reader.h"
#include "sources/utf8.h"

namespace forklift::load {
namespace {

// `s` for a one-line message: printable ASCII as is, other bytes as \xNN.
std::string Escaped(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  return out;
}

}  // namespace

Status ValidateLoadOptions(const LoadOptions& o) {
  FORKLIFT_RETURN_IF_ERROR(ValidateQuerySourceOptions(o));
  if (o.sources.empty() && o.query.empty())
    return InvalidArgumentError(
        "load: no input files (forklift load FILE... --to TARGET --table TABLE)");
  FORKLIFT_RETURN_IF_ERROR(ValidateStdinOptions(o));
  if (o.to.empty()) return InvalidArgumentError("--to is required (postgres://... or sqlite:PATH)");
  if (o.table.empty()) return InvalidArgumentError("--table is required");
  // Both are written into the journal's JSON (and the summary's): JSON text is UTF-8.
  if (!sources::IsValidUtf8(o.table)) {
    return InvalidArgumentError(fmt::format("--table '{}': not valid UTF-8 ({})", Escaped(o.table),
                                            sources::Utf8ErrorReason(o.table)));
  }
  if (!sources::IsValidUtf8(o.load_id)) {
    return InvalidArgumentError(fmt::format("--load-id '{}': not valid UTF-8 ({})",
                                            Escaped(o.load_id),
                                            sources::Utf8ErrorReason(o.load_id)));
  }
  if (o.workers < 0)
    return InvalidArgumentError(fmt::format("--workers {}: must be >= 1", o.workers));
  if (o.chunk_rows < 1) {
    return InvalidArgumentError(fmt::format("--chunk-rows {}: must be >= 1", o.chunk_rows));
  }
  if (o.chunk_rows > (1 << 24)) {
    return InvalidArgumentError(fmt::format("--chunk-rows {}: at most {}", o.chunk_rows, 1 << 24));
  }
  if (o.chunk_bytes < 1) {
    return InvalidArgumentError(fmt::format("--chunk-bytes {}: must be >= 1", o.chunk_bytes));
  }
  if (o.chunk_bytes > (int64_t{1} << 30)) {
    return InvalidArgumentError(fmt::format("--chunk-bytes {}: at most 1GiB", o.chunk_bytes));
  }
  if (o.delimiter == '"' || o.delimiter == '\r' || o.delimiter == '\n') {
    return InvalidArgumentError("--delimiter: cannot be a quote, CR or LF");
  }
  // The delimiter and the NULL string travel in COPY's options, which the server checks
  // against the database encoding: a non-ASCII byte fails the statement (22021), and then
  // every row of every chunk would be dead-lettered.
  if (static_cast<unsigned char>(o.delimiter) >= 0x80) {
    return InvalidArgumentError(
        fmt::format("--delimiter '{}': must be an ASCII character", Escaped({&o.delimiter, 1})));
  }
  if (o.upsert && o.key.empty()) {
    return InvalidArgumentError("--mode upsert needs --key COLUMN[,COLUMN...]");
  }
  if (!o.upsert && !o.key.empty()) {
    // An insert would only COPY, narrow each duplicate out one row at a time, and
    // dead-letter it: --key means nothing there, so it is a mistake to report.
    return InvalidArgumentError(
        "--key is for --mode upsert (insert or update by key); an insert does not use one "
        "(rows that break a unique key are rejected): add --mode upsert or drop --key");
  }
  std::set<std::string> seen;
  for (const std::string& c : o.columns) {
    if (!seen.insert(c).second) {
      return InvalidArgumentError(fmt::format("--columns: '{}' appears twice", c));
    }
  }
  if (!o.columns.empty()) {
    for (const std::string& k : o.key) {
      if (!seen.count(k)) {
        return InvalidArgumentError(
            fmt::format("--key {}: not among --columns ({})", k, fmt::join(o.columns, ",")));
      }
    }
  }
  FORKLIFT_RETURN_IF_ERROR(ValidateLifecycleOptions(o));
  if (o.max_errors && *o.max_errors < 0) {
    return InvalidArgumentError(fmt::format("--max-errors {}: must be >= 0", *o.max_errors));
  }
  if (o.null_string.find_first_of("\r\n\"") != std::string::npos ||
      o.null_string.find(o.delimiter) != std::string::npos) {
    return InvalidArgumentError("--null: cannot contain the delimiter, a quote, CR or LF");
  }
  if (!sources::IsValidUtf8(o.null_string)) {
    return InvalidArgumentError(fmt::format("--null '{}': not valid UTF-8 ({})",
                                            Escaped(o.null_string),
                                            sources::Utf8ErrorReason(o.null_string)));
  }
  FORKLIFT_RETURN_IF_ERROR(ValidateDialectOptions(o));
  return ValidateTransformOptions(o);
}

// ---- CSV dialect ----------------------------------------------------------------------

bool HasCsvDialect(const LoadOptions& o) {
  return o.quote != '"' || EffectiveEscape(o) != '"' || o.encoding != sources::Encoding::kUtf8 ||
         o.skip_lines != 0;
}

Result<char> ParseDialectChar(std::string_view text, std::string_view option) {
  if (text.size() != 1) {
    return InvalidArgumentError(
        fmt::format("{} '{}': expected one character", option, Escaped(text)));
  }
  return text[0];
}

Status ValidateDialectOptions(const LoadOptions& o) {
  // The first dialect option given, for messages.
  std::string given;
  if (o.quote != '"') {
    given = "--quote";
  } else if (o.escape) {
    given = "--escape";
  } else if (o.encoding != sources::Encoding::kUtf8) {
    given = "--encoding";
  } else if (o.skip_lines != 0) {
    given = "--skip-lines";
  }
  if (given.empty()) return {};
  if (!o.query.empty() || !o.from.empty()) {
    return InvalidArgumentError(
        fmt::format("{}: a --query result is read as forklift writes it (CSV files only)", given));
  }
  if (o.format == "jsonl") {
    return InvalidArgumentError(fmt::format("{}: for CSV sources, not --format jsonl", given));
  }
  if (o.format.empty()) {
    for (const std::string& src : o.sources) {
      if (sources::IsJsonLinesPath(src)) {
        return InvalidArgumentError(fmt::format(
            "{}: for CSV sources; {} is JSON Lines (--format csv if it is CSV)", given, src));
      }
    }
  }
  auto check = [&](char c, std::string_view option) -> Status {
    if (c == '\r' || c == '\n') {
      return InvalidArgumentError(fmt::format("{}: cannot be CR or LF", option));
    }
    if (c == o.delimiter) {
      return InvalidArgumentError(
          fmt::format("{} '{}': cannot be the delimiter", option, Escaped({&c, 1})));
    }
    // A byte >= 0x80 would also match inside UTF-8 and windows-1252 characters.
    if (static_cast<unsigned char>(c) >= 0x80) {
      return InvalidArgumentError(
          fmt::format("{} '{}': must be an ASCII character", option, Escaped({&c, 1})));
    }
    return {};
  };
  FORKLIFT_RETURN_IF_ERROR(check(o.quote, "--quote"));
  if (o.escape) FORKLIFT_RETURN_IF_ERROR(check(*o.escape, "--escape"));
  if (o.skip_lines < 0) {
    return InvalidArgumentError(fmt::format("--skip-lines {}: must be >= 0", o.skip_lines));
  }
  if (o.null_string.find(o.quote) != std::string::npos) {
    return InvalidArgumentError(
        fmt::format("--null: cannot contain the quote ('{}')", Escaped({&o.quote, 1})));
  }
  return {};
}

Status ValidateTransformOptions(const LoadOptions& o) {
  if (o.cpu_workers < 1 || o.cpu_workers > 256) {
    return InvalidArgumentError(
        fmt::format("--cpu-workers {}: must be between 1 and 256", o.cpu_workers));
  }
  if (o.transform_timeout.count() < 0) {
    return InvalidArgumentError("--transform-timeout: must not be negative");
  }
  if (o.transform.empty()) {
    if (o.cpu_workers != 1) {
      return InvalidArgumentError(fmt::format(
          "--cpu-workers {}: runs transforms at once, and there is no --transform", o.cpu_workers));
    }
    if (o.transform_timeout.count() != 0) {
      return InvalidArgumentError("--transform-timeout: there is no --transform to time");
    }
    return {};
  }
  if (o.transform.find_first_not_of(" \t\r\n") == std::string::npos) {
    return InvalidArgumentError("--transform: an empty command");
  }
  if (!sources::IsValidUtf8(o.transform)) {
    return InvalidArgumentError(fmt::format("--transform '{}': not valid UTF-8 ({})",
                                            Escaped(o.transform),
                                            sources::Utf8ErrorReason(o.transform)));
  }
  return {};
}

Status ValidateQuerySourceOptions(const LoadOptions& o) {
  const bool query = !o.from.empty() || !o.query.empty();
  if (!query) {
    if (!o.resume_key.empty()) return InvalidArgumentError("--resume-key is for --query loads");
    if (!o.partition_by.empty()) return InvalidArgumentError("--partition-by is for --query loads");
    if (o.partitions != 1) return InvalidArgumentError("--partitions is for --query loads");
    return {};
  }
  if (o.from.empty()) {
    return InvalidArgumentError(
        "--query needs --from (the database it runs on: postgres://... or sqlite:PATH)");
  }
  if (o.query.empty()) {
    return InvalidArgumentError("--from needs --query (the SQL whose rows are loaded)");
  }
  if (!o.sources.empty()) {
    return InvalidArgumentError(
        fmt::format("load: files ({}) and --from/--query: load one or the other", o.sources[0]));
  }
  if (!sources::IsValidUtf8(o.query)) {
    return InvalidArgumentError(
        fmt::format("--query: not valid UTF-8 ({})", sources::Utf8ErrorReason(o.query)));
  }
  if (!o.header) {
    return InvalidArgumentError("--no-header: a --query result has a header (its column names)");
  }
  if (o.delimiter != ',') {
    return InvalidArgumentError("--delimiter: a --query result is read as forklift writes it");
  }
  if (!o.null_string.empty()) {
    return InvalidArgumentError("--null: a --query result's NULL is SQL NULL (no --null)");
  }
  if (!o.format.empty()) {
    return InvalidArgumentError(
        fmt::format("--format {}: a --query result is read as forklift writes it", o.format));
  }
  if (o.partitions < 1 || o.partitions > 64) {
    return InvalidArgumentError(
        fmt::format("--partitions {}: must be 1 to 64 (one source connection each)", o.partitions));
  }
  if (o.partitions > 1 && o.partition_by.empty()) {
    return InvalidArgumentError(
        fmt::format("--partitions {} needs --partition-by COLUMN (whose hash splits the result)",
                    o.partitions));
  }
  if (o.partitions == 1 && !o.partition_by.empty()) {
    return InvalidArgumentError(
        fmt::format("--partition-by {} needs --partitions N (N >= 2)", o.partition_by));
  }
  std::set<std::string> seen;
  for (const std::string& k : o.resume_key) {
    if (!seen.insert(k).second) {
      return InvalidArgumentError(fmt::format("--resume-key: '{}' appears twice", k));
    }
  }
  if (o.upsert && !o.resume_key.empty()) {
    // The key's rows are then unique, so no two connections apply one key (chunks of a
    // stream go to any writer, in key order rather than routed by --key).
    for (const std::string& k : o.resume_key) {
      if (std::find(o.key.begin(), o.key.end(), k) == o.key.end()) {
        return InvalidArgumentError(fmt::format(
            "--mode upsert --resume-key {}: --key must include every resume-key column "
            "(--key {} lacks {}), so that each key's row is unique and no two connections "
            "write one key",
            fmt::join(o.resume_key, ","), fmt::join(o.key, ","), k));
      }
    }
  }
  return {};
}

Result<int64_t> ParseByteSize(std::string_view text, std::string_view option) {
  auto bad = [&] {
    return InvalidArgumentError(fmt::format(
        "{} '{}': expected a size such as 4MiB, 512KiB, 1GB or a number of bytes", option, text));
  };
  int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end == text.data() || n <= 0) return bad();
  std::string unit(end, text.data() + text.size());
  std::transform(unit.begin(), unit.end(), unit.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  int64_t mult;
  if (unit.empty() || unit == "b") {
    mult = 1;
  } else if (unit == "k" || unit == "kib") {
    mult = int64_t{1} << 10;
  } else if (unit == "kb") {
    mult = 1000;
  } else if (unit == "m" || unit == "mib") {
    mult = int64_t{1} << 20;
  } else if (unit == "mb") {
    mult = 1000 * 1000;
  } else if (unit == "g" || unit == "gib") {
    mult = int64_t{1} << 30;
  } else if (unit == "gb") {
    mult = 1000 * 1000 * 1000;
  } else {
    return bad();
  }
  if (n > std::numeric_limits<int64_t>::max() / mult) return bad();
  return n * mult;
}

Result<std::vector<std::string>> ParseNameList(std::string_view text, std::string_view option) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view part =
        text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    while (!part.empty() && std::isspace(static_cast<unsigned char>(part.front())))
      part.remove_prefix(1);
    while (!part.empty() && std::isspace(static_cast<unsigned char>(part.back())))
      part.remove_suffix(1);
    if (part.empty()) {
      return InvalidArgumentError(fmt::format("{} '{}': empty column name", option, text));
    }
    out.emplace_back(part);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

Result<char> ParseDelimiter(std::string_view text) {
  if (text == "\\t" || text == "tab" || text == "\t") return '\t';
  if (text.size() != 1) {
    return InvalidArgumentError(
        fmt::format("--delimiter '{}': expected one character (or \\t)", text));
  }
  return text[0];
}

// Table lifecycle and dialect

Status ParseMaxErrors(std::string_view text, std::optional<int64_t>* count,
                      std::optional<double>* percent) {
  auto bad = [&] {
    return InvalidArgumentError(fmt::format(
        "--max-errors '{}': expected a number of rows (100) or a percentage of the rows read "
        "(0.5%)",
        Escaped(text)));
  };
  if (text.ends_with('%')) {
    text.remove_suffix(1);
    double p = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), p);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return bad();
    if (!(p >= 0 && p <= 100)) {
      return InvalidArgumentError(
          fmt::format("--max-errors {}%: a percentage must be between 0 and 100", text));
    }
    *percent = p;
    return {};
  }
  int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return bad();
  if (n < 0) return InvalidArgumentError(fmt::format("--max-errors {}: must be >= 0", n));
  *count = n;
  return {};
}

Status ValidateStdinOptions(const LoadOptions& o) {
  const auto n = std::count(o.sources.begin(), o.sources.end(), std::string("-"));
  if (n == 0) return {};
  if (o.load_id.empty()) {
    return InvalidArgumentError(
        "load: '-' (stdin) needs --load-id ID: the default load id hashes each file's size "
        "and modification time, which a stream has not, and a rerun resumes only under the "
        "same id (it reads the stream again and verifies each committed chunk's checksum)");
  }
  if (n > 1 || o.sources.size() > 1) {
    return InvalidArgumentError("load: '-' (stdin) must be the only input");
  }
  if (o.format.empty()) {
    return InvalidArgumentError(
        "load: '-' (stdin) needs --format jsonl or --format csv (a name tells the format of a "
        "file; a stream has none)");
  }
  if (o.format == "csv" && o.header) {
    return InvalidArgumentError(
        "load: CSV on '-' (stdin) needs --no-header (with --columns, or the table's columns): "
        "every header is read before the first chunk, and a stream cannot be read twice");
  }
  return {};
}

Status ValidateLifecycleOptions(const LoadOptions& o) {
  if (o.truncate && o.replace) {
    return InvalidArgumentError(
        "--truncate and --replace: give one (--replace already starts from an empty table)");
  }
  if (o.insert_ignore && o.upsert) {
    return InvalidArgumentError("--mode: insert-ignore or upsert, not both");
  }
  if (o.insert_ignore && !o.key.empty()) {
    return InvalidArgumentError(
        "--key is for --mode upsert; insert-ignore skips a row that breaks any unique index "
        "or constraint of the table: drop --key");
  }
  if (!o.format.empty() && o.format != "csv" && o.format != "jsonl") {
    return InvalidArgumentError(
        fmt::format("--format '{}': expected csv or jsonl", Escaped(o.format)));
  }
  if (o.max_errors && o.max_errors_percent) {
    return InvalidArgumentError("--max-errors: a number of rows or a percentage, not both");
  }
  if (o.max_errors_percent && !(*o.max_errors_percent >= 0 && *o.max_errors_percent <= 100)) {
    return InvalidArgumentError(
        fmt::format("--max-errors {}%: must be between 0 and 100", *o.max_errors_percent));
  }
  return {};
}

}  // namespace forklift::load
