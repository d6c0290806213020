#!/usr/bin/env python3
"""`forklift worker` on several "hosts" (docs/queue.md): each host is a network namespace
this test creates, joined to the root namespace by a veth pair, and its worker reaches the
fixture's PostgreSQL over that link only. A partition is the host's end of the link set
down; an outage is the server stopped and started again.

Jobs announce themselves with marker files and wait for release files, and every wait polls
for an event (a marker, a row, the server's clock past an instant) with a generous deadline.
Skipped, with the reason, only where the kernel refuses network namespaces.

env: FORKLIFT (the binary), FORKLIFT_QUEUE_OUTAGE_S (the server outage, default 3 leases;
the issue's 30 s is run by hand: FORKLIFT_QUEUE_OUTAGE_S=30).
"""
import ipaddress
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from pg_fixture import PgServer  # noqa: E402
from proc_util import is_live, marked, wait_for  # noqa: E402

FORKLIFT = os.environ.get("FORKLIFT", os.path.join(os.path.dirname(__file__), "..", "build", "forklift"))
LEASE_S = 2
OUTAGE_S = float(os.environ.get("FORKLIFT_QUEUE_OUTAGE_S", 3 * LEASE_S))
HOSTS = 3
PG = None
NET = None


def run_ip(*args):
    p = subprocess.run(["ip", *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {p.stderr.strip()}")


class Hosts:
    """HOSTS network namespaces, each with a veth pair to the root namespace on its own /30:
    the root end is .1 (the server listens there), the namespace end .2. Names carry our
    pid, so that concurrent runs on one machine do not collide."""

    def __init__(self, n):
        self.names = []
        self.links = []  # (root end, namespace end)
        self.server_addrs = []
        tag = os.getpid() % 100000
        net = self._free_net()
        try:
            for i in range(n):
                ns, root_end, ns_end = f"fkq{tag}-{i}", f"fq{tag}h{i}", f"fq{tag}n{i}"
                run_ip("netns", "add", ns)
                self.names.append(ns)
                run_ip("link", "add", root_end, "type", "veth", "peer", "name", ns_end, "netns", ns)
                self.links.append((root_end, ns_end))
                base = net.network_address + 4 * i
                run_ip("addr", "add", f"{base + 1}/30", "dev", root_end)
                run_ip("link", "set", root_end, "up")
                run_ip("-n", ns, "addr", "add", f"{base + 2}/30", "dev", ns_end)
                run_ip("-n", ns, "link", "set", ns_end, "up")
                run_ip("-n", ns, "link", "set", "lo", "up")
                self.server_addrs.append(f"{base + 1}/30")
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _free_net():
        """A /24 of 10/8 that no interface here uses (other sessions make namespaces too)."""
        used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
        nets = [ipaddress.ip_interface(a).network for a in re.findall(r"inet (\S+)", used)]
        rng = random.Random(os.getpid())
        for _ in range(100):
            cand = ipaddress.ip_network(f"10.{rng.randrange(100, 250)}.{rng.randrange(256)}.0/24")
            if not any(cand.overlaps(n) for n in nets):
                return cand
        raise RuntimeError("no free 10.x.y.0/24 for the test's links")

    def host(self, i):
        return self.server_addrs[i].split("/")[0]

    def cut(self, i):
        run_ip("-n", self.names[i], "link", "set", self.links[i][1], "down")

    def mend(self, i):
        run_ip("-n", self.names[i], "link", "set", self.links[i][1], "up")

    def close(self):
        for ns in self.names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)  # takes its veth
        for root_end, _ in self.links:
            subprocess.run(["ip", "link", "del", root_end], capture_output=True)
        self.names, self.links = [], []


def setUpModule():
    global PG, NET
    probe = f"fkqprobe{os.getpid()}"
    p = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if p.returncode != 0:
        raise unittest.SkipTest(f"the kernel refuses network namespaces here: {p.stderr.strip()}")
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    NET = Hosts(HOSTS)
    try:
        PG = PgServer(listen_extra=NET.server_addrs)
    except BaseException:
        NET.close()
        raise


def tearDownModule():
    if PG is not None:
        PG.close()
    if NET is not None:
        NET.close()




class NetnsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="forklift-queue-netns-")
        self.schema = "q" + re.sub(r"\W", "", self.id().split(".")[-1]).lower()[:40]
        self.procs = []
        for d in ("started", "runs", "finish"):
            os.makedirs(os.path.join(self.dir, d))
        self.env = dict(os.environ, FORKLIFT_JOURNAL=os.path.join(self.dir, "journal.db"))
        for i in range(HOSTS):
            NET.mend(i)

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for i in range(HOSTS):
            NET.mend(i)
        if not PG.running:
            PG.start()
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    @staticmethod
    def read(path):
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def sql(self, query):
        return PG.sql(query.replace("{s}", self.schema))

    # A job that says where it ran, leaves a marker, and waits for the release file (all
    # jobs) or the finish file of its item on its worker (finish/ITEM-WORKER_ID).
    def job(self):
        d = self.dir
        return [f'echo "$FORKLIFT_WORKER_ID" >> {d}/runs/{{}}; touch {d}/started/{{}}; '
                f'while [ ! -e {d}/release ] && [ ! -e "{d}/finish/{{}}-$FORKLIFT_WORKER_ID" ]; do sleep 0.02; done; '
                f'echo "done {{}} $FORKLIFT_WORKER_ID"']

    def worker(self, host, *extra):
        log = self.path(f"worker{len(self.procs)}.log")
        f = open(log, "wb")
        p = subprocess.Popen(["ip", "netns", "exec", NET.names[host], FORKLIFT, "worker", "--queue",
                              PG.dsn(host=NET.host(host)), "--queue-schema", self.schema,
                              "--lease", f"{LEASE_S}s", *extra],
                             stdout=f, stderr=subprocess.STDOUT, env=self.env)
        f.close()
        p.log = log
        self.procs.append(p)
        wait_for(lambda: "slot(s) on" in self.read(log) or p.poll() is not None,
                 what="the worker to start")
        m = re.search(r"forklift worker: (\S+): ", self.read(log))
        self.assertIsNotNone(m, self.read(log))
        p.worker_id = m.group(1)
        return p

    def map(self, *args):
        p = subprocess.Popen([FORKLIFT, "map", "--queue", PG.dsn(), "--queue-schema", self.schema,
                              *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env)
        self.procs.append(p)
        return p

    def started(self):
        return len(os.listdir(self.path("started")))

    def runs_of(self, item):
        return self.read(self.path("runs", str(item))).split()

    def joblog(self, path):
        rows = [r.split("\t") for r in self.read(path).splitlines()[1:]]
        return sorted((int(r[0]), r[6]) for r in rows)

    def server_clock_past(self, instant, plus_s=0.0):
        return self.sql(f"SELECT clock_timestamp() >= '{instant}'::timestamptz "
                        f"+ {plus_s} * interval '1 second'") == "t"


class PartitionTest(NetnsTest):
    def test_cut_worker_kills_its_jobs_before_its_lease_ends_and_its_late_writes_change_nothing(self):
        w0 = self.worker(0, "-j", "2")
        joblog = self.path("jobs.log")
        m = self.map("-j", "6", "--queue-slice", "1", "--joblog", joblog, *self.job(), ":::",
                     *map(str, range(1, 7)))
        wait_for(lambda: self.started() == 2, what="w0 to start two jobs")
        held = sorted(int(i) for i in os.listdir(self.path("started")))
        self.assertEqual([self.runs_of(i) for i in held], [[w0.worker_id]] * 2)
        others = [self.worker(1, "-j", "3"), self.worker(2, "-j", "3")]
        wait_for(lambda: self.started() == 6, what="the other workers to start four jobs")
        w0_jobs = marked("FORKLIFT_WORKER_ID", w0.worker_id)
        self.assertTrue(w0_jobs)

        NET.cut(0)
        cut_at = self.sql("SELECT clock_timestamp()")
        expiry = self.sql("SELECT max(lease_until) FROM {s}.slices "
                          f"WHERE worker_id = '{w0.worker_id}' AND state = 'leased'")
        self.assertNotEqual(expiry, "", "w0 holds no lease")
        # One of w0's jobs ends during the cut (only w0's attempt of it): w0 holds an outcome
        # it cannot record in time, and its record statement goes out on a dead link (a late
        # write once the link is back).
        open(self.path("finish", f"{held[0]}-{w0.worker_id}"), "w").close()
        wait_for(lambda: not marked("FORKLIFT_WORKER_ID", w0.worker_id), timeout=3 * LEASE_S,
                 what="w0's jobs to be gone from /proc")
        self.assertEqual(self.sql(f"SELECT clock_timestamp() < '{expiry}'::timestamptz"), "t",
                         "w0's jobs outlived its lease")
        self.assertFalse(any(is_live(p) for p in w0_jobs))
        self.assertIn("no lease renewal", self.read(w0.log))

        # The others take the two items over once the lease expires (the server's clock).
        ids = {w.worker_id for w in others}
        wait_for(lambda: all(len(self.runs_of(i)) == 2 and self.runs_of(i)[1] in ids for i in held),
                 timeout=6 * LEASE_S, what="the others to take w0's items over")
        self.assertTrue(self.server_clock_past(expiry))
        # The link stays down for 3 leases, then comes back.
        wait_for(lambda: self.server_clock_past(cut_at, 3 * LEASE_S), timeout=6 * LEASE_S,
                 what="3 leases to pass on the server's clock")
        NET.mend(0)
        up_at = self.sql("SELECT clock_timestamp()")
        # w0 is back: its heartbeat wrote again (TCP retransmits after backoff: generous).
        wait_for(lambda: self.sql("SELECT last_seen > " f"'{up_at}'::timestamptz FROM {{s}}.workers "
                                  f"WHERE id = '{w0.worker_id}'") == "t",
                 timeout=40, what="w0 to reach the server again")
        self.assertEqual(self.sql("SELECT count(*) FROM {s}.outcomes "
                                  f"WHERE worker_id = '{w0.worker_id}'"), "0")
        self.assertEqual(self.sql("SELECT count(*) FROM {s}.slices "
                                  f"WHERE worker_id = '{w0.worker_id}'"), "0")
        # held[0]'s new attempt still runs, so w0's late outcome for it met no recorded one:
        # only the lease fence could refuse it.
        self.assertEqual(self.sql("SELECT count(*) FROM {s}.outcomes"), "0")
        open(self.path("release"), "w").close()
        out, err = m.communicate(timeout=60)
        self.assertEqual(m.returncode, 0, err)
        self.assertEqual(self.joblog(joblog), [(i, "0") for i in range(1, 7)])
        done = re.findall(r"^done (\d+) (\S+)$", out.decode(), re.M)
        self.assertEqual(sorted(int(i) for i, _ in done), list(range(1, 7)))  # exactly one each
        for i, wid in done:
            self.assertEqual(wid, self.runs_of(int(i))[-1])  # the lease holder's outcome
            if int(i) in held:
                self.assertIn(wid, ids)
        for w in [w0] + others:
            w.send_signal(signal.SIGTERM)
            self.assertEqual(w.wait(timeout=20), 128 + signal.SIGTERM, self.read(w.log))


class OutageTest(NetnsTest):
    def test_workers_reconnect_after_a_server_outage_and_counts_are_exact(self):
        ws = [self.worker(i, "-j", "4") for i in range(HOSTS)]
        n = 40
        joblog = self.path("jobs.log")
        m = self.map("-j", "12", "--queue-slice", "2", "--joblog", joblog, *self.job(), ":::",
                     *map(str, range(1, n + 1)))
        wait_for(lambda: self.started() >= 8, what="jobs to start on the hosts")
        PG.stop("fast")
        down = time.monotonic()
        # Jobs end while the server is away: their outcomes wait in the workers, whose
        # leases run out on the server's clock meanwhile.
        open(self.path("release"), "w").close()
        wait_for(lambda: all("cannot reach the queue" in self.read(w.log) for w in ws),
                 timeout=3 * LEASE_S + OUTAGE_S, what="every worker to notice the outage")
        # The outage itself is the stimulus: it lasts OUTAGE_S.
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down)))
        PG.start()
        out, err = m.communicate(timeout=90)
        self.assertEqual(m.returncode, 0, err)
        self.assertEqual(self.joblog(joblog), [(i, "0") for i in range(1, n + 1)])
        done = re.findall(r"^done (\d+) ", out.decode(), re.M)
        self.assertEqual(sorted(int(i) for i in done), list(range(1, n + 1)))
        for w in ws:
            wait_for(lambda: "reconnected to the queue" in self.read(w.log), timeout=30,
                     what="each worker to say it reconnected")
            w.send_signal(signal.SIGTERM)
            self.assertEqual(w.wait(timeout=20), 128 + signal.SIGTERM, self.read(w.log))
        print(f"\noutage {OUTAGE_S:.0f} s: {n} items, "
              f"{sum(len(self.runs_of(i)) for i in range(1, n + 1))} attempts", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
