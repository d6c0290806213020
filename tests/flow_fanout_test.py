#!/usr/bin/env python3
"""Fan-out tasks (`foreach`) of `forklift run` end to end: items through forklift map's
engine, max_failed, a resume that reruns only failed or unrun items (also after a SIGKILL
of forklift run), foreach_cmd, and a missing items file failing its task alone.
Run by ctest with FORKLIFT=<path to binary>.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proc_util import is_live, processes_of_run  # noqa: E402

FORKLIFT = os.path.abspath(os.environ.get("FORKLIFT", os.path.join(os.path.dirname(__file__), "..", "build", "forklift")))

# Each item appends its name to ran.txt when it succeeds; item 7 fails until `fixed`
# exists; the item named in `hold` waits for `go` first (so a test can SIGKILL meanwhile).
ITEM = ('sh ./item.sh {}')
ITEM_SH = """
if [ -e hold ] && [ "$(cat hold)" = "$1" ]; then
  touch "held.$1"
  while [ ! -e go ]; do sleep 0.01; done
fi
if [ "$1" = 7 ] && [ ! -e fixed ]; then exit 3; fi
echo "$1" >> ran.txt
"""


def wait_until(pred, what, timeout=20):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)




class FlowFanoutTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="forklift-flow-fanout-")
        self.env = {k: v for k, v in os.environ.items() if k != "FORKLIFT_JOURNAL"}
        with open(os.path.join(self.dir, "item.sh"), "w") as f:
            f.write(ITEM_SH)
        with open(os.path.join(self.dir, "items.txt"), "w") as f:
            f.write("".join(f"{i}\n" for i in range(1, 21)))

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def flow(self, extra=""):
        path = os.path.join(self.dir, "flow.toml")
        with open(path, "w") as f:
            f.write(f'[tasks.scrape]\ncmd = "{ITEM}"\nforeach = "items.txt"\njobs = 4\n{extra}\n'
                    '[tasks.report]\ncmd = "touch reported"\nafter = ["scrape"]\n')
        return path

    def run_flow(self, *args):
        p = subprocess.run([FORKLIFT, "run", os.path.join(self.dir, "flow.toml"), "--jobs", "4", *args],
                           capture_output=True, env=self.env, cwd=self.dir, timeout=120)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def ran(self):
        path = os.path.join(self.dir, "ran.txt")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return f.read().split()

    def test_a_failed_item_fails_the_task_unless_max_failed_allows_it(self):
        self.flow()
        rc, out, err = self.run_flow()
        self.assertEqual(rc, 1, out + err)
        self.assertIn("FAILED   scrape", out)
        self.assertIn("1 of 20 items failed for good (max_failed allows 0)", out)
        self.assertIn("foreach scrape: 19/20 items succeeded, 1 failed; slowest: ", out)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "reported")))
        for allowed in ("max_failed = 1", 'max_failed = "5%"'):
            shutil.rmtree(os.path.join(self.dir, ".forklift"))
            self.flow(allowed)
            rc, out, err = self.run_flow()
            self.assertEqual(rc, 0, allowed + out + err)
            self.assertTrue(os.path.exists(os.path.join(self.dir, "reported")))

    def test_a_resume_reruns_only_the_items_that_failed(self):
        self.flow()
        rc, out, _ = self.run_flow()
        self.assertEqual(rc, 1)
        run_id = out.split(", run ", 1)[1].split(",", 1)[0]
        self.assertEqual(sorted(self.ran(), key=int), [str(i) for i in range(1, 21) if i != 7])
        open(os.path.join(self.dir, "fixed"), "w").close()
        rc, out, err = self.run_flow("--resume", run_id)
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(sorted(self.ran(), key=int), [str(i) for i in range(1, 21)],
                         "item 7 ran once more, and nothing else did")

    def test_a_sigkill_mid_fanout_then_resume_reruns_no_recorded_item(self):
        self.flow()
        open(os.path.join(self.dir, "fixed"), "w").close()
        with open(os.path.join(self.dir, "hold"), "w") as f:
            f.write("15")
        p = subprocess.Popen([FORKLIFT, "run", os.path.join(self.dir, "flow.toml"), "--jobs", "4"],
                             env=self.env, cwd=self.dir, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        run_id = p.stdout.readline().decode().split(", run ", 1)[1].split(",", 1)[0]
        wait_until(lambda: os.path.exists(os.path.join(self.dir, "held.15")), "item 15 to hold")
        wait_until(lambda: len(self.ran()) >= 10, "ten items done")
        p.kill()
        p.wait()
        p.stdout.close()
        # The watchdog ends the map and its jobs; what they finish meanwhile counts too.
        wait_until(lambda: not processes_of_run(run_id), "the killed run's processes to end")
        before = self.ran()
        journal = os.path.join(self.dir, ".forklift", "journal.db")
        count = lambda: int(subprocess.run(
            ["sqlite3", journal, f"select count(*) from items where run_id = '{run_id}.scrape' "
             "and status = 'succeeded'"], capture_output=True, text=True).stdout.strip() or 0)
        recorded_before = count()
        self.assertGreaterEqual(recorded_before, 1)
        os.remove(os.path.join(self.dir, "hold"))
        open(os.path.join(self.dir, "go"), "w").close()
        rc, out, err = self.run_flow("--resume", run_id)
        self.assertEqual(rc, 0, out + err)
        after = self.ran()
        self.assertEqual(set(after), {str(i) for i in range(1, 21)})
        self.assertEqual(count(), 20)
        # What map recorded before the kill never ran again: only items that had finished
        # but were not yet recorded at the instant of the kill may have run twice.
        twice = [i for i in set(after) if after.count(i) > 1]
        self.assertLessEqual(len(twice), len(before) - recorded_before,
                             f"recorded {recorded_before} of {len(before)}; twice: {twice}")

    def test_foreach_cmd_and_a_missing_items_file(self):
        path = os.path.join(self.dir, "flow.toml")
        with open(path, "w") as f:
            f.write('[tasks.gen]\ncmd = "echo item-{} >> gen.txt"\nforeach_cmd = "seq 1 5"\n'
                    '[tasks.missing]\ncmd = "echo {}"\nforeach = "nope.txt"\ncritical = false\n'
                    '[tasks.after]\ncmd = "touch after"\nafter = ["missing"]\n')
        rc, out, err = self.run_flow()
        self.assertEqual(rc, 0, out + err)
        with open(os.path.join(self.dir, "gen.txt")) as f:
            self.assertEqual(sorted(f.read().split()), [f"item-{i}" for i in range(1, 6)])
        self.assertIn("FAILED   missing", out)
        self.assertIn("nope.txt", out)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "after")), "the rest of the flow ran")


if __name__ == "__main__":
    unittest.main(verbosity=2)
