#include "sinks/pg_key_form.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <optional>

// The encoder in pg_binary.cc parses only the strict subset it can send in binary (no
// spaces, no '+', no odd widths); routing needs the opposite, everything the server takes
// as one value, so these parsers are separate and deliberately loose.

namespace forklift::sinks {
namespace {

// PostgreSQL's input functions skip isspace() in the C locale.
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

int DigitValue(char c) {
  c = Lower(c);
  if (IsDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return 99;
}

// Digits of `base` with single `_` between them (PostgreSQL 16); nullopt on anything else
// or past uint64.
std::optional<uint64_t> ParseMagnitude(std::string_view s, int base) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() && s[i - 1] != '_') continue;
    const int d = DigitValue(s[i]);
    if (d >= base) return std::nullopt;
    if (v > (UINT64_MAX - static_cast<uint64_t>(d)) / static_cast<uint64_t>(base)) {
      return std::nullopt;
    }
    v = v * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
  }
  return v;
}

// An integer in any of the server's spellings, without its sign: decimal or 0x/0o/0b.
std::optional<uint64_t> ParseUnsignedInt(std::string_view s) {
  if (s.size() > 2 && s[0] == '0') {
    switch (Lower(s[1])) {
      case 'x': return ParseMagnitude(s.substr(2), 16);
      case 'o': return ParseMagnitude(s.substr(2), 8);
      case 'b': return ParseMagnitude(s.substr(2), 2);
      default: break;
    }
  }
  return ParseMagnitude(s, 10);
}

// Strips one sign; true when it was '-'.
bool TakeSign(std::string_view* s) {
  if (!s->empty() && (s->front() == '+' || s->front() == '-')) {
    const bool neg = s->front() == '-';
    s->remove_prefix(1);
    return neg;
  }
  return false;
}

bool AppendInt(std::string_view v, std::string* out) {
  std::string_view s = Trim(v);
  const bool neg = TakeSign(&s);
  const std::optional<uint64_t> mag = ParseUnsignedInt(s);
  if (!mag) return false;
  if (neg && *mag != 0) out->push_back('-');
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, *mag);
  out->append(buf, end);
  return true;
}

// A finite numeric as significant digits (no leading or trailing zeros) and the position
// of the decimal point: value = 0.DIGITS x 10^point.
struct Decimal {
  bool neg = false;
  std::string digits;
  int64_t point = 0;
};

void Normalize(Decimal* d) {
  size_t lead = 0;
  while (lead < d->digits.size() && d->digits[lead] == '0') ++lead;
  d->digits.erase(0, lead);
  d->point -= static_cast<int64_t>(lead);
  while (!d->digits.empty() && d->digits.back() == '0') d->digits.pop_back();
  if (d->digits.empty()) *d = Decimal{};
}

std::optional<Decimal> ParseDecimal(std::string_view s) {
  Decimal d;
  d.neg = TakeSign(&s);
  if (s.size() > 2 && s[0] == '0' &&
      (Lower(s[1]) == 'x' || Lower(s[1]) == 'o' || Lower(s[1]) == 'b')) {
    const std::optional<uint64_t> mag = ParseUnsignedInt(s);
    if (!mag) return std::nullopt;
    d.digits = std::to_string(*mag);
    d.point = static_cast<int64_t>(d.digits.size());
    Normalize(&d);
    return d;
  }
  bool seen_point = false, any_digit = false;
  size_t i = 0;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (IsDigit(c)) {
      any_digit = true;
      d.digits.push_back(c);
      if (!seen_point) ++d.point;
    } else if (c == '.' && !seen_point) {
      seen_point = true;
    } else if (c == '_' && i > 0 && i + 1 < s.size() && IsDigit(s[i - 1]) && IsDigit(s[i + 1])) {
      continue;
    } else {
      break;
    }
  }
  if (!any_digit) return std::nullopt;
  if (i < s.size()) {
    if (Lower(s[i]) != 'e') return std::nullopt;
    std::string_view e = s.substr(i + 1);
    const bool eneg = TakeSign(&e);
    if (e.empty() || e.size() > 9) return std::nullopt;
    for (char c : e) {
      if (!IsDigit(c)) return std::nullopt;
    }
    const int64_t exp = std::stoll(std::string(e));
    d.point += eneg ? -exp : exp;
  }
  Normalize(&d);
  return d;
}

// Rounds half away from zero to `scale` digits after the point, as numeric(p,s) stores.
void RoundToScale(Decimal* d, int scale) {
  if (d->digits.empty()) return;
  const int64_t keep = d->point + scale;
  if (keep >= static_cast<int64_t>(d->digits.size())) return;
  if (keep < 0) {
    *d = Decimal{};
    return;
  }
  const bool up = d->digits[static_cast<size_t>(keep)] >= '5';
  d->digits.resize(static_cast<size_t>(keep));
  if (up) {
    size_t i = d->digits.size();
    while (i > 0 && d->digits[i - 1] == '9') d->digits[--i] = '0';
    if (i == 0) {
      d->digits.insert(d->digits.begin(), '1');
      ++d->point;
    } else {
      ++d->digits[i - 1];
    }
  }
  Normalize(d);
}

