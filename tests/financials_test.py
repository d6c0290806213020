#!/usr/bin/env python3
"""examples/financials end to end: generated statements joined, derived and upserted into
SQLite and a real PostgreSQL (tests/pg_fixture.py); a rerun loads nothing; a SIGKILL
midway and a rerun give the same table as an uninterrupted run."""
import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from pg_fixture import PgServer  # noqa: E402

FIN = os.environ.get("FORKLIFT_FINANCIALS",
                     os.path.join(os.path.dirname(__file__), "..", "build", "forklift-financials"))
TICKERS, QUARTERS = 1000, 40
PG = None
TMP = None


def setUpModule():
    global PG, TMP
    TMP = tempfile.TemporaryDirectory()
    subprocess.run([FIN, "generate", "--dir", os.path.join(TMP.name, "st"), "--tickers",
                    str(TICKERS), "--quarters", str(QUARTERS)], check=True)
    PG = PgServer()


def tearDownModule():
    if PG is not None:
        PG.close()
    TMP.cleanup()


def wait_for(predicate, what, timeout=30):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def expected_rejects():
    return sum(1 for t in range(TICKERS) if t % 97 == 13) + \
        sum(1 for t in range(TICKERS) if t % 89 == 5)


class Base:
    def load(self, table, *extra, journal="j.db"):
        p = subprocess.run([FIN, "load", "--dir", os.path.join(TMP.name, "st"), "--to", self.to,
                            "--table", table, "--chunk-rows", "1000", "--json",
                            "--journal", os.path.join(self.dir, journal), *extra],
                           capture_output=True, text=True, timeout=60)
        return p.returncode, (json.loads(p.stdout) if p.stdout.strip() else None), p.stderr

    def test_load_rerun_and_metrics(self):
        self.create("m1")
        rc, s, err = self.load("m1")
        self.assertEqual(rc, 3, err)  # finished, with dead letters
        self.assertEqual(s["status"], "succeeded", err)
        self.assertEqual(s["rows_read"], TICKERS * QUARTERS)
        self.assertEqual(s["rows_rejected"], expected_rejects())
        self.assertEqual(s["rows_loaded"], TICKERS * QUARTERS - expected_rejects())
        self.assertEqual(self.count("m1"), TICKERS * QUARTERS - expected_rejects())
        # One metric recomputed here from the statements themselves.
        with open(os.path.join(TMP.name, "st", "T00001", "income.csv")) as f:
            inc = {r["quarter"]: r for r in csv.DictReader(f)}
        rev, cogs = float(inc["2020Q2"]["revenue"]), float(inc["2020Q2"]["cogs"])
        prev = float(inc["2020Q1"]["revenue"])
        gm, growth = self.metric("m1", "T00001", "2020Q2")
        self.assertAlmostEqual(gm, (rev - cogs) / rev, places=6)
        self.assertAlmostEqual(growth, rev / prev - 1, places=6)
        rc, again, err = self.load("m1")
        self.assertEqual(again["status"], "succeeded", err)
        self.assertEqual(again["rows_loaded"], 0)
        self.assertEqual(again["chunks_skipped"], s["chunks_committed"])

    def test_sigkill_and_rerun_match_an_uninterrupted_run(self):
        self.create("ref")
        self.create("killed")
        gate = os.path.join(self.dir, "gate")
        p = subprocess.Popen([FIN, "load", "--dir", os.path.join(TMP.name, "st"), "--to",
                              self.to, "--table", self.name("killed"), "--chunk-rows", "1000",
                              "--journal", os.path.join(self.dir, "j.db"), "--gate", gate,
                              "--gate-after", "20000"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # The ledger holds only this load's chunks until the reference run below.
        wait_for(lambda: p.poll() is not None or self.ledger() >= 8, "8 chunks committed")
        self.assertIsNone(p.poll(), "the load ended before the gate")
        p.send_signal(signal.SIGKILL)
        self.assertEqual(p.wait(timeout=30), -signal.SIGKILL)
        done = self.ledger()
        rc, s, err = self.load("killed")
        self.assertEqual(s["status"], "succeeded", err)
        self.assertEqual(s["chunks_skipped"], done)
        rc, ref, err = self.load("ref")
        self.assertEqual(ref["status"], "succeeded", err)
        self.assertLess(done, ref["chunks_committed"])
        self.assertEqual(s["chunks_committed"] + done, ref["chunks_committed"])
        self.assertEqual(self.rows("killed"), self.rows("ref"))


class SqliteTest(Base, unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.db = os.path.join(self.dir, "m.db")
        self.to = "sqlite:" + self.db

    def tearDown(self):
        self.tmp.cleanup()

    def q(self, sql):
        with sqlite3.connect(self.db) as c:
            return c.execute(sql).fetchall()

    def create(self, table):
        ddl = subprocess.run([FIN, "schema", "--table", table], capture_output=True,
                             text=True, check=True).stdout
        with sqlite3.connect(self.db) as c:
            c.executescript(ddl)

    def count(self, table):
        return self.q(f"select count(*) from {table}")[0][0]

    def metric(self, table, ticker, quarter):
        return self.q(f"select gross_margin, revenue_growth from {table} where ticker = "
                      f"'{ticker}' and quarter = '{quarter}'")[0]

    def name(self, table):
        return table

    def ledger(self):
        try:
            with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5) as c:
                return c.execute("select count(*) from forklift_load_chunks where chunk >= 0"
                                 ).fetchall()[0][0]
        except sqlite3.OperationalError:  # no ledger yet
            return 0

    def rows(self, table):
        return self.q(f"select * from {table} order by ticker, quarter")


class PostgresTest(Base, unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.schema = "fin_" + self.id().rsplit(".", 1)[-1][5:25].lower()
        PG.sql(f"drop schema if exists {self.schema} cascade; create schema {self.schema}")
        self.to = PG.dsn() + f"?options=-csearch_path%3D{self.schema}"

    def tearDown(self):
        self.tmp.cleanup()

    def create(self, table):
        ddl = subprocess.run([FIN, "schema", "--table", f"{self.schema}.{table}"],
                             capture_output=True, text=True, check=True).stdout
        PG.sql(ddl)

    def load(self, table, *extra, journal="j.db"):
        return Base.load(self, f"{self.schema}.{table}", *extra, journal=journal)

    def count(self, table):
        return int(PG.sql(f"select count(*) from {self.schema}.{table}"))

    def metric(self, table, ticker, quarter):
        gm, g = PG.sql(f"select gross_margin, revenue_growth from {self.schema}.{table} where "
                       f"ticker = '{ticker}' and quarter = '{quarter}'").split("\t")
        return float(gm), float(g)

    def name(self, table):
        return f"{self.schema}.{table}"

    def ledger(self):
        has = PG.sql(f"select count(*) from pg_tables where schemaname = '{self.schema}' and "
                     "tablename = 'forklift_load_chunks'")
        if has != "1":
            return 0
        return int(PG.sql(f"select count(*) from {self.schema}.forklift_load_chunks "
                          "where chunk >= 0"))

    def rows(self, table):
        return PG.sql(f"select * from {self.schema}.{table} order by ticker, quarter")


if __name__ == "__main__":
    unittest.main()
