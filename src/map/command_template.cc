#include "map/command_template.h"

#include <charconv>
#include <limits>
#include <utility>

#include "map/shell_quote.h"

namespace forklift::map {
namespace {

// Perl's \s, which GNU parallel allows between the column number and the rest: "{1 .}".
bool IsPerlSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// File::Basename::fileparse on Unix: the directory part keeps its trailing '/', and is
// "./" when there is none.
void FileParse(std::string_view path, std::string_view* dir, std::string_view* base) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) {
    *dir = "./";
    *base = path;
  } else {
    *dir = path.substr(0, slash + 1);
    *base = path.substr(slash + 1);
  }
}

// File::Basename's s{(.)/*\z}{$1}s: drop trailing slashes but keep at least one byte.
std::string_view StripTrailingSlashes(std::string_view dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.remove_suffix(1);
  return dir;
}

}  // namespace

std::string RemoveExtension(std::string_view s) {
  // s:\.[^/.]*$:: can only match at the last '.', and only if no '/' follows it; the
  // greedy class then runs to the end (a final newline included).
  size_t dot = s.rfind('.');
  if (dot == std::string_view::npos || s.find('/', dot) != std::string_view::npos) {
    return std::string(s);
  }
  return std::string(s.substr(0, dot));
}

std::string Basename(std::string_view s) {
  // s:.*/:: removes, once, the leftmost match of ".*/". Perl's '.' stops at '\n', so the
  // match is the line holding the first '/', from its start to its last '/'.
  size_t first_slash = s.find('/');
  if (first_slash == std::string_view::npos) return std::string(s);
  size_t newline_before = s.rfind('\n', first_slash);
  size_t start = newline_before == std::string_view::npos ? 0 : newline_before + 1;
  size_t line_end = s.find('\n', first_slash);
  if (line_end == std::string_view::npos) line_end = s.size();
  size_t last_slash = s.substr(0, line_end).rfind('/');
  std::string out(s.substr(0, start));
  out.append(s.substr(last_slash + 1));
  return out;
}

std::string Dirname(std::string_view s) {
  std::string_view dir, base;
  FileParse(s, &dir, &base);
  dir = StripTrailingSlashes(dir);
  if (base.empty()) {
    // "a/b/" names the directory b: its parent is the answer.
    std::string_view unused;
    FileParse(dir, &dir, &unused);
    dir = StripTrailingSlashes(dir);
  }
  return std::string(dir);
}

Result<CommandTemplate> CommandTemplate::ForCommand(const std::vector<std::string>& words,
                                                    bool quote_command) {
  return Build(words, quote_command, /*is_text=*/false);
}

Result<CommandTemplate> CommandTemplate::ForText(std::string_view text) {
  return Build({std::string(text)}, /*quote_command=*/false, /*is_text=*/true);
}

Result<CommandTemplate> CommandTemplate::Build(const std::vector<std::string>& words,
                                               bool quote_command, bool is_text) {
  // GNU parallel evaluates "{= perl =}"; silently running the Perl text as a literal
  // would run a different command, so refuse it.
  std::string joined;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) joined += ' ';
    joined += words[i];
  }
  size_t open = joined.find("{=");
  if (open != std::string::npos) {
    size_t close = joined.find("=}", open + 2);
    if (close != std::string::npos) {
      return InvalidArgumentError(
          "forklift map: {= perl expression =} replacement strings "
          "are not supported: '" +
          joined.substr(open, close + 2 - open) + "'");
    }
  }

  CommandTemplate t;
  t.quote_command_ = quote_command;
  bool found = false;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) t.segments_.push_back({.kind = Segment::Kind::kWordBreak});
    // An empty word still is a word: under -q it becomes ''.
    if (words[i].empty()) t.segments_.push_back({.kind = Segment::Kind::kLiteral});
    FORKLIFT_RETURN_IF_ERROR(ParseWord(words[i], &t.segments_, &found));
  }
  t.has_replacement_strings_ = found;
  if (!found && !is_text) {
    if (!words.empty()) t.segments_.push_back({.kind = Segment::Kind::kWordBreak});
    t.segments_.push_back({.kind = Segment::Kind::kReplace});
  }

  // GNU parallel: "@command" =~ /^[^ \t\n=]*\257</ turns quoting off, because then the
  // input is (part of) the command name: `parallel ::: "echo a"`, `parallel {1} ...`.
  bool replacement_in_first_word = false;
  for (const Segment& seg : t.segments_) {
    if (seg.kind == Segment::Kind::kReplace) {
      replacement_in_first_word = true;
      break;
    }
    if (seg.kind == Segment::Kind::kWordBreak ||
        seg.text.find_first_of(" \t\n=") != std::string::npos) {
      break;
    }
  }
  t.quote_values_ = !quote_command && !is_text && !replacement_in_first_word;

  t.literals_are_simple_ = true;
  for (const Segment& seg : t.segments_) {
    if (seg.kind == Segment::Kind::kLiteral && !IsPlainShellText(seg.text)) {
      t.literals_are_simple_ = false;
    }
  }
  return t;
}

