#!/usr/bin/env python3
"""End-to-end tests of query sources: `forklift load --from DSN --query SQL`.

One throwaway PostgreSQL server (tests/pg_fixture.py) for the module: the source tables live
in schema `src`, each test loads into its own schema. SQLite sources and targets are files
made with Python's sqlite3. The centerpiece is resume by key under SIGKILL: a query load
killed mid-way and rerun must leave the target equal to the query's result (which is what an
uninterrupted load leaves: test_pg_to_pg), with and without partitions.

Run by ctest with FORKLIFT=<path to binary>; alone:
    FORKLIFT=build/forklift python3 tests/load_query_test.py -v
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
from pg_fixture import PgServer  # noqa: E402

FORKLIFT = os.environ.get("FORKLIFT", os.path.join(os.path.dirname(__file__), "..", "build", "forklift"))

PG = None
N_SMALL = 3000       # src.small: every kind of value, NULLs, quotes, commas, newlines
N_BIG = 300_000      # src.big: for the kills (300 chunks of 1000 rows)
COLS = "id bigint primary key, sym text, day date, price float8, note text"
SELECT = "select id, sym, day, price, note from src.{}"


def scalar(query):
    return PG.sql(query).strip()


def setUpModule():
    global PG
    PG = PgServer()
    PG.sql(f"""
        create schema src;
        create table src.small ({COLS});
        insert into src.small
          select i, 'S' || (i % 37), date '2020-01-01' + (i % 900), i / 8.0,
                 case when i % 11 = 0 then null
                      when i % 7 = 0 then 'a "quoted", comma' || chr(10) || 'and a newline'
                      when i % 5 = 0 then ''
                      else 'n' || i end
          from generate_series(1, {N_SMALL}) i;
        create table src.big ({COLS});
        insert into src.big
          select i, 'S' || (i % 200), date '2020-01-01' + (i % 900), i / 4.0, 'n' || i
          from generate_series(1, {N_BIG}) i;
        analyze src.big;
    """)


def tearDownModule():
    if PG is not None:
        PG.close()


class QueryLoadTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="forklift-loadq-test-")
        self.journal = os.path.join(self.dir, "journal.db")
        self.env = dict(os.environ, FORKLIFT_JOURNAL=self.journal)
        self.schema = "q_" + re.sub(r"[^a-z0-9_]", "_", self._testMethodName[5:].lower())[:50]
        PG.sql(f"drop schema if exists {self.schema} cascade; create schema {self.schema}")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def target(self, name="t", cols=COLS):
        PG.sql(f"create table {self.schema}.{name} ({cols})")
        return f"{self.schema}.{name}"

    def load(self, *args, timeout=120):
        p = subprocess.run([FORKLIFT, "load", *args, "--journal", self.journal], env=self.env,
                           capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def load_json(self, *args, expect_rc=0):
        rc, out, err = self.load(*args, "--json")
        self.assertEqual(rc, expect_rc, f"stdout: {out}\nstderr: {err}")
        return json.loads(out.splitlines()[0]), err

    def assert_same_as_source(self, target, source="src.small", where=""):
        """The target holds exactly the query's rows: nothing missing, nothing twice."""
        cols = "id, sym, day, price, note"
        diff = scalar(f"select (select count(*) from (select {cols} from {source} {where} except all "
                      f"select {cols} from {target}) a), (select count(*) from (select {cols} from "
                      f"{target} except all select {cols} from {source} {where}) b)")
        self.assertEqual(diff, "0\t0", f"rows missing / extra in {target}")

    def ledger(self, column="count(*)"):
        return scalar(f"select {column} from {self.schema}.forklift_load_chunks")

    def sqlite_source(self, n=N_SMALL, table="small"):
        """The rows of src.<table> in an SQLite file (its NULLs, quotes and newlines too)."""
        path = os.path.join(self.dir, "src.db")
        # As JSON, so that NULLs, quotes and newlines come through psql unchanged.
        rows = json.loads(PG.sql("select json_agg(json_build_array(id, sym, day, price, note) "
                                 f"order by id) from src.{table}"))
        db = sqlite3.connect(path)
        db.execute("create table s (id integer primary key, sym text, day text, price real, note text)")
        db.executemany("insert into s values (?, ?, ?, ?, ?)", [tuple(r) for r in rows[:n]])
        db.commit()
        db.close()
        return path

    # --- the paths ------------------------------------------------------------------------

    def test_pg_to_pg(self):
        t = self.target()
        s, err = self.load_json("--from", PG.dsn(), "--query", SELECT.format("small"), "--to",
                                PG.dsn(), "--table", t, "--chunk-rows", "500")
        self.assertEqual(s["status"], "succeeded", err)
        self.assertEqual(s["rows_loaded"], N_SMALL)
        self.assertEqual(s["chunks_committed"], 6)
        self.assert_same_as_source(t)
        # NULL stays NULL and the empty text stays empty text.
        self.assertEqual(scalar(f"select count(*) from {t} where note is null"),
                         scalar("select count(*) from src.small where note is null"))
        self.assertEqual(scalar(f"select count(*) from {t} where note = ''"),
                         scalar("select count(*) from src.small where note = ''"))
        self.assertEqual(self.ledger("string_agg(distinct source, ',')"), "query")

    def test_pg_to_sqlite(self):
        path = os.path.join(self.dir, "t.db")
        db = sqlite3.connect(path)
        db.execute("create table t (id integer primary key, sym text, day text, price real, note text)")
        db.commit()
        db.close()
        s, err = self.load_json("--from", PG.dsn(), "--query", SELECT.format("small"), "--to",
                                f"sqlite:{path}", "--table", "t", "--chunk-rows", "700",
                                "--resume-key", "id")
        self.assertEqual(s["rows_loaded"], N_SMALL, err)
        want = json.loads(PG.sql("select json_agg(json_build_array(id, sym, day::text, price, note) "
                                 "order by id) from src.small"))
        db = sqlite3.connect(path)
        got = [list(r) for r in db.execute("select id, sym, day, price, note from t order by id")]
        keys = db.execute("select last_key from forklift_load_chunks order by chunk").fetchall()
        db.close()
        self.assertEqual(got, want)
        self.assertEqual(keys[-1][0], f'"{N_SMALL}"', "the ledger records each chunk's last key")

    def test_sqlite_to_pg_with_partitions_and_resume(self):
        src = self.sqlite_source()
        t = self.target()
        args = ["--from", f"sqlite:{src}", "--query", "select id, sym, day, price, note from s;",
                "--to", PG.dsn(), "--table", t, "--chunk-rows", "400", "--resume-key", "id",
                "--partition-by", "sym", "--partitions", "3"]
        s, err = self.load_json(*args)
        self.assertEqual(s["rows_loaded"], N_SMALL, err)
        self.assert_same_as_source(t)
        sources = self.ledger("string_agg(distinct source, ',' order by source)")
        self.assertEqual(sources, "query partition 1/3,query partition 2/3,query partition 3/3")
        # A rerun reads after each partition's last key: nothing new, nothing twice.
        s, err = self.load_json(*args)
        self.assertEqual((s["rows_loaded"], s["rows_skipped"]), (0, N_SMALL), err)
        self.assertEqual(int(scalar(f"select count(*) from {t}")), N_SMALL)

    # --- resume by key --------------------------------------------------------------------

    def kill_when_committed(self, args, chunks):
        """Starts the load and SIGKILLs it once the ledger holds `chunks` chunks; asserts the
        kill landed before the load ended by itself."""
        p = subprocess.Popen([FORKLIFT, "load", *args, "--journal", self.journal], env=self.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        deadline = time.monotonic() + 60
        while p.poll() is None:
            self.assertLess(time.monotonic(), deadline, "no chunk committed in 60 s")
            try:
                if int(self.ledger()) >= chunks:
                    break
            except Exception:  # the ledger is not there yet
                pass
            time.sleep(0.01)
        self.assertIsNone(p.poll(), "the load ended before the kill: make the source bigger")
        p.kill()
        p.wait(timeout=30)
        deadline = time.monotonic() + 30  # the server ends the killed load's sessions
        while int(scalar("select count(*) from pg_stat_activity where application_name = "
                         "'forklift'")) > 0:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        committed = int(self.ledger())
        self.assertLess(committed, N_BIG // 1000, "killed mid-load")
        t_rows = int(scalar(f"select count(*) from {args[args.index('--table') + 1]}"))
        self.assertEqual(t_rows, int(self.ledger("coalesce(sum(rows), 0)")),
                         "rows and ledger rows commit together")

    def sigkill_case(self, extra, query=SELECT.format("big"), cols=COLS, source=None):
        t = self.target(cols=cols)
        args = ["--from", source or PG.dsn(), "--query", query, "--to", PG.dsn(), "--table",
                t, "--chunk-rows", "1000", "--workers", "4", "--resume-key", "id", *extra]
        self.kill_when_committed(args, 3)
        s, err = self.load_json(*args)
        self.assertEqual(s["status"], "succeeded", err)
        self.assertGreater(s["rows_skipped"], 0, "the rerun resumed")
        self.assertEqual(s["rows_loaded"] + s["rows_skipped"], N_BIG, err)
        self.assert_same_as_source(t, "src.big")
        # A rerun of the finished load reads after every partition's last key: nothing.
        s, err = self.load_json(*args)
        self.assertEqual((s["rows_loaded"], s["rows_skipped"]), (0, N_BIG), err)
        return t, args

    def test_sigkill_and_resume_by_key(self):
        t, args = self.sigkill_case([])
        self.assertTrue(self.ledger("bool_and(last_key is not null)") == "t")

    def test_sigkill_and_resume_by_key_with_range_partitions(self):
        self.sigkill_case(["--partition-by", "id", "--partitions", "3"])
        # An integer column splits by ranges of its min..max, which the ledger keeps.
        self.assertEqual(self.ledger("string_agg(distinct source, ';' order by source)"),
                         ";".join(f"query partition {p}/3 of id at 100001,200001" for p in (1, 2, 3)))

    def test_sigkill_and_resume_by_key_with_timestamptz_range_partitions(self):
        # A timestamptz column splits by ranges too; its bounds (ISO text with the offset)
        # are kept in the ledger and read back exactly by the rerun.
        query = ("select id, sym, day, price, note, timestamptz '2020-01-01 00:00:00+00' + "
                 "id * interval '17 minutes 3.25 seconds' as ts from src.big")
        self.sigkill_case(["--partition-by", "ts", "--partitions", "3"], query=query,
                          cols=COLS + ", ts timestamptz")
        sources = self.ledger("string_agg(distinct source, ';' order by source)").split(";")
        self.assertEqual(len(sources), 3, sources)
        bounds = [s.split(" of ts at ")[1] for s in sources]
        self.assertEqual(len(set(bounds)), 1, sources)
        b1, b2 = bounds[0].split(",")
        # Equal widths of min..max (ids 1 and 300000): at ids ~100000 and ~200000.
        step = 17 * 60 + 3.25  # seconds
        at = [float(scalar(f"select extract(epoch from timestamptz '{b}' - "
                           "timestamptz '2020-01-01 00:00+00')")) / step for b in (b1, b2)]
        self.assertAlmostEqual(at[0], 100000, delta=1, msg=bounds)
        self.assertAlmostEqual(at[1], 200000, delta=1, msg=bounds)
        self.assertEqual(scalar(f"select count(*) from {self.schema}.t where ts is distinct from "
                                "timestamptz '2020-01-01 00:00:00+00' + id * interval "
                                "'17 minutes 3.25 seconds'"), "0")

    def test_sigkill_and_resume_by_key_with_sqlite_integer_range_partitions(self):
        # An SQLite column of INTEGER affinity splits by ranges of its min..max (it used to
        # be hashed: each partition scanned the whole table).
        src = self.sqlite_source(n=N_BIG, table="big")
        self.sigkill_case(["--partition-by", "id", "--partitions", "3"],
                          query="select id, sym, day, price, note from s", source=f"sqlite:{src}")
        self.assertEqual(self.ledger("string_agg(distinct source, ';' order by source)"),
                         ";".join(f"query partition {p}/3 of id at 100001,200001" for p in (1, 2, 3)))

    def test_sigkill_and_resume_by_key_with_hash_partitions(self):
        self.sigkill_case(["--partition-by", "sym", "--partitions", "2"])
        self.assertEqual(self.ledger("count(distinct source)"), "2")

    def test_a_gap_in_the_ledger_is_read_again_and_later_chunks_verified(self):
        """What a kill leaves when chunks commit out of order, made exactly: chunks 4 and 7
        of 10 missing (ledger row and rows), 5, 6, 8 and 9 committed after them."""
        PG.sql(f"create table {self.schema}.s as select * from src.small")
        t = self.target()
        args = ["--from", PG.dsn(), "--query", f"select id, sym, day, price, note from {self.schema}.s",
                "--to", PG.dsn(), "--table", t, "--chunk-rows", "300", "--resume-key", "id",
                "--workers", "1"]
        s, err = self.load_json(*args)
        self.assertEqual(s["chunks_committed"], 10, err)
        ledger = f"{self.schema}.forklift_load_chunks"
        PG.sql(f"delete from {ledger} where chunk in (4, 7); "
               f"delete from {t} where id between 1201 and 1500 or id between 2101 and 2400")
        s, err = self.load_json(*args)
        # Re-read from after chunk 3: 4 and 7 loaded, 5, 6, 8, 9 met again and skipped.
        self.assertEqual((s["rows_loaded"], s["rows_skipped"], s["chunks_skipped"]),
                         (600, 2400, 8), err)
        self.assert_same_as_source(t)
        self.assertEqual(self.ledger(), "10")
        # A committed chunk whose rows changed since is not resumed over.
        PG.sql(f"delete from {ledger} where chunk = 4; delete from {t} where id between 1201 and 1500; "
               f"update {self.schema}.s set price = price + 1 where id = 1700")
        rc, out, err = self.load(*args)
        self.assertEqual(rc, 1, err)
        self.assertIn("the query's result changed since load committed chunk 5", err)

    def test_incremental_rerun_reads_only_new_keys(self):
        PG.sql(f"create table {self.schema}.s as select * from src.small where id <= 1000")
        t = self.target()
        args = ["--from", PG.dsn(), "--query", f"select id, sym, day, price, note from {self.schema}.s",
                "--to", PG.dsn(), "--table", t, "--chunk-rows", "300", "--resume-key", "id"]
        s, err = self.load_json(*args)
        self.assertEqual(s["rows_loaded"], 1000, err)
        PG.sql(f"insert into {self.schema}.s select * from src.small where id > 1000")
        s, err = self.load_json(*args)
        self.assertEqual((s["rows_loaded"], s["rows_skipped"]), (N_SMALL - 1000, 1000), err)
        self.assert_same_as_source(t)

    def test_insert_rerun_without_resume_key_is_refused(self):
        t = self.target()
        args = ["--from", PG.dsn(), "--query", SELECT.format("small"), "--to", PG.dsn(),
                "--table", t]
        self.load_json(*args)
        rc, out, err = self.load(*args)
        self.assertEqual(rc, 2, err)
        self.assertIn("would insert them twice", err)
        self.assertIn("--resume-key", err)
        self.assertEqual(int(scalar(f"select count(*) from {t}")), N_SMALL, "nothing loaded twice")

    def test_upsert_rerun_without_resume_key_starts_over(self):
        t = self.target()
        args = ["--from", PG.dsn(), "--query", SELECT.format("small"), "--to", PG.dsn(),
                "--table", t, "--mode", "upsert", "--key", "id", "--chunk-rows", "1000"]
        self.load_json(*args)
        PG.sql("update src.small set price = price + 1 where id = 5")
        self.addCleanup(PG.sql, "update src.small set price = price - 1 where id = 5")
        s, err = self.load_json(*args)
        self.assertEqual(s["rows_loaded"], N_SMALL, err)
        self.assert_same_as_source(t)

    def test_second_sigint_interrupts_a_query_still_computing(self):
        t = self.target()
        p = subprocess.Popen([FORKLIFT, "load", "--from", PG.dsn(), "--query",
                              "select id, sym, day, price, note from src.small, "
                              "(select pg_sleep(60)) s", "--to", PG.dsn(), "--table", t,
                              "--journal", self.journal], env=self.env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        sleeping = ("select count(*) from pg_stat_activity where application_name = 'forklift' "
                    "and state = 'active' and query like 'COPY%pg_sleep%'")
        deadline = time.monotonic() + 30
        while scalar(sleeping) != "1":
            self.assertLess(time.monotonic(), deadline, "the source query never started")
            self.assertIsNone(p.poll())
            time.sleep(0.02)
        p.send_signal(signal.SIGINT)
        first = b""
        while b"reading no further" not in first:  # signals sent at once may merge into one
            line = p.stderr.readline()
            self.assertTrue(line, "forklift ended before taking the first SIGINT")
            first += line
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=20)  # not the 60 s the query would take
        self.assertEqual(p.returncode, 128 + signal.SIGINT, err)
        self.assertIn("cancelled", err.decode())
        deadline = time.monotonic() + 10
        while scalar(sleeping) != "0":
            self.assertLess(time.monotonic(), deadline, "the source query outlived the load")
            time.sleep(0.02)

    # --- bad input ------------------------------------------------------------------------

    def assert_refused(self, args, rc, *needles):
        self.refused = getattr(self, "refused", 0) + 1
        t = self.target(f"t{self.refused}")
        got_rc, out, err = self.load("--from", PG.dsn(), "--to", PG.dsn(), "--table", t, *args)
        self.assertEqual(got_rc, rc, err)
        for n in needles:
            self.assertIn(n, err)
        self.assertEqual(scalar(f"select count(*) from {t}"), "0", "nothing written")
        return err

    def test_query_errors_name_sqlstate_and_message(self):
        self.assert_refused(["--query", "select id from src.nope"], 2, "SQLSTATE 42P01",
                            'relation "src.nope" does not exist')
        self.assert_refused(["--query", "selec 1"], 2, "SQLSTATE 42601", "syntax error")

    def test_query_failing_midway_keeps_committed_chunks(self):
        t = self.target()
        rc, out, err = self.load("--from", PG.dsn(), "--query",
                                 "select id, sym, day, 1 / (2500 - id)::float8 as price, note "
                                 "from src.small order by id", "--to", PG.dsn(), "--table", t,
                                 "--chunk-rows", "500", "--workers", "1")
        self.assertEqual(rc, 1, err)
        self.assertIn("SQLSTATE 22012", err)
        self.assertIn("division by zero", err)
        self.assertEqual(int(scalar(f"select count(*) from {t}")),
                         int(self.ledger("coalesce(sum(rows), 0)")))

    def test_unknown_columns_are_refused_before_writing(self):
        self.assert_refused(["--query", SELECT.format("small"), "--partition-by", "nope",
                             "--partitions", "2"], 2, "--partition-by nope: not a column")
        self.assert_refused(["--query", SELECT.format("small"), "--resume-key", "id,nope"], 2,
                            "--resume-key nope: not a column")
        self.assert_refused(["--query", "select id, sym as symbol from src.small"], 6, "symbol")

    def test_non_unique_resume_key_stops_before_its_boundary(self):
        t = self.target()
        rc, out, err = self.load("--from", PG.dsn(), "--query", SELECT.format("small"), "--to",
                                 PG.dsn(), "--table", t, "--chunk-rows", "100",
                                 "--resume-key", "sym", "--workers", "1")
        self.assertEqual(rc, 1, err)
        self.assertIn("--resume-key sym: not unique", err)
        # No chunk whose last key the next one shares committed: a resume would skip rows.
        keys = PG.sql(f"select last_key from {self.schema}.forklift_load_chunks order by chunk")
        self.assertEqual(keys, "", f"committed chunks: {keys}")
        self.assertEqual(scalar(f"select count(*) from {t}"), "0")

    def test_null_resume_key_is_refused(self):
        t = self.target()
        rc, out, err = self.load("--from", PG.dsn(), "--query",
                                 "select id, sym, day, price, note from src.small where note is null",
                                 "--to", PG.dsn(), "--table", t, "--resume-key", "note")
        self.assertEqual(rc, 1, err)
        self.assertIn("--resume-key note: NULL", err)
        self.assertEqual(scalar(f"select count(*) from {t}"), "0")

    def test_bad_options(self):
        t = self.target()
        for args, needle in [
            (["--query", "select 1"], "--query needs --from"),
            (["--from", PG.dsn()], "--from needs --query"),
            (["--from", PG.dsn(), "--query", "select 1", "x.csv"], "load one or the other"),
            (["--from", PG.dsn(), "--query", "select 1", "--partitions", "2"],
             "--partitions 2 needs --partition-by"),
            (["--from", PG.dsn(), "--query", "select 1", "--delimiter", ";"], "--delimiter"),
            (["--from", "mysql://h/db", "--query", "select 1"], "--from"),
            (["--resume-key", "id", "x.csv"], "--resume-key is for --query"),
            (["--from", PG.dsn(), "--query", "select 1 as id", "--mode", "upsert", "--key", "sym",
              "--resume-key", "id"], "--key must include every resume-key column"),
        ]:
            rc, out, err = self.load(*args, "--to", PG.dsn(), "--table", t)
            self.assertEqual(rc, 2, f"{args}: {err}")
            self.assertIn(needle, err, args)


if __name__ == "__main__":
    unittest.main()
