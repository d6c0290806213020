#include "load/chunker.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <memory>
#include <set>
#include <utility>

#include "core/fd.h"
#include "sources/byte_source.h"
#include "sources/csv_reader.h"
#include "sources/jsonl_reader.h"
#include "sources/utf8.h"

namespace forklift::load {

using sinks::Chunk;
using sinks::ChunkRow;
using sinks::ParseReject;
using sources::ByteSource;
using sources::CsvDialect;
using sources::CsvReader;
using sources::CsvRecord;

struct Chunker::Builder {
  Chunk chunk;
  sources::Checksum checksum;
  int64_t count = 0;         // rows + rejects
  int64_t reject_bytes = 0;  // raw bytes the rejects keep: they count toward chunk_bytes

  int64_t bytes() const { return static_cast<int64_t>(chunk.data.size()) + reject_bytes; }

  void Note(const CsvRecord& r, std::string_view text, std::string_view terminator) {
    if (count == 0 || r.first_line < chunk.first_line) chunk.first_line = r.first_line;
    if (count == 0) chunk.span_begin = r.offset;
    chunk.span_end = std::max(chunk.span_end, r.offset + text.size() + terminator.size());
    if (r.last_line > chunk.last_line) chunk.last_line = r.last_line;
    checksum.Add(text);
    checksum.Add(terminator);
    ++count;
  }
};

namespace {

Result<std::unique_ptr<CsvReader>> OpenReader(const std::string& path, const CsvDialect& dialect) {
  FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<ByteSource> src, ByteSource::Open(path));
  return std::make_unique<CsvReader>(std::move(src), dialect);
}

// Appends `value` as one field of forklift's default dialect: quoted (quotes doubled) when
// it was quoted (an empty quoted field is not NULL) or holds a quote.
void AppendDefaultField(std::string_view value, bool quoted, std::string* out) {
  if (!quoted && value.find('"') == std::string_view::npos) {
    out->append(value);
    return;
  }
  out->push_back('"');
  for (char c : value) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

}  // namespace

std::string HeaderName(const sources::CsvField& field, bool fold_case, bool* trimmed) {
  std::string_view v = field.value;
  if (trimmed) *trimmed = false;
  if (field.quoted) return std::string(v);
  auto blank = [](char c) { return c == ' ' || c == '\t'; };
  const size_t before = v.size();
  while (!v.empty() && blank(v.front())) v.remove_prefix(1);
  while (!v.empty() && blank(v.back())) v.remove_suffix(1);
  if (trimmed) *trimmed = v.size() != before;
  std::string name(v);
  if (fold_case) {
    for (char& c : name) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return name;
}

Result<std::vector<std::string>> ReadHeader(const std::string& path, char delimiter,
                                            size_t max_record_bytes, bool fold_case,
                                            std::vector<std::string>* trimmed) {
  return ReadHeader(path, CsvDialect{.delimiter = delimiter, .max_record_bytes = max_record_bytes},
                    sources::Encoding::kUtf8, fold_case, trimmed);
}

Result<std::vector<std::string>> ReadHeader(const std::string& path, const CsvDialect& dialect,
                                            sources::Encoding encoding, bool fold_case,
                                            std::vector<std::string>* trimmed) {
  FORKLIFT_ASSIGN_OR_RETURN(sources::Transcoder transcoder, sources::Transcoder::Open(encoding));
  FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> reader, OpenReader(path, dialect));
  CsvRecord rec;
  FORKLIFT_ASSIGN_OR_RETURN(bool got, reader->Next(&rec));
  if (!got) {
    return InvalidArgumentError(
        fmt::format("{}: empty file: no header row (--no-header "
                    "--columns a,b,c if it has none)",
                    path));
  }
  if (!rec.error.empty()) {
    return InvalidArgumentError(fmt::format("{}:{}: header: {}", path, rec.first_line, rec.error));
  }
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (size_t i = 0; i < rec.fields.size(); ++i) {
    bool was_trimmed = false;
    std::string name;
    if (std::string why =
            transcoder.Append(HeaderName(rec.fields[i], fold_case, &was_trimmed), &name);
        !why.empty()) {
      return InvalidArgumentError(
          fmt::format("{}:{}: header: column {}: {}", path, rec.first_line, i + 1, why));
    }
    if (was_trimmed && trimmed) trimmed->emplace_back(rec.fields[i].value);
    if (name.empty()) {
      return InvalidArgumentError(
          fmt::format("{}:{}: header: column {} has no name", path, rec.first_line, i + 1));
    }
    if (!seen.insert(name).second) {
      return InvalidArgumentError(
          fmt::format("{}:{}: header: column '{}' appears twice", path, rec.first_line, name));
    }
    names.push_back(std::move(name));
  }
  return names;
}

std::string TruncatedRejectNote(size_t record_bytes, size_t kept_bytes) {
  return fmt::format(" (record of {} bytes, first {} kept: not retryable)", record_bytes,
                     kept_bytes);
}

bool IsTruncatedReject(std::string_view reason, size_t payload_bytes) {
  // The second form is what versions before the note said "not retryable" wrote.
  return reason.ends_with(fmt::format(" bytes, first {} kept: not retryable)", payload_bytes)) ||
         (reason.find(" (record of ") != std::string_view::npos &&
          reason.ends_with(fmt::format(" bytes, first {} kept)", payload_bytes)));
}

Chunker::Chunker(ChunkerOptions options, ReadCounters* counters)
    : options_(std::move(options)), counters_(counters) {
  if (options_.partitions < 1) options_.partitions = 1;
  for (int i = 0; i < options_.partitions; ++i) {
    builders_.push_back(std::make_unique<Builder>());
    builders_.back()->chunk.partition = i;
  }
}

Chunker::~Chunker() = default;

Status Chunker::Flush(Builder& b, const Emit& emit) {
  if (b.count == 0) return {};
  b.chunk.number = next_chunk_++;
  b.chunk.source = path_;
  b.chunk.checksum = b.checksum.Hex();
  b.chunk.seekable = seekable_;
  b.chunk.file_first_chunk = file_first_chunk_;
  Chunk out = std::move(b.chunk);
  b.chunk = Chunk();
  b.chunk.partition = out.partition;
  b.chunk.data.reserve(out.data.capacity());
  b.checksum.Reset();
  b.count = 0;
  b.reject_bytes = 0;
  return emit(std::move(out));
}

Status Chunker::ReadFile(const std::string& path, const Emit& emit,
                         const std::function<bool()>& stop) {
  path_ = path;
  seekable_ = false;
  file_first_chunk_ = next_chunk_;
  if (options_.json_lines.value_or(sources::IsJsonLinesPath(path))) {
    return ReadJsonLines(path, emit, stop);
  }
  return ReadCsv(path, emit, stop);
}

Status Chunker::ReadCsv(const std::string& path, const Emit& emit,
                        const std::function<bool()>& stop) {
  if (!transcoder_) {
    FORKLIFT_ASSIGN_OR_RETURN(sources::Transcoder t, sources::Transcoder::Open(options_.encoding));
    transcoder_.emplace(std::move(t));
  }
  FORKLIFT_ASSIGN_OR_RETURN(
      std::unique_ptr<CsvReader> reader,
      OpenReader(path, CsvDialect{.delimiter = options_.delimiter,
                                  .max_record_bytes = options_.max_record_bytes,
                                  .quote = options_.quote,
                                  .escape = options_.escape,
                                  .skip_lines = options_.skip_lines}));
  seekable_ = !reader->source().compressed() && path != "-";
  return ReadCsvFrom(*reader, emit, stop);
}

Status Chunker::ReadSource(const std::string& name, std::unique_ptr<ByteSource> source,
                           const Emit& emit, const std::function<bool()>& stop) {
  path_ = name;
  seekable_ = false;
  file_first_chunk_ = next_chunk_;
  CsvReader reader(std::move(source), CsvDialect{.delimiter = options_.delimiter,
                                                 .max_record_bytes = options_.max_record_bytes});
  return ReadCsvFrom(reader, emit, stop);
}

Status Chunker::ReadCsvFrom(CsvReader& reader_ref, const Emit& emit,
                            const std::function<bool()>& stop) {
  CsvReader* reader = &reader_ref;
  const std::string& path = path_;
  CsvRecord rec;
  bool first = true;
  uint64_t last_bytes = 0;
  // Decided once: on the default dialect each row is stored as read, with no per-row test.
  const bool rewrite = transcoder_ && reencode();
  for (;;) {
    if (stop && stop()) return {};
    FORKLIFT_ASSIGN_OR_RETURN(bool got, reader->Next(&rec));
    const uint64_t bytes = reader->source().source_bytes_read();
    counters_->source_bytes.fetch_add(bytes - last_bytes, std::memory_order_relaxed);
    last_bytes = bytes;
    if (!got) break;
    if (first && options_.header) {
      first = false;
      if (!options_.header_names.empty()) {
        bool same = rec.error.empty() && rec.fields.size() == options_.header_names.size();
        for (size_t i = 0; same && i < rec.fields.size(); ++i) {
          std::string name = HeaderName(rec.fields[i], options_.fold_header_case, nullptr);
          if (rewrite) {
            value_.clear();
            same = transcoder_->Append(name, &value_).empty() && value_ == options_.header_names[i];
          } else {
            same = name == options_.header_names[i];
          }
        }
        if (!same) {
          return InvalidArgumentError(fmt::format(
              "{}:{}: header '{}' differs from the first file's ({})", path, rec.first_line,
              rec.raw.substr(0, 200), fmt::join(options_.header_names, ",")));
        }
      }
      continue;
    }
    first = false;
    if (rewrite && rec.error.empty()) [[unlikely]] {
      std::string why = Reencode(rec, &stored_);
      FORKLIFT_RETURN_IF_ERROR(Add(rec, stored_, why, rec.raw, rec.terminator, emit));
    } else {
      FORKLIFT_RETURN_IF_ERROR(Add(rec, rec.raw, rec.terminator, emit));
    }
  }
  for (auto& b : builders_) FORKLIFT_RETURN_IF_ERROR(Flush(*b, emit));
  return {};
}

Status Chunker::ReadSpan(const std::string& path, uint64_t begin, uint64_t end, uint64_t first_line,
                         int64_t first_number, const Emit& emit,
                         const std::function<bool()>& stop) {
  path_ = path;
  seekable_ = true;
  file_first_chunk_ = next_chunk_ = first_number;
  core::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int err = errno;
    std::string message = fmt::format("cannot open '{}': {}", path, core::ErrnoText(err));
    if (err == ENOENT || err == ENOTDIR) return NotFoundError(std::move(message));
    return InvalidArgumentError(std::move(message));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return FailedPreconditionError(fmt::format("{}: not a regular file here", path));
  }
  if (static_cast<uint64_t>(st.st_size) < end || begin > end) {
    return FailedPreconditionError(
        fmt::format("{}: {} bytes here, the chunk's span is {}-{}: the sources differ", path,
                    st.st_size, begin, end));
  }
  std::array<unsigned char, 2> magic{};
  if (::pread(fd.get(), magic.data(), magic.size(), 0) == 2 && magic[0] == 0x1f &&
      magic[1] == 0x8b) {
    return FailedPreconditionError(
        fmt::format("{}: gzip here (a gzip stream cannot be entered mid-way)", path));
  }
  if (!transcoder_) {
    FORKLIFT_ASSIGN_OR_RETURN(sources::Transcoder t, sources::Transcoder::Open(options_.encoding));
    transcoder_.emplace(std::move(t));
  }
  // pread from `begin` to `end`: the reader sees the span as the whole input.
  uint64_t at = begin;
  auto pull = [fd = std::make_shared<core::UniqueFd>(std::move(fd)), &at, end](
                  char* buf, size_t n) -> Result<size_t> {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(n, end - at));
    if (want == 0) return size_t{0};
    for (;;) {
      const ssize_t got = ::pread(fd->get(), buf, want, static_cast<off_t>(at));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return DataLossError(fmt::format("read failed: {}", core::ErrnoText(errno)));
      if (got == 0) return DataLossError("the file ends before the chunk's span");
      at += static_cast<uint64_t>(got);
      return static_cast<size_t>(got);
    }
  };
  CsvReader reader(ByteSource::FromPull(path, std::move(pull)),
                   CsvDialect{.delimiter = options_.delimiter,
                              .max_record_bytes = options_.max_record_bytes,
                              .quote = options_.quote,
                              .escape = options_.escape});
  reader.StartAt(begin, first_line);
  // The span holds records only: the file's header lies before it.
  const bool header = options_.header;
  options_.header = false;
  Status st_read = ReadCsvFrom(reader, emit, stop);
  options_.header = header;
  return st_read;
}

