// CommandTemplate (map's replacement strings). Properties:
//  - parsing fails only on "{= ... =}" (Perl is refused), for ForCommand and ForText;
//  - Expand and ExpandInto agree, and expanding twice gives the same line;
//  - when ExpandArgv says no shell is needed, sh would split Expand's line into exactly
//    that argv (sh_words.h), and ArgvNeedsShell agrees;
//  - with plain command words and no replacement string (" {}" appended), sh splits the
//    line into the words followed by each input column as one word: values are quoted.
// Input: byte 0 = flags (bit 0 -q, bit 1 plain words, bits 2-3 seq/slot), then the
// command words separated by '\x01' up to '\x02', then the columns separated by '\x01'.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "fuzz/sh_words.h"
#include "map/command_template.h"
#include "map/shell_quote.h"

namespace fm = forklift::map;

namespace {

std::vector<std::string> SplitOn(std::string_view s, char sep) {
  std::vector<std::string> out;
  while (true) {
    size_t i = s.find(sep);
    out.emplace_back(s.substr(0, i));
    if (i == std::string_view::npos) break;
    s.remove_prefix(i + 1);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  for (char& c : bytes) {
    if (c == '\0') c = '\x03';  // argv holds no NUL
  }
  forklift::fuzz::Input in(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  const uint8_t flags = in.Byte();
  const bool quote = flags & 1;
  const bool plain = flags & 2;
  const uint64_t seq = 1 + ((flags >> 2) & 3) * 1000;
  const size_t slot = 1 + ((flags >> 4) & 3);
  std::string_view words_text = in.Until('\x02');
  std::vector<std::string> words =
      plain ? std::vector<std::string>{"printf", "%s"} : SplitOn(words_text, '\x01');
  std::vector<std::string> args = SplitOn(in.Rest(), '\x01');

  auto t = fm::CommandTemplate::ForCommand(words, quote);
  bool has_perl = false;
  for (const auto& w : words) has_perl |= w.find("{=") != std::string::npos;
  if (!t) {
    FUZZ_CHECK(has_perl);
  } else {
    std::string line = t->Expand(args, seq, slot);
    std::string again;
    t->ExpandInto(&again, args, seq, slot);
    FUZZ_CHECK(line == again);
    FUZZ_CHECK(t->Expand(args, seq, slot) == line);
    if (auto argv = t->ExpandArgv(args, seq, slot)) {
      auto split = forklift::fuzz::ShWords(line);
      FUZZ_CHECK(split.has_value());
      FUZZ_CHECK(*split == *argv);
      FUZZ_CHECK(!fm::ArgvNeedsShell(*argv));
    }
    if (plain && !quote) {
      FUZZ_CHECK(!t->has_replacement_strings() && t->quotes_values());
      auto split = forklift::fuzz::ShWords(line);
      FUZZ_CHECK(split.has_value());
      std::vector<std::string> want = words;
      want.insert(want.end(), args.begin(), args.end());
      FUZZ_CHECK(*split == want);
    }
  }

  auto text = fm::CommandTemplate::ForText(words_text);
  if (!text) FUZZ_CHECK(words_text.find("{=") != std::string_view::npos);
  if (text) {
    FUZZ_CHECK(!text->quotes_values());
    FUZZ_CHECK(text->Expand(args, seq, slot) == text->Expand(args, seq, slot));
  }
  return 0;
}
