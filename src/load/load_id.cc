#include "load/load_id.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "sources/checksum.h"

namespace forklift::load {

Result<std::string> ComputeLoadId(const LoadOptions& o, const std::string& target_identity,
                                  const std::vector<std::string>& columns, int partitions) {
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
    std::error_code ec;
    auto abs = std::filesystem::absolute(src, ec);
    add(ec ? src : abs.lexically_normal().string());
    add(std::to_string(st.st_size));
    add(fmt::format("{}.{:09}", st.st_mtim.tv_sec, st.st_mtim.tv_nsec));
  }
  add(target_identity);
  add(o.table);
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
  return "load-" + h.Hex();
}

}  // namespace forklift::load