bool AppendNumeric(std::string_view v, bool has_scale, int scale, std::string* out) {
  const std::string_view s = Trim(v);
  std::string lower;
  for (char c : s) lower.push_back(Lower(c));
  if (lower == "nan") {
    out->append("NaN");
    return true;
  }
  if (lower == "infinity" || lower == "+infinity" || lower == "inf" || lower == "+inf") {
    out->append("Inf");
    return true;
  }
  if (lower == "-infinity" || lower == "-inf") {
    out->append("-Inf");
    return true;
  }
  std::optional<Decimal> d = ParseDecimal(s);
  if (!d) return false;
  if (has_scale) RoundToScale(&*d, scale);
  if (d->digits.empty()) {
    out->push_back('0');
    return true;
  }
  if (d->neg) out->push_back('-');
  out->append(d->digits);
  out->push_back('e');
  out->append(std::to_string(d->point));
  return true;
}

template <class F, class Bits>
bool AppendFloat(std::string_view v, std::string* out) {
  std::string_view s = Trim(v);
  if (s.size() > 1 && s[0] == '+' && s[1] != '-' && s[1] != '+') s.remove_prefix(1);
  F x;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), x, std::chars_format::general);
  if (ec != std::errc() || ptr != s.data() + s.size()) return false;
  if (std::isnan(x)) {
    out->append("nan");  // the server's float equality takes every NaN as one value
    return true;
  }
  if (x == 0) x = 0;  // -0 = 0
  char buf[24];
  const int n = std::snprintf(buf, sizeof buf, "%llx",
                              static_cast<unsigned long long>(std::bit_cast<Bits>(x)));
  out->append(buf, static_cast<size_t>(n));
  return true;
}

// PostgreSQL's parse_bool_with_len: unique prefixes of true/yes/false/no, "on", "of[f]",
// "1", "0", any case.
bool AppendBool(std::string_view v, std::string* out) {
  const std::string_view s = Trim(v);
  if (s.empty()) return false;
  auto prefix_of = [&](std::string_view word, size_t min_len) {
    if (s.size() < min_len || s.size() > word.size()) return false;
    for (size_t i = 0; i < s.size(); ++i) {
      if (Lower(s[i]) != word[i]) return false;
    }
    return true;
  };
  if (prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) || s == "1") {
    out->push_back('t');
  } else if (prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || s == "0") {
    out->push_back('f');
  } else {
    return false;
  }
  return true;
}

// Y-M-D with a year of 3+ digits, which the server reads as ISO whatever its DateStyle
// (a 3-digit month would be a day of the year: left as spelled).
bool AppendDate(std::string_view v, std::string* out) {
  const std::string_view s = Trim(v);
  int64_t parts[3];
  size_t widths[3];
  size_t pos = 0;
  for (int f = 0; f < 3; ++f) {
    if (f > 0) {
      if (pos >= s.size() || s[pos] != '-') return false;
      ++pos;
    }
    const size_t start = pos;
    while (pos < s.size() && IsDigit(s[pos])) ++pos;
    widths[f] = pos - start;
    if (widths[f] == 0 || widths[f] > 9) return false;
    parts[f] = std::stoll(std::string(s.substr(start, widths[f])));
  }
  if (pos != s.size() || widths[0] < 3 || widths[1] > 2 || widths[2] > 2) return false;
  char buf[40];
  const int n =
      std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lld", static_cast<long long>(parts[0]),
                    static_cast<long long>(parts[1]), static_cast<long long>(parts[2]));
  out->append(buf, static_cast<size_t>(n));
  return true;
}

bool AppendUuid(std::string_view v, std::string* out) {
  char hex[32];
  size_t n = 0;
  for (char c : v) {
    if (c == '{' || c == '}' || c == '-') continue;
    if (DigitValue(c) >= 16 || n == 32) return false;
    hex[n++] = Lower(c);
  }
  if (n != 32) return false;
  out->append(hex, n);
  return true;
}

}  // namespace

PgKeyForm::PgKeyForm(std::string_view typname, int32_t typmod) {
  if (typname == "int2" || typname == "int4" || typname == "int8") {
    kind_ = Kind::kInt;
  } else if (typname == "numeric") {
    kind_ = Kind::kNumeric;
    if (typmod >= 4) {  // VARHDRSZ + (precision << 16 | scale); scale may be negative (PG 15)
      has_scale_ = true;
      scale_ = (((typmod - 4) & 0x7ff) ^ 1024) - 1024;
    }
  } else if (typname == "float4") {
    kind_ = Kind::kFloat4;
  } else if (typname == "float8") {
    kind_ = Kind::kFloat8;
  } else if (typname == "bool") {
    kind_ = Kind::kBool;
  } else if (typname == "date") {
    kind_ = Kind::kDate;
  } else if (typname == "bpchar" || (typname == "varchar" && typmod >= 4)) {
    kind_ = Kind::kTrimRight;
  } else if (typname == "uuid") {
    kind_ = Kind::kUuid;
  }
}

void PgKeyForm::Append(std::string_view value, std::string* out) const {
  bool done = false;
  switch (kind_) {
    case Kind::kSpelled: break;
    case Kind::kInt: done = AppendInt(value, out); break;
    case Kind::kNumeric: done = AppendNumeric(value, has_scale_, scale_, out); break;
    case Kind::kFloat4: done = AppendFloat<float, uint32_t>(value, out); break;
    case Kind::kFloat8: done = AppendFloat<double, uint64_t>(value, out); break;
    case Kind::kBool: done = AppendBool(value, out); break;
    case Kind::kDate: done = AppendDate(value, out); break;
    case Kind::kTrimRight: {
      while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
      break;  // appended below
    }
    case Kind::kUuid: done = AppendUuid(value, out); break;
  }
  if (!done) out->append(value);
}

}  // namespace forklift::sinks
