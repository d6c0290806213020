#include "sinks/pg_binary.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <limits>

namespace forklift::sinks {
namespace {

void PutU16(std::string* out, uint16_t v) {
  const char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
  out->append(b, 2);
}
void PutU32(std::string* out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out->append(b, 4);
}
void PutU64(std::string* out, uint64_t v) {
  PutU32(out, static_cast<uint32_t>(v >> 32));
  PutU32(out, static_cast<uint32_t>(v));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// -?[0-9]+ only: no spaces, no '+', which the server would also take but we need not.
bool ParseInt(std::string_view s, int64_t* v) {
  if (s.empty() || s.size() > 20) return false;
  const char* p = s.data();
  const char* end = s.data() + s.size();
  if (*p == '-') ++p;
  if (p == end) return false;
  for (const char* q = p; q < end; ++q) {
    if (!IsDigit(*q)) return false;
  }
  auto [ptr, ec] = std::from_chars(s.data(), end, *v);
  return ec == std::errc() && ptr == end;
}

// Plain decimal and exponent forms only (no inf/nan/hex/spaces). from_chars rounds
// correctly, as the server's strtod does, so both give the same bits.
template <class F>
bool ParseFloat(std::string_view s, F* v) {
  if (s.empty() || s.size() > 64) return false;
  bool digit = false;
  for (char c : s) {
    if (IsDigit(c)) {
      digit = true;
    } else if (c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E') {
      return false;
    }
  }
  if (!digit || s[0] == '+') return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *v, std::chars_format::general);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// YYYY-MM-DD with a real calendar day, years 0001-9999: days since 2000-01-01.
bool ParseDate(std::string_view s, int32_t* days) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!IsDigit(s[i])) return false;
  }
  const int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
  const unsigned m = static_cast<unsigned>((s[5] - '0') * 10 + (s[6] - '0'));
  const unsigned d = static_cast<unsigned>((s[8] - '0') * 10 + (s[9] - '0'));
  if (y < 1 || m < 1 || m > 12 || d < 1) return false;
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > kDays[m - 1] + (m == 2 && leap ? 1 : 0)) return false;
  *days = static_cast<int32_t>(DaysFromCivil(y, m, d) - DaysFromCivil(2000, 1, 1));
  return true;
}

}  // namespace

PgType PgTypeFromName(std::string_view t) {
  if (t == "text" || t == "varchar" || t == "bpchar" || t == "name") return PgType::kText;
  if (t == "int2") return PgType::kInt2;
  if (t == "int4") return PgType::kInt4;
  if (t == "int8") return PgType::kInt8;
  if (t == "float4") return PgType::kFloat4;
  if (t == "float8") return PgType::kFloat8;
  if (t == "bool") return PgType::kBool;
  if (t == "date") return PgType::kDate;
  return PgType::kOther;
}

PgBinaryEncoder::PgBinaryEncoder(std::vector<PgType> types, bool with_ord, char delimiter,
                                 std::string null_string)
    : types_(std::move(types)),
      with_ord_(with_ord),
      delimiter_(delimiter),
      null_string_(std::move(null_string)) {
  for (PgType t : types_) {
    if (t == PgType::kOther) usable_ = false;
  }
  if (types_.empty()) usable_ = false;
}

void PgBinaryEncoder::Begin(std::string* out) {
  out->append("PGCOPY\n\xff\r\n\0", 11);
  PutU32(out, 0);  // flags: no OIDs
  PutU32(out, 0);  // header extension length
}

void PgBinaryEncoder::End(std::string* out) { PutU16(out, 0xffff); }

bool PgBinaryEncoder::AddField(PgType type, const sources::CsvField& f, std::string* out) {
  const std::string_view v = f.value;
  if (!f.quoted && v == null_string_) {
    PutU32(out, 0xffffffffu);  // NULL
    return true;
  }
  switch (type) {
    case PgType::kText:
      // The server refuses NUL in text; let it say so on the CSV path.
      if (v.find('\0') != std::string_view::npos) return false;
      PutU32(out, static_cast<uint32_t>(v.size()));
      out->append(v);
      return true;
    case PgType::kInt2:
    case PgType::kInt4:
    case PgType::kInt8: {
      int64_t n;
      if (!ParseInt(v, &n)) return false;
      if (type == PgType::kInt2) {
        if (n < std::numeric_limits<int16_t>::min() || n > std::numeric_limits<int16_t>::max())
          return false;
        PutU32(out, 2);
        PutU16(out, static_cast<uint16_t>(static_cast<int16_t>(n)));
      } else if (type == PgType::kInt4) {
        if (n < std::numeric_limits<int32_t>::min() || n > std::numeric_limits<int32_t>::max())
          return false;
        PutU32(out, 4);
        PutU32(out, static_cast<uint32_t>(static_cast<int32_t>(n)));
      } else {
        PutU32(out, 8);
        PutU64(out, static_cast<uint64_t>(n));
      }
      return true;
    }
    case PgType::kFloat4: {
      float x;
      if (!ParseFloat(v, &x)) return false;
      PutU32(out, 4);
      PutU32(out, std::bit_cast<uint32_t>(x));
      return true;
    }
    case PgType::kFloat8: {
      double x;
      if (!ParseFloat(v, &x)) return false;
      PutU32(out, 8);
      PutU64(out, std::bit_cast<uint64_t>(x));
      return true;
    }
    case PgType::kBool: {
      bool b;
      if (v == "t" || v == "true" || v == "TRUE" || v == "1") {
        b = true;
      } else if (v == "f" || v == "false" || v == "FALSE" || v == "0") {
        b = false;
      } else {
        return false;
      }
      PutU32(out, 1);
      out->push_back(b ? 1 : 0);
      return true;
    }
    case PgType::kDate: {
      int32_t days;
      if (!ParseDate(v, &days)) return false;
      PutU32(out, 4);
      PutU32(out, static_cast<uint32_t>(days));
      return true;
    }
    case PgType::kOther: return false;
  }
  return false;
}

bool PgBinaryEncoder::keys_canonical() const {
  if (key_fields_.empty() || !usable_) return false;
  for (size_t k : key_fields_) {
    if (k >= types_.size()) return false;
    const PgType t = types_[k];
    if (t == PgType::kFloat4 || t == PgType::kFloat8 || t == PgType::kOther) return false;
  }
  return true;
}

bool PgBinaryEncoder::AddRow(std::string_view raw, int64_t ord, std::string* out,
                             std::string* key) {
  if (!usable_) return false;
  const std::string reason = sources::SplitCsvRecord(raw, delimiter_, &fields_, &scratch_);
  if (!reason.empty() || fields_.size() != types_.size()) return false;
  const size_t mark = out->size();
  PutU16(out, static_cast<uint16_t>(types_.size() + (with_ord_ ? 1 : 0)));
  if (with_ord_) {
    PutU32(out, 8);
    PutU64(out, static_cast<uint64_t>(ord));
  }
  const size_t key_mark = key ? key->size() : 0;
  for (size_t i = 0; i < types_.size(); ++i) {
    const size_t field_start = out->size();
    if (!AddField(types_[i], fields_[i], out)) {
      out->resize(mark);
      if (key) key->resize(key_mark);
      return false;
    }
    if (key && std::find(key_fields_.begin(), key_fields_.end(), i) != key_fields_.end()) {
      key->append(*out, field_start, out->size() - field_start);  // length-prefixed: unambiguous
    }
  }
  return true;
}

}  // namespace forklift::sinks
