#!/usr/bin/env python3
"""A real, throwaway PostgreSQL server for end-to-end tests and benchmarks.

The Python twin of tests/support/pg_server.h: initdb into a fresh temp dir, a free loopback
port, pg_ctl start; stopped and removed on exit. Standard library, psql and the Debian
server binaries only.

    with PgServer() as pg:
        pg.sql("create table t (id int)")
        run(["forklift", "load", "--to", pg.dsn(), ...])

Root: initdb and postgres refuse to run as root, so as root every server binary runs as the
`postgres` system user (`nobody` where there is none), which owns the temp dir.

No server outlives the process that started it: besides close() (the context manager and
an atexit hook call it), a guardian shell in its own session waits on a pipe from this
process and, once the pipe closes for any reason (exit, crash, SIGKILL), stops the
postmaster with SIGQUIT (immediate shutdown) and removes the temp dir.

Template cache: the first server on a machine, once set up, is stopped cleanly and copied to
<temp base>/forklift-pg-template-<key>; later servers copy that instead of running initdb
and CREATE DATABASE (shared with the C++ fixture; deleting it is always safe).

Server binaries: $FORKLIFT_PG_BIN, else the newest /usr/lib/postgresql/<N>/bin.

CLI for benchmarks: `python3 tests/pg_fixture.py serve [--max-connections N]
[--listen ADDR/PREFIX]...` starts a
server, prints its DSN on stdout, and keeps it until stdin closes or SIGTERM/SIGINT.
"""
import argparse
import atexit
import glob
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile

PASSWORD_USER = "forklift_pw"
PASSWORD = "s3cr3t-pw"

# Stops the server and removes the temp dir when our end of its stdin closes.
_GUARDIAN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "support", "pg_guardian.sh")

# Bumped when what a template holds changes (pg_hba.conf, the role, the database).
_TEMPLATE_VERSION = "forklift-pg-template-v1"

_HBA = """# forklift test server
host  all  forklift_pw  127.0.0.1/32  scram-sha-256
local all  all                        trust
host  all  all          127.0.0.1/32  trust
"""


class PgServerError(RuntimeError):
    """A server step failed; the message carries the step's output or the log's tail."""


def _bin_dir():
    env = os.environ.get("FORKLIFT_PG_BIN")
    if env:
        return env
    found = []
    for path in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        version = path.split("/")[4]
        if version.isdigit():
            found.append((int(version), os.path.dirname(path)))
    if not found:
        raise PgServerError("no PostgreSQL server binaries under /usr/lib/postgresql/<N>/bin: "
                            "install the postgresql package or set FORKLIFT_PG_BIN")
    return max(found)[1]


def _fnv1a(*fields):
    """core::Fnv1a's hex digest: FNV-1a 64 over each field followed by 0xff."""
    h = 0xCBF29CE484222325
    for field in fields:
        for b in field.encode() + b"\xff":
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _temp_base(other_user):
    """$TMPDIR when the server user can reach it and the socket path fits, else /tmp."""
    base = os.environ.get("TMPDIR", "")
    if not base or len(base) > 60:
        return "/tmp"
    base = os.path.abspath(base)
    if other_user:
        p = base
        while p not in ("/", ""):
            try:
                if not os.stat(p).st_mode & 0o001:
                    return "/tmp"
            except OSError:
                return "/tmp"
            p = os.path.dirname(p)
    return base


