// forklift-mangen: renders a man page (roff, man(7) macros) from the texts forklift already
// has, so that the pages never drift from them: the `--help` output of the built binary
// (CLI11's layout and map's hand-written one) and Markdown documentation (docs/flow.md).
// A build tool (man/CMakeLists.txt), not installed.
//
// usage: forklift-mangen --name NAME --section N --summary TEXT --source TEXT --date DATE
//            [--help FILE[=TITLE]]... [--md FILE]... [--example FILE=TITLE]
//            [--see-also "a(1),b(5)"] -o OUT
//
// A --help text is read as lines: "usage:" starts the synopsis; an unindented line before
// indented entries is a heading; an entry is "  TERM  DESCRIPTION" (or TERM alone, with
// the description on the lines below), a more indented line continues it; other
// unindented text is a paragraph. Exit status: 0, or 2 with a message on bad input.
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace {

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "forklift-mangen: %s\n", message.c_str());
  std::exit(2);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Die("cannot read '" + path + "'");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::string line;
  std::istringstream in(text);
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
    out.push_back(line);
  }
  return out;
}

size_t Indent(const std::string& line) {
  size_t i = 0;
  while (i < line.size() && line[i] == ' ') ++i;
  return i;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Text for roff: backslashes escaped, '-' as a real hyphen-minus (options stay
// copy-pasteable), and characters outside ASCII as \[uXXXX] (groff and mandoc render
// them; raw UTF-8 is not portable roff).
std::string Escape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
      if (len == 0 || i + len > s.size()) Die("invalid UTF-8 in the input");
      uint32_t cp = c & (0xFF >> (len + 1));
      for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
      char buf[16];
      std::snprintf(buf, sizeof buf, "\\[u%04X]", cp);
      out += buf;
      i += len - 1;
    }
  }
  return out;
}

std::string ProtectLine(std::string line) {
  if (!line.empty() && (line[0] == '.' || line[0] == '\'')) line = "\\&" + line;
  return line;
}

// --- --help texts -----------------------------------------------------------------

// An entry's term: options bold, their arguments italic ("-j,--jobs N" ->
// \fB\-j\fR, \fB\-\-jobs\fR \fIN\fR).
std::string Term(const std::string& term) {
  std::string out;
  std::istringstream words(term);
  std::string word;
  bool first = true;
  while (words >> word) {
    if (!first) out += ' ';
    // The first word names the entry (an option, a command, a positional, a status);
    // options and map's replacement strings are literal wherever they are.
    bool literal = first || word[0] == '-' || word[0] == ':' || word[0] == '{' || word[0] == '+';
    if (literal) {
      // "-j,--jobs": each name bold, the comma plain.
      size_t start = 0;
      while (start <= word.size()) {
        size_t comma = word.find(',', start);
        std::string part =
            word.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!part.empty()) out += "\\fB" + Escape(part) + "\\fR";
        if (comma == std::string::npos) break;
        out += comma + 1 < word.size() ? ", " : ",";  // "-j,--jobs" or "-j," then "--jobs"
        start = comma + 1;
      }
    } else {
      out += "\\fI" + Escape(word) + "\\fR";
    }
    first = false;
  }
  return out;
}

struct Entry {
  std::string term, description;
};
struct Section {
  std::string heading;
  std::vector<Entry> entries;
};
struct Help {
  std::vector<std::string> usage;
  std::vector<std::string> description;  // paragraphs before the first section
  std::vector<Section> sections;
  std::vector<std::string> notes;  // paragraphs after the sections
};

bool IsEntryLine(const std::string& line) {
  size_t indent = Indent(line);
  return indent >= 1 && indent <= 4 && indent < line.size();
}

