#!/usr/bin/env python3
"""`make demo` end to end (scripts/demo.sh over examples/nightly/flow.toml), on a small
market (NIGHTLY_SYMBOLS=30 per exchange, NIGHTLY_DAYS=120): every task's state and the
run's exit status, the tables, the summary and the HTML report the on_finish hook writes,
and a second run that loads nothing twice. DemoPgTest runs the same flow against the
fixture's PostgreSQL (FORKLIFT_PG): the same states, tables and resume.

Environment: FORKLIFT and FORKLIFT_SCAN, the two programs under test."""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest

from pg_fixture import PgServer

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "..", "scripts", "demo.sh")
SYMBOLS, DAYS = 30, 120
TASKS = ["init_db", "schema", "scrape_prices", "scrape_fred", "scrape_news",
         "load_prices", "load_macro", "scan", "daily_stats", "index", "analyze", "vacuum"]


def task_states(out):
    """task -> state, from the breakdown table the run prints."""
    states = {}
    for line in out.splitlines():
        m = re.match(r"^(\w+)\s+(succeeded|failed \(non-critical\)|failed|upstream_failed|"
                     r"not_scheduled|cancelled|not_run)\s+\d+\s", line)
        if m and m.group(1) in TASKS:
            states[m.group(1)] = m.group(2)
    return states


class DemoTest(unittest.TestCase):
    @classmethod
    def extra_env(cls):
        return {}

    @classmethod
    def setUpClass(cls):
        # demo.sh wants a build directory holding both programs: links to the real ones.
        cls.build = tempfile.mkdtemp(prefix="forklift-demo-")
        for name, env in (("forklift", "FORKLIFT"), ("forklift-scan", "FORKLIFT_SCAN")):
            os.symlink(os.path.abspath(os.environ[env]), os.path.join(cls.build, name))
        cls.demo = os.path.join(cls.build, "demo", "nightly")
        # One night for both runs, even one that crosses midnight.
        cls.env = dict(os.environ, NIGHTLY_SYMBOLS=str(SYMBOLS), NIGHTLY_DAYS=str(DAYS),
                       NIGHTLY_DATE="2026-12-01", **cls.extra_env())
        cls.first = cls.run_demo()
        cls.second = cls.run_demo()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.build, ignore_errors=True)

    @classmethod
    def run_demo(cls):
        p = subprocess.run(["bash", DEMO, cls.build], capture_output=True, text=True,
                           env=cls.env, timeout=240)
        loads = {}
        for name in ("load_prices", "load_macro"):
            with open(os.path.join(cls.demo, "reports", name + ".json")) as f:
                loads[name] = json.load(f)
        with open(os.path.join(cls.demo, "reports", "summary.txt")) as f:
            summary = f.read()
        return p, loads, summary

    def test_the_night_runs_every_task_and_only_the_news_scraper_fails(self):
        p, _, _ = self.first
        self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr[-2000:])
        states = task_states(p.stdout)
        self.assertEqual(set(states), set(TASKS), p.stdout[-3000:])
        self.assertEqual(states.pop("scrape_news"), "failed (non-critical)")
        self.assertEqual(set(states.values()), {"succeeded"}, states)
        self.assertIn("foreach scrape_prices: 4/4 items succeeded", p.stdout)

    INDEX_QUERY = ("select count(*) from sqlite_master where type = 'index' "
                   "and name = 'candles_by_date'")

    def query(self, sql):
        """The one row `sql` returns, from the market database."""
        db = sqlite3.connect(os.path.join(self.demo, "market.db"))
        try:
            return db.execute(sql).fetchone()
        finally:
            db.close()

    def test_the_tables_hold_the_scraped_market_once(self):
        candles = self.query("select count(*), count(distinct symbol) from candles")
        macro = self.query("select count(*), count(distinct series) from macro")
        stats = self.query("select count(*), sum(symbols) from daily_stats")
        index = self.query(self.INDEX_QUERY)
        self.assertEqual(candles, (4 * SYMBOLS * DAYS, 4 * SYMBOLS))
        self.assertEqual(macro, (3 * DAYS, 3))  # the reshaped wide file: 3 series a day
        self.assertEqual(stats, (DAYS, 4 * SYMBOLS * DAYS))
        self.assertEqual(index, (1,))

    def test_the_summary_and_the_report_are_written_by_the_hook(self):
        _, loads, summary = self.first
        rows = 4 * SYMBOLS * DAYS
        self.assertEqual(loads["load_prices"]["rows_loaded"], rows)
        self.assertIn(f"load_prices: {rows} rows read, {rows} loaded", summary)
        self.assertRegex(summary, rf"scan: symbols={4 * SYMBOLS} matches=\d+")
        with open(os.path.join(self.demo, "reports", "report.html")) as f:
            html = f.read()
        for task in ("scrape_news", "load_prices", "vacuum"):
            self.assertIn(task, html)
        self.assertIn(os.path.join(self.demo, "reports", "report.html"), self.first[0].stdout)

    def test_a_second_run_the_same_night_loads_nothing_twice(self):
        p, loads, summary = self.second
        self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr[-2000:])
        self.assertIn("the loads should find every chunk already loaded", p.stdout)
        for name, rows in (("load_prices", 4 * SYMBOLS * DAYS), ("load_macro", 3 * DAYS)):
            self.assertEqual(loads[name]["rows_loaded"], 0, name)
            self.assertEqual(loads[name]["rows_skipped"], rows, name)
            self.assertGreater(loads[name]["chunks_skipped"], 0, name)
        self.assertIn(f"0 loaded, {4 * SYMBOLS * DAYS} already loaded", summary)
        runs = [d for d in os.listdir(os.path.join(self.demo, "logs")) if d.startswith("nightly-")]
        self.assertEqual(len(runs), 2)


class DemoPgTest(DemoTest):
    """The same night with FORKLIFT_PG naming the fixture's PostgreSQL: the loads, the SQL
    phase and the summary go to the server; the scan streams the candles out first."""
    INDEX_QUERY = "select count(*) from pg_indexes where indexname = 'candles_by_date'"

    @classmethod
    def extra_env(cls):
        cls.pg = PgServer()
        cls.pg.__enter__()
        return {"FORKLIFT_PG": cls.pg.dsn()}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.pg.close()

    def query(self, sql):
        out = self.pg.sql(sql).strip()
        return tuple(int(float(v)) for v in out.split("\t"))

    def test_the_market_is_on_the_server_not_in_a_file(self):
        self.assertFalse(os.path.exists(os.path.join(self.demo, "market.db")) and
                         os.path.getsize(os.path.join(self.demo, "market.db")) > 0)
        self.assertIn("PostgreSQL: ", self.first[2])


if __name__ == "__main__":
    unittest.main(verbosity=1)
