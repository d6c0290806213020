#!/usr/bin/env python3
"""Flow hooks, alerts, run_if and phases end to end, with real processes and signals.

Hooks after a failure, a task timeout and a SIGTERM of the run; a failing and a hanging
hook; on_alert firing while the run still goes on (the task waits for the alert's marker),
once; run_if = all_done after a critical failure; groups in the breakdown and the report.
Run by ctest with FORKLIFT=<path to binary>.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

FORKLIFT = os.path.abspath(os.environ.get("FORKLIFT", os.path.join(os.path.dirname(__file__), "..", "build", "forklift")))

# A hook that records its environment and stdin: NAME.env, NAME.json.
RECORD = ('sh -c \'env | grep ^FORKLIFT_ | sort > "$FORKLIFT_HOOK${FORKLIFT_TASK:+-$FORKLIFT_TASK}.env"; '
          'cat > "$FORKLIFT_HOOK${FORKLIFT_TASK:+-$FORKLIFT_TASK}.json"\'')
# The same as a TOML basic string's content.
RECORD_TOML = RECORD.replace("\\", "\\\\").replace('"', '\\"')


class FlowHooksTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="forklift-flow-hooks-")
        self.env = dict(os.environ, FORKLIFT_JOURNAL=os.path.join(self.dir, "journal.db"))

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write_flow(self, text):
        path = os.path.join(self.dir, "flow.toml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_flow(self, text, *args, timeout=60):
        p = subprocess.run([FORKLIFT, "run", self.write_flow(text), *args], capture_output=True,
                           env=self.env, cwd=self.dir, timeout=timeout)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def env_of(self, name):
        with open(os.path.join(self.dir, name + ".env")) as f:
            return dict(line.rstrip("\n").split("=", 1) for line in f)

    def json_of(self, name):
        with open(os.path.join(self.dir, name + ".json")) as f:
            return json.load(f)

    def wait_for(self, path, timeout=20):
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            self.assertLess(time.monotonic(), deadline, f"no {path}")
            time.sleep(0.01)

    def test_hooks_after_a_task_timeout_see_the_run(self):
        rc, out, err = self.run_flow(f"""
on_failure = "{RECORD_TOML}"
on_finish = "{RECORD_TOML}"
on_success = "touch success-hook-ran"
[tasks.slow]
cmd = "sleep 30"
timeout = "200ms"
on_failure = "{RECORD_TOML}"
""")
        self.assertEqual(rc, 1, out + err)
        run = self.env_of("on_failure")
        self.assertEqual(run["FORKLIFT_STATUS"], "failed")
        self.assertEqual(run["FORKLIFT_HOOK"], "on_failure")
        self.assertNotIn("FORKLIFT_TASK", run)
        summary = self.json_of("on_failure")
        self.assertEqual(summary["run_id"], run["FORKLIFT_RUN_ID"])
        self.assertEqual(summary["tasks"][0]["state"], "failed")
        task = self.env_of("on_failure-slow")
        self.assertEqual(task["FORKLIFT_TASK"], "slow")
        self.assertEqual(self.json_of("on_failure-slow")["attempts"][0]["state"], "timed_out")
        self.assertEqual(self.env_of("on_finish")["FORKLIFT_STATUS"], "failed")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "success-hook-ran")))
        self.assertIn("hook     on_failure of slow  exit 0", out)
        # The hooks' outcomes are part of the recorded run.
        p = subprocess.run([FORKLIFT, "runs", "--kind", "flow", "--json"], capture_output=True,
                           env=self.env, cwd=self.dir)
        hooks = json.loads(p.stdout.decode().splitlines()[0])["summary"]["hooks"]
        self.assertEqual(sorted(h["hook"] for h in hooks), ["on_failure", "on_failure", "on_finish"])

    def test_hooks_run_after_a_sigterm_of_the_run(self):
        flow = self.write_flow(f"""