Help ParseHelp(const std::string& text) {
  Help help;
  std::vector<std::string> lines = Lines(text);
  std::string paragraph;
  auto flush = [&] {
    if (paragraph.empty()) return;
    (help.sections.empty() ? help.description : help.notes).push_back(paragraph);
    paragraph.clear();
  };
  Entry* entry = nullptr;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.empty()) {
      flush();
      entry = nullptr;
      continue;
    }
    size_t indent = Indent(line);
    if (indent == 0) {
      std::string lower = line.substr(0, 6);
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower == "usage:") {
        flush();
        help.usage.push_back(Trim(line.substr(6)));
        entry = nullptr;
        continue;
      }
      bool next_is_entry = i + 1 < lines.size() && IsEntryLine(lines[i + 1]);
      if (paragraph.empty() && next_is_entry) {
        std::string heading = line;
        if (heading.back() == ':') heading.pop_back();
        help.sections.push_back({heading, {}});
        entry = nullptr;
        continue;
      }
      entry = nullptr;
      paragraph += (paragraph.empty() ? "" : " ") + line;
      continue;
    }
    if (entry != nullptr && indent > 4) {  // continues the entry's description
      entry->description += (entry->description.empty() ? "" : " ") + Trim(line);
      continue;
    }
    if (IsEntryLine(line) && !help.sections.empty() && paragraph.empty()) {
      std::string body = line.substr(indent);
      size_t gap = body.find("  ");
      Entry e;
      e.term = Trim(body.substr(0, gap));
      if (gap != std::string::npos) e.description = Trim(body.substr(gap));
      help.sections.back().entries.push_back(e);
      entry = &help.sections.back().entries.back();
      continue;
    }
    paragraph += (paragraph.empty() ? "" : " ") + Trim(line);  // indented prose
  }
  flush();
  return help;
}

bool IsCommandsHeading(const std::string& heading) {
  std::string h = Upper(heading);
  return h == "COMMANDS" || h == "SUBCOMMANDS";
}

bool IsExitStatus(const std::string& text) { return Upper(text.substr(0, 11)) == "EXIT STATUS"; }

void RenderEntries(std::ostream& out, const Section& s) {
  for (const Entry& e : s.entries) {
    out << ".TP\n"
        << ProtectLine(Term(e.term)) << "\n"
        << ProtectLine(Escape(e.description)) << "\n";
  }
}

void RenderParagraphs(std::ostream& out, const std::vector<std::string>& paragraphs) {
  for (const std::string& p : paragraphs) out << ".PP\n" << ProtectLine(Escape(p)) << "\n";
}

// The first help text is the page's own command; the others (TITLE given) are its
// subcommands, each a section of its own.
void RenderHelpBody(std::ostream& out, const Help& help, const std::string& title) {
  if (!title.empty()) {
    out << ".SH \"" << Escape(Upper(title)) << "\"\n";
    RenderParagraphs(out, help.description);
  }
  // The page's own sections (.SH) for its command; a subcommand's sections are
  // subsections (.SS) of the one its title opened.
  bool sub = !title.empty();
  std::string open;  // the .SH open now
  auto section = [&](const std::string& name) {
    if (sub || open == name) return;
    out << ".SH \"" << name << "\"\n";
    open = name;
  };
  for (const Section& s : help.sections) {
    if (IsCommandsHeading(s.heading)) {
      section("COMMANDS");
      if (sub) out << ".SS \"" << Escape(s.heading) << "\"\n";
    } else if (IsExitStatus(s.heading)) {
      section("EXIT STATUS");
      if (sub) out << ".SS \"" << Escape(s.heading) << "\"\n";
    } else {
      section("OPTIONS");
      std::string heading = Upper(s.heading) == "POSITIONALS" ? "Arguments" : s.heading;
      out << ".SS \"" << Escape(heading) << "\"\n";
    }
    RenderEntries(out, s);
  }
  std::vector<std::string> notes, exit_status;
  for (const std::string& p : help.notes) (IsExitStatus(p) ? exit_status : notes).push_back(p);
  if (!exit_status.empty()) {
    out << (title.empty() ? ".SH \"EXIT STATUS\"\n" : ".SS \"Exit status\"\n");
    RenderParagraphs(out, exit_status);
  }
  if (!notes.empty()) {
    if (title.empty()) out << ".SH NOTES\n";
    RenderParagraphs(out, notes);
  }
}

