// A Perl-compatible regular expression (PCRE2), for --colsep: GNU parallel's column
// separator is a Perl regex, and PCRE2's matcher keeps its backtracking state on the
// heap, so a long subject cannot overflow the stack (libstdc++'s std::regex recursed
// once per character and crashed on a 30,000-byte line: issue 16).
//
// Thread safety: a compiled PerlRegex is immutable; Match may be called from several
// threads at once (each call uses its own match data).
#ifndef FORKLIFT_MAP_PERL_REGEX_H_
#define FORKLIFT_MAP_PERL_REGEX_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "forklift/result.h"

namespace forklift::map {

class PerlRegex {
 public:
  // One match: the whole match's [begin, end) byte offsets in the subject, then each
  // capture group's (nullopt for a group that did not take part).
  struct Match {
    size_t begin = 0;
    size_t end = 0;
    std::vector<std::optional<std::pair<size_t, size_t>>> groups;
  };
  struct MatchOptions {
    bool anchored = false;            // only a match starting exactly at `start`
    bool not_empty_at_start = false;  // no empty match at `start`
  };

  // Compiles `pattern` (bytes, no UTF mode, as Perl treats a byte string). On a pattern
  // PCRE2 rejects returns InvalidArgument "<pattern>: <PCRE2's message> at offset N".
  static Result<PerlRegex> Compile(const std::string& pattern);

  // The first match in `subject` at or after byte `start` (lookbehinds and \b see the
  // bytes before `start`). nullopt when there is none. Fails with Internal when PCRE2
  // gives up (its match or heap limit, for pathological patterns), naming the reason.
  Result<std::optional<Match>> Find(std::string_view subject, size_t start,
                                    MatchOptions options) const;

 private:
  struct Code;
  explicit PerlRegex(std::shared_ptr<const Code> code) : code_(std::move(code)) {}
  std::shared_ptr<const Code> code_;  // shared: copies of a splitter share one compile
};

}  // namespace forklift::map

#endif  // FORKLIFT_MAP_PERL_REGEX_H_
