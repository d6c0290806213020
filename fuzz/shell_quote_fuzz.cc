// ShellQuote and IsSimpleCommand. Properties:
//  - what ShellQuote quotes, sh splits back to exactly one word equal to the input (a
//    POSIX word splitter, sh_words.h, stands in for sh); bare words come back unchanged
//    and only those made of GNU parallel's safe bytes;
//  - AppendShellQuoted appends what ShellQuote returns;
//  - IsSimpleCommand's words are what sh would split the line into, and IsPlainShellText
//    holds for such a line.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_check.h"
#include "fuzz/sh_words.h"
#include "map/shell_quote.h"

namespace fm = forklift::map;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string s(reinterpret_cast<const char*>(data), size);
  // No argv can hold a NUL; ShellQuote's contract excludes it.
  for (char& c : s) {
    if (c == '\0') c = '\x01';
  }
  std::string q = fm::ShellQuote(s);
  auto words = forklift::fuzz::ShWords(q);
  FUZZ_CHECK(words.has_value());
  FUZZ_CHECK(words->size() == 1);
  FUZZ_CHECK((*words)[0] == s);
  if (q == s) {
    for (unsigned char c : s) {
      FUZZ_CHECK(std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '+' || c == '/');
    }
  }
  std::string out = "x ";
  fm::AppendShellQuoted(&out, s);
  FUZZ_CHECK(out == "x " + q);

  if (auto simple = fm::IsSimpleCommand(s)) {
    auto split = forklift::fuzz::ShWords(s);
    FUZZ_CHECK(split.has_value());
    FUZZ_CHECK(*split == *simple);
    FUZZ_CHECK(fm::IsPlainShellText(s));
    FUZZ_CHECK(!fm::ArgvNeedsShell(*simple));
  }
  return 0;
}