// --- Markdown (the subset docs/*.md use) -----------------------------------------

// `code` and **bold** bold, *emphasis* italic, [text](link) as its text.
std::string Inline(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    char c = text[i];
    if (c == '`') {
      size_t end = text.find('`', i + 1);
      if (end != std::string::npos) {
        out += "\\fB" + Escape(text.substr(i + 1, end - i - 1)) + "\\fR";
        i = end + 1;
        continue;
      }
    }
    if (c == '*' && i + 1 < text.size() && text[i + 1] == '*') {
      size_t end = text.find("**", i + 2);
      if (end != std::string::npos) {
        out += "\\fB" + Inline(text.substr(i + 2, end - i - 2)) + "\\fR";
        i = end + 2;
        continue;
      }
    }
    if (c == '*' && i + 1 < text.size() && text[i + 1] != ' ') {
      size_t end = text.find('*', i + 1);
      if (end != std::string::npos) {
        out += "\\fI" + Inline(text.substr(i + 1, end - i - 1)) + "\\fR";
        i = end + 1;
        continue;
      }
    }
    if (c == '[') {
      size_t close = text.find("](", i);
      size_t end = close == std::string::npos ? close : text.find(')', close);
      if (end != std::string::npos) {
        out += Inline(text.substr(i + 1, close - i - 1));
        i = end + 1;
        continue;
      }
    }
    out += Escape(std::string_view(&c, 1));
    ++i;
  }
  return out;
}

void RenderMarkdown(std::ostream& out, const std::string& text, bool first_is_description) {
  std::vector<std::string> lines = Lines(text);
  std::string block;  // the paragraph or list item being gathered
  bool item = false, code = false, started = false;
  auto flush = [&] {
    if (block.empty()) return;
    out << (item ? ".IP \\(bu 2\n" : ".PP\n") << ProtectLine(Inline(block)) << "\n";
    block.clear();
  };
  for (const std::string& line : lines) {
    if (line.rfind("```", 0) == 0) {
      flush();
      item = false;
      out << (code ? ".fi\n.RE\n" : ".PP\n.RS 4\n.nf\n");
      code = !code;
      continue;
    }
    if (code) {
      out << ProtectLine(Escape(line)) << "\n";
      continue;
    }
    if (line.rfind("# ", 0) == 0) {  // the document's title: the page has its own
      flush();
      continue;
    }
    if (line.rfind("## ", 0) == 0 || line.rfind("### ", 0) == 0) {
      flush();
      item = false;
      bool sub = line[2] == '#';
      std::string heading = Trim(line.substr(sub ? 4 : 3));
      out << (sub ? ".SS \"" + Escape(heading) : ".SH \"" + Escape(Upper(heading))) << "\"\n";
      started = true;
      continue;
    }
    if (!started) {
      // Text before the first section: the page's description, or (for a file that only
      // adds sections to a page) a note to the reader of the Markdown, left out.
      if (!first_is_description) continue;
      if (Trim(line).empty()) continue;
      out << ".SH DESCRIPTION\n";
      started = true;
    }
    if (Trim(line).empty()) {
      flush();
      item = false;
      continue;
    }
    if (line.rfind("- ", 0) == 0 || line.rfind("* ", 0) == 0) {
      flush();
      item = true;
      block = Trim(line.substr(2));
      continue;
    }
    if (line[0] == '|') {  // a table row: kept as it is, one line each
      flush();
      item = false;
      if (line.find("---") == std::string::npos)
        out << ".br\n" << ProtectLine(Inline(line)) << "\n";
      continue;
    }
    block += (block.empty() ? "" : " ") + Trim(line);
  }
  flush();
  if (code) Die("a Markdown code block is not closed");
}

struct Args {
  std::string name, section, summary, source, date, output;
  std::vector<std::pair<std::string, std::string>> helps;  // file, title
  std::vector<std::string> markdown;
  std::string example_file, example_title;
  std::string see_also;
};

