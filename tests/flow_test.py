#!/usr/bin/env python3
"""End-to-end tests of `forklift run` and `forklift report`, run as a user would.

The HTML report is opened in headless Chromium (Debian's `chromium`) when it is
installed: it must render with no console error, and a screenshot is saved.
Run by ctest with FORKLIFT=<path to binary>.
"""
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

FORKLIFT = os.environ.get("FORKLIFT", os.path.join(os.path.dirname(__file__), "..", "build", "forklift"))
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
FORKLIFT_SCAN = os.environ.get("FORKLIFT_SCAN", os.path.join(os.path.dirname(FORKLIFT), "forklift-scan"))
CHROMIUM = shutil.which("chromium")
SCREENSHOT_DIR = os.environ.get("FORKLIFT_SCREENSHOTS", tempfile.gettempdir())


class FlowTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="forklift-flow-test-")
        self.env = dict(os.environ, FORKLIFT_JOURNAL=os.path.join(self.dir, "journal.db"))

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def forklift(self, *args, timeout=60):
        p = subprocess.run([FORKLIFT, *args], capture_output=True, env=self.env, cwd=self.dir,
                           timeout=timeout)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def write_flow(self, text, name="flow.toml"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def last_run(self):
        rc, out, _ = self.forklift("runs", "--kind", "flow", "--json")
        self.assertEqual(rc, 0)
        return json.loads(out.splitlines()[0])

    def states(self, run):
        return {t["name"]: t for t in run["summary"]["tasks"]}

    # --- the nightly example --------------------------------------------------------------

    def test_nightly_example_states_logs_exit_and_report(self):
        # examples/nightly (what make demo runs; tests/demo_test.py runs it through demo.sh),
        # on a small market.
        example = os.path.join(self.dir, "nightly")
        shutil.copytree(os.path.join(ROOT, "examples", "nightly"), example,
                        ignore=shutil.ignore_patterns("logs"))
        self.env.update(FORKLIFT_SCAN=FORKLIFT_SCAN, NIGHTLY_SYMBOLS="20", NIGHTLY_DAYS="80")
        rc, out, err = self.forklift("run", os.path.join(example, "flow.toml"), "--jobs", "4")
        self.assertEqual(rc, 0, out + err)
        run = self.last_run()
        self.assertEqual(run["status"], "succeeded")
        tasks = self.states(run)
        for name in ("init_db", "schema", "scrape_prices", "scrape_fred",
                     "load_prices", "load_macro", "scan", "daily_stats", "index", "analyze",
                     "vacuum"):
            self.assertEqual(tasks[name]["state"], "succeeded", name)
        self.assertEqual(tasks["scrape_news"]["state"], "failed", "non-critical failure, run still succeeds")
        self.assertEqual([a["state"] for a in tasks["scrape_news"]["attempts"]], ["retried", "failed"])
        self.assertIn("answered 503", tasks["scrape_news"]["log_tail"])
        # Order: each load after its scrapers; the maintenance phase after the prices load;
        # VACUUM after the scan (it reads the database).
        start = lambda n: tasks[n]["attempts"][0]["start_offset_s"]
        end = lambda n: tasks[n]["attempts"][-1]["start_offset_s"] + tasks[n]["attempts"][-1]["duration_s"]
        self.assertLessEqual(end("scrape_prices"), start("load_prices") + 1e-3)
        self.assertLessEqual(end("scrape_fred"), start("load_macro") + 1e-3)
        for t in ("scan", "daily_stats", "index"):
            self.assertGreaterEqual(start(t) + 1e-3, end("load_prices"), t)
        self.assertGreaterEqual(start("vacuum") + 1e-3, end("scan"))
        # Per-task logs, timestamped, and the merged main log in start order.
        logs = os.path.join(example, "logs", run["run_id"])
        with open(os.path.join(logs, "scrape_fred.log")) as f:
            text = f.read()
        self.assertRegex(text, r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} \[out\] fred: 80 days")
        with open(os.path.join(logs, "main.log")) as f:
            main = f.read()
        order = re.findall(r"^===== (\w+) =====$", main, re.M)
        self.assertLess(order.index("scrape_prices"), order.index("load_prices"))
        # The fan-out's items, the SQL phase's statements and the hooks are on record.
        self.assertIn("foreach scrape_prices: 4/4 items succeeded, 0 failed", out)
        self.assertIn("phases:", out)
        self.assertIn("tasks.vacuum.sql:1: VACUUM", main)
        self.assertIn("sql/daily_stats.sql:4: CREATE", main)
        with open(os.path.join(logs, "hooks.log")) as f:
            self.assertIn("on_finish: sh scripts/summary.sh", f.read())
        with open(os.path.join(example, "reports", "summary.txt")) as f:
            self.assertIn(f"nightly run {run['run_id']}: succeeded", f.read())
        self.assertIn("critical path:", out)
        self.assertRegex(out, r"scrape_news\s+failed \(non-critical\)")
        # The report: one self-contained file, rendered by a real browser.
        report = os.path.join(self.dir, "report.html")
        rc, _, err = self.forklift("report", run["run_id"], "-o", report)
        self.assertEqual(rc, 0, err)
        with open(report) as f:
            html = f.read()
        self.assertNotRegex(html, r"(src|href)=\"https?://")
        self.assertIn("&lt;news.internal&gt; answered 503 Service Unavailable &amp; closed", html,
                      "log text is escaped")
        if CHROMIUM:
            self.assert_renders(report, "nightly-report.png")

    def assert_renders(self, html_path, png_name):
        shot = os.path.join(SCREENSHOT_DIR, png_name)
        profile = tempfile.mkdtemp(prefix="forklift-chromium-")
        try:
            p = subprocess.run(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                 "--window-size=1400,1000", f"--screenshot={shot}", "file://" + html_path],
                capture_output=True, timeout=120)
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        log = p.stderr.decode(errors="replace")
        console = [l for l in log.splitlines() if "CONSOLE" in l]
        self.assertEqual(console, [], "the page logged to the console: " + "\n".join(console))
        self.assertTrue(os.path.exists(shot) and os.path.getsize(shot) > 10000, log[-2000:])
        return console

    @unittest.skipUnless(CHROMIUM, "chromium not installed")
    def test_the_console_check_catches_a_broken_page(self):
        bad = os.path.join(self.dir, "bad.html")
        with open(bad, "w") as f:
            f.write("<html><body><p>x</p><script>undefinedFunction();</script></body></html>")
        with self.assertRaises(AssertionError):
            self.assert_renders(bad, "broken.png")

    # --- semantics --------------------------------------------------------------------------

    def test_a_failed_critical_task_blocks_its_downstream_and_fails_the_run(self):
        flow = self.write_flow("""
[tasks.a]
cmd = "exit 3"
[tasks.b]
cmd = "touch b.done"
after = ["a"]
[tasks.c]
cmd = "touch c.done"
after = ["b"]
[tasks.side]
cmd = "touch side.done"
""")
        rc, out, _ = self.forklift("run", flow, "--jobs", "2")
        self.assertEqual(rc, 1)
        tasks = self.states(self.last_run())
        self.assertEqual(tasks["a"]["state"], "failed")
        self.assertEqual(tasks["b"]["state"], "upstream_failed")
        self.assertEqual(tasks["c"]["state"], "upstream_failed")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "b.done")))
        self.assertTrue(os.path.exists(os.path.join(self.dir, "side.done")))

    def test_a_failed_non_critical_task_lets_dependents_run(self):
        flow = self.write_flow("""
[tasks.a]
cmd = "exit 1"
critical = false
[tasks.b]
cmd = "touch b.done"
after = ["a"]
""")
        rc, _, _ = self.forklift("run", flow)
        self.assertEqual(rc, 0)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "b.done")))

    def test_pools_limit_concurrency(self):
        flow = self.write_flow("""
[pools]
db = 1
""" + "".join(f"""
[tasks.t{i}]
cmd = "echo start $(date +%s.%N) >> ev; sleep 0.2; echo end $(date +%s.%N) >> ev"
pool = "db"
""" for i in range(3)))
        rc, _, _ = self.forklift("run", flow, "--jobs", "3")
        self.assertEqual(rc, 0)
        with open(os.path.join(self.dir, "ev")) as f:
            events = [l.split()[0] for l in f]
        self.assertEqual(events, ["start", "end"] * 3, "never two db tasks at once")

    def test_timeout_kills_the_task_process_group(self):
        tag = "forklift-flow-sleeper-%d" % os.getpid()
        flow = self.write_flow(f"""
[tasks.slow]
cmd = "bash -c 'exec -a {tag} sleep 100' & bash -c 'exec -a {tag} sleep 100'"
timeout = "300ms"
""")
        t0 = time.time()
        rc, _, _ = self.forklift("run", flow)
        self.assertEqual(rc, 1)
        self.assertLess(time.time() - t0, 10)
        # pgrep -r: live states only (a zombie this sandbox's init never reaps is gone).
        deadline = time.monotonic() + 5
        while True:
            left = subprocess.run(["pgrep", "-r", "RSD", "-f", tag], capture_output=True).stdout
            if left == b"" or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        self.assertEqual(left, b"", "no process of the task survives")

    def test_resume_reruns_only_what_failed_or_never_ran(self):
        flow = self.write_flow("""
[tasks.a]
cmd = "echo a >> ran"
[tasks.b]
cmd = "echo b >> ran; test -e fixed"
after = ["a"]
[tasks.c]
cmd = "echo c >> ran"
after = ["b"]
""")
        rc, _, _ = self.forklift("run", flow)
        self.assertEqual(rc, 1)
        run_id = self.last_run()["run_id"]
        open(os.path.join(self.dir, "fixed"), "w").close()
        rc, out, err = self.forklift("run", flow, "--resume", run_id)
        self.assertEqual(rc, 0, out + err)
        with open(os.path.join(self.dir, "ran")) as f:
            self.assertEqual(f.read().split(), ["a", "b", "b", "c"])
        run = self.last_run()
        self.assertEqual(run["run_id"], run_id)
        self.assertEqual(run["invocations"], 2)

    def test_incremental_outputs_skip_up_to_date_tasks(self):
        with open(os.path.join(self.dir, "in.txt"), "w") as f:
            f.write("x")
        flow = self.write_flow("""
[tasks.build]
cmd = "echo built >> log; cp in.txt out.txt"
inputs = ["in.txt"]
outputs = ["out.txt"]
""")
        for _ in range(2):
            self.assertEqual(self.forklift("run", flow)[0], 0)
        self.assertEqual(self.states(self.last_run())["build"]["state"], "up_to_date")
        self.assertEqual(self.forklift("run", flow, "--force")[0], 0)
        with open(os.path.join(self.dir, "log")) as f:
            self.assertEqual(f.read().split(), ["built", "built"])

    def test_dry_run_prints_levels_and_only_selects_what_is_needed(self):
        flow = self.write_flow("""
[tasks.a]
cmd = "touch a"
[tasks.b]
cmd = "touch b"
after = ["a"]
[tasks.c]
cmd = "touch c"
""")
        rc, out, _ = self.forklift("run", flow, "--dry-run")
        self.assertEqual(rc, 0)
        self.assertIn("a", out)
        self.assertEqual(os.listdir(self.dir).count("a"), 0, "dry run runs nothing")
        rc, _, _ = self.forklift("run", flow, "--only", "b")
        self.assertEqual(rc, 0)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "b")))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "c")))

    def test_first_sigint_lets_running_tasks_finish_and_starts_nothing_new(self):
        flow = self.write_flow("""
[tasks.a]
cmd = "touch a.started; while [ ! -e go ]; do sleep 0.01; done; touch a.done"
[tasks.b]
cmd = "touch b.done"
after = ["a"]
""")
        p = subprocess.Popen([FORKLIFT, "run", flow], env=self.env, cwd=self.dir,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while not os.path.exists(os.path.join(self.dir, "a.started")) and time.monotonic() < deadline:
            time.sleep(0.01)
        p.send_signal(signal.SIGINT)
        # The signal has been taken once forklift says so; then a may finish.
        line = p.stderr.readline().decode()
        self.assertIn("starting no new tasks", line)
        open(os.path.join(self.dir, "go"), "w").close()
        p.communicate(timeout=20)
        self.assertEqual(p.returncode, 130)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "a.done")))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "b.done")))
        run = self.last_run()
        self.assertEqual(run["status"], "cancelled")
        self.assertEqual(self.states(run)["b"]["state"], "not_run")

    # --- bad input --------------------------------------------------------------------------

    def test_bad_flow_files_give_one_error_with_file_and_line(self):
        cases = {
            'name = "x"\n[tasks.a]\ncmd = "true"\ncritcal = false\n': r"flow.toml:4: tasks.a: unknown key 'critcal' \(did you mean 'critical'\?\)",
            '[tasks.a]\ncmd = "true"\nafter = ["b"]\n[tasks.b]\ncmd = "true"\nafter = ["a"]\n': r"flow.toml:1: cycle: a -> b -> a",
            '[tasks.a]\ncmd = "true"\nafter = ["nope"]\n': r"flow.toml:\d+: tasks.a.after: unknown task 'nope'",
            '[tasks.a]\ncmd = "true"\ntimeout = "5 parsecs"\n': r"flow.toml:\d+: tasks.a.timeout: .*5 parsecs",
            '[tasks.a]\ncmd = "true"\npool = "db"\n': r"flow.toml:\d+: tasks.a.pool: .*db",
        }
        for text, pattern in cases.items():
            flow = self.write_flow("".join(text))
            rc, out, err = self.forklift("run", flow)
            self.assertEqual(rc, 2, text)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertRegex(err, pattern)
            self.assertEqual(out, "", "nothing ran")


if __name__ == "__main__":
    unittest.main(verbosity=2)
