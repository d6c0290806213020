#include "sinks/pg_connection.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "support/pg_server.h"

namespace forklift::sinks {
namespace {

using ::forklift::testing::PgServer;
using ::forklift::testing::SharedPgServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

using Row = PgConnection::Row;

Row R(std::initializer_list<std::optional<std::string>> values) { return Row(values); }

class PgConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = SharedPgServer();
    ASSERT_NE(server_, nullptr);
  }

  std::unique_ptr<PgConnection> Connect(const std::string& dsn_text) {
    auto dsn = ParsePgDsn(dsn_text);
    EXPECT_TRUE(dsn) << dsn.error().ToString();
    if (!dsn) return nullptr;
    auto conn = PgConnection::Connect(*dsn);
    EXPECT_TRUE(conn) << conn.error().ToString();
    return conn ? std::move(*conn) : nullptr;
  }
  std::unique_ptr<PgConnection> Connect() { return Connect(server_->dsn()); }

  // Runs `sql` on the server's own connection; the test fails on an error.
  std::string Sql(const std::string& sql) {
    auto out = server_->Sql(sql);
    EXPECT_TRUE(out) << out.error().ToString();
    return out ? *out : "";
  }

  PgServer* server_ = nullptr;
};

TEST_F(PgConnectionTest, ExecAndQueryWithParamsAndNulls) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  EXPECT_TRUE(conn->ok());
  EXPECT_GE(conn->server_version(), 100000);
  ASSERT_TRUE(conn->Exec("drop table if exists q_t; create table q_t (id int, name text)"));
  std::vector<std::optional<std::string>> params = {"1", "one"};
  ASSERT_TRUE(conn->Query("insert into q_t values ($1, $2)", params));
  params = {"2", std::nullopt};
  ASSERT_TRUE(conn->Query("insert into q_t values ($1, $2)", params));
  params = {"0"};
  auto rows = conn->Query("select id, name from q_t where id > $1 order by id", params);
  ASSERT_TRUE(rows) << rows.error().ToString();
  EXPECT_THAT(*rows, ElementsAre(R({"1", "one"}), R({"2", std::nullopt})));
  auto none = conn->Query("select 1 where false");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(Sql("select count(*) from q_t where name is null"), "1");
}

TEST_F(PgConnectionTest, SessionIsUtf8AndNamedForklift) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  auto rows = conn->Query(
      "select current_setting('client_encoding'), "
      "current_setting('application_name'), $1::text",
      std::vector<std::optional<std::string>>{"Zürich ✓"});
  ASSERT_TRUE(rows) << rows.error().ToString();
  EXPECT_THAT(*rows, ElementsAre(R({"UTF8", "forklift", "Zürich ✓"})));
}

// A session stuck on a dead server or network (a lost COMMIT reply) must fail in about a
// minute, not after the kernel's two hours: TCP keepalives unless the DSN says otherwise.
TEST_F(PgConnectionTest, SessionsHaveTcpKeepalivesUnlessTheDsnSetsThem) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  EXPECT_EQ(conn->option("keepalives"), "1");
  EXPECT_EQ(conn->option("keepalives_idle"), "30");
  EXPECT_EQ(conn->option("keepalives_interval"), "10");
  EXPECT_EQ(conn->option("keepalives_count"), "3");
  EXPECT_EQ(conn->option("no_such_option"), std::nullopt);

  auto own = Connect(server_->dsn() + "?keepalives_idle=7&keepalives_count=5");
  ASSERT_NE(own, nullptr);
  EXPECT_EQ(own->option("keepalives_idle"), "7");
  EXPECT_EQ(own->option("keepalives_count"), "5");
  EXPECT_EQ(own->option("keepalives_interval"), "10");
  auto off = Connect(server_->dsn() + "?keepalives=0");
  ASSERT_NE(off, nullptr);
  EXPECT_EQ(off->option("keepalives"), "0");
}

TEST_F(PgConnectionTest, NulBytesAreRefusedNotTruncated) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  auto exec = conn->Exec(std::string_view("select 1\0; drop table x", 24));
  ASSERT_FALSE(exec);
  EXPECT_EQ(exec.error().code, ErrorCode::kInvalidArgument);
  std::vector<std::optional<std::string>> params = {std::string("a\0b", 3)};
  auto query = conn->Query("select $1::text", params);
  ASSERT_FALSE(query);
  EXPECT_EQ(query.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(conn->Exec("select 1"));
}

