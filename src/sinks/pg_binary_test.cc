#include "sinks/pg_binary.h"

#include <gtest/gtest.h>

#include "sinks/pg_connection.h"
#include "sinks/pg_dsn.h"
#include "support/pg_server.h"

namespace forklift::sinks {
namespace {

std::string Encode(std::vector<PgType> types, std::string_view row, bool* ok) {
  PgBinaryEncoder enc(std::move(types), false, ',', "");
  std::string out;
  *ok = enc.AddRow(row, 0, &out);
  return out;
}

TEST(PgBinaryTest, EncodesTheStrictSubsetAndRefusesTheRest) {
  bool ok;
  std::string b = Encode({PgType::kInt4, PgType::kText}, "-2,hi", &ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(b, std::string("\0\2\0\0\0\4\xff\xff\xff\xfe\0\0\0\2hi", 16));
  b = Encode({PgType::kDate}, "2000-01-02", &ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(b, std::string("\0\1\0\0\0\4\0\0\0\1", 10));
  b = Encode({PgType::kInt8, PgType::kText}, ",\"\"", &ok);  // NULL, then an empty string
  ASSERT_TRUE(ok);
  EXPECT_EQ(b, std::string("\0\2\xff\xff\xff\xff\0\0\0\0", 10));
  for (std::string_view bad : {" 1", "+1", "1.0", "\"\"", "99999999999", "0x10"}) {
    Encode({PgType::kInt4}, bad, &ok);
    EXPECT_FALSE(ok) << bad;
  }
  for (std::string_view bad : {"inf", "nan", "1e999", "1,5", " 1", "1e-400"}) {
    std::string row = "\"" + std::string(bad) + "\"";
    Encode({PgType::kFloat8}, row, &ok);
    EXPECT_FALSE(ok) << bad;
  }
  for (std::string_view bad : {"2021-02-29", "2020-13-01", "2020-1-1", "0000-01-01", "20200101"}) {
    Encode({PgType::kDate}, bad, &ok);
    EXPECT_FALSE(ok) << bad;
  }
  Encode({PgType::kBool}, "yes", &ok);
  EXPECT_FALSE(ok);
  Encode({PgType::kInt2}, "40000", &ok);
  EXPECT_FALSE(ok);
  Encode({PgType::kInt4, PgType::kInt4}, "1", &ok);
  EXPECT_FALSE(ok) << "wrong field count";
  EXPECT_FALSE(PgBinaryEncoder({PgType::kOther}, false, ',', "").usable());
  EXPECT_EQ(PgTypeFromName("varchar"), PgType::kText);
  EXPECT_EQ(PgTypeFromName("numeric"), PgType::kOther);
}

// What the server makes of our binary tuples equals what it makes of the same CSV.
TEST(PgBinaryTest, TheServerReadsTheSameValuesAsFromCsv) {
  testing::PgServer* pg = testing::SharedPgServer();
  ASSERT_NE(pg, nullptr);
  ASSERT_TRUE(
      pg->Sql("DROP TABLE IF EXISTS bin_a, bin_b; "
              "CREATE TABLE bin_a(s text, i2 int2, i4 int4, i8 int8, f4 float4, "
              "f8 float8, b bool, d date); CREATE TABLE bin_b (LIKE bin_a)"));
  const std::vector<std::string> rows = {
      "plain,1,2,3,1.5,2.25,t,2020-01-01",
      "\"q,u\"\"o\nte\",-32768,-2147483648,-9223372036854775808,3.4e38,1e-300,false,1999-12-31",
      "é€😀,32767,2147483647,9223372036854775807,-0.1,-1.7976931348623157e308,1,2000-02-29",
      ",,,,,,,",
      "\"\",0,0,0,0.30000001,0.1,0,0001-01-01",
      "x,7,7,7,123456789,1.0000000000000002,TRUE,9999-12-31",
  };
  PgBinaryEncoder enc({PgType::kText, PgType::kInt2, PgType::kInt4, PgType::kInt8, PgType::kFloat4,
                       PgType::kFloat8, PgType::kBool, PgType::kDate},
                      false, ',', "");
  std::string bin, csv;
  PgBinaryEncoder::Begin(&bin);
  for (const std::string& r : rows) {
    ASSERT_TRUE(enc.AddRow(r, 0, &bin)) << r;
    csv += r + "\n";
  }
  PgBinaryEncoder::End(&bin);
  auto dsn = ParsePgDsn(pg->dsn());
  ASSERT_TRUE(dsn);
  auto conn = PgConnection::Connect(*dsn);
  ASSERT_TRUE(conn);
  auto a = (*conn)->CopyIn("COPY bin_a FROM STDIN (FORMAT binary)", bin);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(*a, 6);
  ASSERT_TRUE((*conn)->CopyIn("COPY bin_b FROM STDIN (FORMAT csv)", csv));
  auto diff = pg->Sql(
      "SELECT count(*) FROM ((TABLE bin_a EXCEPT ALL TABLE bin_b) UNION ALL "
      "(TABLE bin_b EXCEPT ALL TABLE bin_a)) x");
  ASSERT_TRUE(diff);
  EXPECT_EQ(*diff, "0");
  EXPECT_EQ(*pg->Sql("SELECT count(*) FROM bin_a WHERE s IS NULL AND d IS NULL"), "1");
}

}  // namespace
}  // namespace forklift::sinks