std::pair<std::string, std::string> SplitEq(const std::string& s) {
  size_t eq = s.find('=');
  if (eq == std::string::npos) return {s, ""};
  return {s.substr(0, eq), s.substr(eq + 1)};
}

Args ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) Die("option " + flag + " needs a value");
    std::string value = argv[++i];
    if (flag == "--name")
      a.name = value;
    else if (flag == "--section")
      a.section = value;
    else if (flag == "--summary")
      a.summary = value;
    else if (flag == "--source")
      a.source = value;
    else if (flag == "--date")
      a.date = value;
    else if (flag == "-o")
      a.output = value;
    else if (flag == "--help")
      a.helps.push_back(SplitEq(value));
    else if (flag == "--md")
      a.markdown.push_back(value);
    else if (flag == "--example")
      std::tie(a.example_file, a.example_title) = SplitEq(value);
    else if (flag == "--see-also")
      a.see_also = value;
    else
      Die("unknown option " + flag);
  }
  if (a.name.empty() || a.section.empty() || a.summary.empty() || a.output.empty()) {
    Die("--name, --section, --summary and -o are required");
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = ParseArgs(argc, argv);
  std::ostringstream out;
  out << ".\\\" Generated by forklift-mangen (man/mangen.cc) from forklift's --help and docs;\n"
      << ".\\\" do not edit: change the help text or the docs instead.\n";
  out << ".TH \"" << Escape(Upper(a.name)) << "\" " << a.section << " \"" << a.date << "\" \""
      << Escape(a.source) << "\" \"forklift manual\"\n";
  out << ".SH NAME\n" << Escape(a.name) << " \\- " << Escape(a.summary) << "\n";

  std::vector<Help> helps;
  for (const auto& [file, title] : a.helps) helps.push_back(ParseHelp(ReadFile(file)));
  bool any_usage = false;
  for (const Help& h : helps) any_usage = any_usage || !h.usage.empty();
  if (any_usage) {
    out << ".SH SYNOPSIS\n";
    bool first = true;
    for (const Help& h : helps) {
      for (const std::string& u : h.usage) {
        if (!first) out << ".br\n";
        first = false;
        out << ProtectLine(Escape(u)) << "\n";
      }
    }
  }
  if (!helps.empty()) {
    if (!helps[0].description.empty()) out << ".SH DESCRIPTION\n";
    RenderParagraphs(out, helps[0].description);
    for (size_t i = 0; i < helps.size(); ++i) {
      Help h = helps[i];
      if (i == 0) h.description.clear();
      RenderHelpBody(out, h, a.helps[i].second);
    }
  }
  for (const std::string& md : a.markdown) RenderMarkdown(out, ReadFile(md), helps.empty());
  if (!a.example_file.empty()) {
    out << ".SH EXAMPLE\n.PP\n" << Escape(a.example_title) << "\n.PP\n.RS 4\n.nf\n";
    for (const std::string& line : Lines(ReadFile(a.example_file)))
      out << ProtectLine(Escape(line)) << "\n";
    out << ".fi\n.RE\n";
  }
  if (!a.see_also.empty()) {
    out << ".SH \"SEE ALSO\"\n";
    std::istringstream refs(a.see_also);
    std::string ref;
    std::vector<std::string> all;
    while (std::getline(refs, ref, ',')) all.push_back(Trim(ref));
    for (size_t i = 0; i < all.size(); ++i) {
      size_t paren = all[i].find('(');
      if (paren == std::string::npos) Die("--see-also: '" + all[i] + "' is not NAME(SECTION)");
      out << ".BR " << Escape(all[i].substr(0, paren)) << " " << all[i].substr(paren)
          << (i + 1 < all.size() ? " ," : "") << "\n";
    }
  }
  std::ofstream file(a.output, std::ios::binary | std::ios::trunc);
  file << out.str();
  if (!file.flush()) Die("cannot write '" + a.output + "'");
  return 0;
}