TEST_F(PgConnectionTest, CopyInCsvReturnsRowCount) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  ASSERT_TRUE(conn->Exec("drop table if exists copy_ok; create table copy_ok (id int, v text)"));
  auto rows = conn->CopyIn("copy copy_ok from stdin (format csv)", "1,a\n2,\"b,with comma\"\n3,\n");
  ASSERT_TRUE(rows) << rows.error().ToString();
  EXPECT_EQ(*rows, 3);
  EXPECT_EQ(Sql("select id, coalesce(v, 'NULL') from copy_ok order by id"),
            "1\ta\n2\tb,with comma\n3\tNULL");
}

TEST_F(PgConnectionTest, CopyInSendsLargeDataInPieces) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  ASSERT_TRUE(conn->Exec("drop table if exists copy_big; create table copy_big (id int, v text)"));
  std::string data;
  const int n = 60000;  // ~3 MB: several 1 MiB pieces, rows split across them
  for (int i = 0; i < n; ++i) data += std::to_string(i) + ",row-" + std::string(40, 'x') + "\n";
  ASSERT_GT(data.size(), size_t{2} << 20);
  auto rows = conn->CopyIn("copy copy_big from stdin (format csv)", data);
  ASSERT_TRUE(rows) << rows.error().ToString();
  EXPECT_EQ(*rows, n);
  EXPECT_EQ(Sql("select count(*), sum(id) from copy_big"),
            std::to_string(n) + "\t" + std::to_string(int64_t{n} * (n - 1) / 2));
}

TEST_F(PgConnectionTest, CopyBadValueReportsItsLine) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  ASSERT_TRUE(conn->Exec("drop table if exists copy_bad; create table copy_bad (id int, v text)"));
  auto rows = conn->CopyIn("copy copy_bad from stdin (format csv)", "1,a\n2,b\nthree,c\n4,d\n");
  ASSERT_FALSE(rows);
  EXPECT_EQ(rows.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(conn->last_error().sqlstate, "22P02");
  EXPECT_THAT(conn->last_error().copy_line, Optional(3));
  EXPECT_THAT(rows.error().message, HasSubstr("SQLSTATE 22P02"));
  EXPECT_THAT(rows.error().message, HasSubstr("line 3"));
  // The failed COPY loaded nothing and left the connection ready.
  EXPECT_TRUE(conn->ok());
  auto count = conn->Query("select count(*) from copy_bad");
  ASSERT_TRUE(count) << count.error().ToString();
  EXPECT_THAT(*count, ElementsAre(R({"0"})));
}

TEST_F(PgConnectionTest, CopyLineIsNotFooledByCommasInNamesOrData) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  ASSERT_TRUE(
      conn->Exec("drop table if exists \"t, line 5\"; "
                 "create table \"t, line 5\" (id int, n int)"));
  auto rows = conn->CopyIn("copy \"t, line 5\" from stdin (format csv)",
                           "1,1\n2,\"9, line 9, column n: x\"\n");
  ASSERT_FALSE(rows);
  EXPECT_EQ(conn->last_error().sqlstate, "22P02");
  EXPECT_THAT(conn->last_error().copy_line, Optional(2)) << conn->last_error().context;
}

TEST_F(PgConnectionTest, CopyUniqueViolationReportsItsLine) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  ASSERT_TRUE(
      conn->Exec("drop table if exists copy_dup; create table copy_dup (id int primary key)"));
  auto rows = conn->CopyIn("copy copy_dup from stdin", "1\n2\n3\n2\n5\n");
  ASSERT_FALSE(rows);
  EXPECT_EQ(rows.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(conn->last_error().sqlstate, "23505");
  EXPECT_THAT(conn->last_error().copy_line, Optional(4));
  EXPECT_THAT(conn->last_error().detail, HasSubstr("(id)=(2)"));
  EXPECT_THAT(rows.error().message, HasSubstr("DETAIL: Key (id)=(2) already exists."));
}

TEST_F(PgConnectionTest, StreamingCopyAcrossPiecesAndAbort) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  ASSERT_TRUE(
      conn->Exec("drop table if exists copy_stream; create table copy_stream (id int, v text)"));
  ASSERT_TRUE(conn->BeginCopy("copy copy_stream from stdin"));
  EXPECT_FALSE(conn->Exec("select 1"));  // one thing at a time
  for (std::string_view piece : {"1\ta\n2\t", "b\n", "3\t\\N\n"}) {
    ASSERT_TRUE(conn->PutCopyData(piece));
  }
  auto rows = conn->EndCopy();
  ASSERT_TRUE(rows) << rows.error().ToString();
  EXPECT_EQ(*rows, 3);

  ASSERT_TRUE(conn->BeginCopy("copy copy_stream from stdin"));
  ASSERT_TRUE(conn->PutCopyData("4\td\n"));
  ASSERT_TRUE(conn->AbortCopy("source file vanished"));
  EXPECT_TRUE(conn->ok());
  EXPECT_EQ(Sql("select count(*) from copy_stream"), "3");

  auto outside = conn->PutCopyData("5\te\n");
  ASSERT_FALSE(outside);
  EXPECT_EQ(outside.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_FALSE(conn->EndCopy());
}