class PgServer:
    """A running PostgreSQL server; see the module docstring. Not thread-safe."""

    def __init__(self, max_connections=40, listen_extra=()):
        """listen_extra: interface addresses "ADDR/PREFIX" (IPv4, already configured and up,
        e.g. the host side of a test's veth pair) that the server listens on besides
        127.0.0.1 and trusts connections from (ADDR's network), for clients in network
        namespaces."""
        self.max_connections = max_connections
        self.listen_extra = [ipaddress.ip_interface(a) for a in listen_extra]
        self.port = 0
        self.running = False
        self._owner_pid = os.getpid()
        self._bin = _bin_dir()
        self._user = None  # (uid, gid) to run server binaries as, when root
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                pw = pwd.getpwnam("nobody")
            self._user = (pw.pw_uid, pw.pw_gid)
        base = _temp_base(self._user is not None)
        self.dir = tempfile.mkdtemp(prefix="forklift-pg-", dir=base)
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "postgres.log")
        if self._user:
            os.chown(self.dir, *self._user)
        self._guardian = subprocess.Popen(
            ["/bin/sh", _GUARDIAN, self.dir],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        atexit.register(self.close)
        try:
            self._init(base)
        except BaseException:
            self.close()
            raise

    # -- lifecycle ---------------------------------------------------------------------

    def _init(self, base):
        cache = self._template_path(base)
        from_template = False
        if cache and self._template_usable(cache):
            try:
                self._tool("/bin/cp", "-a", os.path.join(cache, "data"), self.data_dir)
                from_template = True
            except PgServerError:
                shutil.rmtree(self.data_dir, ignore_errors=True)
        if not from_template:
            self._init_cluster()
        template_suspect = False
        try:
            self._start_on_free_port()
        except PgServerError:
            if not from_template:
                raise
            # Try a fresh cluster; if that starts, the template was the problem and is replaced.
            shutil.rmtree(self.data_dir, ignore_errors=True)
            from_template = False
            self._init_cluster()
            self._start_on_free_port()
            template_suspect = True
        if from_template:
            return
        self.sql(f"CREATE ROLE {PASSWORD_USER} LOGIN SUPERUSER PASSWORD '{PASSWORD}'",
                 db="postgres")
        self.sql("CREATE DATABASE forklift_test", db="postgres")
        if cache:
            if template_suspect:
                self._discard_template(cache)
            # Saved from a cleanly stopped cluster; only the first server on a machine pays this.
            self.stop("fast")
            self._save_template(base, cache)
            self.start()

    def _init_cluster(self):
        self._tool("initdb", "-D", self.data_dir, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                   "--locale=C", "--no-sync")
        with open(os.path.join(self.data_dir, "pg_hba.conf"), "w") as f:
            f.write(_HBA)
        with open(os.path.join(self.data_dir, "postgresql.conf"), "a") as f:
            f.write("\ninclude 'forklift.conf'\n")

    def _start_on_free_port(self):
        # The port is free when we look and may be taken by the time the server binds it.
        for attempt in range(5):
            self.port = _free_port()
            self._write_config()
            try:
                self.start()
                return
            except PgServerError:
                log = self._log_tail()
                port_taken = "could not bind" in log or "Address already in use" in log
                if attempt == 4 or not port_taken:
                    raise

    # -- template cache (the same templates as tests/support/pg_server.cc) ---------------

    def _server_uid(self):
        return self._user[0] if self._user else os.geteuid()

    def _template_path(self, base):
        try:
            st = os.stat(os.path.join(self._bin, "postgres"))
        except OSError:
            return ""
        key = _fnv1a(_TEMPLATE_VERSION, self._bin, str(st.st_size),
                     str(st.st_mtime_ns // 1_000_000_000), str(self._server_uid()))
        return os.path.join(base, f"forklift-pg-template-{key}")

    def _template_usable(self, cache):
        try:
            st = os.lstat(cache)
        except OSError:
            return False
        # Only a template the server user made and nobody else can write to: /tmp is shared.
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != self._server_uid() or st.st_mode & 0o022:
            return False
        return (os.path.exists(os.path.join(cache, "complete"))
                and os.path.exists(os.path.join(cache, "data", "PG_VERSION")))

    def _save_template(self, base, cache):
        # Built beside the final name and renamed into place, so that a reader sees a whole
        # template or none; when several processes race, the first rename wins.
        build = tempfile.mkdtemp(prefix=os.path.basename(cache) + ".build-", dir=base)
        try:
            if self._user:
                os.chown(build, *self._user)
            self._tool("/bin/cp", "-a", self.data_dir, os.path.join(build, "data"))
            open(os.path.join(build, "complete"), "w").close()
            os.rename(build, cache)
        except (OSError, PgServerError):
            shutil.rmtree(build, ignore_errors=True)

    @staticmethod
    def _discard_template(cache):
        away = f"{cache}.discarded-{os.getpid()}"
        try:
            os.rename(cache, away)
        except OSError:
            return
        shutil.rmtree(away, ignore_errors=True)

    def _write_config(self):
        # fsync and synchronous_commit stay on: crash tests need commits to survive.
        # pg_hba.conf too, each time: a template's copy must not carry another server's
        # extra networks.
        with open(os.path.join(self.data_dir, "pg_hba.conf"), "w") as f:
            f.write(_HBA)
            for a in self.listen_extra:
                f.write(f"host  all  all          {a.network}  trust\n")
        listen = ",".join(["127.0.0.1"] + [str(a.ip) for a in self.listen_extra])
        with open(os.path.join(self.data_dir, "forklift.conf"), "w") as f:
            f.write(f"listen_addresses = '{listen}'\n"
                    f"port = {self.port}\n"
                    f"unix_socket_directories = '{self.dir}'\n"
                    f"max_connections = {self.max_connections}\n"
                    "fsync = on\n"
                    "synchronous_commit = on\n")

    def _tool(self, name, *args):
        kw = {}
        if self._user:
            kw = dict(user=self._user[0], group=self._user[1], extra_groups=[])
        program = os.path.join(self._bin, name)  # `name` when it is an absolute path
        p = subprocess.run([program, *args], cwd=self.dir,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, **kw)
        if p.returncode != 0:
            output = p.stdout.decode(errors="replace").strip()
            raise PgServerError(f"{os.path.basename(program)} failed "
                                f"(exit status {p.returncode}): {output}")

    def _log_tail(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def start(self):
        """pg_ctl start -w on the same port and data dir; raises PgServerError."""
        if self.running:
            raise PgServerError("the server is running")
        try:
            # pg_ctl points the postmaster's stdout/stderr at the log, so capturing pg_ctl's
            # output cannot hang on the daemon holding our pipe.
            self._tool("pg_ctl", "start", "-D", self.data_dir, "-l", self.log_path, "-w",
                       "-t", "30", "-s")
        except PgServerError as e:
            raise PgServerError(f"{e}\nserver log ({self.log_path}):\n{self._log_tail()}") from None
        self.running = True

    def stop(self, mode="fast"):
        """pg_ctl stop -m MODE -w (smart, fast or immediate); raises PgServerError."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"unknown stop mode {mode!r}")
        if not self.running:
            raise PgServerError("the server is not running")
        self._tool("pg_ctl", "stop", "-D", self.data_dir, "-m", mode, "-w", "-t", "30", "-s")
        self.running = False

    def restart(self, mode="fast"):
        self.stop(mode)
        self.start()

    def close(self):
        """Stops the server (immediate) and removes the temp dir; idempotent."""
        if os.getpid() != self._owner_pid or self._guardian is None:
            return  # a forked child's copy: the server is its parent's
        stopped = not self.running
        if self.running:
            try:
                self.stop("immediate")
                stopped = True
            except PgServerError:
                pass  # the guardian SIGQUITs it
        shutil.rmtree(self.dir, ignore_errors=True)
        guardian, self._guardian = self._guardian, None
        if stopped and not os.path.exists(self.dir):
            # Its work is done. Killing it beats closing the pipe and waiting: a forked
            # child of ours that is still alive holds the pipe open too.
            guardian.kill()
            guardian.wait()
        # Otherwise closing the pipe hands the cleanup to the guardian, which outlives us.
        guardian.stdin.close()
        atexit.unregister(self.close)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- use -------------------------------------------------------------------------

    def dsn(self, db="forklift_test", host="127.0.0.1"):
        """host: 127.0.0.1 (default) or the address of one of listen_extra."""
        return f"postgresql://postgres@{host}:{self.port}/{db}"

    def password_dsn(self):
        return f"postgresql://{PASSWORD_USER}:{PASSWORD}@127.0.0.1:{self.port}/forklift_test"

    def sql(self, query, db="forklift_test"):
        """Runs `query` (one or more statements, each in its own transaction) with psql as
        postgres and returns what the queries print: rows as tab-separated lines, without
        headers, command tags or the final newline (NULL prints as an empty field).
        Raises PgServerError with psql's message on the first error."""
        psql = "/usr/bin/psql"
        if not os.path.exists(psql):
            psql = os.path.join(self._bin, "psql")
        env = dict(os.environ, PGCONNECT_TIMEOUT="10")
        p = subprocess.run([psql, "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                            "-d", self.dsn(db), "-f", "-"],
                           input=query.encode(), capture_output=True, env=env)
        if p.returncode != 0:
            raise PgServerError(f"psql failed on {query[:200]!r}: "
                                f"{p.stderr.decode(errors='replace').strip()}")
        out = p.stdout.decode()
        return out[:-1] if out.endswith("\n") else out


def _serve(argv):
    parser = argparse.ArgumentParser(prog="pg_fixture.py serve",
                                     description="Start a throwaway PostgreSQL, print its DSN, "
                                                 "keep it until stdin closes or SIGTERM/SIGINT.")
    parser.add_argument("--max-connections", type=int, default=40)
    parser.add_argument("--listen", action="append", default=[], metavar="ADDR/PREFIX",
                        help="also listen on ADDR and trust its network (see listen_extra)")
    args = parser.parse_args(argv)

    def finish(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    with PgServer(max_connections=args.max_connections, listen_extra=args.listen) as pg:
        print(pg.dsn(), flush=True)
        try:
            while sys.stdin.buffer.read(65536):
                pass
        except SystemExit:
            pass
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "serve":
        sys.exit(_serve(sys.argv[2:]))
    print("usage: pg_fixture.py serve [--max-connections N] [--listen ADDR/PREFIX]...",
          file=sys.stderr)
    sys.exit(2)
