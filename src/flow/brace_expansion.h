// Brace expansion for a flow task's `inputs`/`outputs` globs: "out/{a,b}.csv" ->
// "out/a.csv", "out/b.csv" (nested braces too). Done here rather than by GLOB_BRACE so each
// alternative is a pattern of its own: a declared output "b.csv" that is missing must make
// the task stale even when "a.csv" exists. A '{' without its '}' or without a top-level
// ',' is literal. Each group multiplies the patterns, so the expansion is bounded: the flow
// file is refused when one glob gives more than kMaxBraceExpansion patterns, or when its
// patterns would hold more than kMaxBraceExpansionBytes (a long glob of nested groups).
#ifndef FORKLIFT_FLOW_BRACE_EXPANSION_H_
#define FORKLIFT_FLOW_BRACE_EXPANSION_H_

#include <cstddef>
#include <string>
#include <vector>

#include "forklift/result.h"

namespace forklift::flow {

inline constexpr size_t kMaxBraceExpansion = 4096;
inline constexpr size_t kMaxBraceExpansionBytes = size_t{16} << 20;

// Success: the patterns, in order. Failure: InvalidArgument "'PATTERN' expands to more
// than LIMIT patterns" — found after at most limit + 1 patterns were made — or "'PATTERN'
// expands to more than 16 MiB of patterns"; each step is one linear pass over a pattern,
// so the cost is bounded by the limits and the glob's length, never by its number of
// groups or unclosed braces. Thread-safe.
Result<std::vector<std::string>> ExpandBraces(const std::string& pattern,
                                              size_t limit = kMaxBraceExpansion);

}  // namespace forklift::flow

#endif  // FORKLIFT_FLOW_BRACE_EXPANSION_H_