TEST_F(PgConnectionTest, CopyStatementsOutsideCopyInAreRefused) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  ASSERT_TRUE(conn->Exec("drop table if exists copy_misuse; create table copy_misuse (id int)"));
  auto exec = conn->Exec("copy copy_misuse from stdin");
  ASSERT_FALSE(exec);
  EXPECT_EQ(exec.error().code, ErrorCode::kFailedPrecondition);
  auto begin = conn->BeginCopy("select 1");
  ASSERT_FALSE(begin);
  EXPECT_EQ(begin.error().code, ErrorCode::kFailedPrecondition);
  // Neither left the connection stuck inside a COPY.
  auto rows = conn->Query("select count(*) from copy_misuse");
  ASSERT_TRUE(rows) << rows.error().ToString();
  EXPECT_THAT(*rows, ElementsAre(R({"0"})));
}

TEST_F(PgConnectionTest, UndefinedTableIsFailedPrecondition) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  auto exec = conn->Exec("insert into no_such_table values (1)");
  ASSERT_FALSE(exec);
  EXPECT_EQ(exec.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(conn->last_error().sqlstate, "42P01");
  EXPECT_FALSE(conn->last_error().connection_lost);
  EXPECT_THAT(exec.error().message, HasSubstr("no_such_table"));
  auto copy = conn->CopyIn("copy no_such_table from stdin", "1\n");
  ASSERT_FALSE(copy);
  EXPECT_EQ(copy.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(conn->Exec("select 1"));  // a failed statement does not spoil the connection
}

TEST_F(PgConnectionTest, TerminatedBackendIsUnavailableAndLost) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  auto pid = conn->Query("select pg_backend_pid()");
  ASSERT_TRUE(pid) << pid.error().ToString();
  // The timeout makes pg_terminate_backend wait until the backend is gone.
  EXPECT_EQ(Sql("select pg_terminate_backend(" + *(*pid)[0][0] + ", 5000)"), "t");
  auto exec = conn->Exec("select 1");
  ASSERT_FALSE(exec);
  EXPECT_EQ(exec.error().code, ErrorCode::kUnavailable) << exec.error().message;
  EXPECT_TRUE(conn->last_error().connection_lost);
  EXPECT_FALSE(conn->ok());
}

TEST_F(PgConnectionTest, ServerRestartLosesOldConnectionOnly) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  ASSERT_TRUE(conn->Exec("select 1"));
  ASSERT_TRUE(server_->Restart());
  auto exec = conn->Exec("select 1");
  ASSERT_FALSE(exec);
  EXPECT_EQ(exec.error().code, ErrorCode::kUnavailable) << exec.error().message;
  EXPECT_FALSE(conn->ok());
  auto fresh = Connect();
  ASSERT_NE(fresh, nullptr);
  EXPECT_TRUE(fresh->Exec("select 1"));
}

TEST_F(PgConnectionTest, ServerDownIsUnavailable) {
  // Nothing listens on port 1 here: the connection is refused at once.
  auto dsn = ParsePgDsn("postgresql://postgres@127.0.0.1:1/x");
  ASSERT_TRUE(dsn);
  auto conn = PgConnection::Connect(*dsn);
  ASSERT_FALSE(conn);
  EXPECT_EQ(conn.error().code, ErrorCode::kUnavailable) << conn.error().message;
  EXPECT_THAT(conn.error().message, HasSubstr("cannot connect to postgresql://postgres@127.0.0.1"));
}

TEST_F(PgConnectionTest, MissingDatabaseIsInvalidArgument) {
  auto dsn = ParsePgDsn(server_->dsn("no_such_db"));
  ASSERT_TRUE(dsn);
  auto conn = PgConnection::Connect(*dsn);
  ASSERT_FALSE(conn);
  EXPECT_EQ(conn.error().code, ErrorCode::kInvalidArgument) << conn.error().message;
  EXPECT_THAT(conn.error().message, HasSubstr("no_such_db"));
}