Status CommandTemplate::ParseWord(std::string_view word, std::vector<Segment>* segments,
                                  bool* found) {
  std::string literal;
  auto flush_literal = [&] {
    if (!literal.empty()) {
      segments->push_back({.kind = Segment::Kind::kLiteral, .text = std::move(literal)});
      literal.clear();
    }
  };
  // The next '}' and the next '{' at or after a position only move forward, so each is
  // found once per occurrence: linear in the word, even for a word of 1 MB of '{'.
  size_t next_close = 0;
  size_t next_open = 0;
  size_t i = 0;
  while (i < word.size()) {
    if (word[i] == '{') {
      if (next_close != std::string_view::npos && next_close <= i) {
        next_close = word.find('}', i + 1);
      }
      if (next_open != std::string_view::npos && next_open <= i) {
        next_open = word.find('{', i + 1);
      }
      size_t close = next_close;
      std::string_view inner;
      bool candidate = close != std::string_view::npos;
      if (candidate) {
        inner = word.substr(i + 1, close - i - 1);
        // Replacement strings hold no '{': "{{}}" is '{', {}, '}'.
        candidate = next_open == std::string_view::npos || next_open > close;
      }
      if (candidate) {
        // Split "n rest" for positional forms: GNU's \{(-?\d+)\s*rest\}.
        std::string_view number;
        std::string_view rest = inner;
        size_t d = (!rest.empty() && rest[0] == '-') ? 1 : 0;
        size_t digits_end = d;
        while (digits_end < rest.size() && rest[digits_end] >= '0' && rest[digits_end] <= '9') {
          ++digits_end;
        }
        if (digits_end > d) {
          number = rest.substr(0, digits_end);
          rest.remove_prefix(digits_end);
          while (!rest.empty() && IsPerlSpace(rest.front())) rest.remove_prefix(1);
        }
        std::optional<Transform> transform;
        if (rest.empty())
          transform = Transform::kNone;
        else if (rest == ".")
          transform = Transform::kNoExt;
        else if (rest == "/")
          transform = Transform::kBasename;
        else if (rest == "//")
          transform = Transform::kDirname;
        else if (rest == "/.")
          transform = Transform::kBasenameNoExt;
        else if (rest == "#")
          transform = Transform::kSeq;
        else if (rest == "%")
          transform = Transform::kSlot;
        if (transform) {
          Segment seg{.kind = Segment::Kind::kReplace, .transform = *transform};
          std::string digits(number);
          // GNU parallel writes {#} and {%} as "positional 1" expressions (so they never
          // repeat per column) and, for {n#}, glues n onto that 1: {2#} is column 21.
          if (*transform == Transform::kSeq || *transform == Transform::kSlot) digits += "1";
          // Perl's if($1): the number "0" (only) means "not positional", so {0} is {}.
          if (!digits.empty() && digits != "0") {
            seg.positional = true;
            int64_t position = 0;
            auto [end, ec] =
                std::from_chars(digits.data(), digits.data() + digits.size(), position);
            // Too large to exist: a column past any input, which expands to nothing.
            seg.position = (ec == std::errc() && end == digits.data() + digits.size())
                               ? position
                               : std::numeric_limits<int64_t>::max();
          }
          flush_literal();
          segments->push_back(std::move(seg));
          *found = true;
          i = close + 1;
          continue;
        }
      }
    }
    literal += word[i];
    ++i;
  }
  flush_literal();
  return OkStatus();
}

std::optional<size_t> CommandTemplate::ResolvePosition(int64_t position, size_t n) {
  // $argref->[$1 > 0 ? $1-1 : $n+$1], with Perl's negative array indices.
  int64_t count = static_cast<int64_t>(n);
  int64_t index;
  if (position > 0) {
    index = position - 1;
  } else {
    index = count + position;
    if (index < 0) index += count;
  }
  if (index < 0 || index >= count) return std::nullopt;
  return static_cast<size_t>(index);
}

void CommandTemplate::AppendValue(std::string* out, std::string_view arg, Transform t, uint64_t seq,
                                  size_t slot, bool quote) const {
  std::string value;
  switch (t) {
    case Transform::kNone:
      if (quote)
        AppendShellQuoted(out, arg);
      else
        out->append(arg);
      return;
    case Transform::kSeq: out->append(std::to_string(seq)); return;
    case Transform::kSlot: out->append(std::to_string(slot)); return;
    case Transform::kNoExt: value = RemoveExtension(arg); break;
    case Transform::kBasename: value = Basename(arg); break;
    case Transform::kDirname: value = Dirname(arg); break;
    case Transform::kBasenameNoExt: value = RemoveExtension(Basename(arg)); break;
  }
  if (quote)
    AppendShellQuoted(out, value);
  else
    out->append(value);
}

