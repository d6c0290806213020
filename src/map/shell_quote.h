// Quoting for /bin/sh, and telling when a command line needs no shell at all.
//
// ShellQuote reproduces GNU parallel's quoting byte for byte (its
// shell_quote_scalar_default), because the quoted text is visible: --dry-run and
// --shell-quote print it and the joblog records it.
#ifndef FORKLIFT_MAP_SHELL_QUOTE_H_
#define FORKLIFT_MAP_SHELL_QUOTE_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace forklift::map {

// Returns `s` as one literal sh word. Words made only of [-_.+a-zA-Z0-9/] come back
// unchanged; the empty string becomes ''; anything else is wrapped in single quotes with
// each ' written as '"'"' (and a leading or trailing '' dropped, as GNU parallel does:
// "it's" -> 'it'"'"'s', "'a" -> "'"'a'). Newlines, tabs and bytes >= 0x80 are safe
// inside the quotes. `s` must not contain NUL (no argv can). Never fails. Thread-safe.
std::string ShellQuote(std::string_view s);

// ShellQuote(s) appended to *out: the per-job expansion path reuses one buffer.
void AppendShellQuoted(std::string* out, std::string_view s);

// If `cmd` is a plain command line that /bin/sh would split into words and run without
// any expansion, returns those words, so the runner can exec them directly (no shell per
// job: a large saving at thousands of jobs per second). Otherwise nullopt.
//
// Conservative on purpose: words are separated by single-byte spaces only, and a word
// may hold only [A-Za-z0-9] and -_./,:@%+= . Anything else (quotes, $, `, \, globs,
// ~, #, braces, redirections, ;, &, |, tabs, newlines, non-ASCII) sends the command to
// the shell, as does a first word that ArgvNeedsShell rejects. Never fails. Thread-safe.
std::optional<std::vector<std::string>> IsSimpleCommand(std::string_view cmd);

// True when every byte of `text` is a space or a byte IsSimpleCommand allows in a word:
// text that sh splits on spaces and otherwise takes literally. Thread-safe.
bool IsPlainShellText(std::string_view text);

// True when exec'ing `argv` directly could behave differently from sh running the same
// words: an empty argv or command name, an assignment (A=b cmd), a shell keyword or a
// builtin with no executable twin or a twin that differs (cd, exit, export, pwd, time,
// ...), or `echo` with an argument starting with '-' or holding '\' (dash's builtin echo
// and /bin/echo disagree there). Thread-safe.
bool ArgvNeedsShell(const std::vector<std::string>& argv);

}  // namespace forklift::map

#endif  // FORKLIFT_MAP_SHELL_QUOTE_H_
