// Brace expansion for a flow task's `inputs`/`outputs` globs: "out/{a,b}.csv" ->
// "out/a.csv", "out/b.csv" (nested braces too). Done here rather than by GLOB_BRACE so each
// alternative is a pattern of its own: a declared output "b.csv" that is missing must make
// the task stale even when "a.csv" exists. A '{' without its '}' or without a top-level
// ',' is literal. Each group multiplies the patterns, so the expansion is bounded: the flow
// file is refused when one glob gives more than kMaxBraceExpansion patterns.
#ifndef FORKLIFT_FLOW_BRACE_EXPANSION_H_
#define FORKLIFT_FLOW_BRACE_EXPANSION_H_

#include <cstddef>
#include <string>
#include <vector>

#include "forklift/result.h"

namespace forklift::flow {

inline constexpr size_t kMaxBraceExpansion = 4096;

// Success: the patterns, in order. Failure: InvalidArgument "'PATTERN' expands to more
// than LIMIT patterns" — found after at most limit + 1 patterns were made, so the cost is
// bounded by the limit, never by the number of groups. Thread-safe.
Result<std::vector<std::string>> ExpandBraces(const std::string& pattern,
                                              size_t limit = kMaxBraceExpansion);

}  // namespace forklift::flow

#endif  // FORKLIFT_FLOW_BRACE_EXPANSION_H_
