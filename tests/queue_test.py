#!/usr/bin/env python3
"""`forklift map --queue` and `forklift worker` end to end (docs/queue.md): a real PostgreSQL
(tests/pg_fixture.py), real worker processes, real SIGKILL/SIGSTOP and a server restart.
Jobs announce themselves with marker files and wait for a release file, so the tests wait
for events, never for time.
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
from pg_fixture import PgServer  # noqa: E402
from proc_util import is_live, marked, wait_for  # noqa: E402

FORKLIFT = os.environ.get("FORKLIFT", os.path.join(os.path.dirname(__file__), "..", "build", "forklift"))
PG = None
LEASE = "1s"


def setUpModule():
    global PG
    PG = PgServer()


def tearDownModule():
    if PG is not None:
        PG.close()




class QueueTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="forklift-queue-test-")
        self.schema = "q" + re.sub(r"\W", "", self.id().split(".")[-1]).lower()[:40]
        self.procs = []
        for d in ("started", "runs"):
            os.makedirs(os.path.join(self.dir, d))
        self.env = dict(os.environ, FORKLIFT_JOURNAL=os.path.join(self.dir, "journal.db"))

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGCONT)
                except OSError:
                    pass
                p.kill()
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    # A job that says where it ran (its worker's id), leaves a marker, and waits for the
    # release file unless it is already there.
    def blocking_job(self):
        d = self.dir
        return [f'echo "$FORKLIFT_WORKER_ID" >> {d}/runs/{{}}; touch {d}/started/{{}}; '
                f'while [ ! -e {d}/release ]; do sleep 0.02; done; echo "done {{}} $FORKLIFT_WORKER_ID"']

    def worker(self, *extra, log=None, dsn=None):
        log = log or self.path(f"worker{len(self.procs)}.log")
        f = open(log, "wb")
        p = subprocess.Popen([FORKLIFT, "worker", "--queue", dsn or PG.dsn(), "--queue-schema",
                              self.schema, "--lease", LEASE, *extra],
                             stdout=f, stderr=subprocess.STDOUT, env=self.env)
        f.close()
        p.log = log
        self.procs.append(p)
        wait_for(lambda: "slot(s) on" in self.read(log), what="the worker to start")
        p.worker_id = re.search(r"forklift worker: (\S+): ", self.read(log)).group(1)
        return p

    def map(self, *args, dsn=None):
        p = subprocess.Popen([FORKLIFT, "map", "--queue", dsn or PG.dsn(), "--queue-schema",
                              self.schema, *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env)
        self.procs.append(p)
        return p

    @staticmethod
    def read(path):
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def runs_of(self, item):
        return self.read(self.path("runs", str(item))).split()

    def joblog_seqs(self, joblog):
        rows = self.read(joblog).splitlines()[1:]
        return sorted(int(r.split("\t")[0]) for r in rows)

    def release(self):
        open(self.path("release"), "w").close()


class BasicTest(QueueTest):
    def test_outputs_joblog_exit_status_and_journal_as_locally(self):
        w1 = self.worker("-j", "3")
        w2 = self.worker("-j", "3")
        joblog = self.path("jobs.log")
        m = self.map("-j", "8", "-k", "--joblog", joblog, "--queue-slice", "4",
                     "echo out {}; [ {} != 7 ] && [ {} != 9 ]", ":::",
                     *map(str, range(1, 21)))
        out, err = m.communicate(timeout=60)
        self.assertEqual(m.returncode, 2, err)  # two failed jobs, as GNU parallel counts
        self.assertEqual(out.decode().split("\n")[:-1], [f"out {i}" for i in range(1, 21)])  # -k
        self.assertEqual(self.joblog_seqs(joblog), list(range(1, 21)))
        rows = {int(r.split("\t")[0]): r.split("\t") for r in self.read(joblog).splitlines()[1:]}
        self.assertEqual(rows[7][6], "1")
        self.assertEqual(rows[1][6], "0")
        runs = subprocess.run([FORKLIFT, "runs", "--kind", "map"], capture_output=True, text=True,
                              env=self.env).stdout
        self.assertRegex(runs, r"map-\w+.*\b18\b.*\b2\b")
        # The run left the queue by dropping its partitions.
        self.assertEqual(PG.sql(f"select count(*) from {self.schema}.runs"), "0")
        self.assertEqual(PG.sql(f"select count(*) from pg_tables where schemaname = '{self.schema}' "
                                "and tablename ~ '_[0-9]+$'"), "0")
        for w in (w1, w2):
            w.send_signal(signal.SIGTERM)
            self.assertEqual(w.wait(timeout=20), 128 + signal.SIGTERM)

    def test_without_a_worker_it_says_so_and_waits(self):
        m = self.map("-j", "2", "echo", ":::", "a", "b")
        err = b""
        os.set_blocking(m.stderr.fileno(), False)

        def said():
            nonlocal err
            err += m.stderr.read() or b""
            return b"no worker is attached" in err
        wait_for(said, timeout=15, what="the no-worker message")
        self.worker("-j", "2", "--max-idle", "1s")
        self.assertEqual(m.wait(timeout=30), 0)
        self.assertEqual(sorted(m.stdout.read().split()), [b"a", b"b"])

    def test_bad_input_is_refused_by_name_and_passwords_never_show(self):
        p = subprocess.run([FORKLIFT, "map", "--queue", "host=x nosuchkey=1", "echo", ":::", "a"],
                           capture_output=True, text=True, env=self.env)
        self.assertEqual(p.returncode, 255)
        self.assertIn("--queue:", p.stderr)
        p = subprocess.run([FORKLIFT, "map", "--queue-slice", "0", "--queue", PG.dsn(), "echo"],
                           capture_output=True, text=True, env=self.env)
        self.assertEqual(p.returncode, 255)
        self.assertIn("--queue-slice", p.stderr)
        p = subprocess.run([FORKLIFT, "worker", "-j", "2"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--queue", p.stderr)
        p = subprocess.run([FORKLIFT, "worker", "--queue", PG.dsn(), "--lease", "10ms"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--lease", p.stderr)
        # A password DSN: the run works and the password appears nowhere.
        secret = "s3cr3t-pw"
        dsn = PG.password_dsn()
        self.assertIn(secret, dsn)
        w = self.worker("-j", "2", "--max-idle", "2s", dsn=dsn)
        m = self.map("-j", "2", "echo", ":::", "x", "y", dsn=dsn)
        out, err = m.communicate(timeout=30)
        self.assertEqual(m.returncode, 0, err)
        w.wait(timeout=20)
        self.assertNotIn(secret, err.decode() + out.decode() + self.read(w.log))
        self.assertIn("***", err.decode())
        dump = PG.sql(f"select string_agg(t::text, ' ') from {self.schema}.workers t")
        self.assertNotIn(secret, dump)


class FailureTest(QueueTest):
    def test_sigkill_of_a_worker_mid_slice(self):
        a = self.worker("-j", "4")
        joblog = self.path("jobs.log")
        m = self.map("-j", "16", "--joblog", joblog, "--queue-slice", "4", *self.blocking_job(),
                     ":::", *map(str, range(1, 17)))
        wait_for(lambda: len(os.listdir(self.path("started"))) == 4, what="a's four jobs")
        on_a = set(os.listdir(self.path("started")))
        self.assertTrue(marked("FORKLIFT_WORKER_ID", a.worker_id))
        a.kill()
        a.wait()
        killed_at = time.monotonic()
        # No process of the killed worker is left (its watchdog ends its jobs).
        wait_for(lambda: not marked("FORKLIFT_WORKER_ID", a.worker_id), what="a's jobs to end")
        b = self.worker("-j", "16")
        wait_for(lambda: all(b.worker_id in self.runs_of(i) for i in on_a), what="b to rerun a's jobs")
        # Reclaimed within the lease plus a reap period (generously: a loaded machine).
        self.assertLess(time.monotonic() - killed_at, 1 + 0.5 + 5)
        self.release()
        out, err = m.communicate(timeout=60)
        self.assertEqual(m.returncode, 0, err)
        self.assertEqual(self.joblog_seqs(joblog), list(range(1, 17)))  # one outcome each
        for i in range(1, 17):
            runs = self.runs_of(i)
            # Reruns only for the killed slice's jobs.
            self.assertEqual(len(runs), 2 if str(i) in on_a else 1, (i, runs))
            self.assertEqual(runs[-1], b.worker_id)
        self.assertEqual(len(re.findall(rb"^done ", out, re.M)), 16)

    def test_poison_item_is_dead_lettered_and_the_rest_succeed(self):
        # Item 3 kills its worker every time; a supervisor restarts workers while the map runs.
        # One slot per worker: a job running beside the poison one in the same worker loses
        # its worker too, and is not yet told apart from it (docs/queue.md, "Limits").
        joblog = self.path("jobs.log")
        m = self.map("-j", "6", "--joblog", joblog, "--queue-slice", "6",
                     "if [ {} = 3 ]; then kill -9 $PPID; fi; echo ok {}", ":::",
                     *map(str, range(1, 7)))
        starts = 0
        while m.poll() is None:
            w = self.worker("-j", "1")
            starts += 1
            while w.poll() is None and m.poll() is None:
                time.sleep(0.05)
            self.assertLess(starts, 10, "the poison item was never isolated")
        out, err = m.communicate(timeout=30)
        self.assertEqual(m.returncode, 1, err)  # one failed job
        self.assertIn(b"dead-lettered: lost its worker 3 times", err)
        self.assertEqual(sorted(out.split(b"\n")[:-1]), [f"ok {i}".encode() for i in (1, 2, 4, 5, 6)])
        self.assertGreaterEqual(starts, 3)

    def test_sigstop_fencing(self):
        a = self.worker("-j", "4")
        m = self.map("-j", "4", "--queue-slice", "4", *self.blocking_job(), ":::", "1", "2", "3", "4")
        wait_for(lambda: len(os.listdir(self.path("started"))) == 4, what="a's jobs")
        a.send_signal(signal.SIGSTOP)
        b = self.worker("-j", "4")
        wait_for(lambda: all(b.worker_id in self.runs_of(i) for i in range(1, 5)),
                 what="b to take over")
        a.send_signal(signal.SIGCONT)
        # a sees that its leases went stale and kills its own jobs.
        wait_for(lambda: "killing the jobs" in self.read(a.log), what="a to fence itself")
        wait_for(lambda: len(marked("FORKLIFT_WORKER_ID", a.worker_id)) == 0, what="a's jobs to end")
        self.release()
        out, err = m.communicate(timeout=60)
        self.assertEqual(m.returncode, 0, err)
        done = re.findall(rb"^done (\d) (\S+)$", out, re.M)
        self.assertEqual(sorted(d[0] for d in done), [b"1", b"2", b"3", b"4"])
        self.assertTrue(all(d[1].decode() == b.worker_id for d in done), done)

    def test_coordinator_sigkill_and_rerun_enqueues_nothing_twice(self):
        self.worker("-j", "6")
        joblog = self.path("jobs.log")
        args = ["-j", "6", "--joblog", joblog, "--queue-slice", "3", *self.blocking_job(), ":::",
                *map(str, range(1, 7))]
        m = self.map(*args)
        wait_for(lambda: len(os.listdir(self.path("started"))) == 6, what="all jobs to start")
        m.kill()
        m.wait()
        self.release()
        m2 = self.map("--resume", *args)
        out, err = m2.communicate(timeout=60)
        self.assertEqual(m2.returncode, 0, err)
        self.assertEqual(self.joblog_seqs(joblog), list(range(1, 7)))
        for i in range(1, 7):
            self.assertEqual(len(self.runs_of(i)), 1, i)  # the rerun followed, not re-enqueued

    def test_postgres_restart_immediate_mid_run(self):
        self.worker("-j", "4")
        self.worker("-j", "4")
        joblog = self.path("jobs.log")
        m = self.map("-j", "8", "--joblog", joblog, "--queue-slice", "5", *self.blocking_job(),
                     ":::", *map(str, range(1, 31)))
        # 8 in flight in slices of at most 5: at least 6 run at once on two 4-slot workers.
        wait_for(lambda: len(os.listdir(self.path("started"))) >= 6, what="jobs to start")
        PG.restart("immediate")
        self.release()
        out, err = m.communicate(timeout=90)
        self.assertEqual(m.returncode, 0, err)
        self.assertEqual(self.joblog_seqs(joblog), list(range(1, 31)))
        self.assertEqual(len(re.findall(rb"^done ", out, re.M)), 30)


if __name__ == "__main__":
    unittest.main(verbosity=2)
