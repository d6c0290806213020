#!/usr/bin/env python3
"""End-to-end tests of `forklift load --transform CMD` (and --cpu-workers, --transform-timeout).

One throwaway PostgreSQL (tests/pg_fixture.py) for the module, one schema per test. The
transforms are small shell/awk scripts written into each test's directory; where a test
needs an order of events (a later chunk's transform finishing first, a load stalled at a
known chunk) the scripts wait for marker files, never for a time.

Run by ctest with FORKLIFT=<path to binary>; alone:
    FORKLIFT=build/forklift python3 tests/load_transform_test.py -v
"""
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg_fixture import PgServer  # noqa: E402

FORKLIFT = os.environ.get("FORKLIFT",
                          os.path.join(os.path.dirname(__file__), "..", "build", "forklift"))
PG = None


def setUpModule():
    global PG
    PG = PgServer()


def tearDownModule():
    if PG is not None:
        PG.close()


def scalar(query):
    return PG.sql(query).strip()


def wait_for(predicate, what, timeout=30):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def gone(pid):
    """The process has exited (a zombie counts: it runs no more)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def tagged(tag):
    """Live PIDs whose environment holds LOAD_TRANSFORM_TEST_TAG=tag (zombies excluded)."""
    found = []
    want = f"LOAD_TRANSFORM_TEST_TAG={tag}".encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if want in f.read().split(b"\0") and not gone(int(pid)):
                    found.append(int(pid))
        except OSError:
            pass
    return found


# Input: id,price,qty; the transforms below write id,notional (price * qty).
def input_lines(n):
    return ["id,price,qty"] + [f"{i},{i % 97 + 1},{i % 13 + 1}" for i in range(n)]


def notional(i):
    return (i % 97 + 1) * (i % 13 + 1)


NOTIONAL_AWK = "awk -F, 'NR==1 {print \"id,notional\"; next} {print $1 \",\" $2*$3}'"


class TransformTestBase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="forklift-transform-test-")
        self.journal = os.path.join(self.dir, "journal.db")
        self.env = dict(os.environ, FORKLIFT_JOURNAL=self.journal)
        self.schema = "x_" + re.sub(r"[^a-z0-9_]", "_", self._testMethodName[5:].lower())[:50]
        PG.sql(f"drop schema if exists {self.schema} cascade; create schema {self.schema}")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, lines):
        with open(self.path(name), "w") as f:
            f.write("\n".join(lines) + "\n")
        return self.path(name)

    def script(self, name, body, executable=True):
        p = self.write(name, ["#!/bin/sh", body])
        if executable:
            os.chmod(p, os.stat(p).st_mode | stat.S_IXUSR)
        return p

    def table(self, name, cols="id bigint primary key, notional bigint"):
        PG.sql(f"create table {self.schema}.{name} ({cols})")
        return f"{self.schema}.{name}"

    def load_args(self, src, table, *args):
        return ["load", src, "--to", PG.dsn(), "--table", table, "--journal", self.journal,
                "--progress", "none", *args]

    def load(self, src, table, *args, timeout=60):
        p = subprocess.run([FORKLIFT, *self.load_args(src, table, *args)], capture_output=True,
                           env=self.env, cwd=self.dir, timeout=timeout, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def rows(self, table):
        return PG.sql(f"select id, notional from {table} order by id")

    def ledger(self, cols="chunk, first_line, last_line, rows, rejected, checksum"):
        return PG.sql(f"select {cols} from {self.schema}.forklift_load_chunks order by chunk")

    def dlq(self, load_id):
        p = subprocess.run([FORKLIFT, "dlq", "show", load_id, "--journal", self.journal],
                           capture_output=True, env=self.env, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.decode().splitlines()[1:]

    def load_id(self, err):
        m = re.search(r"^load (\S+) ", err, re.M)
        self.assertIsNotNone(m, err)
        return m.group(1)


class TransformColumnsTest(TransformTestBase):
    def test_output_columns_differ_from_the_input_and_chunks_keep_their_identity(self):
        src = self.write("in.csv", input_lines(1000))
        table = self.table("t")
        rc, _, err = self.load(src, table, "--chunk-rows", "100", "--transform", NOTIONAL_AWK)
        self.assertEqual(rc, 0, err)
        got = self.rows(table).splitlines()
        self.assertEqual(got, [f"{i}\t{notional(i)}" for i in range(1000)])
        # The same file loaded as it is, into a table of the input's columns: the ledger's
        # chunks (numbers, lines, rows, checksums) are the transformed load's.
        transformed = self.ledger()
        PG.sql(f"delete from {self.schema}.forklift_load_chunks")
        plain = self.table("plain", "id bigint, price bigint, qty bigint")
        rc, _, err = self.load(src, plain, "--chunk-rows", "100")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.ledger(), transformed)
        self.assertEqual(len(transformed.splitlines()), 10)

    def test_a_command_that_cannot_run_is_refused_before_anything_is_written(self):
        src = self.write("in.csv", input_lines(10))
        table = self.table("t")
        not_executable = self.script("t.sh", "cat", executable=False)
        for command, says in [(not_executable, "status 126 (not found or not executable)"),
                              ("./no-such-transform", "status 127 (not found or not executable)"),
                              ("exit 1", "exited with status 1 when given the input's header")]:
            rc, out, err = self.load(src, table, "--transform", command)
            self.assertEqual(rc, 2, err)
            self.assertIn(f"--transform '{command}': ", err)
            self.assertIn(says, err)
            self.assertIn("nothing loaded", err)
        # Nothing written: no ledger table, no row, no run in the journal.
        self.assertEqual(scalar(f"select to_regclass('{self.schema}.forklift_load_chunks') "
                                "is null"), "t")
        self.assertEqual(scalar(f"select count(*) from {table}"), "0")
        self.assertFalse(os.path.exists(self.journal))

    def test_options_without_a_transform_are_refused(self):
        src = self.write("in.csv", input_lines(10))
        table = self.table("t")
        rc, _, err = self.load(src, table, "--cpu-workers", "2")
        self.assertEqual(rc, 2)
        self.assertIn("--cpu-workers 2: runs transforms at once, and there is no --transform", err)
        rc, _, err = self.load(src, table, "--transform", "cat", "--transform-timeout", "soon")
        self.assertEqual(rc, 2)
        self.assertIn("--transform-timeout", err)


class TransformFailureTest(TransformTestBase):
    def failing_case(self, body, extra, reason):
        """Chunk 2 (ids 200-299) fails through `body` (a script given the chunk on stdin);
        the others load. Returns the dead letters."""
        src = self.write("in.csv", input_lines(500))
        table = self.table("t")
        t = self.script("t.sh", body)
        rc, _, err = self.load(src, table, "--chunk-rows", "100", "--transform", t, *extra)
        self.assertEqual(rc, 3, err)  # the load finished, some rows were rejected
        ids = [int(r.split("\t")[0]) for r in self.rows(table).splitlines()]
        self.assertEqual(ids, [i for i in range(500) if not 200 <= i < 300])
        # Every chunk is in the ledger, the failed one with its rows rejected: a rerun
        # does not redo it.
        self.assertEqual(self.ledger("chunk, rows, rejected").splitlines(),
                         ["0\t100\t0", "1\t100\t0", "2\t0\t100", "3\t100\t0", "4\t100\t0"])
        letters = self.dlq(self.load_id(err))
        self.assertEqual(len(letters), 100)
        self.assertIn(",202,", letters[0])  # source line of id 200 (the header is line 1)
        for letter in letters:
            self.assertIn(reason, letter)
        rc, _, err = self.load(src, table, "--chunk-rows", "100", "--transform", t, *extra)
        self.assertEqual(rc, 0, err)
        self.assertIn("400 already loaded (resumed)", err)  # rows written; 100 rejected
        self.assertIn("0 chunks committed, 5 skipped", err)
        return letters

    # A transform that reads the whole chunk first (so that it fails on content).
    PRELUDE = 'in=$(cat); first=$(printf "%s\\n" "$in" | sed -n 2p | cut -d, -f1); '

    def test_a_failing_transform_dead_letters_its_chunk_with_its_stderr_tail(self):
        self.failing_case(self.PRELUDE + 'if [ "$first" = 200 ]; then '
                          'echo "cannot price id $first" >&2; exit 1; fi; '
                          'printf "%s\\n" "$in" | ' + NOTIONAL_AWK, [],
                          "transform exited with status 1; stderr: cannot price id 200")

    def test_a_transform_past_its_timeout_is_killed_and_dead_lettered(self):
        pidfile = self.path("sleeper.pid")
        letters = self.failing_case(
            self.PRELUDE + f'if [ "$first" = 200 ]; then sleep 300 & echo $! > {pidfile}; '
            'wait; fi; printf "%s\\n" "$in" | ' + NOTIONAL_AWK,
            ["--transform-timeout", "1s"], "transform timed out after 1")
        self.assertIn("--transform-timeout", letters[0])
        # The whole process group went: the background sleep too.
        with open(pidfile) as f:
            pid = int(f.read())
        wait_for(lambda: gone(pid), "the sleeper to end")

    def test_malformed_output_dead_letters_its_chunk(self):
        self.failing_case(self.PRELUDE + 'printf "%s\\n" "$in" | ' + NOTIONAL_AWK +
                          ' | if [ "$first" = 200 ]; then sed "3s/$/,extra/"; else cat; fi', [],
                          "transform wrote malformed CSV: output line 3: expected 2 fields, "
                          "found 3")

    def test_dlq_retry_of_a_transformed_load_is_refused(self):
        # Its letters are input rows: retry would load them untransformed.
        src = self.write("in.csv", input_lines(10))
        table = self.table("t")
        t = self.script("t.sh", "read h; echo id,notional; if read x; then exit 1; fi")
        rc, _, err = self.load(src, table, "--transform", t)
        self.assertEqual(rc, 1, err)  # every row rejected: nothing of the input loaded
        load_id = self.load_id(err)
        self.assertEqual(len(self.dlq(load_id)), 10)
        p = subprocess.run([FORKLIFT, "dlq", "retry", load_id, "--journal", self.journal],
                           capture_output=True, env=self.env, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"ran --transform", p.stderr)
        self.assertEqual(scalar(f"select count(*) from {table}"), "0")


class TransformOrderTest(TransformTestBase):
    def test_cpu_workers_run_transforms_at_once_and_chunks_commit_in_input_order(self):
        src = self.write("in.csv", input_lines(900))
        table = self.table("t")
        log = self.path("events.log")
        # Chunk k's transform (k = first id / 100) logs its start and end; chunk 0 ends only
        # once chunk 2's has, so they run at once and finish out of order.
        t = self.script("t.sh", 'in=$(cat); first=$(printf "%s\\n" "$in" | sed -n 2p | '
                        'cut -d, -f1); [ -n "$first" ] || { echo id,notional; exit 0; }; '
                        f'k=$(( first / 100 )); echo "start $k" >> {log}; '
                        f'if [ $k = 0 ]; then n=0; while [ ! -e {self.dir}/done-2 ]; do '
                        'n=$((n+1)); [ $n -lt 600 ] || exit 5; sleep 0.05; done; fi; '
                        'printf "%s\\n" "$in" | ' + NOTIONAL_AWK + f'; echo "end $k" >> {log}; '
                        f'touch {self.dir}/done-$k')
        rc, _, err = self.load(src, table, "--chunk-rows", "100", "--workers", "1",
                               "--cpu-workers", "3", "--transform", t)
        self.assertEqual(rc, 0, err)
        with open(log) as f:
            events = f.read().split("\n")
        self.assertLess(events.index("end 2"), events.index("end 0"))
        self.assertLess(events.index("start 2"), events.index("end 0"))
        # One writer: transaction ids follow the commit order, which is the input's.
        by_commit = PG.sql(f"select chunk from {self.schema}.forklift_load_chunks "
                           "order by xmin::text::bigint").split()
        self.assertEqual(by_commit, [str(i) for i in range(9)])
        self.assertEqual(scalar(f"select count(*) from {table}"), "900")

    def test_upsert_partitions_commit_in_input_order(self):
        # Ids repeat, each time with another price: the last row of an id must win, as it
        # does without a transform, whatever order the transforms end in.
        lines = ["id,price,qty"] + [f"{i % 50},{i},1" for i in range(1000)]
        src = self.write("in.csv", lines)
        table = self.table("t")
        t = self.script("t.sh", 'in=$(cat); case "$(printf "%s\\n" "$in" | sed -n 2p)" in '
                        '0,0,1) sleep 0.3;; esac; printf "%s\\n" "$in" | ' + NOTIONAL_AWK)
        rc, _, err = self.load(src, table, "--chunk-rows", "25", "--workers", "2",
                               "--cpu-workers", "3", "--mode", "upsert", "--key", "id",
                               "--transform", t)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.rows(table).splitlines(),
                         [f"{i}\t{950 + i}" for i in range(50)])


class TransformKillTest(TransformTestBase):
    def test_a_sigkilled_loads_transforms_end_even_those_that_outlive_stdin(self):
        # Chunks from id 400 on start a transform that would outlive forklift: its shell
        # ignores SIGTERM and waits for a child of its group and for one that left it
        # (setsid), none of which reads stdin. forklift is then SIGKILLed: its watchdog must
        # end the group (TERM, then KILL) and sweep the escaped one by its environment mark.
        src = self.write("in.csv", input_lines(1000))
        pids = self.path("pids")
        os.mkdir(pids)
        t = self.script("t.sh", 'in=$(cat); first=$(printf "%s\\n" "$in" | sed -n 2p | '
                        'cut -d, -f1); if [ "$first" -ge 400 ]; then trap "" TERM; '
                        f'sleep 3600 & echo $! > {pids}/child.$$; '
                        f'setsid sleep 3600 & echo $! > {pids}/escaped.$$; '
                        f'echo $$ > {pids}/shell.$$; wait; wait; fi; '
                        'printf "%s\\n" "$in" | ' + NOTIONAL_AWK)
        tag = f"{os.getpid()}-{self._testMethodName}"
        env = dict(self.env, LOAD_TRANSFORM_TEST_TAG=tag)
        table = self.table("t")
        p = subprocess.Popen([FORKLIFT, *self.load_args(src, table, "--chunk-rows", "200",
                                                        "--cpu-workers", "2", "--transform", t)],
                             env=env, cwd=self.dir, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def recorded():
            return [int(open(os.path.join(pids, f)).read())
                    for f in os.listdir(pids) if os.path.getsize(os.path.join(pids, f)) > 0]
        # Two chunks (ids 400.. and 600..) stall at once: 3 processes each.
        wait_for(lambda: p.poll() is not None or len(recorded()) >= 6, "6 stalled processes")
        self.assertIsNone(p.poll(), "the load ended before its transforms stalled")
        stalled = recorded()
        self.assertTrue(all(not gone(pid) for pid in stalled), stalled)
        p.send_signal(signal.SIGKILL)
        self.assertEqual(p.wait(timeout=30), -signal.SIGKILL)
        p.stderr.close()
        wait_for(lambda: all(gone(pid) for pid in stalled), "the stalled transforms to end")
        # Nothing the load started is left: no process carries the test's tag (the
        # watchdog and its sweep included).
        wait_for(lambda: tagged(tag) == [], "every process of the killed load to end")

    def test_sigkill_mid_load_then_resume_equals_an_uninterrupted_load(self):
        src = self.write("in.csv", input_lines(6000))
        gate = self.path("gate")
        # Chunks from id 3000 on wait for the gate file (or exit when forklift is gone),
        # so the first run is killed with a known part committed.
        t = self.script("t.sh", 'in=$(cat); first=$(printf "%s\\n" "$in" | sed -n 2p | '
                        'cut -d, -f1); if [ "$first" -ge 3000 ]; then '
                        f'while [ ! -e {gate} ]; do kill -0 $PPID 2>/dev/null || exit 1; '
                        'sleep 0.05; done; fi; printf "%s\\n" "$in" | ' + NOTIONAL_AWK)
        args = ["--chunk-rows", "200", "--workers", "2", "--cpu-workers", "2", "--transform", t]
        table = self.table("t")
        p = subprocess.Popen([FORKLIFT, *self.load_args(src, table, *args)], env=self.env,
                             cwd=self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)

        def committed():
            return int(scalar(f"select count(*) from pg_tables where schemaname = "
                              f"'{self.schema}' and tablename = 'forklift_load_chunks'")) and \
                int(scalar(f"select count(*) from {self.schema}.forklift_load_chunks"))
        wait_for(lambda: p.poll() is not None or committed() >= 15, "15 chunks committed")
        self.assertIsNone(p.poll(), "the load ended before the gate")
        p.send_signal(signal.SIGKILL)
        self.assertEqual(p.wait(timeout=30), -signal.SIGKILL)
        p.stderr.close()
        wait_for(lambda: int(scalar("select count(*) from pg_stat_activity where "
                                    "application_name = 'forklift'")) == 0,
                 "the killed load's sessions to end")
        done_before = committed()
        self.assertGreaterEqual(done_before, 15)
        self.assertLess(done_before, 30)
        open(gate, "w").close()
        rc, _, err = self.load(src, table, *args)
        self.assertEqual(rc, 0, err)
        self.assertIn(f"{done_before * 200} already loaded (resumed)", err)
        ref = self.table("ref")
        rc, _, err = self.load(src, ref, *args)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.rows(table), self.rows(ref))
        self.assertEqual(scalar(f"select count(*) from {table}"), "6000")


if __name__ == "__main__":
    unittest.main()
