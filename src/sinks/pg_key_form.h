// The canonical routing form of a PostgreSQL key value by its column's type: bytes that are
// equal for spellings the server stores as one value (`01`, ` 1` and `+1` in an int4; `TRUE`
// and `yes` in a bool; `1.234` and `1.23` in a numeric(5,2)), so that `forklift load` routes
// every spelling of a key through one connection.
//
// Only splitting equal values is a bug (two connections update one row: the winner is not
// defined, and they may deadlock); giving two different values one form only costs load
// balance. So each form is at least as coarse as the server's equality, and a value a form
// cannot parse is appended as spelled (the server refuses it, or takes it in a shape this
// file leaves alone: at worst today's routing by spelling).
//
// By type name (pg_type.typname of the column's base type) and typmod:
//   int2, int4, int8  surrounding whitespace, sign, leading zeros, `_` between digits and
//                     0x/0o/0b prefixes (PostgreSQL 16) -> decimal; "-0" -> "0"
//   numeric           the same for decimals and exponents, rounded to numeric(p,s)'s scale
//                     -> significant digits and exponent; NaN and the infinities one each
//   float4, float8    parsed to the column's precision -> its bits (-0 = 0, one NaN)
//   bool              t/true/y/yes/on/1, f/false/n/no/off/0 (any case, unique prefixes,
//                     surrounding whitespace) -> one byte
//   date              the ISO shape Y-M-D only, with a year of 3 or more digits (other
//                     shapes depend on the server's DateStyle) -> YYYY-MM-DD
//   bpchar, and varchar(n)  trailing spaces dropped (char(n) ignores them; varchar(n)
//                     drops those past n)
//   uuid              32 hex digits with any braces and hyphens -> lowercase hex
//   everything else   as spelled (text, varchar and name compare by spelling, unless the
//                     column has a nondeterministic collation, which this does not see)
//
// Thread safety: an immutable value; Append may be called from any thread.
#ifndef FORKLIFT_SINKS_PG_KEY_FORM_H_
#define FORKLIFT_SINKS_PG_KEY_FORM_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace forklift::sinks {

class PgKeyForm {
 public:
  // `typname`: pg_type.typname; `typmod`: pg_attribute.atttypmod (-1 = none).
  explicit PgKeyForm(std::string_view typname, int32_t typmod = -1);

  // Appends the routing form of `value` to *out. Never fails.
  void Append(std::string_view value, std::string* out) const;

 private:
  enum class Kind { kSpelled, kInt, kNumeric, kFloat4, kFloat8, kBool, kDate, kTrimRight, kUuid };
  Kind kind_ = Kind::kSpelled;
  bool has_scale_ = false;  // numeric(p,s): round to scale_
  int scale_ = 0;
};

}  // namespace forklift::sinks

#endif  // FORKLIFT_SINKS_PG_KEY_FORM_H_
