#include "support/pg_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include "core/fnv1a.h"

namespace forklift::testing {
namespace {

namespace fs = std::filesystem;

// tests/support/pg_guardian.sh (shared with tests/pg_fixture.py): waits for EOF on stdin
// (this process closed its end or died), then stops the server and removes the temp dir.
constexpr char kGuardianScript[] = FORKLIFT_PG_GUARDIAN;

// Bumped when what a template holds changes (the files below, the role, the database).
constexpr std::string_view kTemplateVersion = "forklift-pg-template-v1";

constexpr char kHbaConf[] =
    "# forklift test server\n"
    "host  all  forklift_pw  127.0.0.1/32  scram-sha-256\n"
    "local all  all                        trust\n"
    "host  all  all          127.0.0.1/32  trust\n";

// Newest /usr/lib/postgresql/<N>/bin with an initdb, unless $FORKLIFT_PG_BIN says.
Result<std::string> FindBinDir() {
  if (const char* env = std::getenv("FORKLIFT_PG_BIN"); env && *env) return std::string(env);
  std::error_code ec;
  int best = -1;
  std::string best_dir;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    std::string name = entry.path().filename().string();
    int version = 0;
    auto [end, err] = std::from_chars(name.data(), name.data() + name.size(), version);
    if (err != std::errc() || end != name.data() + name.size()) continue;
    fs::path bin = entry.path() / "bin";
    if (version > best && fs::exists(bin / "initdb", ec)) {
      best = version;
      best_dir = bin.string();
    }
  }
  if (best < 0) {
    return InternalError(
        "no PostgreSQL server binaries under /usr/lib/postgresql/<N>/bin: install the "
        "postgresql package (scripts/install-deps.sh test) or set FORKLIFT_PG_BIN");
  }
  return best_dir;
}

// Where to make the temp dir: $TMPDIR when the server user can reach it and the socket path
// fits in sun_path (108 bytes), else /tmp.
std::string TempBase(bool other_user) {
  const char* env = std::getenv("TMPDIR");
  if (!env || !*env || std::strlen(env) > 60) return "/tmp";
  fs::path base = fs::absolute(env);
  if (other_user) {
    for (fs::path p = base; !p.empty() && p != p.root_path(); p = p.parent_path()) {
      struct stat st;
      if (stat(p.c_str(), &st) != 0 || !(st.st_mode & S_IXOTH)) return "/tmp";
    }
  }
  return base.string();
}

// A loopback port nobody listens on right now (someone may take it before the server does;
// the caller retries).
Result<int> FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return InternalError(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::string why = std::strerror(errno);
    close(fd);
    return InternalError("binding a free loopback port: " + why);
  }
  close(fd);
  return ntohs(addr.sin_port);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

Status WriteFile(const std::string& path, std::string_view text, bool append) {
  std::ofstream out(path, append ? std::ios::app : std::ios::trunc);
  out << text;
  out.close();
  if (!out) return InternalError("cannot write " + path);
  return OkStatus();
}

// Closes every descriptor above stderr in a child about to exec, so the postmaster (which
// outlives pg_ctl) never holds a pipe that someone waits on for EOF. Async-signal-safe.
void CloseInheritedFds() {
  if (close_range(3, ~0U, 0) == 0) return;
  for (int fd = 3; fd < 4096; ++fd) close(fd);
}

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};

void IgnoreNotice(void*, const char*) {}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Result<std::unique_ptr<PgServer>> PgServer::Start(const PgServerOptions& options) {
  std::unique_ptr<PgServer> server(new PgServer());
  // On failure the destructor stops whatever started and removes the temp dir.
  FORKLIFT_RETURN_IF_ERROR(server->Init(options));
  return server;
}

