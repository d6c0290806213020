#include "map/perl_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <fmt/format.h>

namespace forklift::map {
namespace {

std::string PcreMessage(int code) {
  PCRE2_UCHAR buf[256];
  int n = pcre2_get_error_message(code, buf, sizeof buf);
  if (n < 0) return fmt::format("PCRE2 error {}", code);
  return std::string(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

}  // namespace

struct PerlRegex::Code {
  pcre2_code* code = nullptr;
  uint32_t groups = 0;
  ~Code() { pcre2_code_free(code); }
};

Result<PerlRegex> PerlRegex::Compile(const std::string& pattern) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), 0,
                                   &error, &offset, nullptr);
  if (!code) {
    return InvalidArgumentError(
        fmt::format("'{}': {} at offset {}", pattern, PcreMessage(error), offset));
  }
  auto c = std::make_shared<Code>();
  c->code = code;
  pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &c->groups);
  return PerlRegex(std::move(c));
}

Result<std::optional<PerlRegex::Match>> PerlRegex::Find(std::string_view subject, size_t start,
                                                        MatchOptions options) const {
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> data(
      pcre2_match_data_create_from_pattern(code_->code, nullptr), &pcre2_match_data_free);
  if (!data) return InternalError("--colsep: out of memory for the match");
  uint32_t flags = (options.anchored ? PCRE2_ANCHORED : 0) |
                   (options.not_empty_at_start ? PCRE2_NOTEMPTY_ATSTART : 0);
  int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(),
                       start, flags, data.get(), nullptr);
  if (rc == PCRE2_ERROR_NOMATCH) return std::nullopt;
  if (rc < 0) {
    return InternalError(fmt::format("--colsep: matching a {}-byte record failed: {}",
                                     subject.size(), PcreMessage(rc)));
  }
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data.get());
  Match m;
  m.begin = ov[0];
  m.end = ov[1];
  // PCRE2 allows \K to end a match before its start; Perl's split has no such thing.
  if (m.end < m.begin) m.end = m.begin;
  for (uint32_t g = 1; g <= code_->groups; ++g) {
    if (static_cast<int>(g) >= rc || ov[2 * g] == PCRE2_UNSET) {
      m.groups.emplace_back(std::nullopt);
    } else {
      m.groups.emplace_back(std::make_pair(ov[2 * g], ov[2 * g + 1]));
    }
  }
  return m;
}

}  // namespace forklift::map
