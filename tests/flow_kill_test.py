#!/usr/bin/env python3
"""`forklift run` under what cron throws at it, with real processes and real signals.

SIGKILL of forklift at several points then --resume (no succeeded task reruns, nothing of
the killed run is left alive), overlapping runs (exit 75, --wait), event lines through a
pipe as they happen, the state's location, and a SIGKILLed `forklift map`'s jobs.
Tests wait for events (a marker a task writes, a line of output), never for a fixed time.
Run by ctest with FORKLIFT=<path to binary>.
"""
import json
import os
import sqlite3
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proc_util import is_live, processes_of_run  # noqa: E402

FORKLIFT = os.path.abspath(os.environ.get("FORKLIFT", os.path.join(os.path.dirname(__file__), "..", "build", "forklift")))


def wait_until(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""






def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


class Running:
    """A `forklift` process whose stdout lines are collected as they arrive, with times."""

    def __init__(self, args, env, cwd):
        self.proc = subprocess.Popen([FORKLIFT, *args], env=env, cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put((time.monotonic(), raw.decode(errors="replace").rstrip("\n")))
        self.lines.put((time.monotonic(), None))

    def wait_line(self, needle, timeout=20.0):
        deadline = time.monotonic() + timeout
        for when, line in self.seen:
            if line is not None and needle in line:
                return when, line
        while time.monotonic() < deadline:
            try:
                when, line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append((when, line))
            if line is None:
                break
            if needle in line:
                return when, line
        raise AssertionError(f"no line with {needle!r}; saw: {[l for _, l in self.seen]}")

    def run_id(self):
        _, line = self.wait_line(", run ")
        return line.split(", run ", 1)[1].split(",", 1)[0]

    def finish(self, timeout=30):
        self.proc.wait(timeout=timeout)
        while True:  # drain what the reader thread has
            try:
                when, line = self.lines.get(timeout=2)
            except queue.Empty:
                break
            self.seen.append((when, line))
            if line is None:
                break
        return self.proc.returncode


# Three levels: a1, a2 -> b1, b2 -> c. Each task appends its name to ran.txt when it
# completes; the task named in the file `hold` instead writes its pid to NAME.pid and
# sleeps, so the test can SIGKILL forklift while it runs.
LAYERED = """
[tasks.a1]
cmd = "sh ../task.sh a1"
cwd = "work"
[tasks.a2]
cmd = "sh ../task.sh a2"
cwd = "work"
[tasks.b1]
cmd = "sh ../task.sh b1"
cwd = "work"
after = ["a1", "a2"]
[tasks.b2]
cmd = "sh ../task.sh b2"
cwd = "work"
after = ["a1", "a2"]
[tasks.c]
cmd = "sh ../task.sh c"
cwd = "work"
after = ["b1", "b2"]
"""

TASK_SH = """
if [ -e hold ] && [ "$(cat hold)" = "$1" ]; then
  echo $$ > "$1.pid"
  exec sleep 1000
fi
echo "$1" >> ran.txt
"""


class FlowKillTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="forklift-flow-kill-")
        os.makedirs(os.path.join(self.dir, "flows", "work"))
        self.flow_dir = os.path.join(self.dir, "flows")
        self.work = os.path.join(self.flow_dir, "work")
        with open(os.path.join(self.flow_dir, "task.sh"), "w") as f:
            f.write(TASK_SH)
        self.flow = os.path.join(self.flow_dir, "nightly.toml")
        with open(self.flow, "w") as f:
            f.write(LAYERED)
        # No FORKLIFT_JOURNAL: the flow's state lives beside its file (the rule under test).
        self.env = {k: v for k, v in os.environ.items() if k != "FORKLIFT_JOURNAL"}
        self.journal = os.path.join(self.flow_dir, ".forklift", "journal.db")
        self.elsewhere = os.path.join(self.dir, "elsewhere")  # cron's $HOME
        os.makedirs(self.elsewhere)
        self.started = []

    def tearDown(self):
        for r in self.started:
            if r.proc.poll() is None:
                r.proc.kill()
                r.proc.wait()
            r.proc.stdout.close()
            r.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, *args):
        r = Running(["run", self.flow, "--jobs", "2", *args], self.env, self.elsewhere)
        self.started.append(r)
        return r

    def forklift(self, *args, timeout=60):
        p = subprocess.run([FORKLIFT, *args], capture_output=True, env=self.env,
                           cwd=self.elsewhere, timeout=timeout)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def hold(self, task):
        with open(os.path.join(self.work, "hold"), "w") as f:
            f.write(task)

    def release(self):
        os.remove(os.path.join(self.work, "hold"))

    def ran(self):
        path = os.path.join(self.work, "ran.txt")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return f.read().split()

    def runs(self):
        rc, out, err = self.forklift("runs", "--journal", self.journal, "--kind", "flow", "--json")
        self.assertEqual(rc, 0, err)
        return {r["run_id"]: r for r in map(json.loads, out.splitlines())}

    def held_pid(self, task):
        path = os.path.join(self.work, f"{task}.pid")
        wait_until(lambda: read(path).strip(), what=f"{task}.pid")
        return int(read(path))

    def recorded(self, run_id):
        """The tasks the journal holds as succeeded for run_id (what a SIGKILL cannot lose)."""
        if not os.path.exists(self.journal):
            return set()
        db = sqlite3.connect(f"file:{self.journal}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT key FROM items WHERE run_id = ? AND status = 'succeeded'",
                              (run_id,)).fetchall()
        finally:
            db.close()
        return {bytes(k).decode() if isinstance(k, (bytes, memoryview)) else k for (k,) in rows}

    def kill_while(self, task, recorded=()):
        """Starts a run, SIGKILLs forklift once `task` is running and the tasks `recorded`
        are committed; returns (run_id, pid)."""
        self.hold(task)
        r = self.start()
        run_id = r.run_id()
        pid = self.held_pid(task)
        wait_until(lambda: set(recorded) <= self.recorded(run_id), what=f"{recorded} recorded")
        r.proc.send_signal(signal.SIGKILL)
        r.finish()
        return run_id, pid

    def test_sigkill_at_each_level_then_resume_reruns_nothing_that_succeeded(self):
        for task, done_before in (("a2", {"a1"}), ("b1", {"a1", "a2"}), ("c", {"a1", "a2", "b1", "b2"})):
            with self.subTest(killed_during=task):
                shutil.rmtree(os.path.join(self.flow_dir, ".forklift"), ignore_errors=True)
                if os.path.exists(os.path.join(self.work, "ran.txt")):
                    os.remove(os.path.join(self.work, "ran.txt"))
                run_id, pid = self.kill_while(task, done_before)
                # The watchdog ends the killed run's tasks: nothing of it stays alive.
                wait_until(lambda: not processes_of_run(run_id), what="the killed run's tasks to end")
                self.assertFalse(is_live(pid))
                # What the kill caught after its last line but before its commit (b2 beside
                # b1) may run again: at-least-once. What was recorded never does.
                recorded = self.recorded(run_id)
                self.assertTrue(done_before <= recorded)
                self.assertTrue(recorded <= set(self.ran()))
                self.release()
                r = self.start("--resume", run_id)
                self.assertEqual(r.finish(), 0, [l for _, l in r.seen])
                after = self.ran()
                self.assertEqual(set(after), {"a1", "a2", "b1", "b2", "c"})
                for t in recorded:
                    self.assertEqual(after.count(t), 1, f"{t} was recorded, then ran again: {after}")
                runs = self.runs()
                self.assertEqual(runs[run_id]["status"], "succeeded")
                self.assertEqual(runs[run_id]["invocations"], 2)

    def test_resume_last_resumes_the_latest_unfinished_run_and_killed_runs_are_marked(self):
        run_id, _ = self.kill_while("b1", {"a1", "a2", "b2"})
        wait_until(lambda: not processes_of_run(run_id), what="the killed run's tasks to end")
        self.assertEqual(self.runs()[run_id]["status"], "running", "nobody has looked yet")
        self.release()
        r = self.start("--resume", "last")
        self.assertEqual(r.finish(), 0)
        self.assertTrue(any(f"run {run_id} was killed while running" in l for _, l in r.seen if l),
                        [l for _, l in r.seen])
        self.assertEqual(r.run_id(), run_id)
        self.assertEqual(sorted(self.ran()), ["a1", "a2", "b1", "b2", "c"])
        # Nothing left to resume now.
        rc, _, err = self.forklift("run", self.flow, "--resume", "last")
        self.assertEqual(rc, 2)
        self.assertIn("has no unfinished run", err)

    def test_a_fresh_run_after_a_kill_marks_the_killed_run_killed(self):
        run_id, _ = self.kill_while("b1")
        self.release()
        r = self.start()
        self.assertEqual(r.finish(), 0)
        self.assertNotEqual(r.run_id(), run_id)
        self.assertEqual(self.runs()[run_id]["status"], "killed")

    def test_survivors_of_a_killed_run_and_watchdog_are_ended_before_the_resume_starts(self):
        self.hold("b1")
        r = self.start()
        run_id = r.run_id()
        pid = self.held_pid("b1")
        wait_until(lambda: {"a1", "a2", "b2"} <= self.recorded(run_id), what="b2 recorded")
        # `pkill -9 forklift`: forklift and its watchdog die together, the task survives.
        tasks = set(processes_of_run(run_id))
        dogs = [c for c in children(r.proc.pid) if c not in tasks]
        self.assertTrue(dogs, "forklift run has a watchdog child")
        for p in [*dogs, r.proc.pid]:  # the watchdog first, or it would do its job
            os.kill(p, signal.SIGKILL)
            wait_until(lambda: not is_live(p), what=f"pid {p} to die")
        r.finish()
        self.assertTrue(is_live(pid), "the task outlived forklift and its watchdog")
        self.release()
        resume = self.start("--resume", run_id)
        _, line = resume.wait_line("was killed while running")
        self.assertRegex(line, r"ended [12] of its processes")  # the task's sh, maybe its own sh
        # Ended before anything of the resume started.
        self.assertFalse(is_live(pid))
        self.assertEqual(resume.finish(), 0)
        self.assertEqual(sorted(self.ran()), ["a1", "a2", "b1", "b2", "c"])

    def test_a_second_run_of_a_running_flow_exits_75_and_with_wait_runs_after(self):
        self.hold("a1")
        first = self.start()
        run_id = first.run_id()
        self.held_pid("a1")
        rc, out, err = self.forklift("run", self.flow)
        self.assertEqual(rc, 75, out + err)
        self.assertIn(f"flow 'nightly' is already running: run {run_id}, pid {first.proc.pid}", err)
        self.assertIn("started 20", err)
        waiting = self.start("--wait", "60s")
        # It waits: the first still holds the flow. Release the first, then both end well.
        self.assertIsNone(waiting.proc.poll())
        self.release()  # before the waiting run can start a1
        os.kill(self.held_pid("a1"), signal.SIGTERM)  # the held task fails: the first ends
        self.assertEqual(first.finish(), 1)
        first_end = time.monotonic()
        self.assertEqual(waiting.finish(), 0, [l for _, l in waiting.seen])
        when, _ = waiting.wait_line(", run ")
        self.assertGreaterEqual(when, first_end - 0.5)

    def test_event_lines_arrive_as_they_happen_through_a_pipe(self):
        self.hold("b1")
        r = self.start()
        # The run id comes first, then each event while b1 is still running.
        first_when, first_line = r.wait_line("forklift run:")
        self.assertIn(", run nightly-", first_line)
        r.wait_line("done     a2")
        r.wait_line("start    b1")
        self.assertIsNone(r.proc.poll(), "lines arrived while the run was still going")
        os.kill(self.held_pid("b1"), signal.SIGKILL)
        self.release()
        self.assertEqual(r.finish(), 1)

    def test_a_failed_tasks_line_carries_its_stderr_tail(self):
        with open(self.flow, "w") as f:
            f.write('[tasks.bad]\ncmd = "echo one >&2; echo two >&2; echo three >&2; echo four >&2; exit 3"\n')
        r = self.start()
        self.assertEqual(r.finish(), 1)
        out = "\n".join(l for _, l in r.seen if l)
        self.assertIn("FAILED   bad  exit 3 after", out)
        self.assertIn("| two\n    | three\n    | four", out)
        self.assertNotIn("| one", out)

    def test_state_lives_beside_the_flow_file_and_resume_appends_main_log(self):
        with open(self.flow, "w") as f:
            f.write('[tasks.flaky]\ncmd = "if [ -e ok ]; then echo second; else echo first; exit 1; fi"\n')
        r = self.start()
        self.assertEqual(r.finish(), 1)
        run_id = r.run_id()
        self.assertTrue(os.path.exists(self.journal), "the journal is beside the flow file")
        self.assertFalse(os.path.exists(os.path.join(self.elsewhere, ".forklift")))
        _, line = r.wait_line("report: forklift report")
        self.assertIn(f"--journal {self.journal}", line)
        started = self.runs()[run_id]["started_at"]
        open(os.path.join(self.flow_dir, "ok"), "w").close()
        r = self.start("--resume", run_id)
        self.assertEqual(r.finish(), 0)
        run = self.runs()[run_id]
        self.assertEqual(run["started_at"], started, "a resume keeps the run's start")
        with open(os.path.join(self.flow_dir, ".forklift", "logs", run_id, "main.log")) as f:
            main = f.read()
        self.assertIn("[out] first", main)
        self.assertIn("invocation 2 (resume)", main)
        self.assertIn("[out] second", main)
        self.assertEqual(main.count("[out] first"), 1, main)
        # forklift runs and forklift report find the run from anywhere with --flow.
        rc, out, err = self.forklift("runs", "--flow", self.flow, "--json")
        self.assertEqual(rc, 0, err)
        self.assertIn(run_id, [json.loads(l)["run_id"] for l in out.splitlines()])
        rc, out, err = self.forklift("report", run_id, "--flow", self.flow, "-o",
                                     os.path.join(self.dir, "r.html"))
        self.assertEqual(rc, 0, err)

    def test_timeouts_read_the_same_in_the_terminal_and_the_report(self):
        with open(self.flow, "w") as f:
            f.write('[tasks.slow]\ncmd = "sleep 30 & echo started; wait"\ntimeout = "300ms"\n')
        r = self.start()
        self.assertEqual(r.finish(), 1)
        out = "\n".join(l for _, l in r.seen if l)
        self.assertIn("FAILED   slow  timed out after", out)
        run_id = r.run_id()
        html = os.path.join(self.dir, "r.html")
        rc, _, err = self.forklift("report", run_id, "--journal", self.journal, "-o", html)
        self.assertEqual(rc, 0, err)
        with open(html) as f:
            self.assertIn("timed out after", f.read())
        # The timeout ended the background `sleep` with the rest of the task's group.
        self.assertEqual(processes_of_run(run_id), [])

    def test_outputs_without_inputs_is_warned_about(self):
        with open(self.flow, "w") as f:
            f.write('[tasks.a]\ncmd = "touch out.txt"\noutputs = ["out.txt"]\n')
        rc, out, err = self.forklift("run", self.flow)
        self.assertEqual(rc, 0, err)
        self.assertIn("warning:", err)
        self.assertIn("'outputs' without 'inputs'", err)


