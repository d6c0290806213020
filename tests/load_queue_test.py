#!/usr/bin/env python3
"""`forklift load --queue` end to end (docs/load.md "Through the queue"): a real PostgreSQL
(tests/pg_fixture.py), three real `forklift worker` processes, a worker SIGKILLed while it
writes a chunk. A trigger makes one chunk's write wait on an advisory lock the test holds,
so the test waits for that event (a backend waiting on the lock), never for time. The
table must equal an uninterrupted local load's, the ledger hold each chunk once, and a
rerun of the coordinator load nothing.
"""
import gzip
import json
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
from proc_util import is_live, marked, wait_for  # noqa: E402

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

    def test_plain_and_gzip_files_through_the_queue_equal_a_local_load(self):
        csv = self.write_csv(upsert=False)
        gz = os.path.join(self.dir, "more.csv.gz")
        # A gzip file (read by its job from its start): other ids, its own chunks.
        with gzip.open(gz, "wb") as g:
            g.write(b"id,v\n")
            for i in range(ROWS):
                g.write(f'{i + ROWS},"gz{i}"\n'.encode())
        self.make_tables(gated=False)
        argv_files = [csv, gz]
        ref = subprocess.run([FORKLIFT, "load", *argv_files, "--to", PG.dsn(), "--table", f"{self.table}_ref",
                              "--chunk-rows", str(CHUNK_ROWS), "--json", "--progress", "none",
                              "--load-id", "lqref" + self.schema],
                             capture_output=True, text=True, env=self.env, timeout=60)
        self.assertEqual(ref.returncode, 0, ref.stderr)
        for n in range(2):
            self.worker(n)
        p = subprocess.run([FORKLIFT, "load", *argv_files, "--to", PG.dsn(), "--table", self.table,
                            "--chunk-rows", str(CHUNK_ROWS), "--workers", "3", "--json", "--progress",
                            "none", "--queue", PG.dsn(), "--queue-schema", self.schema],
                           capture_output=True, text=True, env=self.env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f'"chunks_committed":{2 * ROWS // CHUNK_ROWS}', p.stdout)
        self.assertEqual(PG.sql(f"SELECT count(*) FROM {self.table}"), str(2 * ROWS))
        self.assertEqual(self.table_text(self.table), self.table_text(f"{self.table}_ref"))

    def test_a_chunk_job_reads_only_its_byte_span(self):
        csv = self.write_csv(upsert=False)
        self.make_tables(gated=False)
        lid = "lqspan" + self.schema
        ref = subprocess.run([FORKLIFT, "load", csv, "--to", PG.dsn(), "--table", f"{self.table}_ref",
                              "--chunk-rows", str(CHUNK_ROWS), "--load-id", lid, "--progress", "none"],
                             capture_output=True, text=True, env=self.env, timeout=60)
        self.assertEqual(ref.returncode, 0, ref.stderr)
        number = 7
        checksum, first_line = PG.sql(f"SELECT checksum, first_line FROM forklift_load_chunks "
                                      f"WHERE load_id = '{lid}' AND chunk = {number}").split("\t")
        # The span of chunk 7 (rows 700-799), from the file's own bytes.
        with open(csv, "rb") as f:
            lines = f.read().split(b"\n")
        begin = sum(len(line) + 1 for line in lines[:1 + number * CHUNK_ROWS])
        end = begin + sum(len(line) + 1 for line in lines[1 + number * CHUNK_ROWS:1 + (number + 1) * CHUNK_ROWS])
        self.assertEqual(int(first_line), 2 + number * CHUNK_ROWS)

        def job(sum_hex, span):
            return subprocess.run([FORKLIFT, "load", csv, "--to", PG.dsn(), "--table", self.table,
                                   "--chunk-rows", str(CHUNK_ROWS), "--load-id", lid + "q",
                                   "--queue-chunk", str(number), "--queue-checksum", sum_hex,
                                   "--queue-source", csv, "--queue-span", span],
                                  capture_output=True, text=True, env=self.env, timeout=60)
        span = f"{begin}:{end}:{first_line}:0:1:0"
        bad = job("0" * len(checksum), span)
        self.assertEqual(bad.returncode, 1, bad.stderr)
        self.assertIn("the sources differ", bad.stderr)
        self.assertEqual(PG.sql(f"SELECT count(*) FROM {self.table}"), "0")
        malformed = job(checksum, "1:2:3")
        self.assertEqual(malformed.returncode, 2, malformed.stderr)
        self.assertIn("--queue-span 1:2:3", malformed.stderr)
        ok = job(checksum, span)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        result = json.loads(ok.stdout)
        self.assertEqual(result["rows_written"], CHUNK_ROWS)
        self.assertEqual(result["source_bytes_read"], end - begin, "the job reads just its span")
        self.assertLess(end - begin, os.path.getsize(csv) // 10)
        self.assertEqual(PG.sql(f"SELECT min(id) || '-' || max(id) || ' ' || count(*) FROM {self.table}"),
                         f"{number * CHUNK_ROWS}-{(number + 1) * CHUNK_ROWS - 1} {CHUNK_ROWS}")
        self.assertEqual(PG.sql(f"SELECT string_agg(v, '|' ORDER BY id) FROM {self.table}"),
                         PG.sql(f"SELECT string_agg(v, '|' ORDER BY id) FROM {self.table}_ref "
                                f"WHERE id BETWEEN {number * CHUNK_ROWS} AND {(number + 1) * CHUNK_ROWS - 1}"))
        # Run again (a second attempt): the ledger has it, nothing is read or written.
        again = job(checksum, span)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertTrue(json.loads(again.stdout)["already_committed"])
        self.assertEqual(json.loads(again.stdout)["source_bytes_read"], 0)
        self.assertEqual(PG.sql(f"SELECT count(*) FROM {self.table}"), str(CHUNK_ROWS))

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


class LoadQueuePartitionTest(unittest.TestCase):
    """The issue's "load --queue with 3 workers and a partition": each worker on its own
    "host" (a network namespace, tests/queue_netns_test.py's Hosts), host 0 cut off (its
    link down) for 3 leases while its job holds the gated chunk. Another worker takes the
    chunk over; once the link is back nothing is written twice. Skipped, with the reason,
    where the kernel refuses network namespaces."""
    LEASE_S = 1

    @classmethod
    def setUpClass(cls):
        from queue_netns_test import Hosts, run_ip
        probe = f"fklqprobe{os.getpid()}"
        p = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
        if p.returncode != 0:
            raise unittest.SkipTest(f"the kernel refuses network namespaces here: {p.stderr.strip()}")
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
        cls.net = Hosts(3)
        try:
            # A default route: every host reaches the server at any of its addresses.
            for i, ns in enumerate(cls.net.names):
                run_ip("-n", ns, "route", "add", "default", "via", cls.net.host(i))
            cls.pg = PgServer(listen_extra=cls.net.server_addrs)
        except BaseException:
            cls.net.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.pg.close()
        cls.net.close()

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="forklift-load-queue-netns-")
        self.procs = []
        self.env = dict(os.environ, FORKLIFT_JOURNAL=os.path.join(self.dir, "journal.db"))

    def tearDown(self):
        for i in range(3):
            self.net.mend(i)
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def worker(self, host):
        p = subprocess.Popen(["ip", "netns", "exec", self.net.names[host], FORKLIFT, "worker", "--queue",
                              self.pg.dsn(host=self.net.host(host)), "--queue-schema", "lqnet", "-j", "1",
                              "--lease", f"{self.LEASE_S}s", "--max-idle", "60s"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=dict(self.env, PGAPPNAME=f"lqnet{host}"))
        self.procs.append(p)
        return p

    def waiters(self):
        return self.pg.sql("SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                           "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.objid = 4242 AND "
                           "NOT l.granted ORDER BY 1").split()

    def test_a_host_cut_off_while_it_holds_a_chunk_changes_nothing(self):
        pg, table = self.pg, "t_lqnet"
        csv = os.path.join(self.dir, "data.csv")
        with open(csv, "w") as f:
            f.write("id,v\n")
            for i in range(ROWS):
                f.write(f'{i},"v{i}"\n')
        pg.sql(f"DROP TABLE IF EXISTS {table}, {table}_ref CASCADE;"
               f"CREATE TABLE {table} (id int PRIMARY KEY, v text);"
               f"CREATE TABLE {table}_ref (id int PRIMARY KEY, v text);"
               f"""CREATE OR REPLACE FUNCTION {table}_gate() RETURNS trigger AS $$
                   BEGIN
                     IF NEW.id = {GATE_ID} THEN
                       PERFORM pg_advisory_lock(4242); PERFORM pg_advisory_unlock(4242);
                     END IF;
                     RETURN NEW;
                   END $$ LANGUAGE plpgsql;
                   CREATE TRIGGER gate BEFORE INSERT ON {table}
                     FOR EACH ROW EXECUTE FUNCTION {table}_gate();""")
        # The target as every host reaches it (host 1 is never cut). The server drops a
        # connection whose client is gone after ~3 s of keepalives, checked while a query
        # runs (client_connection_check_interval): the cut job's transaction, which holds
        # the gated chunk's first rows, then ends and rolls back.
        to = (pg.dsn(host=self.net.host(1)) + "?options=-c%20tcp_keepalives_idle%3D1%20"
              "-c%20tcp_keepalives_interval%3D1%20-c%20tcp_keepalives_count%3D2%20"
              "-c%20client_connection_check_interval%3D500")
        common = [csv, "--to", to, "--chunk-rows", str(CHUNK_ROWS), "--json", "--progress", "none"]
        ref = subprocess.run([FORKLIFT, "load", *common, "--table", f"{table}_ref"], capture_output=True,
                             text=True, env=self.env, timeout=60)
        self.assertEqual(ref.returncode, 0, ref.stderr)
        lock = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-d", pg.dsn()], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        self.procs.append(lock)
        lock.stdin.write("SELECT 'locked' FROM (SELECT pg_advisory_lock(4242)) x;\n")
        lock.stdin.flush()
        self.assertEqual(lock.stdout.readline().strip(), "locked")
        # Host 0's worker alone until it holds the gated chunk (its job waits on the lock).
        w0 = self.worker(0)
        coordinator = subprocess.Popen(
            [FORKLIFT, "load", *common, "--table", table, "--workers", "3", "--queue", pg.dsn(),
             "--queue-schema", "lqnet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env)
        self.procs.append(coordinator)
        wait_for(lambda: self.waiters() == ["lqnet0"], timeout=60, what="host 0's job waiting on the gate")
        jobs = LoadQueueTest.job_pids(None, w0)
        self.assertEqual(len(jobs), 1, "host 0 runs the gated chunk's job")
        self.worker(1)
        self.worker(2)
        self.net.cut(0)
        cut_at = pg.sql("SELECT clock_timestamp()")
        # Its lease lapses; another host's attempt of the chunk waits on the gate too, and
        # the server ends the cut job's backend (keepalives).
        # (Until then that attempt waits on the cut transaction's rows, not on the gate.)
        wait_for(lambda: "lqnet0" not in self.waiters(), timeout=30,
                 what="the server to drop the cut job's connection")
        wait_for(lambda: any(w in ("lqnet1", "lqnet2") for w in self.waiters()), timeout=30,
                 what="another host's attempt of the gated chunk")
        wait_for(lambda: not any(is_live(p) for p in jobs), timeout=30,
                 what="host 0's worker to end its cut job")
        wait_for(lambda: pg.sql(f"SELECT clock_timestamp() > '{cut_at}'::timestamptz + "
                                f"interval '{3 * self.LEASE_S} s'") == "t", timeout=30,
                 what="3 leases of cut")
        self.net.mend(0)
        lock.stdin.write("SELECT 'unlocked' FROM (SELECT pg_advisory_unlock(4242)) x;\n")
        lock.stdin.close()
        lock.wait()
        out, err = coordinator.communicate(timeout=60)
        self.assertEqual(coordinator.returncode, 0, err)
        self.assertIn('"status":"succeeded"', out)
        self.assertEqual(self.table_text(table), self.table_text(f"{table}_ref"))
        chunks = ROWS // CHUNK_ROWS
        self.assertIn(f'"chunks_committed":{chunks}', out)
        lid = json.loads(out.strip().splitlines()[-1])["load_id"]
        self.assertEqual(pg.sql(f"SELECT count(*) || ' ' || count(DISTINCT chunk) FROM forklift_load_chunks "
                                f"WHERE load_id = '{lid}' AND chunk >= 0"), f"{chunks} {chunks}")
        # Host 0's worker lived through the cut and is back; nothing it does now writes.
        self.assertIsNone(w0.poll())
        self.assertEqual(pg.sql(f"SELECT count(*) FROM {table}"), str(ROWS))

    def table_text(self, table):
        return self.pg.sql(f"SELECT string_agg(id || ':' || v, '|' ORDER BY id) FROM {table}")


if __name__ == "__main__":
    unittest.main()