namespace {
const std::string kEmptyArg;
}  // namespace

std::string CommandTemplate::Expand(const std::vector<std::string>& args, uint64_t seq,
                                    size_t slot) const {
  std::string out;
  ExpandInto(&out, args, seq, slot);
  return out;
}

void CommandTemplate::ExpandInto(std::string* out, const std::vector<std::string>& args,
                                 uint64_t seq, size_t slot) const {
  out->clear();
  // GNU parallel gives a job with no columns one empty column.
  const size_t n = args.empty() ? 1 : args.size();
  auto arg = [&](size_t i) -> const std::string& { return args.empty() ? kEmptyArg : args[i]; };

  if (!quote_command_) {
    for (const Segment& seg : segments_) {
      switch (seg.kind) {
        case Segment::Kind::kLiteral: out->append(seg.text); break;
        case Segment::Kind::kWordBreak: out->push_back(' '); break;
        case Segment::Kind::kReplace:
          if (seg.positional) {
            if (auto i = ResolvePosition(seg.position, n)) {
              AppendValue(out, arg(*i), seg.transform, seq, slot, quote_values_);
            }
          } else {
            for (size_t i = 0; i < n; ++i) {
              if (i > 0) out->push_back(' ');
              AppendValue(out, arg(i), seg.transform, seq, slot, quote_values_);
            }
          }
          break;
      }
    }
    return;
  }

  // -q: each word (and each repetition of a non-positional string) is one quoted group.
  std::string group;
  bool group_open = false;
  bool first_group = true;
  auto flush = [&] {
    if (!group_open) return;
    if (!first_group) out->push_back(' ');
    AppendShellQuoted(out, group);
    group.clear();
    group_open = false;
    first_group = false;
  };
  for (const Segment& seg : segments_) {
    switch (seg.kind) {
      case Segment::Kind::kLiteral:
        group.append(seg.text);
        group_open = true;
        break;
      case Segment::Kind::kWordBreak: flush(); break;
      case Segment::Kind::kReplace:
        group_open = true;
        if (seg.positional) {
          if (auto i = ResolvePosition(seg.position, n)) {
            AppendValue(&group, arg(*i), seg.transform, seq, slot, false);
          }
        } else {
          for (size_t i = 0; i < n; ++i) {
            if (i > 0) {
              flush();
              group_open = true;
            }
            AppendValue(&group, arg(i), seg.transform, seq, slot, false);
          }
        }
        break;
    }
  }
  flush();
}

std::optional<std::vector<std::string>> CommandTemplate::ExpandArgv(
    const std::vector<std::string>& args, uint64_t seq, size_t slot) const {
  if (!quote_command_ && !(quote_values_ && literals_are_simple_)) return std::nullopt;
  const size_t n = args.empty() ? 1 : args.size();
  auto arg = [&](size_t i) -> const std::string& { return args.empty() ? kEmptyArg : args[i]; };

  std::vector<std::string> words;
  std::string word;
  // Whether the current word exists for sh: a literal byte or a quoted value (even an
  // empty one: '' is a word) makes it; a missing column expands to nothing unquoted.
  bool has_word = false;
  auto end_word = [&] {
    if (has_word) words.push_back(std::move(word));
    word.clear();
    has_word = false;
  };
  for (const Segment& seg : segments_) {
    switch (seg.kind) {
      case Segment::Kind::kLiteral:
        if (quote_command_) {
          word.append(seg.text);
          has_word = true;
        } else {
          for (char c : seg.text) {
            if (c == ' ') {
              end_word();
            } else {
              word.push_back(c);
              has_word = true;
            }
          }
        }
        break;
      case Segment::Kind::kWordBreak: end_word(); break;
      case Segment::Kind::kReplace:
        if (seg.positional) {
          if (auto i = ResolvePosition(seg.position, n)) {
            AppendValue(&word, arg(*i), seg.transform, seq, slot, false);
            has_word = true;
          } else if (quote_command_) {
            has_word = true;  // -q: the word is quoted, so even an empty one stays
          }
        } else {
          for (size_t i = 0; i < n; ++i) {
            if (i > 0) end_word();
            AppendValue(&word, arg(i), seg.transform, seq, slot, false);
            has_word = true;
          }
        }
        break;
    }
  }
  end_word();
  if (ArgvNeedsShell(words)) return std::nullopt;
  return words;
}

}  // namespace forklift::map
