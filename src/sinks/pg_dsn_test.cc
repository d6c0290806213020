#include "sinks/pg_dsn.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace forklift::sinks {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

TEST(ParsePgDsnTest, UriSplitsOutThePassword) {
  auto dsn = ParsePgDsn("postgresql://loader:s3cr3t-pw@db.example:6432/warehouse");
  ASSERT_TRUE(dsn) << dsn.error().ToString();
  EXPECT_EQ(dsn->conninfo, "postgresql://loader:s3cr3t-pw@db.example:6432/warehouse");
  EXPECT_EQ(dsn->password, "s3cr3t-pw");
  EXPECT_EQ(dsn->Masked(), "postgresql://loader:***@db.example:6432/warehouse");
  EXPECT_EQ(dsn->Identity(), "host=db.example port=6432 dbname=warehouse user=loader");
}

TEST(ParsePgDsnTest, PercentEncodedUriPasswordIsDecodedAndMasked) {
  auto dsn = ParsePgDsn("postgres://loader:p%40ss%2Fw0rd@localhost/db");
  ASSERT_TRUE(dsn) << dsn.error().ToString();
  EXPECT_EQ(dsn->password, "p@ss/w0rd");
  EXPECT_EQ(dsn->Masked(), "postgres://loader:***@localhost/db");
}

TEST(ParsePgDsnTest, PasswordInUriQueryIsMasked) {
  auto dsn = ParsePgDsn("postgresql://loader@h/db?sslmode=disable&password=s3cr3t-pw&x=");
  // x= is not a libpq option: the URI is rejected, and the message must not leak.
  ASSERT_FALSE(dsn);
  EXPECT_THAT(dsn.error().message, Not(HasSubstr("s3cr3t-pw")));

  dsn = ParsePgDsn("postgresql://loader@h/db?sslmode=disable&password=s3cr3t-pw");
  ASSERT_TRUE(dsn) << dsn.error().ToString();
  EXPECT_EQ(dsn->password, "s3cr3t-pw");
  EXPECT_EQ(dsn->Masked(), "postgresql://loader@h/db?sslmode=disable&password=***");
}

TEST(ParsePgDsnTest, KeyValueFormMasksBareAndQuotedPasswords) {
  auto dsn = ParsePgDsn("host=h port=5433 dbname=d user=u password=s3cr3t-pw");
  ASSERT_TRUE(dsn) << dsn.error().ToString();
  EXPECT_EQ(dsn->password, "s3cr3t-pw");
  EXPECT_EQ(dsn->Masked(), "host=h port=5433 dbname=d user=u password=***");
  EXPECT_EQ(dsn->Identity(), "host=h port=5433 dbname=d user=u");

  dsn = ParsePgDsn(R"(user=u password='with space \' s3cr3t' host=h)");
  ASSERT_TRUE(dsn) << dsn.error().ToString();
  EXPECT_EQ(dsn->password, "with space ' s3cr3t");
  EXPECT_EQ(dsn->Masked(), "user=u password=*** host=h");
  EXPECT_THAT(dsn->Identity(), Not(HasSubstr("s3cr3t")));
}

TEST(ParsePgDsnTest, PasswordAppearingElsewhereIsMaskedThere) {
  auto dsn = ParsePgDsn("postgresql://s3cr3t-pw:s3cr3t-pw@h/db");
  ASSERT_TRUE(dsn) << dsn.error().ToString();
  EXPECT_THAT(dsn->Masked(), Not(HasSubstr("s3cr3t-pw")));
  EXPECT_THAT(dsn->Masked(), StartsWith("postgresql://"));
}

TEST(ParsePgDsnTest, IdentityIsTheSameForEquivalentSpellings) {
  auto uri = ParsePgDsn("postgresql://u:one@h/d?application_name=x");
  auto uri_port = ParsePgDsn("postgresql://u:two@h:5432/d");
  auto kv = ParsePgDsn("dbname=d  user=u host=h password=three connect_timeout=3");
  ASSERT_TRUE(uri && uri_port && kv);
  EXPECT_EQ(uri->Identity(), "host=h port=5432 dbname=d user=u");
  EXPECT_EQ(uri->Identity(), uri_port->Identity());
  EXPECT_EQ(uri->Identity(), kv->Identity());
  auto other_db = ParsePgDsn("postgresql://u@h/e");
  ASSERT_TRUE(other_db);
  EXPECT_NE(other_db->Identity(), uri->Identity());
  // No dbname: the server uses the user's name, and so does the identity.
  auto no_db = ParsePgDsn("host=h user=u");
  ASSERT_TRUE(no_db);
  EXPECT_EQ(no_db->Identity(), "host=h port=5432 dbname=u user=u");
}

TEST(ParsePgDsnTest, NoPasswordMeansEmpty) {
  auto dsn = ParsePgDsn("postgresql://u@h/d");
  ASSERT_TRUE(dsn);
  EXPECT_EQ(dsn->password, "");
  EXPECT_EQ(dsn->Masked(), "postgresql://u@h/d");
}

TEST(ParsePgDsnTest, MalformedDsnsAreInvalidArgumentWithoutThePassword) {
  for (const char* bad : {"postgresql://u:s3cr3t-pw@h/d?nosuchoption=1",
                          "host=h password=s3cr3t-pw nosuchkey=1", "host=h password=s3cr3t-pw user",
                          "host=h password='s3cr3t-pw", "postgresql://u:s3cr3t-pw@[::1/d"}) {
    auto dsn = ParsePgDsn(bad);
    ASSERT_FALSE(dsn) << bad;
    EXPECT_EQ(dsn.error().code, ErrorCode::kInvalidArgument) << bad;
    EXPECT_THAT(dsn.error().message, StartsWith("--to: ")) << bad;
    EXPECT_THAT(dsn.error().message, Not(HasSubstr("s3cr3t-pw"))) << bad;
  }
  auto empty = ParsePgDsn("  ");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(ParsePgDsn("just-a-word"));
}

