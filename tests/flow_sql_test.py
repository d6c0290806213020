#!/usr/bin/env python3
"""SQL tasks of `forklift run` against a real PostgreSQL (tests/pg_fixture.py) and SQLite.

A parallel VACUUM phase where one statement fails and the others still run; a statement
timeout cancelled on the server; rows affected in the log; errors naming the file, the
line and the SQLSTATE; the DSN's password in no output, log, journal or report.
Run by ctest with FORKLIFT=<path to binary>.
"""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg_fixture import PASSWORD, PgServer  # noqa: E402

FORKLIFT = os.path.abspath(os.environ.get("FORKLIFT", os.path.join(os.path.dirname(__file__), "..", "build", "forklift")))
PG = None


def setUpModule():
    global PG
    PG = PgServer()
    PG.sql("CREATE TABLE t1 (id int, v int); CREATE TABLE t2 (id int, v int); "
           "CREATE TABLE t3 (id int, v int); "
           "INSERT INTO t1 SELECT g, g FROM generate_series(1, 3) g; "
           "INSERT INTO t2 SELECT g, g FROM generate_series(1, 5) g;")


def tearDownModule():
    if PG is not None:
        PG.close()


class FlowSqlTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="forklift-flow-sql-")
        # The password reaches the flow through the environment only.
        self.env = dict(os.environ, FORKLIFT_JOURNAL=os.path.join(self.dir, "journal.db"),
                        MARKET_DSN=PG.password_dsn())

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_flow(self, text, files=None):
        for name, body in (files or {}).items():
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(body)
        path = os.path.join(self.dir, "flow.toml")
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([FORKLIFT, "run", path, "--jobs", "4"], capture_output=True,
                           env=self.env, cwd=self.dir, timeout=120)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def all_state_bytes(self):
        """Every file forklift wrote: logs, journal (with its WAL), a report."""
        blobs = []
        for root, _, names in os.walk(self.dir):
            for n in names:
                with open(os.path.join(root, n), "rb") as f:
                    blobs.append((n, f.read()))
        return blobs

    def test_a_parallel_vacuum_phase_where_one_statement_fails(self):
        rc, out, err = self.run_flow("""
[databases]
market = "${MARKET_DSN}"

[tasks.vacuum_t1]
sql = "VACUUM ANALYZE t1"
db = "market"
group = "maintenance"
[tasks.vacuum_t2]
sql = "VACUUM ANALYZE t2"
db = "market"
group = "maintenance"
[tasks.vacuum_t3]
sql = "VACUUM ANALYZE t3"
db = "market"
group = "maintenance"
[tasks.cleanup]
sql_file = "cleanup.sql"
db = "market"
critical = false
group = "maintenance"
[tasks.touch]
sql = "UPDATE t1 SET v = v + 1; UPDATE t2 SET v = v WHERE id > 3"
db = "market"
""", files={"cleanup.sql": "DELETE FROM t3;\n\nDELETE FROM no_such_table;\n"})
        self.assertEqual(rc, 0, out + err)  # the failing task is non-critical
        self.assertIn("FAILED   cleanup  exit 1 after", out)
        self.assertIn("cleanup.sql:3: SQLSTATE 42P01: relation \"no_such_table\" does not exist", out)
        for t in ("vacuum_t1", "vacuum_t2", "vacuum_t3", "touch"):
            self.assertRegex(out, rf"done     {t} ")
        self.assertIn("maintenance", out)
        # Rows affected per statement, in the task's log.
        logs = os.path.join(self.dir, ".forklift", "logs")
        run_dir = os.path.join(logs, os.listdir(logs)[0])
        with open(os.path.join(run_dir, "main.log")) as f:
            log = f.read()
        self.assertIn("tasks.touch.sql:1: UPDATE 3", log)
        self.assertIn("tasks.touch.sql:1: UPDATE 2", log)
        self.assertIn("tasks.vacuum_t1.sql:1: VACUUM", log)
        self.assertEqual(PG.sql("SELECT sum(v) FROM t1"), "9")  # 2+3+4: committed once
        self.assertIn("sql touch: UPDATE 3, UPDATE 2", out, "rows affected in the breakdown")
        # The password is nowhere: output, logs, journal, report.
        p = subprocess.run([FORKLIFT, "runs", "--kind", "flow", "--json"], capture_output=True,
                           env=self.env, cwd=self.dir)
        run_id = json.loads(p.stdout.decode().splitlines()[0])["run_id"]
        subprocess.run([FORKLIFT, "report", run_id, "-o", os.path.join(self.dir, "r.html")],
                       env=self.env, cwd=self.dir, check=True, capture_output=True)
        self.assertNotIn(PASSWORD, out + err + p.stdout.decode())
        with open(os.path.join(self.dir, "r.html")) as f:
            self.assertIn("<li>touch: UPDATE 3, UPDATE 2</li>", f.read(), "and in the report")
        for name, data in self.all_state_bytes():
            if name in ("flow.toml", "cleanup.sql"):
                continue
            self.assertNotIn(PASSWORD.encode(), data, name)

    def test_a_timeout_cancels_the_statement_on_the_server(self):
        rc, out, err = self.run_flow("""
[tasks.slow]
sql = "SELECT pg_sleep(60)"
db = "${MARKET_DSN}"
timeout = "500ms"
""".replace("${MARKET_DSN}", PG.dsn()))
        self.assertEqual(rc, 1, out + err)
        self.assertIn("FAILED   slow  timed out after", out)
        self.assertIn("the statement was cancelled on the server", out)
        deadline = time.monotonic() + 10
        while PG.sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'") != "0":
            self.assertLess(time.monotonic(), deadline, "the statement still runs on the server")
            time.sleep(0.05)

    def test_a_password_in_an_inline_url_is_masked_in_errors(self):
        bad = PG.password_dsn().replace("forklift_test", "no_such_db")
        rc, out, err = self.run_flow(f"""
[tasks.a]
sql = "SELECT 1"
db = "{bad}"
""")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("no_such_db", out)
        self.assertNotIn(PASSWORD, out + err)

    def test_sqlite_tasks(self):
        db = os.path.join(self.dir, "local.db")
        con = sqlite3.connect(db)
        con.executescript("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('a'), ('b');")
        con.close()
        rc, out, err = self.run_flow("""
[tasks.prune]
sql = "DELETE FROM t WHERE v = 'a'; VACUUM"
db = "sqlite:local.db"
""")
        self.assertEqual(rc, 0, out + err)
        con = sqlite3.connect(db)
        self.assertEqual(con.execute("SELECT count(*) FROM t").fetchone()[0], 1)
        con.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
