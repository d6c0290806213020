// The command template of `forklift map`: GNU parallel's replacement strings.
//
//   {}    the input (all columns of all sources, space-separated, each quoted)
//   {.}   without extension: s:\.[^/.]*$:: ("dir/a.tar.gz" -> "dir/a.tar", "a.d/b" kept)
//   {/}   basename: s:.*/::                 ("dir/sub/f.c" -> "f.c")
//   {//}  dirname, as Perl's File::Basename  ("f.c" -> ".", "/a" -> "/", "a/b/" -> "a")
//   {/.}  basename without extension
//   {#}   job sequence number (1-based)     {%}  job slot (1..jobs)
//   {n} {n.} {n/} {n//} {n/.}   column n (1-based; negative counts from the end, "{-1}"
//         is the last; a column that does not exist expands to nothing, unquoted)
//
// Exactly as GNU parallel 20221122:
//  - The template is the command words joined by single spaces. Without any replacement
//    string, " {}" is appended.
//  - Substituted values are shell-quoted (ShellQuote), so an input of "$(rm x)" is one
//    literal word, unless a replacement string sits in the first word of the command
//    ("{}", "{1}", "my_{}"): then the input is the command and nothing is quoted.
//  - A non-positional string ({}, {.}, ...) with several columns repeats per column,
//    space-separated; {#} and {%} never repeat.
//  - With -q (quote_command), every command word and every repetition of a
//    non-positional string becomes one quoted word, values substituted raw inside it.
//  - Unknown "{foo}" stays literal. "{= perl =}" is rejected (no Perl here).
//
// The template is split once into literal and placeholder segments, so expanding it for a
// job is a single pass with no parsing.
#ifndef FORKLIFT_MAP_COMMAND_TEMPLATE_H_
#define FORKLIFT_MAP_COMMAND_TEMPLATE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/result.h"

namespace forklift::map {

class CommandTemplate {
 public:
  // The template for the command words (what follows the options, up to the first :::
  // or ::::). An empty `words` means "the input is the command" ({}). `quote_command`
  // is -q/--quote. On a "{= ... =}" returns InvalidArgument naming it. Thread-safe.
  static Result<CommandTemplate> ForCommand(const std::vector<std::string>& words,
                                            bool quote_command);

  // A text template (--tagstring, --results): values substituted raw, nothing
  // appended. Fails as ForCommand does. Thread-safe.
  static Result<CommandTemplate> ForText(std::string_view text);

  // The command line for /bin/sh for one job: `args` are the job's columns (all input
  // sources, flattened; an empty vector acts as one empty column), `seq` its {#},
  // `slot` its {%}. Never fails. Thread-safe (const).
  std::string Expand(const std::vector<std::string>& args, uint64_t seq, size_t slot) const;
  // Same, into *out (cleared first) so a caller can reuse one buffer across jobs.
  void ExpandInto(std::string* out, const std::vector<std::string>& args, uint64_t seq,
                  size_t slot) const;

  // The argv that /bin/sh would build from Expand()'s line, when running it without a
  // shell would do exactly the same; nullopt when a shell is needed (shell syntax in the
  // template's own text, unquoted values, a builtin: see ArgvNeedsShell). argv[0] is to
  // be found on PATH as sh would (execvp), and a missing program should exit 127 as sh's
  // "not found" does. The answer for the template's text is fixed at parse time, so this
  // costs about what Expand does. Thread-safe (const).
  std::optional<std::vector<std::string>> ExpandArgv(const std::vector<std::string>& args,
                                                     uint64_t seq, size_t slot) const;

  // False when a replacement string in the first word turned quoting off (the input is
  // the command), or for a text template. Under -q values are quoted as part of their
  // word, and this is false too.
  bool quotes_values() const { return quote_values_; }
  // Whether the user's text had any replacement string (else {} was appended).
  bool has_replacement_strings() const { return has_replacement_strings_; }

 private:
  enum class Transform { kNone, kNoExt, kBasename, kDirname, kBasenameNoExt, kSeq, kSlot };
  struct Segment {
    enum class Kind { kLiteral, kWordBreak, kReplace } kind = Kind::kLiteral;
    std::string text;  // kLiteral
    Transform transform = Transform::kNone;
    bool positional = false;  // kReplace: one column (else: every column)
    int64_t position = 0;     // as written: 1-based, or <= 0 from the end
  };

  static Result<CommandTemplate> Build(const std::vector<std::string>& words, bool quote_command,
                                       bool is_text);
  static Status ParseWord(std::string_view word, std::vector<Segment>* segments, bool* found);
  static std::optional<size_t> ResolvePosition(int64_t position, size_t n);
  void AppendValue(std::string* out, std::string_view arg, Transform t, uint64_t seq, size_t slot,
                   bool quote) const;

  std::vector<Segment> segments_;
  bool quote_command_ = false;
  bool quote_values_ = true;
  bool has_replacement_strings_ = false;
  bool literals_are_simple_ = false;  // ExpandArgv may skip the shell
};

// GNU parallel's transforms, exposed for tests and for --results paths. Each follows
// the Perl expression GNU parallel evaluates, newlines included. Thread-safe.
std::string RemoveExtension(std::string_view s);  // {.}
std::string Basename(std::string_view s);         // {/}
std::string Dirname(std::string_view s);          // {//}

}  // namespace forklift::map

#endif  // FORKLIFT_MAP_COMMAND_TEMPLATE_H_
