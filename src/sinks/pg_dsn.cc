#include "sinks/pg_dsn.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <optional>
#include <vector>

namespace forklift::sinks {
namespace {

constexpr std::string_view kMask = "***";

bool IsUri(std::string_view s) {
  return s.starts_with("postgresql://") || s.starts_with("postgres://");
}

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoding as libpq applies it to URI parts; malformed escapes are kept as written.
std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct Span {
  size_t begin;
  size_t end;
};

// Where passwords are written in a URI: the userinfo after "user:" (libpq ends userinfo at
// the first '@' before any '/') and the values of ?password= parameters, however the
// keyword is percent-encoded.
std::vector<Span> UriPasswordSpans(std::string_view s) {
  std::vector<Span> spans;
  size_t start = s.find("://") + 3;
  size_t p = start;
  while (p < s.size() && s[p] != '@' && s[p] != '/') ++p;
  size_t after_userinfo = start;
  if (p < s.size() && s[p] == '@') {
    size_t colon = s.find(':', start);
    if (colon < p && colon + 1 < p) spans.push_back({colon + 1, p});
    after_userinfo = p + 1;
  }
  size_t q = s.find('?', after_userinfo);
  while (q != std::string_view::npos && q < s.size()) {
    size_t begin = q + 1;
    size_t end = s.find('&', begin);
    if (end == std::string_view::npos) end = s.size();
    std::string_view param = s.substr(begin, end - begin);
    // libpq splits a parameter at its first '=' and then percent-decodes the keyword too,
    // so `pass%77ord=` names the password as well as `password=` does.
    const size_t eq = param.find('=');
    if (eq != std::string_view::npos && eq + 1 < param.size() &&
        PercentDecode(param.substr(0, eq)) == "password") {
      spans.push_back({begin + eq + 1, end});
    }
    q = end;
  }
  return spans;
}

// Where password values are written in a key=value string, following libpq's
// conninfo_parse: `key = value`, values bare (backslash escapes) or single-quoted. Lenient:
// it stops quietly at the first thing libpq would reject.
std::vector<Span> KeyValuePasswordSpans(std::string_view s) {
  std::vector<Span> spans;
  size_t i = 0;
  auto skip_space = [&] {
    while (i < s.size() && IsSpace(s[i])) ++i;
  };
  while (true) {
    skip_space();
    if (i >= s.size()) break;
    size_t key_begin = i;
    while (i < s.size() && s[i] != '=' && !IsSpace(s[i])) ++i;
    std::string_view key = s.substr(key_begin, i - key_begin);
    skip_space();
    if (i >= s.size() || s[i] != '=') break;
    ++i;
    skip_space();
    size_t value_begin = i;
    if (i < s.size() && s[i] == '\'') {
      ++i;
      while (i < s.size() && s[i] != '\'') i += (s[i] == '\\' && i + 1 < s.size()) ? 2 : 1;
      if (i < s.size()) ++i;  // the closing quote
    } else {
      while (i < s.size() && !IsSpace(s[i])) i += (s[i] == '\\' && i + 1 < s.size()) ? 2 : 1;
    }
    i = std::min(i, s.size());
    if (key == "password" && i > value_begin) spans.push_back({value_begin, i});
  }
  return spans;
}

std::vector<Span> PasswordSpans(std::string_view s) {
  return IsUri(s) ? UriPasswordSpans(s) : KeyValuePasswordSpans(s);
}

// `value` as a key=value conninfo value: bare when it can be, else single-quoted.
std::string ConninfoValue(std::string_view value) {
  bool bare = !value.empty();
  for (char c : value) {
    if (IsSpace(c) || c == '\'' || c == '\\') bare = false;
  }
  if (bare) return std::string(value);
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

struct OptionsDeleter {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};
using OptionsPtr = std::unique_ptr<PQconninfoOption, OptionsDeleter>;

std::optional<std::string> OptionValue(const PQconninfoOption* options, std::string_view key) {
  for (const PQconninfoOption* o = options; o && o->keyword; ++o) {
    if (key == o->keyword && o->val) return std::string(o->val);
  }
  return std::nullopt;
}

std::string TrimTrailingSpace(std::string s) {
  while (!s.empty() && IsSpace(s.back())) s.pop_back();
  return s;
}

}  // namespace

std::string MaskSecret(std::string_view text, std::string_view password) {
  if (password.empty()) return std::string(text);
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t hit = text.find(password, pos);
    if (hit == std::string_view::npos) break;
    out.append(text.substr(pos, hit - pos));
    out.append(kMask);
    pos = hit + password.size();
  }
  out.append(text.substr(pos));
  return out;
}

std::string PgDsn::Masked() const {
  std::string out;
  size_t pos = 0;
  for (const Span& span : PasswordSpans(conninfo)) {
    out.append(conninfo, pos, span.begin - pos);
    out.append(kMask);
    pos = span.end;
  }
  out.append(conninfo, pos);
  // The password may also be spelt somewhere else (as the user name, in another option).
  return MaskSecret(out, password);
}

std::string PgDsn::Identity() const {
  char* error = nullptr;
  OptionsPtr options(PQconninfoParse(conninfo.c_str(), &error));
  PQfreemem(error);
  const PQconninfoOption* o = options.get();
  std::string host = OptionValue(o, "host").value_or("");
  if (host.empty()) host = OptionValue(o, "hostaddr").value_or("");
  std::string port = OptionValue(o, "port").value_or("");
  if (port.empty()) port = "5432";
  std::string user = OptionValue(o, "user").value_or("");
  std::string dbname = OptionValue(o, "dbname").value_or("");
  if (dbname.empty()) dbname = user;
  return "host=" + ConninfoValue(host) + " port=" + ConninfoValue(port) +
         " dbname=" + ConninfoValue(dbname) + " user=" + ConninfoValue(user);
}

Result<PgDsn> ParsePgDsn(std::string_view dsn) {
  // Secrets we can see in the text, raw and decoded, to keep them out of libpq's messages
  // about a DSN it could not parse (and so could not tell us the password of).
  auto mask_all = [&](std::string message) {
    for (const Span& span : PasswordSpans(dsn)) {
      std::string_view raw = dsn.substr(span.begin, span.end - span.begin);
      message = MaskSecret(message, raw);
      message = MaskSecret(message, PercentDecode(raw));
    }
    return message;
  };
  bool blank = true;
  for (char c : dsn) {
    if (!IsSpace(c)) blank = false;
  }
  if (blank) return InvalidArgumentError("--to: empty connection string");
  if (dsn.find('\0') != std::string_view::npos) {
    return InvalidArgumentError("--to: the connection string contains a NUL byte");
  }
  PgDsn out;
  out.conninfo = std::string(dsn);
  char* error = nullptr;
  OptionsPtr options(PQconninfoParse(out.conninfo.c_str(), &error));
  if (!options) {
    std::string reason = error ? TrimTrailingSpace(error) : "cannot parse the connection string";
    PQfreemem(error);
    return InvalidArgumentError("--to: " + mask_all(reason));
  }
  out.password = OptionValue(options.get(), "password").value_or("");
  return out;
}

namespace {

// `s` between two `q`s, each `q` in it doubled.
std::string QuoteWith(char q, std::string_view s) {
  std::string out(1, q);
  for (char c : s) {
    if (c == q) out += q;
    out += c;
  }
  return out + q;
}

}  // namespace

std::string QuoteIdent(std::string_view name) { return QuoteWith('"', name); }

std::string QuoteLiteral(std::string_view s) { return QuoteWith('\'', s); }

std::string QuoteQualified(std::string_view schema, std::string_view table) {
  if (schema.empty()) return QuoteIdent(table);
  return QuoteIdent(schema) + "." + QuoteIdent(table);
}

Result<std::pair<std::string, std::string>> ParseQualifiedName(std::string_view name) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError("invalid table name '" + std::string(name) +
                                "': " + std::string(why));
  };
  if (name.find('\0') != std::string_view::npos) return bad("contains a NUL byte");
  std::vector<std::string> parts;
  size_t i = 0;
  while (true) {
    std::string part;
    if (i < name.size() && name[i] == '"') {
      ++i;
      while (true) {
        if (i >= name.size()) return bad("unterminated quote");
        if (name[i] == '"') {
          if (i + 1 < name.size() && name[i + 1] == '"') {
            part += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        part += name[i++];
      }
      if (part.empty()) return bad("empty quoted name");
    } else {
      for (; i < name.size() && name[i] != '.'; ++i) {
        unsigned char c = static_cast<unsigned char>(name[i]);
        if (c == '"') return bad("a quote inside an unquoted name (quote the whole part)");
        if (std::isspace(c) || std::iscntrl(c)) {
          return bad("a space or control character in an unquoted name (quote it)");
        }
        part += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
      }
      if (part.empty()) return bad("empty name part");
    }
    parts.push_back(std::move(part));
    if (i == name.size()) break;
    if (name[i] != '.') return bad("text after a closing quote");
    ++i;  // an empty part after the dot fails on the next turn
  }
  if (parts.size() > 2) return bad("more than two parts (expected table or schema.table)");
  if (parts.size() == 1) return std::pair<std::string, std::string>("", std::move(parts[0]));
  return std::pair<std::string, std::string>(std::move(parts[0]), std::move(parts[1]));
}

}  // namespace forklift::sinks
