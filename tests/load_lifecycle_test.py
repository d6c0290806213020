#!/usr/bin/env python3
"""End-to-end tests of `forklift load`'s table lifecycle and dialect options, against the
fixture's PostgreSQL and SQLite files: --truncate and --replace under SIGKILL (a resume
never empties the table again; the old table stays readable and untouched until the swap),
--mode insert-ignore's counts, --max-errors N%.

Run by ctest with FORKLIFT=<path to binary>; alone:
    FORKLIFT=build/forklift python3 tests/load_lifecycle_test.py -v
"""
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg_fixture import PgServer, PgServerError  # noqa: E402

FORKLIFT = os.environ.get("FORKLIFT", os.path.join(os.path.dirname(__file__), "..", "build", "forklift"))

PG = None
DATA = None
BIG_ROWS = 100_000  # 100 chunks of 1000: a kill lands mid-load on any machine
BIG = None          # path of the big file: id,name,qty


def write(path, text, mode="w"):
    with open(path, mode, **({} if "b" in mode else {"newline": ""})) as f:
        f.write(text)
    return path


def setUpModule():
    global PG, DATA, BIG
    DATA = tempfile.mkdtemp(prefix="forklift-lifecycle-data-")
    PG = PgServer()
    BIG = write(os.path.join(DATA, "big.csv"),
                "id,name,qty\n" + "".join(f"{i},name {i},{i % 977}\n" for i in range(BIG_ROWS)))


def tearDownModule():
    if PG is not None:
        PG.close()
    if DATA:
        shutil.rmtree(DATA, ignore_errors=True)


def scalar(query):
    return PG.sql(query).strip()


def note(msg):
    print(f"\n  note: {msg}", file=sys.stderr, flush=True)


