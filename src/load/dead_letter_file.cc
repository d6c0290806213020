#include "load/dead_letter_file.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace forklift::load {

std::string CsvField(std::string_view v) {
  const bool quote = v.find_first_of(",\"\r\n") != std::string_view::npos ||
                     (!v.empty() && (v.front() == ' ' || v.back() == ' '));
  if (!quote) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string DeadLetterCsvRow(const journal::DeadLetter& d) {
  std::string line = d.position;
  if (line.starts_with("line ")) line.erase(0, 5);
  return fmt::format("{},{},{},{},{}\n", CsvField(d.run_id), CsvField(d.source), CsvField(line),
                     CsvField(d.reason), CsvField(d.payload));
}

Status WriteDeadLetterFile(const std::string& path, std::span<const journal::DeadLetter> letters) {
  const std::string tmp = path + ".forklift-tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return InvalidArgumentError(fmt::format("--dlq {}: {}", path, std::strerror(errno)));
  std::fputs(kDeadLetterCsvHeader, f);
  for (const journal::DeadLetter& d : letters) {
    const std::string row = DeadLetterCsvRow(d);  // may hold NULs: fwrite, not fputs
    std::fwrite(row.data(), 1, row.size(), f);
  }
  const bool ok = std::fflush(f) == 0 && !std::ferror(f);
  const int err = errno;
  std::fclose(f);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = ok ? errno : err;
    std::remove(tmp.c_str());
    return InvalidArgumentError(fmt::format("--dlq {}: {}", path, std::strerror(e)));
  }
  return {};
}

}  // namespace forklift::load