// libpq decodes a URI parameter's keyword as well as its value: `pass%77ord` is
// `password` (issue 16).
TEST(ParsePgDsnTest, PercentEncodedPasswordKeywordIsMasked) {
  // The last one's value is percent-encoded too, so it is not spelt as the password is.
  for (const char* uri : {"postgresql://h/d?pass%77ord=s3cr3t-pw",
                          "postgresql://h/d?sslmode=disable&%70%61%73%73%77%6F%72%64=s3cr3t-pw",
                          "postgresql://h/d?pass%77ord=s3cr%33t-pw"}) {
    auto dsn = ParsePgDsn(uri);
    ASSERT_TRUE(dsn) << dsn.error().ToString();
    EXPECT_EQ(dsn->password, "s3cr3t-pw") << uri;
    EXPECT_THAT(dsn->Masked(), Not(HasSubstr("s3cr"))) << uri;
    EXPECT_THAT(dsn->Masked(), HasSubstr("=***")) << uri;
  }
  // A value libpq cannot decode is in its message whole ("invalid percent-encoded token").
  for (const char* bad :
       {"postgresql://h/d?pass%77ord=s3cr3t%zz",
        "postgresql://h/d?pass%77ord=s3cr3t%zz&sslmode=disable", "postgresql://u:s3cr3t%zz@h/d"}) {
    auto dsn = ParsePgDsn(bad);
    ASSERT_FALSE(dsn) << bad;
    EXPECT_EQ(dsn.error().code, ErrorCode::kInvalidArgument) << bad;
    EXPECT_THAT(dsn.error().message, Not(HasSubstr("s3cr3t"))) << bad;
  }
}

TEST(ParsePgDsnTest, ErrorNamesLibpqsReason) {
  auto dsn = ParsePgDsn("host=h nosuchkey=1");
  ASSERT_FALSE(dsn);
  EXPECT_THAT(dsn.error().message, HasSubstr("nosuchkey"));
}

TEST(MaskSecretTest, ReplacesEveryOccurrence) {
  EXPECT_EQ(MaskSecret("a pw b pw", "pw"), "a *** b ***");
  EXPECT_EQ(MaskSecret("nothing here", "pw"), "nothing here");
  EXPECT_EQ(MaskSecret("empty password", ""), "empty password");
  EXPECT_EQ(MaskSecret("pwpw", "pw"), "******");
}

TEST(QuoteIdentTest, AlwaysQuotesAndDoublesQuotes) {
  EXPECT_EQ(QuoteIdent("t"), "\"t\"");
  EXPECT_EQ(QuoteIdent("My Table"), "\"My Table\"");
  EXPECT_EQ(QuoteIdent("x\"; drop table y; --"), "\"x\"\"; drop table y; --\"");
  EXPECT_EQ(QuoteIdent("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(QuoteQualified("", "t"), "\"t\"");
  EXPECT_EQ(QuoteQualified("s", "t"), "\"s\".\"t\"");
}

using NamePair = std::pair<std::string, std::string>;

TEST(ParseQualifiedNameTest, AcceptsPlainAndQuotedForms) {
  struct Case {
    const char* in;
    NamePair want;
  } cases[] = {
      {"orders", {"", "orders"}},
      {"public.orders", {"public", "orders"}},
      {"Public.Orders", {"public", "orders"}},  // unquoted: folded, as PostgreSQL does
      {"\"My Schema\".\"t.x\"", {"My Schema", "t.x"}},
      {"\"Orders\"", {"", "Orders"}},
      {"s.\"a\"\"b\"", {"s", "a\"b"}},
      {"\"x\"\"; drop table y; --\"", {"", "x\"; drop table y; --"}},
      {"s_1.t$2", {"s_1", "t$2"}},
  };
  for (const Case& c : cases) {
    auto got = ParseQualifiedName(c.in);
    ASSERT_TRUE(got) << c.in << ": " << got.error().ToString();
    EXPECT_EQ(*got, c.want) << c.in;
  }
}

TEST(ParseQualifiedNameTest, RejectsBrokenNamesNamingThem) {
  for (const char* bad : {"", ".", "s.", ".t", "a.b.c", "\"unterminated", "\"\"", "s.\"\"",
                          "\"a\"b", "a\"b", "my table", "\"s\"x.t", "s..t"}) {
    auto got = ParseQualifiedName(bad);
    ASSERT_FALSE(got) << bad << " parsed as " << got->first << " / " << got->second;
    EXPECT_EQ(got.error().code, ErrorCode::kInvalidArgument) << bad;
    EXPECT_THAT(got.error().message, HasSubstr("'" + std::string(bad) + "'"));
  }
  auto nul = ParseQualifiedName(std::string_view("a\0b", 3));
  EXPECT_FALSE(nul);
}

TEST(ParseQualifiedNameTest, RoundTripsThroughQuoteQualified) {
  for (const char* name : {"\"My Schema\".\"t.x\"", "\"s\".\"a\"\"b\"", "\"only\""}) {
    auto got = ParseQualifiedName(name);
    ASSERT_TRUE(got) << name;
    EXPECT_EQ(QuoteQualified(got->first, got->second), name);
  }
}

}  // namespace
}  // namespace forklift::sinks