def wait_for(predicate, what, timeout=30):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Base(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="forklift-lifecycle-test-")
        self.journal = os.path.join(self.dir, "journal.db")
        self.env = dict(os.environ, FORKLIFT_JOURNAL=os.path.join(self.dir, "env-journal.db"))
        self.schema = "l_" + re.sub(r"[^a-z0-9_]", "_", self._testMethodName[5:].lower())[:50]
        PG.sql(f"drop schema if exists {self.schema} cascade; create schema {self.schema}")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def load(self, *args, stdin=None, timeout=60):
        p = subprocess.run([FORKLIFT, "load", *args, "--journal", self.journal],
                           capture_output=True, env=self.env, cwd=self.dir, timeout=timeout,
                           input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def load_json(self, *args, expect_rc=0, **kw):
        rc, out, err = self.load(*args, "--json", **kw)
        self.assertEqual(rc, expect_rc, f"stdout: {out}\nstderr: {err}")
        return json.loads(out.splitlines()[0]), err

    def start_load(self, *args):
        err = open(os.path.join(self.dir, f"bg-{time.monotonic_ns()}.err"), "w+b")
        p = subprocess.Popen([FORKLIFT, "load", *args, "--journal", self.journal],
                             stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                             env=self.env, cwd=self.dir)

        def cleanup():
            if p.poll() is None:
                p.kill()
                p.wait()
            err.close()
        self.addCleanup(cleanup)
        return p

    def kill_when(self, p, predicate, what):
        """SIGKILLs p once predicate() holds; True when it was still running then."""
        wait_for(lambda: p.poll() is not None or predicate(), what)
        if p.poll() is None:
            p.kill()
        killed = p.wait(timeout=30) == -signal.SIGKILL
        # A COMMIT the killed client had sent still commits: wait for its sessions to end.
        wait_for(lambda: int(scalar("select count(*) from pg_stat_activity "
                                    "where application_name = 'forklift'")) == 0,
                 "the killed load's sessions to end")
        return killed

    # PostgreSQL helpers

    def pg_table(self, name, extra=""):
        PG.sql(f"create table {self.schema}.{name} (id bigint primary key, name text not null, "
               f"qty int{extra})")
        return f"{self.schema}.{name}"

    def ledger(self, what="coalesce(sum(rows), 0)", where="chunk >= 0"):
        try:
            return int(scalar(f"select {what} from {self.schema}.forklift_load_chunks "
                              f"where {where}"))
        except PgServerError:
            return 0

    def count(self, table):
        return int(scalar(f"select count(*) from {table}"))

    def assert_big_loaded(self, table):
        self.assertEqual(scalar(f"select count(*), sum(id), sum(qty), count(distinct name) "
                                f"from {table}"),
                         "\t".join(map(str, (BIG_ROWS, BIG_ROWS * (BIG_ROWS - 1) // 2,
                                             sum(i % 977 for i in range(BIG_ROWS)), BIG_ROWS))))

    # SQLite helpers

    def sqlite_db(self, ddl):
        path = os.path.join(self.dir, "t.db")
        with sqlite3.connect(path) as db:
            db.executescript(ddl)
        return path

    @staticmethod
    def sq(path, query):
        with sqlite3.connect(path) as db:
            return db.execute(query).fetchall()


# --- --truncate ------------------------------------------------------------------------------

class TruncateTest(Base):
    def test_pg_truncate_under_sigkill_empties_once_and_resume_equals_an_uninterrupted_load(self):
        table = self.pg_table("t")
        PG.sql(f"insert into {table} select -g, 'old', 0 from generate_series(1, 500) g")
        args = [BIG, "--to", PG.dsn(), "--table", table, "--truncate", "--chunk-rows", "1000",
                "--load-id", "trunc"]
        p = self.start_load(*args)
        killed = self.kill_when(p, lambda: self.ledger("count(*)") >= 3, "3 committed chunks")
        committed = self.ledger()
        if killed:
            self.assertLess(committed, BIG_ROWS)
        else:
            note(f"{self.id()}: the kill came after the load had finished")
        # The old rows went with the TRUNCATE, whose marker committed with it.
        self.assertEqual(self.count(f"{table} where name = 'old'"), 0)
        self.assertEqual(self.count(table), committed, "table rows vs ledger rows")
        self.assertEqual(self.ledger("count(*)", "chunk = -1"), 1)
        # The resume must not empty the table again: it skips the committed chunks, whose
        # rows would be gone if it did.
        s, err = self.load_json(*args)
        self.assertEqual(s["status"], "succeeded", err)
        self.assertEqual(s["rows_skipped"], committed)
        self.assertEqual(s["rows_loaded"] + s["rows_skipped"], BIG_ROWS)
        self.assert_big_loaded(table)
        self.assertEqual(self.ledger("count(*)", "chunk = -1"), 1, "one truncate marker")
        # Rows added after the load are not emptied by a rerun of the finished load either.
        PG.sql(f"insert into {table} values (-1, 'after', 1)")
        s, _ = self.load_json(*args)
        self.assertEqual((s["rows_loaded"], s["rows_skipped"]), (0, BIG_ROWS))
        self.assertEqual(self.count(table), BIG_ROWS + 1)

    def test_truncate_refuses_a_load_id_that_committed_chunks_without_it(self):
        table = self.pg_table("t")
        small = write(os.path.join(self.dir, "s.csv"), "id,name,qty\n1,a,1\n2,b,2\n")
        s, _ = self.load_json(small, "--to", PG.dsn(), "--table", table, "--load-id", "x")
        self.assertEqual(s["rows_loaded"], 2)
        rc, _, err = self.load(small, "--to", PG.dsn(), "--table", table, "--load-id", "x",
                               "--truncate")
        self.assertEqual(rc, 2, err)
        self.assertIn("--truncate", err)
        self.assertIn("without --truncate", err)
        self.assertEqual(self.count(table), 2, "nothing emptied")

    def test_truncate_and_replace_together_are_refused(self):
        table = self.pg_table("t")
        rc, _, err = self.load(BIG, "--to", PG.dsn(), "--table", table, "--truncate", "--replace")
        self.assertEqual(rc, 2, err)
        self.assertIn("--truncate and --replace", err)

    def test_sqlite_truncate_under_sigkill(self):
        db = self.sqlite_db("create table t (id integer primary key, name text not null, qty int);"
                            "insert into t values (-1, 'old', 0), (-2, 'old', 0);")
        args = [BIG, "--to", f"sqlite:{db}", "--table", "t", "--truncate", "--chunk-rows", "1000"]
        p = self.start_load(*args)

        def chunks():
            try:
                return self.sq(db, "select count(*) from forklift_load_chunks where chunk >= 0")[0][0]
            except sqlite3.OperationalError:
                return 0
        wait_for(lambda: p.poll() is not None or chunks() >= 3, "3 committed chunks")
        p.kill()
        if p.wait() != -signal.SIGKILL:
            note(f"{self.id()}: the kill came after the load had finished")
        committed = self.sq(db, "select coalesce(sum(rows), 0) from forklift_load_chunks "
                                "where chunk >= 0")[0][0]
        self.assertEqual(self.sq(db, "select count(*) from t")[0][0], committed)
        self.assertEqual(self.sq(db, "select count(*) from t where name = 'old'")[0][0], 0)
        s, err = self.load_json(*args)
        self.assertEqual(s["rows_skipped"], committed, err)
        self.assertEqual(self.sq(db, "select count(*), sum(id) from t")[0],
                         (BIG_ROWS, BIG_ROWS * (BIG_ROWS - 1) // 2))
        self.assertEqual(self.sq(db, "select count(*) from forklift_load_chunks "
                                     "where chunk = -1")[0][0], 1)


# --- --replace ------------------------------------------------------------------------------

OLD_ROWS = 300


class ReplaceTest(Base):
    def old_table(self):
        table = self.pg_table("t", ", unique (name)")
        PG.sql(f"insert into {table} select -g, 'old ' || g, g from generate_series(1, {OLD_ROWS}) g;"
               f"create index t_qty on {table} (qty)")
        return table

    def assert_old(self, table):
        self.assertEqual(scalar(f"select count(*), sum(id), min(name) from {table}"),
                         f"{OLD_ROWS}\t{-OLD_ROWS * (OLD_ROWS + 1) // 2}\told 1")

    def test_pg_replace_under_sigkill_keeps_the_old_table_until_the_swap(self):
        table = self.old_table()
        args = [BIG, "--to", PG.dsn(), "--table", table, "--replace", "--chunk-rows", "1000",
                "--load-id", "repl"]
        p = self.start_load(*args)
        # While the load runs, readers see the old table, whole.
        killed = self.kill_when(p, lambda: self.ledger("count(*)") >= 3, "3 committed chunks")
        self.assertTrue(killed, "the load finished before 3 of its 100 chunks were seen")
        self.assert_old(table)
        shadow = scalar(f"select relname from pg_class c join pg_namespace n on n.oid = "
                        f"relnamespace where nspname = '{self.schema}' and relname like "
                        f"'forklift_shadow_%' and relkind = 'r'")
        committed = self.ledger()
        self.assertEqual(self.count(f"{self.schema}.{shadow}"), committed, "shadow vs ledger")
        # A second kill, during the resume: the shadow goes on, the old table stays.
        p = self.start_load(*args)
        self.kill_when(p, lambda: self.ledger() > committed, "the resume's first chunk")
        self.assert_old(table)
        committed = self.ledger()
        s, err = self.load_json(*args)
        self.assertEqual(s["status"], "succeeded", err)
        self.assertTrue(s["replaced"])
        self.assertEqual(s["rows_skipped"], committed, "the resume continued the shadow")
        self.assertEqual(s["rows_loaded"] + s["rows_skipped"], BIG_ROWS)
        self.assert_big_loaded(table)
        self.assertEqual(self.count(f"pg_class where relname = '{shadow}'"), 0, "shadow renamed")
        # The table kept its indexes and constraints (LIKE ... INCLUDING ALL).
        self.assertEqual(scalar(f"select count(*) from pg_index where indrelid = "
                                f"'{table}'::regclass"), "3")
        # A rerun of the finished load changes nothing and swaps nothing.
        s, _ = self.load_json(*args)
        self.assertEqual((s["rows_loaded"], s["rows_skipped"], s["replaced"]), (0, BIG_ROWS, False))
        self.assert_big_loaded(table)

    def test_pg_a_failed_load_leaves_the_old_table(self):
        table = self.old_table()
        bad = write(os.path.join(self.dir, "bad.csv"),
                    "id,name,qty\n" + "".join(f"{i},n{i},bad\n" for i in range(100)))
        s, _ = self.load_json(bad, "--to", PG.dsn(), "--table", table, "--replace",
                              "--max-errors", "5", expect_rc=1)
        self.assertFalse(s["replaced"])
        self.assert_old(table)

    def test_pg_a_view_on_the_table_is_refused_before_anything_is_written(self):
        table = self.old_table()
        PG.sql(f"create view {self.schema}.v as select id from {table}")
        rc, _, err = self.load(BIG, "--to", PG.dsn(), "--table", table, "--replace")
        self.assertEqual(rc, 2, err)
        self.assertIn(f"view {self.schema}.v", err)
        self.assert_old(table)
        self.assertEqual(self.count(f"pg_class where relname like 'forklift_shadow_%' and "
                                    f"relnamespace = '{self.schema}'::regnamespace"), 0)

    def test_pg_upsert_with_replace_and_a_serial_column(self):
        PG.sql(f"create table {self.schema}.s (n serial, id bigint primary key, name text, qty int)")
        PG.sql(f"insert into {self.schema}.s (id, name, qty) values (-1, 'old', 0)")
        src = write(os.path.join(self.dir, "u.csv"), "id,name,qty\n1,a,1\n2,b,2\n1,c,3\n")
        s, err = self.load_json(src, "--to", PG.dsn(), "--table", f"{self.schema}.s", "--replace",
                                "--mode", "upsert", "--key", "id")
        self.assertTrue(s["replaced"], err)
        self.assertEqual(scalar(f"select string_agg(id || name, ',' order by id) from "
                                f"{self.schema}.s"), "1c,2b")
        # The serial's sequence moved to the new table and still serves it.
        PG.sql(f"insert into {self.schema}.s (id, name) values (9, 'z')")
        self.assertEqual(self.count(f"{self.schema}.s where n is not null"), 3)

    def test_sqlite_replace_under_sigkill(self):
        db = self.sqlite_db(
            "create table t (id integer primary key, name text not null unique, qty int);"
            "create index t_qty on t (qty);"
            "create view v as select count(*) as n from t;"
            "create table audit (n int); create trigger t_ins after insert on t "
            "begin insert into audit values (new.id); end;")
        with sqlite3.connect(db) as c:
            c.executemany("insert into t values (?, ?, ?)",
                          [(-i, f"old {i}", i) for i in range(1, OLD_ROWS + 1)])
            c.execute("delete from audit")
        args = [BIG, "--to", f"sqlite:{db}", "--table", "t", "--replace", "--chunk-rows", "1000"]
        p = self.start_load(*args)

        def chunks():
            try:
                return self.sq(db, "select count(*) from forklift_load_chunks where chunk >= 0")[0][0]
            except sqlite3.OperationalError:
                return 0
        wait_for(lambda: p.poll() is not None or chunks() >= 3, "3 committed chunks")
        p.kill()
        self.assertEqual(p.wait(), -signal.SIGKILL, "the load finished before the kill")
        self.assertEqual(self.sq(db, "select count(*), min(name) from t")[0], (OLD_ROWS, "old 1"))
        self.assertEqual(self.sq(db, "select n from v")[0][0], OLD_ROWS)
        committed = self.sq(db, "select sum(rows) from forklift_load_chunks where chunk >= 0")[0][0]
        s, err = self.load_json(*args)
        self.assertEqual((s["rows_skipped"], s["replaced"]), (committed, True), err)
        self.assertEqual(self.sq(db, "select count(*), sum(id) from t")[0],
                         (BIG_ROWS, BIG_ROWS * (BIG_ROWS - 1) // 2))
        self.assertEqual(self.sq(db, "select n from v")[0][0], BIG_ROWS, "the view reads the new t")
        names = {r[0] for r in self.sq(db, "select name from sqlite_schema where tbl_name = 't'")}
        self.assertIn("t_qty", names, "the index keeps its name")
        self.assertIn("t_ins", names, "the trigger is back")
        self.assertFalse([n for n in names if n.startswith("forklift_shadow")], names)
        # The trigger was not on the shadow: the loaded rows did not fire it.
        self.assertEqual(self.sq(db, "select count(*) from audit")[0][0], 0)


# --- --mode insert-ignore ------------------------------------------------------------------

class InsertIgnoreTest(Base):
    INPUT = ("id,name,qty\n"
             "1,new one,1\n"        # exists: duplicate
             "10,ten,10\n"
             "10,ten again,10\n"    # repeats a row of this chunk: duplicate
             "11,,x\n"              # bad qty: a dead letter, not a duplicate
             "12,twelve,12\n")

    def test_pg_duplicates_are_counted_apart_from_dead_letters(self):
        table = self.pg_table("t")
        PG.sql(f"insert into {table} values (1, 'one', 1)")
        src = write(os.path.join(self.dir, "in.csv"), self.INPUT)
        s, err = self.load_json(src, "--to", PG.dsn(), "--table", table,
                                "--mode", "insert-ignore", expect_rc=3)
        self.assertEqual((s["rows_read"], s["rows_loaded"], s["rows_duplicate"],
                          s["rows_rejected"]), (5, 2, 2, 1), err)
        self.assertEqual(s["mode"], "insert-ignore")
        self.assertEqual(scalar(f"select string_agg(id || ':' || name, ',' order by id) "
                                f"from {table}"), "1:one,10:ten,12:twelve")
        rc, out, err = self.load(src, "--to", PG.dsn(), "--table", table, "--mode",
                                 "insert-ignore", "--load-id", "again")
        self.assertEqual(rc, 3, err)
        self.assertIn("0 loaded", err)
        self.assertIn("4 duplicates skipped", err)

    def test_pg_all_duplicates_is_a_success(self):
        table = self.pg_table("t")
        PG.sql(f"insert into {table} values (1, 'one', 1)")
        src = write(os.path.join(self.dir, "in.csv"), "id,name,qty\n1,one,1\n")
        s, err = self.load_json(src, "--to", PG.dsn(), "--table", table,
                                "--mode", "insert-ignore")
        self.assertEqual((s["status"], s["rows_loaded"], s["rows_duplicate"]),
                         ("succeeded", 0, 1), err)

    def test_sqlite_duplicates_are_counted_apart_from_dead_letters(self):
        db = self.sqlite_db("create table t (id integer primary key, name text not null, "
                            "qty integer check (typeof(qty) = 'integer'));"
                            "insert into t values (1, 'one', 1);")
        src = write(os.path.join(self.dir, "in.csv"), self.INPUT.replace("11,,x", "11,eleven,x"))
        s, err = self.load_json(src, "--to", f"sqlite:{db}", "--table", "t",
                                "--mode", "insert-ignore", expect_rc=3)
        self.assertEqual((s["rows_loaded"], s["rows_duplicate"], s["rows_rejected"]),
                         (2, 2, 1), err)
        self.assertEqual(self.sq(db, "select id, name from t order by id"),
                         [(1, "one"), (10, "ten"), (12, "twelve")])

    def test_key_with_insert_ignore_is_refused(self):
        table = self.pg_table("t")
        rc, _, err = self.load(BIG, "--to", PG.dsn(), "--table", table, "--mode",
                               "insert-ignore", "--key", "id")
        self.assertEqual(rc, 2, err)
        self.assertIn("--key", err)


# --- --max-errors N% -----------------------------------------------------------------------

class MaxErrorsPercentTest(Base):
    def bad_every(self, n, rows):
        lines = ["id,name,qty"]
        for i in range(rows):
            lines.append(f"{i},n,{'bad' if i % n == n - 1 else i}")
        return write(os.path.join(self.dir, f"bad{n}.csv"), "\n".join(lines) + "\n")

    def test_under_the_percentage_finishes_with_status_3(self):
        table = self.pg_table("t")
        src = self.bad_every(50, 5000)  # 2 %
        s, err = self.load_json(src, "--to", PG.dsn(), "--table", table, "--max-errors", "5%",
                                "--chunk-rows", "500", expect_rc=3)
        self.assertEqual((s["status"], s["rows_rejected"], s["rows_loaded"]),
                         ("succeeded", 100, 4900), err)

    def test_over_the_percentage_stops_once_enough_rows_were_read(self):
        table = self.pg_table("t")
        src = self.bad_every(10, 20000)  # 10 %
        s, err = self.load_json(src, "--to", PG.dsn(), "--table", table, "--max-errors", "5%",
                                "--chunk-rows", "500", "--workers", "1", expect_rc=1)
        self.assertEqual(s["status"], "failed")
        self.assertIn("more than --max-errors 5%", s["error"])
        # Judged from the first 1000 committed rows on: it stops within a chunk of that.
        self.assertLessEqual(s["rows_loaded"] + s["rows_rejected"], 1500)
        self.assertGreaterEqual(s["rows_loaded"] + s["rows_rejected"], 1000)

    def test_the_first_bad_row_does_not_stop_a_load_at_100_percent(self):
        table = self.pg_table("t")
        src = write(os.path.join(self.dir, "first.csv"),
                    "id,name,qty\n0,n,bad\n" + "".join(f"{i},n,{i}\n" for i in range(1, 3000)))
        s, err = self.load_json(src, "--to", PG.dsn(), "--table", table, "--max-errors", "1%",
                                "--chunk-rows", "1", "--workers", "1", expect_rc=3)
        self.assertEqual((s["rows_rejected"], s["rows_loaded"]), (1, 2999), err)

    def test_a_small_file_is_judged_at_the_end(self):
        table = self.pg_table("t")
        src = write(os.path.join(self.dir, "small.csv"), "id,name,qty\n1,n,1\n2,n,bad\n")
        s, err = self.load_json(src, "--to", PG.dsn(), "--table", table, "--max-errors", "10%",
                                expect_rc=1)
        self.assertIn("finished, but 1 of 2 rows rejected", s["error"])
        self.assertEqual(self.count(table), 1, "committed rows stay")

    def test_bad_percentages_are_refused(self):
        table = self.pg_table("t")
        for value in ("101%", "-1%", "x%", "5%%", "abc"):
            rc, _, err = self.load(BIG, "--to", PG.dsn(), "--table", table, "--max-errors", value)
            self.assertEqual(rc, 2, f"{value}: {err}")
            self.assertIn("--max-errors", err)
        self.assertEqual(self.count(table), 0)



# --- stdin -----------------------------------------------------------------------------------

class StdinTest(Base):
    def jsonl(self, n):
        return "".join(json.dumps({"id": i, "name": f"name {i}", "qty": i % 977}) + "\n"
                       for i in range(n)).encode()

    def test_jsonl_from_stdin_loads_and_a_rerun_with_the_same_stream_skips_it(self):
        table = self.pg_table("t")
        data = self.jsonl(5000)
        args = ["-", "--format", "jsonl", "--load-id", "s1", "--to", PG.dsn(), "--table", table,
                "--chunk-rows", "1000"]
        s, err = self.load_json(*args, stdin=data)
        self.assertEqual((s["status"], s["rows_loaded"]), ("succeeded", 5000), err)
        self.assertEqual(scalar(f"select count(*), sum(id) from {table}"), f"5000\t{5000 * 4999 // 2}")
        s, err = self.load_json(*args, stdin=data)
        self.assertEqual((s["rows_loaded"], s["rows_skipped"]), (0, 5000), err)
        # Another stream under the same id is a changed source: refused, nothing written.
        rc, _, err = self.load(*args, stdin=self.jsonl(4999) + b'{"id": -1, "name": "x"}\n')
        self.assertEqual(rc, 1, err)
        self.assertIn("source changed", err)
        self.assertEqual(self.count(table), 5000)

    def test_jsonl_from_stdin_resumes_after_sigkill(self):
        table = self.pg_table("t")
        data = self.jsonl(BIG_ROWS)
        path = write(os.path.join(self.dir, "stream.jsonl"), data, "wb")
        args = ["-", "--format", "jsonl", "--load-id", "s2", "--to", PG.dsn(), "--table", table,
                "--chunk-rows", "1000"]
        with open(path, "rb") as f:  # stdin redirected from a file, as `< stream.jsonl`
            p = subprocess.Popen([FORKLIFT, "load", *args, "--journal", self.journal],
                                 stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env=self.env, cwd=self.dir)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        killed = self.kill_when(p, lambda: self.ledger("count(*)") >= 3, "3 committed chunks")
        committed = self.ledger()
        self.assertEqual(self.count(table), committed)
        if not killed:
            note(f"{self.id()}: the kill came after the load had finished")
        s, err = self.load_json(*args, stdin=data)
        self.assertEqual(s["rows_skipped"], committed, err)
        self.assert_big_loaded(table)

    def test_csv_from_stdin_needs_no_header(self):
        table = self.pg_table("t")
        s, err = self.load_json("-", "--format", "csv", "--no-header", "--load-id", "c1",
                                "--to", PG.dsn(), "--table", table, stdin=b"1,a,1\n2,b,2\n")
        self.assertEqual(s["rows_loaded"], 2, err)
        rc, _, err = self.load("-", "--format", "csv", "--load-id", "c2", "--to", PG.dsn(),
                               "--table", table, stdin=b"id,name,qty\n3,c,3\n")
        self.assertEqual(rc, 2, err)
        self.assertIn("--no-header", err)

    def test_stdin_without_load_id_or_format_is_refused_with_the_reason(self):
        table = self.pg_table("t")
        for args, why in ((["--format", "jsonl"], "needs --load-id"),
                          (["--load-id", "x"], "needs --format"),
                          (["--format", "jsonl", "--load-id", "x", BIG], "only input")):
            rc, _, err = self.load("-", *args, "--to", PG.dsn(), "--table", table, stdin=b"{}\n")
            self.assertEqual(rc, 2, err)
            self.assertIn(why, err)
        self.assertEqual(self.count(table), 0)


if __name__ == "__main__":
    unittest.main()