class MapKillTest(unittest.TestCase):
    def test_a_sigkilled_map_leaves_no_job_running(self):
        d = tempfile.mkdtemp(prefix="forklift-map-kill-")
        try:
            env = dict(os.environ, FORKLIFT_JOURNAL=os.path.join(d, "journal.db"))
            p = subprocess.Popen([FORKLIFT, "map", "-j2", "echo $$ > {}.pid; exec sleep 1000",
                                  ":::", "a", "b"], cwd=d, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            pids = []
            for name in ("a", "b"):
                path = os.path.join(d, f"{name}.pid")
                wait_until(lambda: read(path).strip(), what=path)
                pids.append(int(read(path)))
            p.kill()
            p.wait()
            wait_until(lambda: not any(is_live(x) for x in pids), what="the map's jobs to end")
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_a_sigkilled_maps_sweep_ends_what_a_job_started_in_a_group_of_its_own(self):
        # setsid puts the sleep in a session and group the watchdog was never told of: only
        # the sweep by the jobs' FORKLIFT_MAP_ID mark can find it (as it finds a job whose
        # announcement the SIGKILL beat).
        d = tempfile.mkdtemp(prefix="forklift-map-sweep-")
        try:
            env = dict(os.environ, FORKLIFT_JOURNAL=os.path.join(d, "journal.db"))
            p = subprocess.Popen([FORKLIFT, "map", "setsid sleep 1000 & echo $! > {}.pid; wait",
                                  ":::", "a"], cwd=d, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            path = os.path.join(d, "a.pid")
            wait_until(lambda: read(path).strip(), what=path)
            pid = int(read(path))
            with open(f"/proc/{pid}/environ", "rb") as f:
                self.assertIn(b"FORKLIFT_MAP_ID=", f.read())
            p.kill()
            p.wait()
            wait_until(lambda: not is_live(pid), what="the job's setsid sleep to end")
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
