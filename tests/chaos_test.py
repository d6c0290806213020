#!/usr/bin/env python3
"""Chaos suite (issue 16): forklift killed at random points, then resumed; a full disk
under the journal; truncated and corrupted journals.

Seeded and bounded in time: `chaos_test.py --seed N --seconds S` replays a run (the seed
is printed first). Scenarios, each repeated with new random kill points while its share
of the time lasts:

  map    `forklift map --joblog --resume` SIGKILLed after a random number of finished
         jobs, resumed until it exits 0: every job succeeds at least once (no work lost)
         and a job whose success the joblog recorded before a kill never starts again.
  run    `forklift run` of a 12-task DAG SIGKILLed after a random number of finished
         tasks, resumed with --resume last: every task ends succeeded, and a task the
         journal recorded as succeeded never starts again.
  load   `forklift load` into SQLite SIGKILLed after a random number of committed chunks,
         rerun until it exits 0: the table equals the file, each row once (an
         uninterrupted load), and the ledger holds every chunk once.
  pgload `forklift load` into a real PostgreSQL whose server is restarted
         (`pg_ctl restart -m immediate`: a crash and recovery) after a random number of
         committed chunks: the load retries on new connections and completes, or fails
         clearly and a rerun completes; the table equals the file, each row once.
  pgsql  a flow's SQL task (one transaction: an INSERT, then a pg_sleep) whose server is
         restarted while the statement runs: the attempt fails and rolls back, a retry
         or `--resume last` completes it; the table holds the rows once.
  full   the journal on a small tmpfs filled up (skipped, saying so, where mounting is
         not allowed): forklift fails with a message naming the journal, or succeeds;
         never a crash; with space again a resume completes.
  corrupt  a journal truncated at random lengths or with random bytes overwritten:
         `forklift runs`, `map --resume` and `run` give a clear error or work, never a
         crash (no signal, no abort).

Waits are for events (a line a job writes, a ledger row), never fixed sleeps; the jobs
themselves sleep a little so that kills land while they run.
Run by ctest (a short version: --seconds 8) with FORKLIFT=<path to binary>;
`make chaos` runs it longer.
"""
import argparse
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

