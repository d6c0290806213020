#include "sinks/pg_key_form.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace forklift::sinks {
namespace {

std::string Form(std::string_view type, std::string_view value, int32_t typmod = -1) {
  std::string out = "prefix:";
  PgKeyForm(type, typmod).Append(value, &out);
  return out.substr(7);
}

// Every spelling in `same` has one form; each of `other` has a form of its own.
void ExpectClasses(std::string_view type, const std::vector<std::vector<std::string>>& classes,
                   int32_t typmod = -1) {
  std::vector<std::string> forms;
  for (const auto& spellings : classes) {
    const std::string form = Form(type, spellings[0], typmod);
    for (const std::string& s : spellings) {
      EXPECT_EQ(Form(type, s, typmod), form)
          << type << ": '" << s << "' vs '" << spellings[0] << "'";
    }
    for (const std::string& f : forms) {
      EXPECT_NE(f, form) << type << ": '" << spellings[0] << "' shares a form";
    }
    forms.push_back(form);
  }
}

TEST(PgKeyFormTest, IntegersByValue) {
  for (std::string_view t : {"int2", "int4", "int8"}) {
    ExpectClasses(t, {{"1", "01", "001", " 1", "1 ", "\t+1\n", "+0001", "0x1", "0b1", "0o1"},
                      {"0", "-0", "+0", "000", " -00 ", "0x0"},
                      {"-7", "-007", " -7 "},
                      {"7", "07"},
                      {"1000", "1_000", "0x3E8", "0x3e8"},
                      {"9223372036854775807"},
                      {"-9223372036854775808"}});
  }
  EXPECT_EQ(Form("int4", "1"), "1");
  EXPECT_EQ(Form("int4", "-0"), "0");
}

TEST(PgKeyFormTest, IntegersThatDoNotParseStayAsSpelled) {
  for (std::string_view v : {"", "abc", "1.0", "1e3", "- 1", "++1", "1_", "_1", "1__0", "0x",
                             "99999999999999999999", "NULL", "\\N"}) {
    EXPECT_EQ(Form("int8", v), v);
  }
}

TEST(PgKeyFormTest, BoolsByValue) {
  ExpectClasses("bool", {{"t", "true", "TRUE", "True", "tr", "y", "yes", "YE", "on", "ON", "1",
                          " t ", "\ttrue\n"},
                         {"f", "false", "FALSE", "fa", "n", "no", "NO", "off", "of", "0", " f"}});
  for (std::string_view v : {"", "o", "tru e", "truee", "yess", "2", "01", "nope"}) {
    EXPECT_EQ(Form("bool", v), v);
  }
}

TEST(PgKeyFormTest, IsoDatesByValue) {
  ExpectClasses("date", {{"2024-01-05", "2024-1-5", "2024-01-5", " 2024-1-05 ", "02024-01-05"},
                         {"2024-05-01", "2024-5-1"},
                         {"0024-01-05", "024-1-5"},
                         {"2024-01-06"}});
  // Shapes whose reading depends on DateStyle, or that are not Y-M-D: as spelled.
  for (std::string_view v : {"24-01-05", "01/05/2024", "2024-001-05", "2024-01-05 00:00",
                             "Jan 5 2024", "epoch", "2024-01", "", "2024--01-05"}) {
    EXPECT_EQ(Form("date", v), v);
  }
}

TEST(PgKeyFormTest, CharNDropsTrailingSpaces) {
  ExpectClasses("bpchar", {{"ab", "ab ", "ab    "}, {" ab", " ab  "}, {"a b"}, {""}});
  ExpectClasses("varchar", {{"ab", "ab  "}}, /*typmod=varchar(2)*/ 6);
  // Without a length, varchar and text keep every space.
  EXPECT_EQ(Form("varchar", "ab "), "ab ");
  EXPECT_EQ(Form("text", "ab "), "ab ");
}

TEST(PgKeyFormTest, NumericsByValue) {
  ExpectClasses("numeric",
                {{"1.5", "1.50", "01.5", " +1.500 ", "15e-1", "0.15E1", "1.5e0", "1_5e-1"},
                 {"-1.5", "-1.50", "-0015E-1"},
                 {"0", "-0", "0.000", "-0.0e5", "+0", ".0"},
                 {"100", "1e2", "100.", "0x64", "1_00"},
                 {"10"},
                 {"0.001", "1e-3", ".001"},
                 {"NaN", "nan", " NAN "},
                 {"Infinity", "inf", "+Infinity", "INF"},
                 {"-Infinity", "-inf"}});
  for (std::string_view v : {"", "abc", "1.2.3", "1e", "1e+", "e5", ".", "1 2", "- 1"}) {
    EXPECT_EQ(Form("numeric", v), v);
  }
}

TEST(PgKeyFormTest, NumericsRoundToTheColumnsScale) {
  const int32_t numeric_10_2 = ((10 << 16) | 2) + 4;
  ExpectClasses("numeric",
                {{"1.23", "1.234", "1.2299", "1.225", "01.230"},
                 {"1.24", "1.235"},
                 {"-1.24", "-1.235"},
                 {"10", "9.995", "9.999"},
                 {"0", "0.004", "-0.004"}},
                numeric_10_2);
  const int32_t numeric_5_0 = ((5 << 16) | 0) + 4;
  ExpectClasses("numeric", {{"2", "1.5", "2.4999"}, {"1", "0.5", "1.49"}, {"0", "0.4"}},
                numeric_5_0);
}

TEST(PgKeyFormTest, FloatsByValueAtTheColumnsPrecision) {
  ExpectClasses("float8", {{"1.5", "1.50", " +1.5 ", "15e-1", "0.15E1"},
                           {"0", "-0", "0.0", "-0e3"},
                           {"NaN", "nan", "-nan"},
                           {"inf", "Infinity", "+inf"},
                           {"-Infinity"},
                           {"0.1"},
                           {"0.10000000000000002"}});
  // 0.1 and 0.10000000001 are one float4.
  ExpectClasses("float4", {{"0.1", "0.10000000001", "1e-1"}, {"0.2"}});
  for (std::string_view v : {"", "abc", "1e999", "0x1p3", "1.5x", "+-1"}) {
    EXPECT_EQ(Form("float8", v), v);
  }
}

TEST(PgKeyFormTest, UuidsByValue) {
  ExpectClasses("uuid",
                {{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
                  "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", "a0eebc999c0b4ef8bb6d6bb9bd380a11",
                  "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11"},
                 {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12"}});
  for (std::string_view v : {"", "a0eebc99", "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                             "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1100"}) {
    EXPECT_EQ(Form("uuid", v), v);
  }
}

TEST(PgKeyFormTest, OtherTypesAreAsSpelled) {
  for (std::string_view t : {"text", "name", "varchar", "timestamptz", "_int4", "citext", ""}) {
    for (std::string_view v : {"01", " 1", "ABC", "abc ", ""}) EXPECT_EQ(Form(t, v), v) << t;
  }
}

}  // namespace
}  // namespace forklift::sinks