TEST_F(PgConnectionTest, PasswordDsnConnects) {
  auto conn = Connect(server_->password_dsn());
  ASSERT_NE(conn, nullptr);
  auto rows = conn->Query("select current_user");
  ASSERT_TRUE(rows) << rows.error().ToString();
  EXPECT_THAT(*rows, ElementsAre(R({std::string(PgServer::kPasswordUser)})));
  // A server message that echoes the password is masked before anyone sees it.
  auto exec = conn->Exec("select '" + std::string(PgServer::kPassword) + "'::int");
  ASSERT_FALSE(exec);
  EXPECT_EQ(conn->last_error().sqlstate, "22P02");
  EXPECT_THAT(exec.error().message, Not(HasSubstr(PgServer::kPassword)));
  EXPECT_THAT(exec.error().message, HasSubstr("***"));
}

TEST_F(PgConnectionTest, WrongPasswordFailsWithoutEchoingIt) {
  // The wrong password contains the right one, so a leak of either would show.
  std::string dsn_text =
      "postgresql://forklift_pw:s3cr3t-pw-but-wrong@127.0.0.1:" + std::to_string(server_->port()) +
      "/forklift_test";
  auto dsn = ParsePgDsn(dsn_text);
  ASSERT_TRUE(dsn);
  auto conn = PgConnection::Connect(*dsn);
  ASSERT_FALSE(conn);
  EXPECT_EQ(conn.error().code, ErrorCode::kInvalidArgument) << conn.error().message;
  EXPECT_THAT(conn.error().message, HasSubstr("password authentication failed"));
  EXPECT_THAT(conn.error().message, HasSubstr("forklift_pw:***@"));
  EXPECT_THAT(conn.error().message, Not(HasSubstr("s3cr3t-pw")));
}

TEST_F(PgConnectionTest, QuotedIdentifiersSurviveHostileNames) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  const std::string table = "x\"; drop table y; --";
  const std::string column = "a\"b";
  ASSERT_TRUE(conn->Exec("drop table if exists y; create table y (id int)"));
  ASSERT_TRUE(conn->Exec("drop table if exists " + QuoteIdent(table)));
  ASSERT_TRUE(
      conn->Exec("create table " + QuoteIdent(table) + " (" + QuoteIdent(column) + " text)"));
  ASSERT_TRUE(conn->Query("insert into " + QuoteQualified("public", table) + " (" +
                              QuoteIdent(column) + ") values ($1)",
                          std::vector<std::optional<std::string>>{"v"}));
  auto rows = conn->Query("select " + QuoteIdent(column) + " from " + QuoteIdent(table));
  ASSERT_TRUE(rows) << rows.error().ToString();
  EXPECT_THAT(*rows, ElementsAre(R({"v"})));
  EXPECT_EQ(Sql("select count(*) from pg_tables where tablename = 'y'"), "1");  // not dropped
  EXPECT_EQ(Sql("select attname from pg_attribute where attrelid = 'public.\"x\"\"; drop table "
                "y; --\"'::regclass and attnum > 0"),
            column);
}

TEST_F(PgConnectionTest, CancelFromAnotherThreadInterruptsTheStatement) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  auto pid = conn->Query("select pg_backend_pid()");
  ASSERT_TRUE(pid);
  const std::string backend = *(*pid)[0][0];
  std::promise<Status> done;
  std::future<Status> result = done.get_future();
  std::thread runner([&] { done.set_value(conn->Exec("select pg_sleep(30)")); });
  // Wait until the server is running the statement, so the cancel has something to hit.
  bool active = false;
  for (int i = 0; i < 500 && !active; ++i) {
    active =
        server_->Sql("select state from pg_stat_activity where pid = " + backend).value_or("") ==
        "active";
    if (!active) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(active);
  auto cancelled_at = std::chrono::steady_clock::now();
  conn->Cancel();
  bool returned = result.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  auto took = std::chrono::steady_clock::now() - cancelled_at;
  if (!returned) (void)server_->Sql("select pg_cancel_backend(" + backend + ")");
  runner.join();
  ASSERT_TRUE(returned) << "Cancel() did not interrupt pg_sleep";
  EXPECT_LT(took, std::chrono::seconds(1));
  Status status = result.get();
  ASSERT_FALSE(status);
  EXPECT_EQ(conn->last_error().sqlstate, "57014");
  EXPECT_TRUE(conn->Exec("select 1"));  // cancelled, not broken
}

