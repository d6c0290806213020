#!/usr/bin/env python3
"""run_batch with a queue and serve_queue (forklift/queue_batch.h) end to end, through
examples/queue_batch (forklift-queue-batch): a coordinator process and worker processes on
a real PostgreSQL (tests/pg_fixture.py), a real SIGKILL of a worker holding items. Items
announce themselves in a marker file and block while a hold file exists, so the tests wait
for events, never for time.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from pg_fixture import PgServer  # noqa: E402

FORKLIFT = os.environ.get("FORKLIFT", os.path.join(os.path.dirname(__file__), "..", "build", "forklift"))
EXAMPLE = os.environ.get("FORKLIFT_QUEUE_BATCH",
                         os.path.join(os.path.dirname(os.path.abspath(FORKLIFT)), "forklift-queue-batch"))
PG = None


def setUpModule():
    global PG
    PG = PgServer()


def tearDownModule():
    if PG is not None:
        PG.close()


def wait_for(predicate, timeout=20, what="an event"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def expected(i):
    """The example's outcome line for item i."""
    if i % 97 == 13:
        return f"err {i} 6 item {i} is unlucky (with value)"
    return f"ok {i} {i} v{i * 2}"


class QueueBatchTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        self.tmp.cleanup()

    def start(self, *args, env=None, name="p"):
        e = dict(os.environ, **(env or {}))
        with open(os.path.join(self.dir, f"{name}.out"), "w") as out, \
                open(os.path.join(self.dir, f"{name}.err"), "w") as err:
            p = subprocess.Popen([EXAMPLE, *args], stdout=out, stderr=err, env=e)
        self.procs.append(p)
        return p

    def read(self, name, ext="out"):
        with open(os.path.join(self.dir, f"{name}.{ext}")) as f:
            return f.read()

    def served(self, name):
        m = re.search(r"served items=(\d+)", self.read(name))
        self.assertIsNotNone(m, self.read(name, "err"))
        return int(m.group(1))

    def test_two_workers_every_item_one_outcome(self):
        n = 400
        w1 = self.start("serve", PG.dsn(), "-j", "2", "--max-idle-ms", "1500", name="w1")
        w2 = self.start("serve", PG.dsn(), "-j", "2", "--max-idle-ms", "1500", name="w2")
        c = self.start("coordinate", PG.dsn(), str(n), "--slice", "20", name="c")
        self.assertEqual(c.wait(timeout=60), 1, self.read("c", "err"))  # some items fail
        self.assertEqual(w1.wait(timeout=30), 0, self.read("w1", "err"))
        self.assertEqual(w2.wait(timeout=30), 0, self.read("w2", "err"))
        lines = self.read("c").splitlines()
        outcomes = sorted((l for l in lines if not l.startswith("summary")),
                          key=lambda l: int(l.split()[1]))
        # Every item exactly one outcome, values and errors as the workers' fn made them.
        self.assertEqual(outcomes, [expected(i) for i in range(n)])
        failed = sum(1 for i in range(n) if i % 97 == 13)
        self.assertIn(f"summary processed={n} succeeded={n - failed} failed={failed} skipped=0",
                      lines[-1])
        # No worker was lost: each item ran exactly once, shared by the two workers.
        self.assertEqual(self.served("w1") + self.served("w2"), n)

    def test_sigkill_of_a_worker_holding_items_reclaims_them(self):
        n = 60
        marks = os.path.join(self.dir, "marks")
        hold = marks + ".hold"
        open(hold, "w").close()
        env = {"FORKLIFT_EXAMPLE_SLOW": marks}
        lease = ["--lease-ms", "1000"]
        a = self.start("serve", PG.dsn(), "-j", "2", "--max-idle-ms", "60000", *lease, env=env,
                       name="a")
        c = self.start("coordinate", PG.dsn(), str(n), "--slice", "10", name="c")

        def started_by(pid):
            if not os.path.exists(marks):
                return set()
            with open(marks) as f:
                return {int(l.split()[1]) for l in f if l.split()[0] == str(pid)}

        # Both of a's threads hold an item of its slice, blocked: SIGKILL it there.
        wait_for(lambda: len(started_by(a.pid)) == 2, what="worker a to start two items")
        held = started_by(a.pid)
        a.send_signal(signal.SIGKILL)
        a.wait()
        os.unlink(hold)
        b = self.start("serve", PG.dsn(), "-j", "2", "--max-idle-ms", "1500", *lease, env=env,
                       name="b")
        self.assertEqual(c.wait(timeout=60), 1, self.read("c", "err"))
        self.assertEqual(b.wait(timeout=30), 0, self.read("b", "err"))
        # What a held when it died ran again on b (its lease expired and was reaped).
        self.assertTrue(held <= started_by(b.pid), (held, started_by(b.pid)))
        self.assertIn("reaped", self.read("b", "err"))
        lines = self.read("c").splitlines()
        outcomes = sorted((l for l in lines if not l.startswith("summary")),
                          key=lambda l: int(l.split()[1]))
        self.assertEqual(outcomes, [expected(i) for i in range(n)])


if __name__ == "__main__":
    unittest.main()