FORKLIFT = os.path.abspath(os.environ.get(
    "FORKLIFT", os.path.join(os.path.dirname(__file__), "..", "build", "forklift")))


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def wait_until(pred, proc=None, timeout=60.0, what="condition"):
    """True once pred() holds; False when proc ended first. Polls: these are events in
    files other processes write."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        if proc is not None and proc.poll() is not None:
            return pred()
        time.sleep(0.005)
    raise Failure(f"timed out waiting for {what}")


def crashed(rc):
    # A signal (negative from Popen), or a shell's 128+N for SIGSEGV/SIGABRT/SIGBUS/SIGFPE.
    return rc < 0 or rc in (128 + 6, 128 + 7, 128 + 8, 128 + 11)


def run(args, env=None, cwd=None, timeout=120):
    p = subprocess.run([FORKLIFT] + args, capture_output=True, text=True, errors="replace", env=env, cwd=cwd,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class Chaos:
    def __init__(self, seed, seconds, workdir):
        self.rng = random.Random(seed)
        self.seconds = seconds
        self.dir = workdir
        self.stats = {}
        self._pg = None
        self._pg_round = 0

    def pg(self):
        """A real server, started on first use (pg_fixture), or None where none can start."""
        if self._pg is None:
            try:
                from pg_fixture import PgServer
                self._pg = PgServer()
            except Exception as e:  # no server binaries, or initdb refused
                self.note("pg", f"skipped: no PostgreSQL server could start: {e}")
                self._pg = False
        return self._pg or None

    def close(self):
        if self._pg:
            self._pg.close()

    def note(self, scenario, msg):
        print(f"chaos: {scenario}: {msg}", flush=True)

    def env(self, round_no, journal=None):
        e = dict(os.environ)
        e["CHAOS_ROUND"] = str(round_no)
        if journal:
            e["FORKLIFT_JOURNAL"] = journal
        return e

    def kill_after(self, args, env, cwd, ready, what):
        """Starts forklift, SIGKILLs it once ready() holds (or lets it finish); returns its
        exit status (-9 when killed)."""
        p = subprocess.Popen([FORKLIFT] + args, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, errors="replace")
        try:
            if wait_until(ready, proc=p, what=what) and p.poll() is None:
                p.send_signal(signal.SIGKILL)
            _, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        check(not crashed(p.returncode) or p.returncode == -signal.SIGKILL,
              f"{what}: forklift crashed (rc {p.returncode}): {err[-500:]}")
        self.last_err = err
        return p.returncode

    # --- map ---------------------------------------------------------------------------
    def map_once(self, n):
        d = tempfile.mkdtemp(dir=self.dir, prefix="map-")
        starts, finished, joblog = (os.path.join(d, x) for x in ("starts", "finished", "joblog"))
        journal = os.path.join(d, "journal.db")
        items = [f"item{i:03d}" for i in range(n)]
        cmd = (f"echo {{}} $CHAOS_ROUND >> {starts}; sleep 0.0$(( {{#}} % 3 )); "
               f"echo {{}} >> {finished}")
        args = ["map", "-j", str(self.rng.choice([1, 2, 4])), "--joblog", joblog, "--resume",
                "--journal", journal, cmd, ":::"] + items
        recorded = set()
        for rnd in range(1, 40):
            k = self.rng.randrange(0, n)
            rc = self.kill_after(args, self.env(rnd), d,
                                 lambda: len(lines(finished)) >= k + len(recorded),
                                 f"map round {rnd}")
            for item, r in (l.split() for l in lines(starts)):
                check(not (int(r) == rnd and item in recorded),
                      f"map: {item} recorded as succeeded before round {rnd} started again in it")
            for row in lines(joblog)[1:]:
                f = row.split("\t")
                if len(f) >= 9 and f[6] == "0" and f[7] == "0":
                    item = f[8].split("echo ", 1)[1].split()[0] if "echo " in f[8] else None
                    recorded.add(item)
            if rc == 0:
                break
        check(rc == 0, f"map never completed ({rnd} rounds)")
        done = set(lines(finished))
        check(done == set(items), f"map: work lost: {sorted(set(items) - done)[:5]}")
        succ = [r.split("\t")[8] for r in lines(joblog)[1:]
                if len(r.split("\t")) >= 9 and r.split("\t")[6] == "0"]
        check(len(succ) == len(set(succ)), "map: a job's success was recorded twice")
        check(len(succ) == n, f"map: {len(succ)} successes recorded for {n} jobs")
        shutil.rmtree(d)
        return rnd

    # --- run ---------------------------------------------------------------------------
    def flow_file(self, d, starts, finished):
        names = [f"t{i:02d}" for i in range(12)]
        out = ['name = "chaos"', "[pools]", "p = 2"]
        for i, name in enumerate(names):
            after = sorted({names[j] for j in self.rng.sample(range(i), min(i, 2))}) if i else []
            out += [f"[tasks.{name}]",
                    f'cmd = "echo {name} $CHAOS_ROUND >> {starts}; sleep 0.0{i % 4}; '
                    f'echo {name} >> {finished}"',
                    "after = [" + ", ".join(f'"{a}"' for a in after) + "]"]
            if i % 3 == 0:
                out.append('pool = "p"')
        path = os.path.join(d, "flow.toml")
        with open(path, "w") as f:
            f.write("\n".join(out) + "\n")
        return path, names

    @staticmethod
    def succeeded_tasks(journal):
        if not os.path.exists(journal):
            return set()
        c = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=10)
        try:
            rows = c.execute("select key from items where status = 'succeeded'").fetchall()
        finally:
            c.close()
        return {k.decode() if isinstance(k, bytes) else k for (k,) in rows}

    def run_once(self):
        d = tempfile.mkdtemp(dir=self.dir, prefix="run-")
        starts, finished = os.path.join(d, "starts"), os.path.join(d, "finished")
        path, names = self.flow_file(d, starts, finished)
        journal = os.path.join(d, ".forklift", "journal.db")
        recorded = set()
        args = ["run", path, "-j", str(self.rng.choice([1, 2, 3]))]
        resume = False
        for rnd in range(1, 40):
            k = self.rng.randrange(0, len(names))
            a = args + (["--resume", "last"] if resume else [])
            base = len(lines(finished))
            rc = self.kill_after(a, self.env(rnd), d, lambda: len(lines(finished)) >= base + k,
                                 f"run round {rnd}")
            for name, r in (l.split() for l in lines(starts)):
                check(not (int(r) == rnd and name in recorded),
                      f"run: task {name} recorded as succeeded started again in round {rnd}")
            recorded = {t for t in self.succeeded_tasks(journal) if t in names} | recorded
            if rc == 0 or recorded == set(names):
                break  # (a kill after the last task was recorded leaves nothing to resume)
            # A kill before the run was recorded leaves none to resume: start it again.
            resume = rc == -signal.SIGKILL or "no unfinished run" not in self.last_err
            check(rc in (0, 2, -signal.SIGKILL), f"run round {rnd}: exit {rc}: {self.last_err[-300:]}")
        check(recorded == set(names), f"run never completed ({rnd} rounds)")
        check(set(lines(finished)) == set(names), "run: a task never finished")
        shutil.rmtree(d)
        return rnd

    # --- load --------------------------------------------------------------------------
    @staticmethod
    def ledger(db):
        try:
            c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
            try:
                return c.execute("select count(*), coalesce(sum(rows), 0) "
                                 "from forklift_load_chunks").fetchone()
            finally:
                c.close()
        except sqlite3.OperationalError:
            return (0, 0)

    def load_once(self, n):
        d = tempfile.mkdtemp(dir=self.dir, prefix="load-")
        csv_path, db = os.path.join(d, "in.csv"), os.path.join(d, "target.db")
        rows = [(f"k{i}", i, f"v{self.rng.randrange(10**6)}") for i in range(n)]
        with open(csv_path, "w") as f:
            f.write("name,num,val\n")
            f.writelines(f"{a},{b},{c}\n" for a, b, c in rows)
        with sqlite3.connect(db) as c:
            c.execute("create table t (name text, num integer, val text)")
        c.close()
        chunk = self.rng.choice([50, 100, 250])
        chunks = -(-n // chunk)
        args = ["load", csv_path, "--to", f"sqlite:{db}", "--table", "t", "--chunk-rows",
                str(chunk), "--journal", os.path.join(d, "journal.db"), "--progress", "none"]
        for rnd in range(1, 40):
            k = self.rng.randrange(0, chunks) + self.ledger(db)[0]
            rc = self.kill_after(args, self.env(rnd), d, lambda: self.ledger(db)[0] >= k,
                                 f"load round {rnd}")
            check(rc in (0, -signal.SIGKILL), f"load round {rnd}: exit {rc}")
            if rc == 0:
                break
        check(rc == 0, f"load never completed ({rnd} rounds)")
        c = sqlite3.connect(db)
        try:
            got = sorted(c.execute("select name, num, val from t").fetchall())
        finally:
            c.close()
        check(got == sorted(rows), f"load: table differs from the file ({len(got)} rows for {n})")
        check(self.ledger(db) == (chunks, n), f"load: ledger {self.ledger(db)} for {chunks} chunks")
        shutil.rmtree(d)
        return rnd

    # --- PostgreSQL restarts -----------------------------------------------------------
    def pg_query(self, query):
        """psql's output, or None while the server is down (restarting)."""
        try:
            return self._pg.sql(query)
        except Exception:
            return None

    def pg_ledger(self, schema):
        out = self.pg_query(f"select count(*), coalesce(sum(rows), 0) from {schema}.forklift_load_chunks")
        return tuple(int(x) for x in out.split("\t")) if out else (0, 0)

    def run_restarting(self, args, ready, what, cwd=None):
        """Runs forklift and restarts the server (immediate: no checkpoint, in-flight
        transactions lost) once ready() holds while it runs. Returns (exit status, its
        stdout and stderr together, whether the restart happened)."""
        p = subprocess.Popen([FORKLIFT] + args, cwd=cwd, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, errors="replace")
        try:
            restarted = wait_until(ready, proc=p, what=what) and p.poll() is None
            if restarted:
                self._pg.restart("immediate")
            out, _ = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        check(not crashed(p.returncode), f"{what}: forklift crashed (rc {p.returncode}): {out[-500:]}")
        return p.returncode, out, restarted

    def pg_load_once(self, n):
        pg = self.pg()
        if pg is None:
            return None
        self._pg_round += 1
        schema = f"chaos{self._pg_round}"
        # Inserts go to a table without a key, so that a chunk written twice would show as
        # duplicate rows (not as rows a unique index rejects to the dead letters).
        upsert = self.rng.random() < 0.5
        pg.sql(f"create schema {schema}; create table {schema}.t (name text"
               f"{' primary key' if upsert else ''}, num integer, val text)")
        d = tempfile.mkdtemp(dir=self.dir, prefix="pgload-")
        csv_path = os.path.join(d, "in.csv")
        rows = [(f"k{i}", i, f"v{self.rng.randrange(10**6)}") for i in range(n)]
        with open(csv_path, "w") as f:
            f.write("name,num,val\n")
            f.writelines(f"{a},{b},{c}\n" for a, b, c in rows)
        workers = self.rng.choice([1, 2, 4])
        chunk = self.rng.choice([100, 250])  # many small transactions: a restart lands mid-load
        chunks = -(-n // chunk)
        args = ["load", csv_path, "--to", pg.dsn(), "--table", f"{schema}.t", "--chunk-rows",
                str(chunk), "--workers", str(workers),
                "--journal", os.path.join(d, "journal.db"), "--progress", "none"]
        if upsert:
            args += ["--mode", "upsert", "--key", "name"]
        k = self.rng.randrange(0, chunks // 2)
        first, err, restarted = self.run_restarting(args, lambda: self.pg_ledger(schema)[0] >= k,
                                                    f"pgload: {k} chunks committed")
        rc = first
        # A restart is retried for about a minute, so the load should end well; if it did
        # not, it must say why and a rerun must complete.
        for rnd in range(3):
            if rc == 0:
                break
            check(err.strip(), f"pgload: exit {rc} with no message")
            rc, _, err = run(args)
        check(rc == 0, f"pgload: never completed: {err[-500:]}")
        got = sorted(tuple(r.split("\t")) for r in pg.sql(f"select name, num, val from {schema}.t").splitlines())
        want = sorted((a, str(b), c) for a, b, c in rows)
        check(got == want, f"pgload: table differs from the file ({len(got)} rows for {n})")
        # An upsert routes each key to one of the writers' partitions, each cut into chunks
        # on its own: up to one partial chunk more per extra writer.
        most = chunks + (workers - 1 if upsert else 0)
        led = self.pg_ledger(schema)
        check(led[1] == n and chunks <= led[0] <= most,
              f"pgload: ledger {led} for {n} rows in {chunks}..{most} chunks")
        pg.sql(f"drop schema {schema} cascade")
        shutil.rmtree(d)
        return f"restart {'after ' + str(k) + ' chunks' if restarted else 'came after the end'}, first exit {first}"

    def pg_sql_once(self):
        pg = self.pg()
        if pg is None:
            return None
        self._pg_round += 1
        table = f"chaos_sql{self._pg_round}"
        pg.sql(f"create table {table} (n integer primary key)")
        d = tempfile.mkdtemp(dir=self.dir, prefix="pgsql-")
        n = self.rng.choice([100, 1000])
        retries = self.rng.choice([0, 4])
        flow = os.path.join(d, "flow.toml")
        with open(flow, "w") as f:
            f.write(f"""name = "chaos_sql"
[databases]
db = "{pg.dsn()}"
[tasks.fill]
db = "db"
sql = "insert into {table} select g from generate_series(1, {n}) g; select pg_sleep(0.4)"
retries = {retries}
retry_delay = "500ms"
[tasks.report]
cmd = "echo filled"
after = ["fill"]
""")
        sleeping = (f"select count(*) from pg_stat_activity where state = 'active' "
                    f"and query like '%pg_sleep(0.4)%' and pid <> pg_backend_pid()")
        # The run's report (task states, the failure) is on stdout.
        first, out, restarted = self.run_restarting(
            ["run", flow], lambda: (self.pg_query(sleeping) or "0") != "0",
            "pgsql: the task's statement running", cwd=d)
        check(first in (0, 1), f"pgsql: exit {first}: {out[-500:]}")
        if first != 0:
            check("FAILED   fill" in out, f"pgsql: a failed run that does not name the task: {out[-500:]}")
            rc, out, err = run(["run", flow, "--resume", "last"], cwd=d)
            check(rc == 0, f"pgsql: --resume last exit {rc}: {(out + err)[-500:]}")
        got = pg.sql(f"select count(*), count(distinct n) from {table}")
        check(got == f"{n}\t{n}", f"pgsql: {got} rows after the restart for {n}")
        pg.sql(f"drop table {table}")
        shutil.rmtree(d)
        return (f"restart {'mid-statement' if restarted else 'came after the end'}, "
                f"retries {retries}, first exit {first}")

    # --- corrupt journal ---------------------------------------------------------------
    def make_journal(self, d):
        journal = os.path.join(d, "good.db")
        rc, _, err = run(["map", "--journal", journal, "--joblog", os.path.join(d, "jl"),
                          "true", ":::", "a", "b", "c"], cwd=d)
        check(rc == 0, f"corrupt: making a journal failed: {err}")
        return journal

    def corrupt_once(self, good, d):
        with open(good, "rb") as f:
            data = bytearray(f.read())
        how = self.rng.choice(["truncate", "bytes", "header", "garbage"])
        if how == "truncate":
            data = data[:self.rng.randrange(0, len(data))]
        elif how == "bytes":
            for _ in range(self.rng.randrange(1, 64)):
                data[self.rng.randrange(len(data))] = self.rng.randrange(256)
        elif how == "header":
            for i in range(self.rng.randrange(16, 100)):
                data[i] = self.rng.randrange(256)
        else:
            data = bytearray(self.rng.randbytes(self.rng.randrange(1, 8192)))
        bad = os.path.join(d, "bad.db")
        for ext in ("", "-wal", "-shm"):
            if os.path.exists(bad + ext):
                os.unlink(bad + ext)
        with open(bad, "wb") as f:
            f.write(data)
        flow = os.path.join(d, "f.toml")
        with open(flow, "w") as f:
            f.write('[tasks.a]\ncmd = "true"\n')
        for args in (["runs", "--journal", bad],
                     ["map", "--journal", bad, "--joblog", os.path.join(d, "jl"), "--resume",
                      "true", ":::", "a", "b"],
                     ["run", flow, "--journal", bad]):
            rc, out, err = run(args, cwd=d)
            check(not crashed(rc), f"corrupt ({how}): {args[0]} crashed (rc {rc}): {err[-300:]}")
            if rc != 0:
                check(err.strip() != "", f"corrupt ({how}): {args[0]} failed silently")
                check("journal" in err or bad in err,
                      f"corrupt ({how}): {args[0]}'s error does not name the journal: {err[-300:]}")
                check(len(err.strip().splitlines()) <= 5,
                      f"corrupt ({how}): {args[0]} says too much: {err[-300:]}")
        return how

    # --- full disk ---------------------------------------------------------------------
    def full_disk(self, i):
        mnt = tempfile.mkdtemp(dir=self.dir, prefix="full-")
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt],
                           capture_output=True, text=True)
        if p.returncode != 0:
            self.note("full", "skipped: cannot mount a tmpfs here "
                      f"({(p.stderr or p.stdout).strip() or 'mount failed'})")
            return None
        try:
            filler = os.path.join(mnt, "filler")
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                while os.write(fd, b"\0" * 4096) > 0:
                    pass
            except OSError:
                pass  # full
            finally:
                os.close(fd)
            # Leave a little room: enough for the journal to be created, not for the run.
            keep = [0, 48, 160][i % 3] * 1024
            size = os.path.getsize(filler)
            os.truncate(filler, max(0, size - keep))
            journal = os.path.join(mnt, "journal.db")
            d = tempfile.mkdtemp(dir=self.dir, prefix="fullwork-")
            starts = os.path.join(d, "starts")
            joblog = os.path.join(d, "joblog")
            items = [f"x{i:04d}-" + "p" * 200 for i in range(400)]
            args = ["map", "-j", "4", "--journal", journal, "--joblog", joblog, "--resume",
                    f"echo {{}} $CHAOS_ROUND >> {starts}", ":::"] + items
            rc, out, err = run(args, env=self.env(1), cwd=d)
            check(not crashed(rc), f"full: forklift crashed (rc {rc}): {err[-300:]}")
            if rc != 0:
                check("journal" in err, f"full: the error does not name the journal: {err[-300:]}")
            os.unlink(filler)
            rc2, _, err2 = run(args, env=self.env(2), cwd=d)
            check(rc2 == 0, f"full: the rerun with space failed (rc {rc2}): {err2[-300:]}")
            ran = {l.split()[0] for l in lines(starts)}
            check(ran == set(items), f"full: {len(set(items) - ran)} jobs never ran")
            return f"free {keep // 1024} KiB: first rc {rc}" + (f" ({err.strip().splitlines()[-1][:120]})" if rc else "")
        finally:
            subprocess.run(["umount", "-l", mnt], capture_output=True)

    # --- driver ------------------------------------------------------------------------
    def go(self, scenarios):
        start = time.monotonic()
        share = self.seconds / len(scenarios)
        corrupt_dir = None
        for name in scenarios:
            t0 = time.monotonic()
            count = 0
            while True:
                if name == "map":
                    r = self.map_once(self.rng.choice([12, 24, 40]))
                    detail = f"{r} rounds"
                elif name == "run":
                    detail = f"{self.run_once()} rounds"
                elif name == "load":
                    detail = f"{self.load_once(self.rng.choice([2000, 5000]))} rounds"
                elif name in ("pgload", "pgsql"):
                    detail = (self.pg_load_once(self.rng.choice([20000, 40000])) if name == "pgload"
                              else self.pg_sql_once())
                    if detail is None:
                        break
                elif name == "corrupt":
                    if corrupt_dir is None:
                        corrupt_dir = tempfile.mkdtemp(dir=self.dir, prefix="corrupt-")
                        good = self.make_journal(corrupt_dir)
                    detail = self.corrupt_once(good, corrupt_dir)
                elif name == "full":
                    detail = self.full_disk(count)
                    if detail is None:
                        break
                count += 1
                self.note(name, f"#{count} ok ({detail})")
                if time.monotonic() - t0 >= share or name == "full" and count >= 3:
                    break
            self.stats[name] = count
        return time.monotonic() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("CHAOS_SECONDS", 60)))
    ap.add_argument("--only", action="append",
                    choices=["map", "run", "load", "pgload", "pgsql", "full", "corrupt"])
    ns = ap.parse_args()
    seed = ns.seed if ns.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"chaos: seed {seed} (replay: {sys.argv[0]} --seed {seed} --seconds {ns.seconds:g})",
          flush=True)
    workdir = tempfile.mkdtemp(prefix="forklift-chaos-")
    chaos = Chaos(seed, ns.seconds, workdir)
    try:
        took = chaos.go(ns.only or ["map", "run", "load", "pgload", "pgsql", "corrupt", "full"])
    except (Failure, subprocess.TimeoutExpired) as e:
        print(f"chaos: FAILED (seed {seed}): {e}\nchaos: state kept in {workdir}", flush=True)
        return 1
    finally:
        chaos.close()
    print(f"chaos: passed in {took:.1f}s: " +
          ", ".join(f"{k} x{v}" for k, v in chaos.stats.items()) + f" (seed {seed})")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