Status Chunker::ReadJsonLines(const std::string& path, const Emit& emit,
                              const std::function<bool()>& stop) {
  FORKLIFT_ASSIGN_OR_RETURN(std::unique_ptr<ByteSource> src, ByteSource::Open(path));
  sources::JsonLinesReader reader(std::move(src), {.columns = options_.column_names,
                                                   .delimiter = options_.delimiter,
                                                   .null_string = options_.null_string,
                                                   .max_record_bytes = options_.max_record_bytes});
  CsvRecord rec;
  uint64_t last_bytes = 0;
  for (;;) {
    if (stop && stop()) break;
    FORKLIFT_ASSIGN_OR_RETURN(bool got, reader.Next(&rec));
    const uint64_t bytes = reader.source().source_bytes_read();
    counters_->source_bytes.fetch_add(bytes - last_bytes, std::memory_order_relaxed);
    last_bytes = bytes;
    if (!got) break;
    FORKLIFT_RETURN_IF_ERROR(Add(rec, reader.line(), reader.terminator(), emit));
  }
  for (const auto& [name, n] : reader.unknown_fields()) unknown_fields_[name] += n;
  if (stop && stop()) return {};
  for (auto& b : builders_) FORKLIFT_RETURN_IF_ERROR(Flush(*b, emit));
  return {};
}

