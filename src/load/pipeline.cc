#include "load/pipeline.h"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include "sinks/chunk.h"
#include "sources/byte_source.h"
#include "sources/csv_reader.h"
#include "sources/utf8.h"

namespace forklift::load {
namespace {

using sinks::Chunk;

// Appends `field` as one CSV field: unquoted when it is the null string (NULL) or needs
// no quotes, else quoted (an empty string that is not the null string is "", not NULL).
void AppendField(std::string* out, std::string_view field, char delimiter,
                 const std::string& null_string) {
  const bool plain = field == null_string ||
                     (!field.empty() && field.find_first_of(std::string{
                                            delimiter, '"', '\r', '\n'}) == std::string_view::npos);
  if (plain) {
    out->append(field);
    return;
  }
  out->push_back('"');
  for (char c : field) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

void AppendRecord(std::string* out, const Row& row, char delimiter,
                  const std::string& null_string) {
  for (size_t i = 0; i < row.size(); ++i) {
    if (i > 0) out->push_back(delimiter);
    AppendField(out, row[i], delimiter, null_string);
  }
  out->push_back('\n');
}

// The generator as CSV bytes with a header line, one row encoded at a time (memory: the
// longest row), for the chunker's ByteSource::FromPull.
class GeneratorBytes {
 public:
  GeneratorBytes(const PipelineSource& source, char delimiter, std::string null_string)
      : next_(source.next), delimiter_(delimiter), null_string_(std::move(null_string)) {
    // The header is names, never NULL: quoted unless plain.
    AppendRecord(&pending_, source.columns, delimiter_, std::string(1, '\0'));
  }

  Result<size_t> Pull(char* buf, size_t n) {
    while (pos_ == pending_.size()) {
      if (done_) return 0;
      pending_.clear();
      pos_ = 0;
      row_.clear();
      FORKLIFT_ASSIGN_OR_RETURN(bool more, next_(&row_));
      if (!more) {
        done_ = true;
        return 0;
      }
      AppendRecord(&pending_, row_, delimiter_, null_string_);
    }
    const size_t k = std::min(n, pending_.size() - pos_);
    std::copy_n(pending_.data() + pos_, k, buf);
    pos_ += k;
    return k;
  }

 private:
  PipelineSource::Generator next_;
  char delimiter_;
  std::string null_string_;
  std::string pending_;  // encoded bytes not yet pulled, from pos_
  size_t pos_ = 0;
  Row row_;
  bool done_ = false;
};

// Runs the program's transform over a chunk (on the transform stage's thread): rows are
// split into fields, the outputs encoded back, and each failure made a dead letter of its
// input rows, so the chunk keeps its identity and the ledger records it as done.
class ChunkTransform {
 public:
  ChunkTransform(const PipelineOptions& options)
      : row_(options.row_transform),
        batch_(options.batch_transform),
        columns_(options.output_columns.size()),
        name_(options.transform_name),
        delimiter_(options.load.delimiter),
        null_string_(options.load.null_string) {}

  std::optional<Chunk> operator()(Chunk&& chunk) const {
    if (chunk.rows.empty()) return std::move(chunk);
    std::vector<Row> in(chunk.rows.size());
    std::vector<sources::CsvField> fields;
    std::string scratch;
    for (size_t i = 0; i < chunk.rows.size(); ++i) {
      // The chunker split these rows with the same rules: they are well-formed.
      (void)sources::SplitCsvRecord(chunk.Row(i), delimiter_, &fields, &scratch);
      in[i].reserve(fields.size());
      for (const auto& f : fields) in[i].emplace_back(f.value);
    }
    Chunk out = chunk;
    out.data.clear();
    out.rows.clear();
    if (batch_) {
      Result<std::vector<Row>> rows = Call([&] { return batch_(std::span<const Row>(in)); });
      std::string why = rows ? Check(*rows) : rows.error().ToString();
      if (!why.empty()) {
        for (size_t i = 0; i < chunk.rows.size(); ++i) Reject(chunk, i, why, out);
        return out;
      }
      const bool one_to_one = rows->size() == chunk.rows.size();
      for (size_t j = 0; j < rows->size(); ++j) {
        Append((*rows)[j], one_to_one ? chunk.rows[j].line : chunk.first_line, out);
      }
      return out;
    }
    for (size_t i = 0; i < chunk.rows.size(); ++i) {
      Result<std::vector<Row>> rows = Call([&] { return row_(in[i]); });
      std::string why = rows ? Check(*rows) : rows.error().ToString();
      if (!why.empty()) {
        Reject(chunk, i, why, out);
        continue;
      }
      for (const Row& r : *rows) Append(r, chunk.rows[i].line, out);
    }
    return out;
  }

 private:
  // The user's function, its exceptions as errors.
  template <typename F>
  static Result<std::vector<Row>> Call(F&& f) {
    try {
      return f();
    } catch (const std::exception& e) {
      return InternalError(fmt::format("threw {}", e.what()));
    } catch (...) {
      return InternalError("threw an exception that is not a std::exception");
    }
  }

  // Why output rows cannot be loaded as they are; "" when they can.
  std::string Check(const std::vector<Row>& rows) const {
    for (size_t j = 0; j < rows.size(); ++j) {
      if (rows[j].size() != columns_) {
        return fmt::format("output row {} has {} fields for the {} output columns", j + 1,
                           rows[j].size(), columns_);
      }
      for (size_t k = 0; k < rows[j].size(); ++k) {
        if (!sources::IsValidUtf8(rows[j][k])) {
          return fmt::format("output row {} field {} is not valid UTF-8", j + 1, k + 1);
        }
      }
    }
    return {};
  }

  void Reject(const Chunk& chunk, size_t i, const std::string& why, Chunk& out) const {
    out.parse_rejects.push_back(sinks::ParseReject{.line = chunk.rows[i].line,
                                                   .raw = std::string(chunk.Row(i)),
                                                   .reason = "transform " + name_ + ": " + why});
  }

  void Append(const Row& r, uint64_t line, Chunk& out) const {
    const size_t offset = out.data.size();
    AppendRecord(&out.data, r, delimiter_, null_string_);
    out.rows.push_back({.offset = static_cast<uint32_t>(offset),
                        .size = static_cast<uint32_t>(out.data.size() - offset - 1),
                        .line = line});
  }

  RowTransform row_;
  BatchTransform batch_;
  size_t columns_;
  std::string name_;
  char delimiter_;
  std::string null_string_;
};

}  // namespace

PipelineSource PipelineSource::Files(std::vector<std::string> paths) {
  PipelineSource s;
  s.files = std::move(paths);
  return s;
}

PipelineSource PipelineSource::Query(std::string from, std::string query) {
  PipelineSource s;
  s.from = std::move(from);
  s.query = std::move(query);
  return s;
}

PipelineSource PipelineSource::Generate(std::string name, std::vector<std::string> columns,
                                        Generator next) {
  PipelineSource s;
  s.name = std::move(name);
  s.columns = std::move(columns);
  s.next = std::move(next);
  return s;
}

Result<LoadSummary> RunPipeline(PipelineSource source, const PipelineOptions& options,
                                const LoadStops& stops, LoadIo io) {
  const LoadOptions& lo = options.load;
  if (!lo.sources.empty() || !lo.from.empty() || !lo.query.empty()) {
    return InvalidArgumentError(
        "PipelineOptions::load: sources, from and query must be empty (the PipelineSource "
        "says where the rows come from)");
  }
  if (options.row_transform && options.batch_transform) {
    return InvalidArgumentError("PipelineOptions: a row_transform or a batch_transform, not both");
  }
  const bool transform = options.row_transform || options.batch_transform;
  if (transform && options.output_columns.empty()) {
    return InvalidArgumentError("PipelineOptions: a transform needs its output_columns");
  }
  if (!transform && !options.output_columns.empty()) {
    return InvalidArgumentError(
        "PipelineOptions: output_columns without a transform (the source's columns are loaded)");
  }
  const bool generated = static_cast<bool>(source.next);
  const int kinds = static_cast<int>(!source.files.empty()) +
                    static_cast<int>(!source.query.empty()) + static_cast<int>(generated);
  if (kinds != 1) {
    return InvalidArgumentError(
        "PipelineSource: one of files, a query or a generator (make it with Files, Query or "
        "Generate)");
  }
  LoadOptions load = lo;
  load.sources = source.files;
  load.from = source.from;
  load.query = source.query;
  LoadExtension ext;
  if (transform) {
    ext.transform = ChunkTransform(options);
    ext.transform_columns = options.output_columns;
    ext.transform_name = options.transform_name;
    ext.transform_workers = 1;  // sequential: the user's function need not be thread-safe
  }
  if (generated) {
    if (source.name.empty() || source.columns.empty()) {
      return InvalidArgumentError("PipelineSource::Generate: a name and the columns are required");
    }
    ext.source_name = source.name;
    ext.source_columns = source.columns;
    auto bytes = std::make_shared<GeneratorBytes>(source, lo.delimiter, lo.null_string);
    ext.open_source = [bytes,
                       name = source.name]() -> Result<std::unique_ptr<sources::ByteSource>> {
      return sources::ByteSource::FromPull(
          name, [bytes](char* buf, size_t n) { return bytes->Pull(buf, n); });
    };
  }
  return RunLoad(load, stops, std::move(io), ext);
}

}  // namespace forklift::load