Status PgServer::Init(const PgServerOptions& options) {
  owner_pid_ = getpid();
  max_connections_ = options.max_connections;
  FORKLIFT_ASSIGN_OR_RETURN(bin_dir_, FindBinDir());

  if (geteuid() == 0) {
    // initdb and postgres refuse root; run them as the Debian package's system user.
    passwd entry;
    passwd* pw = nullptr;
    std::vector<char> buffer(16384);
    for (const char* name : {"postgres", "nobody"}) {
      if (getpwnam_r(name, &entry, buffer.data(), buffer.size(), &pw) == 0 && pw) break;
    }
    if (!pw) return InternalError("running as root and there is no postgres or nobody user");
    drop_privileges_ = true;
    server_uid_ = pw->pw_uid;
    server_gid_ = pw->pw_gid;
  } else {
    server_uid_ = geteuid();
    server_gid_ = getegid();
  }

  std::string base = TempBase(drop_privileges_);
  std::string tmpl = base + "/forklift-pg-XXXXXX";
  if (!mkdtemp(tmpl.data())) {
    return InternalError("mkdtemp " + tmpl + ": " + std::strerror(errno));
  }
  dir_ = tmpl;
  data_dir_ = dir_ + "/data";
  if (drop_privileges_ && chown(dir_.c_str(), server_uid_, server_gid_) != 0) {
    return InternalError("chown " + dir_ + ": " + std::strerror(errno));
  }
  FORKLIFT_RETURN_IF_ERROR(StartGuardian());

  const std::string cache = TemplatePath(base);
  bool from_template = false;
  if (!cache.empty() && TemplateUsable(cache)) {
    from_template = RunTool("/bin/cp", {"-a", cache + "/data", data_dir_}).has_value();
    std::error_code ec;
    if (!from_template) fs::remove_all(data_dir_, ec);  // a partial copy
  }
  if (!from_template) FORKLIFT_RETURN_IF_ERROR(InitCluster());
  Status started = StartOnFreePort();
  bool template_suspect = false;
  if (!started && from_template) {
    // Try a fresh cluster; if that starts, the template was the problem and is replaced.
    std::error_code ec;
    fs::remove_all(data_dir_, ec);
    from_template = false;
    FORKLIFT_RETURN_IF_ERROR(InitCluster());
    started = StartOnFreePort();
    template_suspect = started.has_value();
  }
  FORKLIFT_RETURN_IF_ERROR(started);
  if (from_template) return OkStatus();

  FORKLIFT_RETURN_IF_ERROR(Sql("CREATE ROLE " + std::string(kPasswordUser) +
                                   " LOGIN SUPERUSER PASSWORD '" + std::string(kPassword) + "'",
                               "postgres"));
  FORKLIFT_RETURN_IF_ERROR(Sql("CREATE DATABASE forklift_test", "postgres"));
  if (!cache.empty()) {
    if (template_suspect) DiscardTemplate(cache);
    // Saved from a cleanly stopped cluster; only the first server on a machine pays this.
    FORKLIFT_RETURN_IF_ERROR(Stop("fast"));
    SaveTemplate(cache);
    FORKLIFT_RETURN_IF_ERROR(Start());
  }
  return OkStatus();
}

Status PgServer::InitCluster() {
  FORKLIFT_RETURN_IF_ERROR(RunTool("initdb", {"-D", data_dir_, "-U", "postgres", "--auth=trust",
                                              "-E", "UTF8", "--locale=C", "--no-sync"}));
  FORKLIFT_RETURN_IF_ERROR(WriteFile(data_dir_ + "/pg_hba.conf", kHbaConf, /*append=*/false));
  return WriteFile(data_dir_ + "/postgresql.conf", "\ninclude 'forklift.conf'\n",
                   /*append=*/true);
}

Status PgServer::StartOnFreePort() {
  // The port is free when we look and may be taken by the time the server binds it.
  Status started = InternalError("no start attempted");
  for (int attempt = 0; attempt < 5; ++attempt) {
    FORKLIFT_ASSIGN_OR_RETURN(int port, FreePort());
    FORKLIFT_RETURN_IF_ERROR(WriteConfig(port, max_connections_));
    port_ = port;
    started = StartOnce();
    if (started) break;
    std::string log = LogTail();
    if (log.find("could not bind") == std::string::npos &&
        log.find("Address already in use") == std::string::npos) {
      break;
    }
  }
  return started;
}

std::string PgServer::TemplatePath(const std::string& base) const {
  struct stat st;
  if (stat((bin_dir_ + "/postgres").c_str(), &st) != 0) return "";
  // A new server build, another server user or a new cluster layout gets its own template.
  core::Fnv1a key;
  key.Add(kTemplateVersion)
      .Add(bin_dir_)
      .Add(std::to_string(st.st_size))
      .Add(std::to_string(st.st_mtim.tv_sec))
      .Add(std::to_string(server_uid_));
  return base + "/forklift-pg-template-" + key.Hex();
}

