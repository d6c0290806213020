// PgServer: a real, throwaway PostgreSQL server for tests (DESIGN.md: integration tests run
// against a PostgreSQL the fixture starts itself, never a mock). Start() runs initdb into a
// fresh temp dir and pg_ctl start on a free loopback port; the destructor stops the server
// and removes the dir.
//
// Root: initdb and postgres refuse to run as root, so when the test runs as root (CI does)
// every server binary runs as the `postgres` system user (or `nobody` where there is none),
// which owns the temp dir. As another user they run as that user.
//
// No server outlives its test process: besides the destructor (which also runs at exit for
// SharedPgServer), each server has a guardian, a small shell process in its own session that
// waits on a pipe from the test process; when the pipe closes, whatever the cause (a normal
// exit, a crash, SIGKILL), it stops the postmaster (SIGQUIT, immediate shutdown) and
// removes the temp dir.
//
// Template cache: initdb and CREATE DATABASE cost about a second of CPU, and every test
// process starts its own server (gtest_discover_tests runs each test in its own process).
// So the first server on a machine, once set up, is stopped cleanly and copied to
// <temp base>/forklift-pg-template-<key> (key: the server build and the server user; made
// under a temp name and renamed into place, so readers see all of it or nothing), and later
// servers copy that instead (cp -a: 46 MB, ~50 ms on an idle machine). A template that fails to
// start where a fresh cluster starts is replaced. tests/pg_fixture.py makes and uses the same
// templates. Deleting them is always safe.
//
// Server binaries: $FORKLIFT_PG_BIN, else the newest /usr/lib/postgresql/<N>/bin.
//
// Thread safety: a PgServer is not thread-safe (one thread at a time); SharedPgServer is.
#ifndef FORKLIFT_TESTS_SUPPORT_PG_SERVER_H_
#define FORKLIFT_TESTS_SUPPORT_PG_SERVER_H_

#include <sys/types.h>

#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "forklift/result.h"

namespace forklift::testing {

struct PgServerOptions {
  // The server's max_connections. Default: 40.
  int max_connections = 40;
};

class PgServer {
 public:
  // The user with a password, for tests of password authentication (scram-sha-256 over
  // TCP); every other user is trusted.
  static constexpr std::string_view kPasswordUser = "forklift_pw";
  static constexpr std::string_view kPassword = "s3cr3t-pw";

  // initdb (-U postgres, --auth=trust, -E UTF8, --locale=C, --no-sync) into a fresh temp
  // dir (or a copy of the template, above); postgresql.conf: listen on 127.0.0.1 at a free
  // port (retried when another process takes the port first), the Unix socket in the temp
  // dir, max_connections from `options`, fsync and synchronous_commit on (crash tests rely
  // on them); pg_hba.conf: scram-sha-256 for forklift_pw over TCP, trust for everything
  // else. Starts the server (pg_ctl start -w, logging to <temp dir>/postgres.log), with the
  // role forklift_pw (LOGIN SUPERUSER, password kPassword) and the database forklift_test.
  // On an idle machine about 0.3 s from a template, 2 s when making one.
  // On success, the running server. On failure, Internal with the failing step and its
  // output (or the server log's tail); nothing is left behind.
  // (No default argument: it would make `server->Start()` below ambiguous.)
  static Result<std::unique_ptr<PgServer>> Start(const PgServerOptions& options);

  // pg_ctl stop -m immediate (when running), then removes the temp dir. Does nothing in a
  // forked child of the process that started the server.
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // "postgresql://postgres@127.0.0.1:PORT/<db>" (trusted superuser).
  std::string dsn(std::string_view db = "forklift_test") const;
  // "postgresql://forklift_pw:s3cr3t-pw@127.0.0.1:PORT/forklift_test".
  std::string password_dsn() const;
  int port() const { return port_; }
  // The temp dir: data/ (the cluster), postgres.log, and the Unix socket.
  const std::string& dir() const { return dir_; }
  bool running() const { return running_; }

  // pg_ctl stop -m <mode> -w (mode: smart, fast or immediate). On failure,
  // InvalidArgument for another mode, FailedPrecondition when the server is not running,
  // Internal with pg_ctl's output when pg_ctl fails.
  Status Stop(std::string_view mode = "fast");
  // pg_ctl start -w again on the same port and data dir. On failure, FailedPrecondition
  // when it is running, Internal with the server log's tail when it does not start (the
  // port taken meanwhile, say).
  Status Start();
  // Stop(mode), then Start().
  Status Restart(std::string_view mode = "fast");

  // Runs `sql` (one or more statements, in one implicit transaction when several) as
  // postgres on a fresh connection to `db`. On success, the rows of the last statement as
  // lines of tab-separated values joined by '\n' (NULL as \N; "" when it returns no rows).
  // On failure, Internal with the server's message.
  Result<std::string> Sql(std::string_view sql, std::string_view db = "forklift_test");

 private:
  PgServer() = default;
  Status Init(const PgServerOptions& options);
  // initdb into data_dir_, then our pg_hba.conf and the include of forklift.conf.
  Status InitCluster();
  // Writes forklift.conf with a free port and starts, with another port while the last
  // one turns out taken.
  Status StartOnFreePort();
  Status StartOnce();
  // The template cache: a configured cluster with the role and the database, made by the
  // first server on a machine (per server build and user) and copied by the next ones.
  std::string TemplatePath(const std::string& base) const;  // "" for no cache
  bool TemplateUsable(const std::string& cache) const;
  void SaveTemplate(const std::string& cache);  // best effort; the server must be stopped
  void DiscardTemplate(const std::string& cache);
  Status WriteConfig(int port, int max_connections);
  Status StartGuardian();
  std::string LogTail() const;
  // Runs a server binary (or the program at an absolute path) as the server user, with
  // `args`. On failure, Internal naming the program, its exit status and its output.
  Status RunTool(std::string_view tool, std::initializer_list<std::string> args);

  std::string bin_dir_;
  std::string dir_;       // temp root; owned by the server user
  std::string data_dir_;  // dir_/data
  int port_ = 0;
  int max_connections_ = 40;
  bool running_ = false;
  bool drop_privileges_ = false;  // root: run server binaries as server_uid_/server_gid_
  uid_t server_uid_ = 0;          // who runs the server binaries (and owns the files)
  gid_t server_gid_ = 0;
  pid_t owner_pid_ = 0;   // the process that started the server (not a forked child)
  int guardian_fd_ = -1;  // write end of the guardian's pipe
  pid_t guardian_pid_ = -1;
};

// The test process's one server, started (with default options) on first use and stopped at
// exit. On failure to start it fails the calling test with the reason (ADD_FAILURE) and
// returns nullptr, and fails every later caller the same way without trying again.
// Thread-safe.
PgServer* SharedPgServer();

}  // namespace forklift::testing

#endif  // FORKLIFT_TESTS_SUPPORT_PG_SERVER_H_