TEST(PgConnectionLimitsTest, TooManyConnectionsIsUnavailable) {
  auto server = PgServer::Start({.max_connections = 5});
  ASSERT_TRUE(server) << server.error().ToString();
  auto dsn = ParsePgDsn((*server)->dsn());
  ASSERT_TRUE(dsn);
  std::vector<std::unique_ptr<PgConnection>> held;
  Result<std::unique_ptr<PgConnection>> conn;
  for (int i = 0; i < 10; ++i) {  // 5 slots (the superuser may use the reserved ones)
    conn = PgConnection::Connect(*dsn);
    if (!conn) break;
    held.push_back(std::move(*conn));
  }
  ASSERT_FALSE(conn);
  EXPECT_EQ(held.size(), 5u);
  EXPECT_EQ(conn.error().code, ErrorCode::kUnavailable) << conn.error().message;
  EXPECT_THAT(conn.error().message, HasSubstr("too many clients"));
}

// The fixture itself: what other tests rely on.
TEST_F(PgConnectionTest, FixtureSqlReturnsTheLastStatementsRows) {
  EXPECT_EQ(Sql("drop table if exists fx; create table fx (a int, b text); "
                "insert into fx values (1, 'x'), (2, null); select a, b from fx order by a"),
            "1\tx\n2\t\\N");
  EXPECT_EQ(Sql("insert into fx values (3, 'y')"), "");
  auto bad = server_->Sql("select * from no_such_fx");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("relation \"no_such_fx\" does not exist"));
  EXPECT_EQ(Sql("select current_setting('fsync'), current_setting('max_connections')"), "on\t40");
  auto other_db = server_->Sql("select current_database()", "postgres");
  ASSERT_TRUE(other_db);
  EXPECT_EQ(*other_db, "postgres");
}

TEST(PgServerTest, StartFailsCleanlyWithoutServerBinaries) {
  const char* old = std::getenv("FORKLIFT_PG_BIN");
  std::string saved = old ? old : "";
  setenv("FORKLIFT_PG_BIN", "/nonexistent/forklift-pg-bin", 1);
  auto server = PgServer::Start({});
  if (old) {
    setenv("FORKLIFT_PG_BIN", saved.c_str(), 1);
  } else {
    unsetenv("FORKLIFT_PG_BIN");
  }
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code, ErrorCode::kInternal);
  EXPECT_THAT(server.error().message, HasSubstr("initdb failed"));
  EXPECT_THAT(server.error().message, HasSubstr("/nonexistent/forklift-pg-bin/initdb"));
}

TEST(ClassifyPgErrorTest, MapsSqlstatesToCodes) {
  auto classify = [](std::string sqlstate, bool lost = false) {
    PgError e;
    e.sqlstate = std::move(sqlstate);
    e.connection_lost = lost;
    return ClassifyPgError(e);
  };
  for (const char* s : {"08006", "08001", "57P01", "57P02", "57P03", "53300", "40001", "40P01"}) {
    EXPECT_EQ(classify(s), ErrorCode::kUnavailable) << s;
  }
  EXPECT_EQ(classify("", /*lost=*/true), ErrorCode::kUnavailable);
  EXPECT_EQ(classify("42P01", /*lost=*/true), ErrorCode::kUnavailable);
  for (const char* s : {"22P02", "22001", "23505", "23502", "23503"}) {
    EXPECT_EQ(classify(s), ErrorCode::kInvalidArgument) << s;
  }
  for (const char* s : {"42P01", "42703", "42501", "42601"}) {
    EXPECT_EQ(classify(s), ErrorCode::kFailedPrecondition) << s;
  }
  for (const char* s : {"", "57014", "XX000", "53100", "25P02"}) {
    EXPECT_EQ(classify(s), ErrorCode::kInternal) << s;
  }
}

TEST(PgErrorTest, ToStringCarriesStateDetailHintAndContext) {
  PgError e;
  e.sqlstate = "23505";
  e.message = "duplicate key value violates unique constraint \"t_pkey\"";
  e.detail = "Key (id)=(1) already exists.";
  e.context = "COPY t, line 2\nsecond line";
  EXPECT_EQ(e.ToString(),
            "SQLSTATE 23505: duplicate key value violates unique constraint \"t_pkey\" "
            "(DETAIL: Key (id)=(1) already exists.; CONTEXT: COPY t, line 2)");
  PgError lost;
  lost.message = "server closed the connection unexpectedly";
  EXPECT_EQ(lost.ToString(), "server closed the connection unexpectedly");
}

}  // namespace
}  // namespace forklift::sinks
