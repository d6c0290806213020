#include "map/shell_quote.h"

#include <algorithm>
#include <iterator>

namespace forklift::map {
namespace {

// GNU parallel leaves a word bare when it matches /^[-_.+a-z0-9\/]+$/i.
bool IsBareSafe(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '+' || c == '/';
}

// Characters a word may hold for IsSimpleCommand: sh gives none of them a meaning
// anywhere in a word ('=' only makes an assignment in command position, which
// ArgvNeedsShell checks).
bool IsSimpleWordChar(unsigned char c) {
  return IsBareSafe(c) || c == ',' || c == ':' || c == '@' || c == '%' || c == '=';
}

// Words that mean something else to sh (dash or bash) than to execvp: keywords, special
// builtins, and builtins with no executable twin or one that differs (pwd reports the
// logical path, time is a keyword).
constexpr std::string_view kShellOnlyNames[] = {
    "!",       ".",        ":",        "[[",      "]]",      "{",        "}",         "alias",
    "bg",      "bind",     "break",    "builtin", "caller",  "case",     "cd",        "command",
    "compgen", "complete", "continue", "coproc",  "declare", "dirs",     "disown",    "do",
    "done",    "elif",     "else",     "enable",  "esac",    "eval",     "exec",      "exit",
    "export",  "fc",       "fg",       "fi",      "for",     "function", "getopts",   "hash",
    "help",    "history",  "if",       "in",      "jobs",    "let",      "local",     "logout",
    "mapfile", "newgrp",   "popd",     "pushd",   "pwd",     "read",     "readarray", "readonly",
    "return",  "select",   "set",      "shift",   "shopt",   "source",   "suspend",   "then",
    "time",    "times",    "trap",     "type",    "typeset", "ulimit",   "umask",     "unalias",
    "unset",   "until",    "wait",     "while",
};

bool IsShellOnlyName(std::string_view name) {
  return std::find(std::begin(kShellOnlyNames), std::end(kShellOnlyNames), name) !=
         std::end(kShellOnlyNames);
}

}  // namespace

void AppendShellQuoted(std::string* out, std::string_view s) {
  if (s.empty()) {
    out->append("''");
    return;
  }
  if (std::all_of(s.begin(), s.end(),
                  [](char c) { return IsBareSafe(static_cast<unsigned char>(c)); })) {
    out->append(s);
    return;
  }
  // GNU: s/'/'"'"'/g; wrap in '...'; drop a leading '' and a trailing ''. Those only
  // arise when s starts (ends) with a quote, so handle the ends instead of rescanning.
  const size_t start = out->size();
  out->push_back('\'');
  for (char c : s) {
    if (c == '\'') {
      out->append("'\"'\"'");
    } else {
      out->push_back(c);
    }
  }
  out->push_back('\'');
  if (s.front() == '\'') out->erase(start, 2);
  if (s.back() == '\'') out->resize(out->size() - 2);
}

std::string ShellQuote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  AppendShellQuoted(&out, s);
  return out;
}

bool IsPlainShellText(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return c == ' ' || IsSimpleWordChar(static_cast<unsigned char>(c));
  });
}

bool ArgvNeedsShell(const std::vector<std::string>& argv) {
  if (argv.empty() || argv[0].empty()) return true;
  const std::string& name = argv[0];
  if (name.find('=') != std::string::npos) return true;
  if (IsShellOnlyName(name)) return true;
  if (name == "echo") {
    for (size_t i = 1; i < argv.size(); ++i) {
      if (!argv[i].empty() && argv[i][0] == '-') return true;
      if (argv[i].find('\\') != std::string::npos) return true;
    }
  }
  return false;
}

std::optional<std::vector<std::string>> IsSimpleCommand(std::string_view cmd) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < cmd.size()) {
    if (cmd[i] == ' ') {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < cmd.size() && cmd[end] != ' ') {
      if (!IsSimpleWordChar(static_cast<unsigned char>(cmd[end]))) return std::nullopt;
      ++end;
    }
    words.emplace_back(cmd.substr(i, end - i));
    i = end;
  }
  if (ArgvNeedsShell(words)) return std::nullopt;
  return words;
}

}  // namespace forklift::map
