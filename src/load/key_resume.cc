#include "load/key_resume.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "sources/csv_reader.h"

namespace forklift::load {

std::string EncodeKey(const std::vector<std::string>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"') out += '"';
      out += c;
    }
    out += '"';
  }
  return out;
}

Result<std::vector<std::string>> DecodeKey(std::string_view text) {
  std::vector<sources::CsvField> fields;
  std::string scratch;
  std::string bad = sources::SplitCsvRecord(text, ',', &fields, &scratch);
  if (!bad.empty() || text.empty()) {
    return InvalidArgumentError(
        fmt::format("the ledger's last_key '{}' is not a key forklift wrote: {}",
                    text.substr(0, 200), bad.empty() ? "empty" : bad));
  }
  std::vector<std::string> out;
  out.reserve(fields.size());
  for (const auto& f : fields) out.emplace_back(f.value);
  return out;
}

Result<std::vector<std::string>> RowKey(const sinks::Chunk& chunk, size_t row,
                                        const std::vector<size_t>& key_fields,
                                        std::string_view key_names) {
  std::vector<sources::CsvField> fields;
  std::string scratch;
  (void)sources::SplitCsvRecord(chunk.Row(row), ',', &fields, &scratch);
  std::vector<std::string> out;
  out.reserve(key_fields.size());
  for (size_t k : key_fields) {
    if (k >= fields.size()) {
      return InvalidArgumentError(fmt::format("--resume-key {}: row at line {} has {} fields",
                                              key_names, chunk.rows[row].line, fields.size()));
    }
    if (!fields[k].quoted && fields[k].value.empty()) {
      return InvalidArgumentError(fmt::format(
          "--resume-key {}: NULL in the row at line {} of {}: a key with NULLs cannot be "
          "resumed after (rows are compared with >); filter them out or use another key",
          key_names, chunk.rows[row].line, chunk.source));
    }
    out.emplace_back(fields[k].value);
  }
  return out;
}

Result<std::vector<PartitionResume>> PlanKeyResume(const std::vector<sinks::LedgerEntry>& committed,
                                                   int partitions) {
  const int n = partitions < 1 ? 1 : partitions;
  std::vector<std::map<int64_t, sinks::LedgerEntry>> by_partition(static_cast<size_t>(n));
  for (const sinks::LedgerEntry& e : committed) {
    if (e.chunk < 0) continue;  // not a chunk (a marker row of another kind)
    by_partition[static_cast<size_t>(e.chunk % n)].emplace(e.chunk, e);
  }
  std::vector<PartitionResume> out(static_cast<size_t>(n));
  for (int p = 0; p < n; ++p) {
    auto& entries = by_partition[static_cast<size_t>(p)];
    PartitionResume& r = out[static_cast<size_t>(p)];
    // The prefix: p, p+N, ... while committed; it ends at its last entry with a key (a
    // chunk of rejected rows alone may have none), the rest is read again.
    int64_t number = p;
    const sinks::LedgerEntry* last_keyed = nullptr;
    std::vector<const sinks::LedgerEntry*> run;
    for (auto it = entries.find(number); it != entries.end(); it = entries.find(number)) {
      run.push_back(&it->second);
      if (it->second.last_key) last_keyed = &it->second;
      number += n;
    }
    r.next_number = p;
    if (last_keyed) {
      FORKLIFT_ASSIGN_OR_RETURN(r.after, DecodeKey(*last_keyed->last_key));
      r.next_number = last_keyed->chunk + n;
      r.line_offset = static_cast<uint64_t>(last_keyed->last_line) - 1;  // the header is line 1
      for (const sinks::LedgerEntry* e : run) {
        if (e->chunk > last_keyed->chunk) break;
        ++r.prefix_chunks;
        r.prefix_rows += e->rows;
        r.prefix_rejected += e->rejected;
      }
    }
    for (auto& [chunk, e] : entries) {
      if (chunk >= r.next_number) r.beyond.emplace(chunk, e);
    }
  }
  return out;
}

std::vector<PartitionResume> PlanStartOver(const std::vector<sinks::LedgerEntry>& committed,
                                           int partitions) {
  const int n = partitions < 1 ? 1 : partitions;
  int64_t base = 0;
  for (const sinks::LedgerEntry& e : committed) base = std::max(base, e.chunk + 1);
  // The first multiple of n at or after base, so that chunk % n is still the partition.
  base = (base + n - 1) / n * n;
  std::vector<PartitionResume> out(static_cast<size_t>(n));
  for (int p = 0; p < n; ++p) out[static_cast<size_t>(p)].next_number = base + p;
  return out;
}

}  // namespace forklift::load
