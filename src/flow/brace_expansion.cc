#include "flow/brace_expansion.h"

#include <fmt/format.h>

namespace forklift::flow {
namespace {

// False once `out` holds more than `limit` patterns.
bool Expand(const std::string& pattern, size_t limit, std::vector<std::string>& out) {
  for (size_t open = pattern.find('{'); open != std::string::npos;
       open = pattern.find('{', open + 1)) {
    int depth = 0;
    std::vector<size_t> commas;
    size_t close = std::string::npos;
    for (size_t i = open; i < pattern.size() && close == std::string::npos; ++i) {
      if (pattern[i] == '{') ++depth;
      if (pattern[i] == '}' && --depth == 0) close = i;
      if (pattern[i] == ',' && depth == 1) commas.push_back(i);
    }
    if (close == std::string::npos || commas.empty()) continue;
    std::string head = pattern.substr(0, open), tail = pattern.substr(close + 1);
    size_t from = open + 1;
    commas.push_back(close);
    for (size_t comma : commas) {
      if (!Expand(head + pattern.substr(from, comma - from) + tail, limit, out)) return false;
      from = comma + 1;
    }
    return true;
  }
  out.push_back(pattern);
  return out.size() <= limit;
}

}  // namespace

Result<std::vector<std::string>> ExpandBraces(const std::string& pattern, size_t limit) {
  std::vector<std::string> out;
  if (!Expand(pattern, limit, out)) {
    std::string shown = pattern.size() > 80 ? pattern.substr(0, 77) + "..." : pattern;
    return InvalidArgumentError(
        fmt::format("'{}' expands to more than {} patterns", shown, limit));
  }
  return out;
}

}  // namespace forklift::flow
