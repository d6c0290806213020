#include "flow/brace_expansion.h"

#include <fmt/format.h>

#include <optional>

namespace forklift::flow {
namespace {

// The leftmost '{' whose group closes and has a ',' at its top level, with those commas
// and its '}' appended; nullopt when there is none. One pass with a stack of the open
// braces, so that many unclosed or comma-less braces cost O(length), not O(length^2)
// (a '}' closes the latest open '{', as scanning forward with a depth count does).
std::optional<std::vector<size_t>> FirstGroup(const std::string& pattern) {
  struct Open {
    size_t at;
    bool has_comma;
  };
  std::vector<Open> stack;
  std::optional<size_t> first;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '{') stack.push_back({i, false});
    if (pattern[i] == ',' && !stack.empty()) stack.back().has_comma = true;
    if (pattern[i] == '}' && !stack.empty()) {
      if (stack.back().has_comma && (!first || stack.back().at < *first)) first = stack.back().at;
      stack.pop_back();
    }
  }
  if (!first) return std::nullopt;
  std::vector<size_t> marks{*first};
  int depth = 0;
  for (size_t i = *first; i < pattern.size(); ++i) {
    if (pattern[i] == '{') ++depth;
    if (pattern[i] == ',' && depth == 1) marks.push_back(i);
    if (pattern[i] == '}' && --depth == 0) {
      marks.push_back(i);
      break;
    }
  }
  return marks;  // the '{', its top-level commas, its '}'
}

// False once `out` holds more than `limit` patterns, or the patterns made and being made
// hold more than kMaxBraceExpansionBytes (`*bytes` counts them): a long glob with nested
// groups would otherwise take limit x length of memory, and as many stack frames as it
// has nesting levels.
bool Expand(const std::string& pattern, size_t limit, std::vector<std::string>& out,
            size_t* bytes) {
  auto marks = FirstGroup(pattern);
  if (!marks) {
    out.push_back(pattern);
    *bytes += pattern.size();
    return out.size() <= limit && *bytes <= kMaxBraceExpansionBytes;
  }
  const size_t open = marks->front(), close = marks->back();
  std::string head = pattern.substr(0, open), tail = pattern.substr(close + 1);
  // This frame's strings live until it returns.
  const size_t live = 2 * pattern.size();
  *bytes += live;
  for (size_t k = 0; k + 1 < marks->size(); ++k) {
    const size_t from = (*marks)[k] + 1, to = (*marks)[k + 1];
    if (*bytes > kMaxBraceExpansionBytes) return false;
    if (!Expand(head + pattern.substr(from, to - from) + tail, limit, out, bytes)) return false;
  }
  *bytes -= live;
  return true;
}

}  // namespace

Result<std::vector<std::string>> ExpandBraces(const std::string& pattern, size_t limit) {
  std::vector<std::string> out;
  size_t bytes = 0;
  if (!Expand(pattern, limit, out, &bytes)) {
    if (bytes > kMaxBraceExpansionBytes) {
      std::string shown = pattern.size() > 80 ? pattern.substr(0, 77) + "..." : pattern;
      return InvalidArgumentError(fmt::format("'{}' expands to more than {} MiB of patterns", shown,
                                              kMaxBraceExpansionBytes >> 20));
    }
    std::string shown = pattern.size() > 80 ? pattern.substr(0, 77) + "..." : pattern;
    return InvalidArgumentError(fmt::format("'{}' expands to more than {} patterns", shown, limit));
  }
  return out;
}

}  // namespace forklift::flow
