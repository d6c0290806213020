// map's input source: records from a descriptor (stdin), -0, --colsep, several sources.
// Properties:
//  - without --colsep, the tuples are the input split at the separator ('\n', or NUL
//    with -0), the separator removed and nothing else, a last record without one
//    counted; without -0 a NUL becomes the two bytes "\0" and replaced_nul() says so;
//  - a plain-text --colsep splits like a literal split with each column trimmed of
//    Perl's \s, and the same text as a regex ("(?:TEXT)") gives the same columns, so the
//    literal fast path and PCRE2 agree;
//  - any regex --colsep either is refused at Open, fails a record with Internal (PCRE2's
//    match limit), or yields columns that are all trimmed;
//  - a second source (::: x y) gives the cross product, the first source varying slowest
//    (an empty stdin then counts as one empty argument), --colsep splitting it too;
//  - count() is the number of tuples returned, and the end is sticky.
// Input: byte 0 = flags (bit 0 -0, bit 1 --colsep, bit 2 as a regex, bit 3 a second
// source), then the --colsep text up to '\x02' when bit 1 is set, then stdin's bytes.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "map/input_source.h"

namespace fm = forklift::map;

namespace {

bool IsPerlSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string Trim(std::string_view s) {
  while (!s.empty() && IsPerlSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsPerlSpace(s.back())) s.remove_suffix(1);
  return std::string(s);
}

bool IsPlain(std::string_view p) {
  return !p.empty() && p != "\\t" && p.find_first_of("\\^$.|?*+()[]{}") == std::string_view::npos;
}

// nullopt when the source could not be opened or a record failed to split.
std::optional<std::vector<std::vector<std::string>>> ReadAll(std::string_view bytes,
                                                             const fm::InputOptions& options,
                                                             bool second, bool* replaced) {
  forklift::fuzz::MemFile file(bytes);
  std::vector<fm::InputSpec> specs;
  specs.push_back({.kind = fm::InputSpec::Kind::kStdin});
  if (second) specs.push_back({.kind = fm::InputSpec::Kind::kArgs, .args = {"x", "y"}});
  auto source = fm::InputSource::Open(specs, options, file.fd());
  if (!source) return std::nullopt;
  std::vector<std::vector<std::string>> tuples;
  while (true) {
    auto t = (*source)->Next();
    if (!t) {
      FUZZ_CHECK(t.error().code == forklift::ErrorCode::kInternal);
      return std::nullopt;
    }
    if (!*t) break;
    tuples.push_back(std::move(**t));
  }
  FUZZ_CHECK((*source)->count() == tuples.size());
  auto end = (*source)->Next();
  FUZZ_CHECK(end && !*end);
  *replaced = (*source)->replaced_nul();
  return tuples;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  forklift::fuzz::Input in(data, size);
  const uint8_t flags = in.Byte();
  fm::InputOptions options;
  options.null_separated = flags & 1;
  const bool second = flags & 8;
  if (flags & 2) options.colsep = std::string(in.Until('\x02'));
  std::string_view bytes = in.Rest();
  const char sep = options.null_separated ? '\0' : '\n';

  // The records, by the documented rule.
  std::vector<std::string> records;
  if (!bytes.empty()) {
    std::string_view rest = bytes;
    while (!rest.empty()) {
      size_t i = rest.find(sep);
      std::string r(rest.substr(0, i));
      rest.remove_prefix(i == std::string_view::npos ? rest.size() : i + 1);
      if (!options.null_separated) {
        std::string out;
        for (char c : r) {
          if (c == '\0')
            out += "\\0";
          else
            out += c;
        }
        r = out;
      }
      records.push_back(std::move(r));
    }
  } else if (second) {
    records.emplace_back();  // an empty source is one empty argument beside another
  }

  bool replaced = false;
  auto tuples = ReadAll(bytes, options, second, &replaced);
  if (!options.colsep || IsPlain(*options.colsep)) FUZZ_CHECK(tuples.has_value());
  if (!tuples) return 0;
  FUZZ_CHECK(tuples->size() == records.size() * (second ? 2 : 1));
  FUZZ_CHECK(replaced == (!options.null_separated && bytes.find('\0') != std::string_view::npos));
  auto literal_split = [&](const std::string& record) {
    const std::string& lit = *options.colsep;
    std::vector<std::string> want;
    if (record.empty()) {
      want.emplace_back();
      return want;
    }
    size_t start = 0;
    while (true) {
      size_t hit = record.find(lit, start);
      if (hit == std::string::npos) break;
      want.push_back(Trim(std::string_view(record).substr(start, hit - start)));
      start = hit + lit.size();
    }
    want.push_back(Trim(std::string_view(record).substr(start)));
    return want;
  };
  for (size_t i = 0; i < tuples->size(); ++i) {
    const std::vector<std::string>& t = (*tuples)[i];
    const std::string& record = records[second ? i / 2 : i];
    for (const auto& col : t) {
      if (options.colsep) FUZZ_CHECK(col == Trim(col));
    }
    if (options.colsep && !IsPlain(*options.colsep)) continue;
    // --colsep splits every source, the ::: list too (as GNU parallel does).
    std::vector<std::string> want =
        options.colsep ? literal_split(record) : std::vector<std::string>{record};
    if (second) {
      std::string other = i % 2 ? "y" : "x";
      auto tail = options.colsep ? literal_split(other) : std::vector<std::string>{other};
      want.insert(want.end(), tail.begin(), tail.end());
    }
    FUZZ_CHECK(t == want);
  }

  if (options.colsep && IsPlain(*options.colsep) && (flags & 4)) {
    fm::InputOptions as_regex = options;
    as_regex.colsep = "(?:" + *options.colsep + ")";
    bool replaced2 = false;
    auto tuples2 = ReadAll(bytes, as_regex, second, &replaced2);
    FUZZ_CHECK(tuples2.has_value());
    FUZZ_CHECK(*tuples2 == *tuples);
  }
  return 0;
}
