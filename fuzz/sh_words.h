// A small POSIX sh word splitter for the fuzz targets: splits a command line into the
// words sh would pass to exec, for the subset of sh that forklift's quoting produces
// (bare words, '...', "..." with its backslash escapes, backslash outside quotes, blanks).
// Returns nullopt for anything it does not model (an unquoted metacharacter, an expansion,
// an unterminated quote), so a property "sh splits X into W" is only ever checked where
// the answer is certain.
#ifndef FORKLIFT_FUZZ_SH_WORDS_H_
#define FORKLIFT_FUZZ_SH_WORDS_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace forklift::fuzz {

inline std::optional<std::vector<std::string>> ShWords(std::string_view line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  size_t i = 0;
  while (i < line.size()) {
    char c = line[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      ++i;
      continue;
    }
    if (c == '\'') {
      size_t end = line.find('\'', i + 1);
      if (end == std::string_view::npos) return std::nullopt;
      word.append(line.substr(i + 1, end - i - 1));
      in_word = true;
      i = end + 1;
      continue;
    }
    if (c == '"') {
      ++i;
      while (true) {
        if (i >= line.size()) return std::nullopt;
        char d = line[i];
        if (d == '"') break;
        if (d == '$' || d == '`') return std::nullopt;
        if (d == '\\' && i + 1 < line.size()) {
          char e = line[i + 1];
          if (e == '$' || e == '`' || e == '"' || e == '\\') {
            word.push_back(e);
            i += 2;
            continue;
          }
          if (e == '\n') {
            i += 2;
            continue;
          }
        }
        word.push_back(d);
        ++i;
      }
      in_word = true;
      ++i;
      continue;
    }
    if (c == '\\') {
      if (i + 1 >= line.size()) return std::nullopt;
      if (line[i + 1] != '\n') word.push_back(line[i + 1]);
      in_word = true;
      i += 2;
      continue;
    }
    // Unquoted bytes with a meaning to sh somewhere: not modelled.
    if (std::string_view("|&;<>()$`*?[]#~{}!").find(c) != std::string_view::npos) {
      return std::nullopt;
    }
    if (c == '\0') return std::nullopt;
    word.push_back(c);
    in_word = true;
    ++i;
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

}  // namespace forklift::fuzz

#endif  // FORKLIFT_FUZZ_SH_WORDS_H_