std::string Chunker::Reencode(const CsvRecord& rec, std::string* out) {
  out->clear();
  if (options_.quote == '"' && options_.escape == '"') {
    // Only the encoding differs: every byte that shapes the record is ASCII and stays.
    return transcoder_->Append(rec.raw, out);
  }
  for (size_t i = 0; i < rec.fields.size(); ++i) {
    if (i > 0) out->push_back(options_.delimiter);
    value_.clear();
    if (std::string why = transcoder_->Append(rec.fields[i].value, &value_); !why.empty()) {
      return fmt::format("field {}: {}", i + 1, why);
    }
    AppendDefaultField(value_, rec.fields[i].quoted, out);
  }
  return {};
}

Status Chunker::Add(const CsvRecord& rec, std::string_view text, std::string_view terminator,
                    const Emit& emit) {
  return Add(rec, rec.raw, std::string_view(), text, terminator, emit);
}

Status Chunker::Add(const CsvRecord& rec, std::string_view stored, std::string_view stored_error,
                    std::string_view text, std::string_view terminator, const Emit& emit) {
  counters_->rows.fetch_add(1, std::memory_order_relaxed);
  std::string reason = rec.error;
  if (reason.empty() && rec.fields.size() != options_.columns) {
    reason = fmt::format("expected {} fields, found {}", options_.columns, rec.fields.size());
  }
  if (reason.empty() && !stored_error.empty()) reason = stored_error;
  if (reason.empty() && !sources::IsValidUtf8(stored)) {
    reason = sources::Utf8ErrorReason(stored);
  }
  if (!reason.empty()) {
    Builder& b = *builders_[0];
    b.Note(rec, text, terminator);
    ParseReject rj{.line = rec.first_line, .raw = std::string(text), .reason = std::move(reason)};
    if (rj.raw.size() > options_.max_reject_bytes) {
      rj.raw.resize(options_.max_reject_bytes);
      rj.reason += TruncatedRejectNote(text.size(), options_.max_reject_bytes);
    }
    b.reject_bytes += static_cast<int64_t>(rj.raw.size());
    b.chunk.parse_rejects.push_back(std::move(rj));
    if (b.count >= options_.chunk_rows || b.bytes() >= options_.chunk_bytes) {
      FORKLIFT_RETURN_IF_ERROR(Flush(b, emit));
    }
    return {};
  }

  size_t part = 0;
  if (options_.partitions > 1 && !options_.key_fields.empty()) {
    keybuf_.clear();
    for (size_t i = 0; i < options_.key_fields.size(); ++i) {
      const std::string_view v = rec.fields[options_.key_fields[i]].value;
      if (options_.canonical_key) {
        options_.canonical_key(i, v, &keybuf_);
      } else {
        keybuf_.append(v);
      }
      keybuf_.push_back('\0');
    }
    part = XXH3_64bits(keybuf_.data(), keybuf_.size()) % static_cast<uint64_t>(options_.partitions);
  }
  Builder& b = *builders_[part];
  b.Note(rec, text, terminator);
  Chunk& c = b.chunk;
  ChunkRow row{.offset = static_cast<uint32_t>(c.data.size()), .size = 0, .line = rec.first_line};
  // A line holding only \. ends COPY's data even in CSV mode; quoted it is plain data.
  if (stored == "\\.") {
    c.data.append("\"\\.\"");
  } else {
    c.data.append(stored);
  }
  row.size = static_cast<uint32_t>(c.data.size() - row.offset);
  c.data.push_back('\n');
  c.rows.push_back(row);
  if (b.count >= options_.chunk_rows || b.bytes() >= options_.chunk_bytes) {
    FORKLIFT_RETURN_IF_ERROR(Flush(b, emit));
  }
  return {};
}

}  // namespace forklift::load
