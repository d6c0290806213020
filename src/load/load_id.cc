#include "load/load_id.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "sinks/pg_dsn.h"
#include "sources/checksum.h"

namespace forklift::load {
namespace {

// One part of a table name as ParseQualifiedName reads it back to the same identifier:
// unquoted where it can be (so a name typed in lower case, the common spelling, hashes as
// it did before names were canonicalised), else quoted.
std::string CanonicalPart(std::string_view part) {
  bool plain = !part.empty();
  for (unsigned char c : part) {
    if (c == '"' || c == '.' || (c >= 'A' && c <= 'Z') || std::isspace(c) || std::iscntrl(c)) {
      plain = false;
      break;
    }
  }
  if (plain) return std::string(part);
  std::string out = "\"";
  for (char c : part) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

// What changes the rows a load writes beyond its source, target and chunking: each part is
// added only when set, so the ids of loads without them stay as they were.
template <typename Add>
void AddVariants(const LoadOptions& o, const Add& add) {
  if (o.insert_ignore) add("insert-ignore");
  if (o.truncate) add("truncate");
  if (o.replace) add("replace");
  if (!o.transform.empty()) {  // another transform writes other rows: another load
    add("transform");
    add(o.transform);
  }
  if (HasCsvDialect(o)) {  // only when set: ids of loads in the default dialect stay
    add("dialect");
    add(std::string(1, o.quote));
    add(std::string(1, EffectiveEscape(o)));
    add(sources::EncodingName(o.encoding));
    add(std::to_string(o.skip_lines));
  }
}

}  // namespace

std::string SourceIdentity(const std::string& path) {
  if (path == "-") return path;  // stdin: ByteSource::Open reads it by this name
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

Result<std::string> TableIdentity(std::string_view table) {
  FORKLIFT_ASSIGN_OR_RETURN(auto parts, sinks::ParseQualifiedName(table));
  if (parts.first.empty()) return CanonicalPart(parts.second);
  return CanonicalPart(parts.first) + "." + CanonicalPart(parts.second);
}

Result<std::string> ComputeLoadId(const LoadOptions& o, const std::string& target_identity,
                                  const std::vector<std::string>& columns, int partitions) {
  FORKLIFT_ASSIGN_OR_RETURN(std::string table, TableIdentity(o.table));
  sources::Checksum h;
  // Each field ends with a NUL so that no two different inputs concatenate alike.
  auto add = [&](std::string_view s) {
    h.Add(s);
    h.Add(std::string_view("\0", 1));
  };
  add("forklift-load-v1");
  for (const std::string& src : o.sources) {
    struct stat st;
    if (::stat(src.c_str(), &st) != 0) {
      return NotFoundError(fmt::format("{}: {}", src, std::strerror(errno)));
    }
    add(SourceIdentity(src));
    add(std::to_string(st.st_size));
    add(fmt::format("{}.{:09}", st.st_mtim.tv_sec, st.st_mtim.tv_nsec));
  }
  add(target_identity);
  add(table);
  add(o.upsert ? "upsert" : "insert");
  for (const std::string& k : o.key) add(k);
  add("|");
  for (const std::string& c : columns) add(c);
  add("|");
  add(std::string(1, o.delimiter));
  add(o.null_string);
  add(o.header ? "header" : "no-header");
  add(std::to_string(o.chunk_rows));
  add(std::to_string(o.chunk_bytes));
  add(std::to_string(partitions));
  AddVariants(o, add);
  return "load-" + h.Hex();
}

Result<std::string> ComputeQueryLoadId(const LoadOptions& o, const std::string& source_identity,
                                       const std::string& target_identity,
                                       const std::vector<std::string>& columns, int partitions) {
  FORKLIFT_ASSIGN_OR_RETURN(std::string table, TableIdentity(o.table));
  sources::Checksum h;
  auto add = [&](std::string_view s) {
    h.Add(s);
    h.Add(std::string_view("\0", 1));
  };
  add("forklift-load-query-v1");
  add(source_identity);
  add(o.query);
  for (const std::string& k : o.resume_key) add(k);
  add("|");
  add(o.partition_by);
  add(std::to_string(o.partitions));
  add(target_identity);
  add(table);
  add(o.upsert ? "upsert" : "insert");
  for (const std::string& k : o.key) add(k);
  add("|");
  for (const std::string& c : columns) add(c);
  add("|");
  add(std::to_string(o.chunk_rows));
  add(std::to_string(o.chunk_bytes));
  add(std::to_string(partitions));
  AddVariants(o, add);
  return "load-" + h.Hex();
}

}  // namespace forklift::load