on_failure = "{RECORD_TOML}"
[tasks.a]
cmd = "touch a.started; while [ ! -e go ]; do sleep 0.01; done"
[tasks.b]
cmd = "true"
after = ["a"]
""")
        p = subprocess.Popen([FORKLIFT, "run", flow], env=self.env, cwd=self.dir,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.wait_for(os.path.join(self.dir, "a.started"))
        p.send_signal(signal.SIGTERM)
        self.assertIn("starting no new tasks", p.stderr.readline().decode())
        open(os.path.join(self.dir, "go"), "w").close()
        out, _ = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 143)
        self.assertEqual(self.env_of("on_failure")["FORKLIFT_STATUS"], "cancelled")
        states = {t["name"]: t["state"] for t in self.json_of("on_failure")["tasks"]}
        self.assertEqual(states, {"a": "succeeded", "b": "not_run"})

    def test_a_failing_or_hanging_hook_is_reported_and_changes_nothing(self):
        rc, out, err = self.run_flow("""
hook_timeout = "300ms"
on_success = "echo broken >&2; exit 4"
on_finish = "sleep 30"
[tasks.a]
cmd = "true"
""")
        self.assertEqual(rc, 0, "the run succeeded; its hooks do not change that")
        self.assertIn("HOOK FAILED on_success  exit 4", out)
        self.assertIn("HOOK FAILED on_finish  timed out after", out)
        logs = os.path.join(self.dir, ".forklift", "logs")
        run_dir = os.path.join(logs, os.listdir(logs)[0])
        with open(os.path.join(run_dir, "hooks.log")) as f:
            self.assertIn("[err] broken", f.read())

    def test_on_alert_fires_once_while_the_task_still_runs(self):
        rc, out, err = self.run_flow("""
on_alert = "echo $FORKLIFT_TASK >> alerts; touch alerted"
[tasks.long]
cmd = "while [ ! -e alerted ]; do sleep 0.01; done; sleep 0.3"
alert_after = "100ms"
""")
        # The task ends only once the alert's hook has run: it fired during the run.
        self.assertEqual(rc, 0, out + err)
        with open(os.path.join(self.dir, "alerts")) as f:
            self.assertEqual(f.read().split(), ["long"], "once")
        self.assertIn("ALERT    long  still running after 100.00ms (alert_after)", out)

    def test_run_if_all_done_runs_after_a_critical_failure(self):
        rc, out, err = self.run_flow("""
[tasks.main]
cmd = "exit 1"
[tasks.report]
cmd = "touch report"
after = ["main"]
[tasks.cleanup]
cmd = "touch cleaned"
after = ["report"]
run_if = "all_done"
""")
        self.assertEqual(rc, 1)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "cleaned")))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "report")))
        rc, _, err = self.run_flow('[tasks.a]\ncmd = "true"\nrun_if = "allways"\n')
        self.assertEqual(rc, 2)
        self.assertIn("tasks.a.run_if: unknown value 'allways' (did you mean 'always'?)", err)

    def test_groups_are_phases_in_the_breakdown_and_the_report(self):
        rc, out, err = self.run_flow("""
[tasks.cboe]
cmd = "sleep 0.05"
group = "scrapers"
[tasks.nasdaq]
cmd = "sleep 0.05"
group = "scrapers"
[tasks.main_update]
cmd = "sleep 0.1"
after = ["cboe", "nasdaq"]
""", "--jobs", "2")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("phases:", out)
        self.assertRegex(out, r"\n  scrapers\s+2 tasks\s+\S+\s+\d+% of the critical path")
        self.assertRegex(out, r"\n  main_update\s+1 task ")
        run_id = out.split(", run ", 1)[1].split(",", 1)[0]
        html = os.path.join(self.dir, "r.html")
        p = subprocess.run([FORKLIFT, "report", run_id, "-o", html], capture_output=True,
                           env=self.env, cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(html) as f:
            page = f.read()
        self.assertIn("<h2>Phases</h2>", page)
        self.assertIn("<td>scrapers</td>", page)

    def test_progress_lines_come_from_the_one_renderer(self):
        path = self.write_flow('[tasks.a]\ncmd = "true"\n[tasks.b]\ncmd = "exit 1"\ncritical = false\n'
                               '[tasks.c]\ncmd = "true"\nafter = ["a"]\n')
        p = subprocess.run([FORKLIFT, "run", path, "--progress"], capture_output=True,
                           env=self.env, cwd=self.dir, timeout=60)
        self.assertEqual(p.returncode, 0)
        err = p.stderr.decode()
        self.assertRegex(err, r"run: 100% 3/3 tasks, 1 failed, [0-9.]+ tasks/s")
        self.assertNotIn("\r", err)
        self.assertNotIn("\x1b", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
