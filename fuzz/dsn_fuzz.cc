// DSNs and table names as `forklift load --to/--table` take them. Properties:
//  - a DSN that parses has a Masked() form that never holds its password (nor, for a
//    password written into the DSN by this target, that password); an error message
//    never holds a password written into the DSN, raw or percent-encoded;
//  - MaskSecret leaves no occurrence of the secret (one without '*');
//  - ParseQualifiedName(QuoteQualified(schema, table)) gives back schema and table, and a
//    name that parses quotes to something that parses to the same pair.
// Input: byte 0 = mode (0 arbitrary DSN, 1 URI userinfo, 2 URI ?password= with the
// keyword percent-encoded by the bits of byte 1, 3 key=value, 4 names), then the password
// up to '\x01', then the rest of the DSN.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz/fuzz_check.h"
#include "sinks/pg_dsn.h"

namespace fs = forklift::sinks;

namespace {

std::string PercentEncodeAll(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    out += '%';
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string PercentEncodeSome(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

bool Contains(std::string_view hay, std::string_view needle) {
  return !needle.empty() && hay.find(needle) != std::string_view::npos;
}

void CheckNames(std::string_view a, std::string_view b) {
  std::string schema(a), table(b);
  for (char& c : schema) {
    if (c == '\0') c = 'z';
  }
  for (char& c : table) {
    if (c == '\0') c = 'z';
  }
  if (!table.empty()) {
    auto back = fs::ParseQualifiedName(fs::QuoteQualified(schema, table));
    FUZZ_CHECK(back.has_value());
    FUZZ_CHECK(back->first == schema && back->second == table);
  }
  auto parsed = fs::ParseQualifiedName(a);
  if (parsed) {
    FUZZ_CHECK(!parsed->second.empty());
    auto again = fs::ParseQualifiedName(fs::QuoteQualified(parsed->first, parsed->second));
    FUZZ_CHECK(again.has_value() && *again == *parsed);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  forklift::fuzz::Input in(data, size);
  const uint8_t mode = in.Byte() % 5;
  const uint8_t bits = in.Byte();
  std::string pw(in.Until('\x01'));
  std::string rest(in.Rest());
  for (char& c : pw) {
    if (c == '\0' || c == '*') c = 'Q';
  }
  if (mode == 4) {
    CheckNames(pw, rest);
    return 0;
  }

  // The DSN with password `p` written into it: {before, written, after}.
  auto build = [&](const std::string& p, std::string* before, std::string* written,
                   std::string* after) {
    switch (mode) {
      case 1:
        *before = "postgresql://user:";
        *written = bits & 1 ? PercentEncodeAll(p) : PercentEncodeSome(p);
        *after = "@localhost/db" + rest;
        break;
      case 2: {
        std::string kw;
        const std::string_view word = "password";
        for (size_t i = 0; i < word.size(); ++i) {
          kw += (bits >> i) & 1 ? PercentEncodeAll(word.substr(i, 1)) : std::string(1, word[i]);
        }
        *before = "postgresql://localhost/db?" + kw + "=";
        *written = (bits & 1) ? PercentEncodeAll(p) : PercentEncodeSome(p);
        *after = rest;
        break;
      }
      case 3:
        *before = "host=localhost password='";
        for (char c : p) {
          if (c == '\'' || c == '\\') *written += '\\';
          *written += c;
        }
        *after = "' " + rest;
        break;
    }
  };
  std::string before, written, after;
  if (mode == 0) {
    before = pw + rest;
    pw.clear();
  } else {
    build(pw, &before, &written, &after);
  }
  const std::string dsn = before + written + after;
  auto parsed = fs::ParsePgDsn(dsn);
  if (std::getenv("FUZZ_VERBOSE")) {
    std::fprintf(stderr, "dsn [%s] pw [%s] -> %s\n", dsn.c_str(), pw.c_str(),
                 parsed ? parsed->Masked().c_str() : parsed.error().message.c_str());
  }
  // Only a password that appears nowhere else can be required to be absent: not in the
  // rest of the DSN, and not in what forklift or libpq would say with another password in
  // its place (libpq's words, "query" for a password "uer", or its quotes).
  bool unique =
      pw.size() >= 3 && !Contains(before + after, pw) && !Contains(before + after, written);
  if (unique && mode != 0) {
    std::string control(pw.size(), pw[0] == 'Z' ? 'Y' : 'Z');
    std::string b2, w2, a2;
    build(control, &b2, &w2, &a2);
    auto other = fs::ParsePgDsn(b2 + w2 + a2);
    const std::string said = other ? other->Masked() : other.error().message;
    unique = !Contains(said, pw) && !Contains(said, written);
  }
  if (parsed) {
    FUZZ_CHECK(parsed->conninfo == dsn);
    const std::string masked = parsed->Masked();
    if (parsed->password.find('*') == std::string::npos) {
      FUZZ_CHECK(!Contains(masked, parsed->password));
    }
    if (unique) {
      FUZZ_CHECK(!Contains(masked, pw));
      FUZZ_CHECK(!Contains(masked, written));
    }
    (void)parsed->Identity();
  } else if (unique) {
    FUZZ_CHECK(!Contains(parsed.error().message, pw));
    FUZZ_CHECK(!Contains(parsed.error().message, written));
  }

  if (!pw.empty()) {
    std::string masked = fs::MaskSecret(rest, pw);
    FUZZ_CHECK(!Contains(masked, pw));
  }
  return 0;
}
