#!/usr/bin/env python3
"""`forklift load --queue` end to end (docs/load.md "Through the queue"): a real PostgreSQL
(tests/pg_fixture.py), three real `forklift worker` processes, a worker SIGKILLed while it
writes a chunk. A trigger makes one chunk's write wait on an advisory lock the test holds,
so the test waits for that event (a backend waiting on the lock), never for time. The
table must equal an uninterrupted local load's, the ledger hold each chunk once, and a
rerun of the coordinator load nothing.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from pg_fixture import PASSWORD, PgServer  # noqa: E402
from proc_util import is_live  # noqa: E402

FORKLIFT = os.environ.get("FORKLIFT", os.path.join(os.path.dirname(__file__), "..", "build", "forklift"))
PG = None
ROWS = 1200
CHUNK_ROWS = 100  # 12 chunks
GATE_ID = 750     # its chunk waits on the advisory lock


def setUpModule():
    global PG
    PG = PgServer()


def tearDownModule():
    if PG is not None:
        PG.close()


def wait_for(predicate, timeout=30, what="an event"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def marked(name, value):
    """Live pids whose environment holds NAME=VALUE."""
    mark = f"{name}={value}".encode()
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/environ", "rb") as f:
                if mark in f.read().split(b"\0") and is_live(int(p)):
                    found.append(int(p))
        except OSError:
            pass
    return found


class LoadQueueTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="forklift-load-queue-test-")
        name = re.sub(r"\W", "", self.id().split(".")[-1]).lower()[:30]
        self.schema = "lq" + name
        self.table = "t_" + name
        self.procs = []
        self.env = dict(os.environ, FORKLIFT_JOURNAL=os.path.join(self.dir, "journal.db"))

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def write_csv(self, upsert):
        path = os.path.join(self.dir, "data.csv")
        with open(path, "w") as f:
            f.write("id,v\n")
            for i in range(ROWS):
                # Upsert: keys repeat in later chunks, so the table is right only when each
                # key's rows apply in input order.
                key = i % 500 if upsert else i
                if upsert and i == GATE_ID:
                    key = GATE_ID
                f.write(f'{key},"v{i}, ""quoted"""\n')
        return path

    def make_tables(self, gated):
        PG.sql(f"DROP TABLE IF EXISTS {self.table}, {self.table}_ref CASCADE;"
               f"CREATE TABLE {self.table} (id int PRIMARY KEY, v text);"
               f"CREATE TABLE {self.table}_ref (id int PRIMARY KEY, v text);")
        if gated:
            PG.sql(f"""CREATE OR REPLACE FUNCTION {self.table}_gate() RETURNS trigger AS $$
                     BEGIN
                       IF NEW.id = {GATE_ID} THEN
                         PERFORM pg_advisory_lock(4242); PERFORM pg_advisory_unlock(4242);
                       END IF;
                       RETURN NEW;
                     END $$ LANGUAGE plpgsql;
                     CREATE TRIGGER gate BEFORE INSERT ON {self.table}
                       FOR EACH ROW EXECUTE FUNCTION {self.table}_gate();""")

    def worker(self, n):
        # PGAPPNAME names the worker's (and its chunk jobs') connections: pg_stat_activity
        # then says which worker's backend waits on the lock.
        p = subprocess.Popen([FORKLIFT, "worker", "--queue", PG.dsn(), "--queue-schema", self.schema,
                              "-j", "1", "--lease", "1s", "--max-idle", "60s"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=dict(self.env, PGAPPNAME=f"lqworker{n}"))
        self.procs.append(p)
        return p

    def load(self, table, csv, mode, queue=True, check=True):
        argv = [FORKLIFT, "load", csv, "--to", PG.dsn(), "--table", table, "--mode", mode,
                "--chunk-rows", str(CHUNK_ROWS), "--workers", "3", "--json", "--progress", "none"]
        if mode == "upsert":
            argv += ["--key", "id"]
        if queue:
            argv += ["--queue", PG.dsn(), "--queue-schema", self.schema]
        p = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=60)
        if check:
            self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def table_text(self, table):
        return PG.sql(f"SELECT string_agg(id || ':' || v, '|' ORDER BY id) FROM {table}")

    def run_killed(self, mode):
        csv = self.write_csv(upsert=mode == "upsert")
        self.make_tables(gated=True)
        # The reference: an uninterrupted local load.
        self.load(f"{self.table}_ref", csv, mode, queue=False)
        workers = [self.worker(n) for n in range(3)]
        lock = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-d", PG.dsn()], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        self.procs.append(lock)
        lock.stdin.write("SELECT 'locked' FROM (SELECT pg_advisory_lock(4242)) x;\n")
        lock.stdin.flush()
        self.assertEqual(lock.stdout.readline().strip(), "locked")
        coordinator = subprocess.Popen(
            [FORKLIFT, "load", csv, "--to", PG.dsn(), "--table", self.table, "--mode", mode,
             "--chunk-rows", str(CHUNK_ROWS), "--workers", "3", "--json", "--progress", "none",
             "--queue", PG.dsn(), "--queue-schema", self.schema] + (["--key", "id"] if mode == "upsert" else []),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env)
        self.procs.append(coordinator)
        # The gated chunk's write waits on the lock: find the worker holding it.
        def waiting():
            return PG.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                          "objid = 4242 AND NOT granted") == "1"
        wait_for(waiting, what="the gated chunk waiting on the lock")
        app = PG.sql("SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                     "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.objid = 4242 AND "
                     "NOT l.granted")
        self.assertRegex(app, r"^lqworker\d$")
        victim = workers[int(app[-1])]
        self.assertEqual(len(self.job_pids(victim)), 1, "the gated chunk's job runs")
        jobs = self.job_pids(victim)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        # Its chunk job is ended by its orphan watchdog; the backend then rolls back.
        wait_for(lambda: not any(is_live(p) for p in jobs), what="the killed worker's job to end")
        lock.stdin.write("SELECT 'unlocked' FROM (SELECT pg_advisory_unlock(4242)) x;\n")
        lock.stdin.close()
        lock.wait()
        out, err = coordinator.communicate(timeout=60)
        self.assertEqual(coordinator.returncode, 0, err)
        self.assertIn('"status":"succeeded"', out)
        self.assertEqual(self.table_text(self.table), self.table_text(f"{self.table}_ref"))
        chunks = ROWS // CHUNK_ROWS if mode == "insert" else None
        rows = PG.sql("SELECT load_id, count(*), count(DISTINCT chunk) FROM forklift_load_chunks "
                      "WHERE chunk >= 0 GROUP BY load_id").splitlines()
        ref_counts = {}
        for line in rows:
            lid, n, distinct = line.split("\t")
            self.assertEqual(n, distinct, "each chunk once in the ledger")
            ref_counts[lid] = int(n)
        # Two loads (the reference and the queue's), each with every chunk once.
        queue_ids = [lid for lid in ref_counts if lid in out]
        self.assertEqual(len(queue_ids), 1, out)
        if chunks is not None:
            self.assertEqual(ref_counts[queue_ids[0]], chunks)
        self.assertIn(f'"chunks_committed":{ref_counts[queue_ids[0]]}', out)
        # A rerun loads nothing: every chunk is in the ledger.
        again = self.load(self.table, csv, mode)
        self.assertIn('"rows_loaded":0', again.stdout)
        self.assertIn(f'"chunks_skipped":{ref_counts[queue_ids[0]]}', again.stdout)
        self.assertEqual(self.table_text(self.table), self.table_text(f"{self.table}_ref"))

    def job_pids(self, worker):
        """Pids of the chunk jobs of `worker` (its children that are forklift load)."""
        found = []
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    cmd = f.read().split(b"\0")
            except OSError:
                continue
            if ppid == worker.pid and b"--queue-chunk" in cmd:
                found.append(int(p))
        return found

    def test_insert_worker_sigkilled_mid_chunk(self):
        self.run_killed("insert")

    def test_upsert_worker_sigkilled_mid_chunk(self):
        self.run_killed("upsert")

    def test_refuses_what_the_queue_does_not_do(self):
        csv = self.write_csv(upsert=False)
        self.make_tables(gated=False)
        for extra, says in ((["--transform", "cat"], "--transform"), (["--truncate"], "--truncate"),
                            (["--replace"], "--replace")):
            p = subprocess.run([FORKLIFT, "load", csv, "--to", PG.dsn(), "--table", self.table,
                                "--queue", PG.dsn()] + extra, capture_output=True, text=True,
                               env=self.env, timeout=30)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(f"--queue: {says} is not supported", p.stderr)
        p = subprocess.run([FORKLIFT, "load", csv, "--to", PG.dsn(), "--table", self.table,
                            "--queue", "mysql://x/y"], capture_output=True, text=True,
                           env=self.env, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--queue", p.stderr)
        # A password in --to would sit in the queue's tables: refused, and never echoed.
        p = subprocess.run([FORKLIFT, "load", csv, "--to", PG.password_dsn(), "--table",
                            self.table, "--queue", PG.dsn()], capture_output=True, text=True,
                           env=self.env, timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("holds a password", p.stderr)
        self.assertNotIn(PASSWORD, p.stderr + p.stdout)
        self.assertEqual(PG.sql(f"SELECT count(*) FROM {self.table}"), "0")


if __name__ == "__main__":
    unittest.main()