bool PgServer::TemplateUsable(const std::string& cache) const {
  struct stat st;
  // Only a template the server user made and nobody else can write to: /tmp is shared.
  if (lstat(cache.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != server_uid_ ||
      (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return false;
  }
  std::error_code ec;
  return fs::exists(cache + "/complete", ec) && fs::exists(cache + "/data/PG_VERSION", ec);
}

void PgServer::SaveTemplate(const std::string& cache) {
  // Built beside the final name and renamed into place, so that a reader sees a whole
  // template or none; when several processes race, the first rename wins.
  std::string build = cache + ".build-XXXXXX";
  if (!mkdtemp(build.data())) return;
  std::error_code ec;
  if ((drop_privileges_ && chown(build.c_str(), server_uid_, server_gid_) != 0) ||
      !RunTool("/bin/cp", {"-a", data_dir_, build + "/data"}) ||
      !WriteFile(build + "/complete", "", /*append=*/false) ||
      rename(build.c_str(), cache.c_str()) != 0) {
    fs::remove_all(build, ec);
  }
}

void PgServer::DiscardTemplate(const std::string& cache) {
  std::string away = cache + ".discarded-" + std::to_string(getpid());
  std::error_code ec;
  if (rename(cache.c_str(), away.c_str()) == 0) fs::remove_all(away, ec);
}

PgServer::~PgServer() {
  // A forked child (a death test, a child that calls exit()) must not stop its parent's
  // server from its copy of this object.
  if (owner_pid_ == 0 || getpid() != owner_pid_) return;
  bool stopped = !running_;
  if (running_) {
    stopped =
        RunTool("pg_ctl", {"stop", "-D", data_dir_, "-m", "immediate", "-w", "-t", "30", "-s"})
            .has_value();
  }
  std::error_code ec;
  bool removed = dir_.empty() || (fs::remove_all(dir_, ec), !ec);
  if (guardian_pid_ > 0 && stopped && removed) {
    // Its work is done. Killing it beats closing the pipe and waiting: a forked child of
    // ours that is still alive holds the pipe open too.
    kill(guardian_pid_, SIGKILL);
    while (waitpid(guardian_pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  // Otherwise closing the pipe hands the cleanup to the guardian, which outlives us.
  if (guardian_fd_ >= 0) close(guardian_fd_);
}

Status PgServer::StartGuardian() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return InternalError(std::string("pipe2: ") + std::strerror(errno));
  }
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  pid_t pid = fork();
  if (pid == 0) {
    setsid();  // out of the test's process group: a ^C or a group kill does not reach it
    dup2(fds[0], 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    CloseInheritedFds();
    execl("/bin/sh", "forklift-pg-guardian", kGuardianScript, dir_.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  int fork_errno = errno;
  close(fds[0]);
  if (devnull >= 0) close(devnull);
  if (pid < 0) {
    close(fds[1]);
    return InternalError(std::string("fork: ") + std::strerror(fork_errno));
  }
  guardian_fd_ = fds[1];
  guardian_pid_ = pid;
  return OkStatus();
}

Status PgServer::RunTool(std::string_view tool, std::initializer_list<std::string> args) {
  std::string program =
      tool.starts_with('/') ? std::string(tool) : bin_dir_ + "/" + std::string(tool);
  std::string name = program.substr(program.rfind('/') + 1);
  std::vector<std::string> argv_strings = {program};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::string out_path = dir_ + "/" + name + ".out";
  int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out < 0 || devnull < 0) {
    std::string why = std::strerror(errno);
    if (out >= 0) close(out);
    if (devnull >= 0) close(devnull);
    return InternalError("cannot open " + out_path + ": " + why);
  }
  // Only async-signal-safe calls between fork and exec: the test process may have threads.
  pid_t pid = fork();
  if (pid == 0) {
    if (drop_privileges_ &&
        (setgroups(0, nullptr) != 0 || setgid(server_gid_) != 0 || setuid(server_uid_) != 0)) {
      _exit(126);
    }
    if (chdir(dir_.c_str()) != 0) _exit(126);  // the server user cannot read root's cwd
    dup2(devnull, 0);
    dup2(out, 1);
    dup2(out, 2);
    CloseInheritedFds();
    execv(argv[0], argv.data());
    constexpr char kExecFailed[] = "cannot execute ";
    (void)!write(2, kExecFailed, sizeof kExecFailed - 1);
    (void)!write(2, argv[0], strlen(argv[0]));
    _exit(127);
  }
  int fork_errno = errno;
  close(out);
  close(devnull);
  if (pid < 0) return InternalError(std::string("fork: ") + std::strerror(fork_errno));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return InternalError(std::string("waitpid: ") + std::strerror(errno));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return OkStatus();
  std::string how = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                      : "signal " + std::to_string(WTERMSIG(status));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 126) how += " (could not switch user or dir)";
  return InternalError(name + " failed (" + how + "): " + Trim(ReadFile(out_path)));
}

Status PgServer::WriteConfig(int port, int max_connections) {
  std::string conf = "listen_addresses = '127.0.0.1'\n";
  conf += "port = " + std::to_string(port) + "\n";
  conf += "unix_socket_directories = '" + dir_ + "'\n";
  conf += "max_connections = " + std::to_string(max_connections) + "\n";
  // Stated, not defaulted: crash tests need commits to survive.
  conf += "fsync = on\nsynchronous_commit = on\n";
  return WriteFile(data_dir_ + "/forklift.conf", conf, /*append=*/false);
}

Status PgServer::StartOnce() {
  Status st = RunTool(
      "pg_ctl", {"start", "-D", data_dir_, "-l", dir_ + "/postgres.log", "-w", "-t", "30", "-s"});
  if (!st) {
    return InternalError(st.error().message + "\nserver log (" + dir_ + "/postgres.log):\n" +
                         LogTail());
  }
  running_ = true;
  return OkStatus();
}

std::string PgServer::LogTail() const {
  std::string log = ReadFile(dir_ + "/postgres.log");
  return log.size() > 2000 ? log.substr(log.size() - 2000) : log;
}

std::string PgServer::dsn(std::string_view db) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + std::string(db);
}

std::string PgServer::password_dsn() const {
  return "postgresql://" + std::string(kPasswordUser) + ":" + std::string(kPassword) +
         "@127.0.0.1:" + std::to_string(port_) + "/forklift_test";
}

Status PgServer::Stop(std::string_view mode) {
  if (mode != "smart" && mode != "fast" && mode != "immediate") {
    return InvalidArgumentError("PgServer::Stop: unknown mode '" + std::string(mode) + "'");
  }
  if (!running_) return FailedPreconditionError("PgServer::Stop: the server is not running");
  Status st =
      RunTool("pg_ctl", {"stop", "-D", data_dir_, "-m", std::string(mode), "-w", "-t", "30", "-s"});
  if (st) running_ = false;
  return st;
}

Status PgServer::Start() {
  if (running_) return FailedPreconditionError("PgServer::Start: the server is running");
  return StartOnce();
}

Status PgServer::Restart(std::string_view mode) {
  FORKLIFT_RETURN_IF_ERROR(Stop(mode));
  return Start();
}

Result<std::string> PgServer::Sql(std::string_view sql, std::string_view db) {
  std::string conninfo = dsn(db);
  const char* keywords[] = {"dbname", "connect_timeout", nullptr};
  const char* values[] = {conninfo.c_str(), "10", nullptr};
  std::unique_ptr<PGconn, ConnDeleter> conn(PQconnectdbParams(keywords, values, 1));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
    return InternalError("Sql: cannot connect to " + conninfo + ": " +
                         Trim(conn ? PQerrorMessage(conn.get()) : "out of memory"));
  }
  PQsetNoticeProcessor(conn.get(), IgnoreNotice, nullptr);
  std::string query(sql);
  if (!PQsendQuery(conn.get(), query.c_str())) {
    return InternalError("Sql: " + Trim(PQerrorMessage(conn.get())));
  }
  std::string rows;
  std::string error;
  while (PGresult* raw = PQgetResult(conn.get())) {
    std::unique_ptr<PGresult, ResultDeleter> res(raw);
    switch (PQresultStatus(raw)) {
      case PGRES_TUPLES_OK: {
        rows.clear();
        for (int r = 0; r < PQntuples(raw); ++r) {
          if (r > 0) rows += '\n';
          for (int c = 0; c < PQnfields(raw); ++c) {
            if (c > 0) rows += '\t';
            rows += PQgetisnull(raw, r, c) ? "\\N" : PQgetvalue(raw, r, c);
          }
        }
        break;
      }
      case PGRES_COMMAND_OK:
      case PGRES_EMPTY_QUERY: rows.clear(); break;
      case PGRES_COPY_IN: PQputCopyEnd(conn.get(), "PgServer::Sql sends no COPY data"); break;
      default:
        if (error.empty()) error = Trim(PQresultErrorMessage(raw));
        break;
    }
  }
  if (!error.empty()) {
    std::string shown = query.size() > 200 ? query.substr(0, 200) + "..." : query;
    return InternalError("Sql(" + shown + "): " + error);
  }
  return rows;
}

PgServer* SharedPgServer() {
  static std::mutex mu;
  static std::unique_ptr<PgServer> server;  // destroyed at exit: stops the server
  static std::string error;
  static bool tried = false;
  std::lock_guard<std::mutex> lock(mu);
  if (!tried) {
    tried = true;
    auto started = PgServer::Start(PgServerOptions{});
    if (started) {
      server = std::move(*started);
    } else {
      error = started.error().ToString();
    }
  }
  if (!server) {
    ADD_FAILURE() << "cannot start the shared PostgreSQL test server: " << error;
    return nullptr;
  }
  return server.get();
}

}  // namespace forklift::testing
