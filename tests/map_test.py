#!/usr/bin/env python3
"""End-to-end tests of `forklift map`, run as a user would run it.

Where GNU parallel is installed, the same invocations run through it too and outputs,
joblog columns and exit codes are compared. Run by ctest with FORKLIFT=<path to binary>.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

FORKLIFT = os.environ.get("FORKLIFT", os.path.join(os.path.dirname(__file__), "..", "build", "forklift"))
PARALLEL = shutil.which("parallel")


def run(args, stdin=None, cwd=None, env=None, timeout=60):
    p = subprocess.run(args, input=stdin, capture_output=True, cwd=cwd, env=env, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def fk(*args, **kw):
    return run([FORKLIFT, "map", *args], **kw)


def gnu(*args, **kw):
    return run([PARALLEL, "--will-cite", *args], **kw)


def our_sleepers(tag):
    """PIDs of processes whose command line contains tag (orphan detection)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if tag.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def wait_for(predicate, timeout=20, what="condition"):
    """Polls until predicate() is true; fails the test after timeout seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class MapTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="forklift-map-test-")
        self.env = dict(os.environ, FORKLIFT_JOURNAL=os.path.join(self.dir, "journal.db"),
                        TMPDIR=os.path.join(self.dir, "tmp"))
        os.makedirs(self.env["TMPDIR"])

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def fk(self, *args, **kw):
        kw.setdefault("env", self.env)
        kw.setdefault("cwd", self.dir)
        return fk(*args, **kw)

    def same_as_gnu(self, args, stdin=None, sort=False):
        rc, out, err = self.fk(*args, stdin=stdin)
        if PARALLEL:
            grc, gout, _ = gnu(*args, stdin=stdin, cwd=self.dir)
            if sort:
                self.assertEqual(sorted(out.splitlines()), sorted(gout.splitlines()), args)
            else:
                self.assertEqual(out, gout, args)
            self.assertEqual(rc, grc, args)
        return rc, out, err

    # --- inputs and templates ---------------------------------------------------------------

    def test_arguments_after_triple_colon(self):
        rc, out, _ = self.same_as_gnu(["-k", "echo", ":::", "a", "b", "c"])
        self.assertEqual(rc, 0)
        self.assertEqual(out, b"a\nb\nc\n")

    def test_cross_product_first_source_slowest(self):
        rc, out, _ = self.same_as_gnu(["-k", "echo", ":::", "a", "b", ":::", "1", "2"])
        self.assertEqual(out, b"a 1\na 2\nb 1\nb 2\n")

    def test_replacement_strings(self):
        args = ["-k", "echo {} {.} {/} {//} {/.} {#}", ":::", "dir/sub/file.tar.gz", "plain"]
        rc, out, _ = self.same_as_gnu(args)
        self.assertEqual(out.splitlines()[0], b"dir/sub/file.tar.gz dir/sub/file.tar file.tar.gz dir/sub file.tar 1")
        self.assertEqual(out.splitlines()[1], b"plain plain plain . plain 2")

    def test_positional_columns_and_colsep(self):
        rc, out, _ = self.same_as_gnu(["-k", "--colsep", ",", "echo {2}-{1}"], stdin=b"a,b\nc,d\n")
        self.assertEqual(out, b"b-a\nd-c\n")

    def test_slot_is_between_one_and_jobs(self):
        rc, out, _ = self.fk("-j2", "echo {%}", ":::", *map(str, range(20)))
        self.assertEqual(rc, 0)
        self.assertTrue(set(out.split()) <= {b"1", b"2"}, out)

    def test_stdin_lines_and_null_separated(self):
        self.same_as_gnu(["-k", "echo"], stdin=b"x\ny\n")
        rc, out, _ = self.same_as_gnu(["-k", "-0", "echo"], stdin=b"p q\0r\0")
        self.assertEqual(out, b"p q\nr\n")

    def test_arg_file(self):
        path = os.path.join(self.dir, "args.txt")
        with open(path, "wb") as f:
            f.write(b"one\ntwo\n")
        rc, out, _ = self.same_as_gnu(["-k", "echo", "::::", path])
        self.assertEqual(out, b"one\ntwo\n")

    def test_inputs_are_one_literal_argument(self):
        evil = "$(touch pwned); rm x"
        rc, out, _ = self.same_as_gnu(["-k", "echo", ":::", evil, "it's", 'a"b'])
        self.assertEqual(out, b"$(touch pwned); rm x\nit's\na\"b\n")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "pwned")))

    def test_binary_empty_and_long_lines_pass_through(self):
        # 100 KiB is near Linux's limit for one argument (MAX_ARG_STRLEN, 128 KiB).
        long_line = b"x" * 100000
        data = b"\x01\x02\xff bin\n\n" + long_line + b"\nlast-without-newline"
        rc, out, _ = self.fk("-k", "-j2", "printf '%s|'", stdin=data)
        self.assertEqual(rc, 0)
        self.assertEqual(out, b"\x01\x02\xff bin||" + long_line + b"|last-without-newline|")

    def test_a_line_too_long_for_exec_fails_alone_with_a_clear_error(self):
        # A 1 MiB line is read intact, but no exec can take it as one argument: that job
        # fails saying why, the others run.
        data = b"a\n" + b"y" * (1 << 20) + b"\nb\n"
        rc, out, err = self.fk("-k", "echo", stdin=data)
        self.assertEqual(rc, 1)
        self.assertEqual(out, b"a\nb\n")
        self.assertIn(b"Argument list too long", err)

    def test_output_without_final_newline_is_kept(self):
        rc, out, _ = self.same_as_gnu(["-k", "printf", ":::", "a", "b"])
        self.assertEqual(out, b"ab")

    def test_tag_and_tagstring(self):
        self.same_as_gnu(["-k", "--tag", "echo", ":::", "a", "b"])
        rc, out, _ = self.same_as_gnu(["-k", "--tagstring", "<{}>", "echo", "hi", ":::", "a"])
        self.assertEqual(out, b"<a>\thi a\n")

    def test_grouped_output_is_never_interleaved(self):
        script = "for i in 1 2 3 4 5; do echo {}-$i; sleep 0.01; done"
        rc, out, _ = self.fk("-j4", script, ":::", "a", "b", "c", "d")
        lines = out.decode().splitlines()
        for job in "abcd":
            idx = [i for i, l in enumerate(lines) if l.startswith(job + "-")]
            self.assertEqual(idx, list(range(idx[0], idx[0] + 5)), lines)

    def test_dry_run_prints_commands_and_runs_nothing(self):
        rc, out, _ = self.same_as_gnu(["--dry-run", "-k", "touch", ":::", "a b", "c"])
        self.assertEqual(out, b"touch 'a b'\ntouch c\n")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "c")))

    # --- exit status, joblog, retries, halt ---------------------------------------------------

    def test_exit_status_counts_failed_jobs(self):
        rc, _, _ = self.same_as_gnu(["exit {}", ":::", "0", "1", "2", "0", "3"])
        self.assertEqual(rc, 3)
        rc, _, _ = self.fk("-j4", "exit 1", ":::", *map(str, range(150)))
        self.assertEqual(rc, 101)

    def test_joblog_format_matches_gnu_parallel(self):
        mine = os.path.join(self.dir, "mine.log")
        rc, _, _ = self.fk("-k", "--joblog", mine, "exit {}", ":::", "0", "3")
        self.assertEqual(rc, 1)
        with open(mine) as f:
            rows = f.read().splitlines()
        self.assertEqual(rows[0], "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand")
        row_re = re.compile(r"^(\d+)\t:\t\d+\.\d{3}\t +\d+\.\d{3}\t0\t\d+\t(\d+)\t(\d+)\t(.*)$")
        parsed = sorted(row_re.match(r).groups() for r in rows[1:])
        self.assertEqual(parsed, [("1", "0", "0", "exit 0"), ("2", "3", "0", "exit 3")])
        if PARALLEL:
            theirs = os.path.join(self.dir, "theirs.log")
            gnu("-k", "--joblog", theirs, "exit {}", ":::", "0", "3", cwd=self.dir)
            with open(theirs) as f:
                grows = f.read().splitlines()
            self.assertEqual(grows[0], rows[0])
            for a, b in zip(sorted(rows[1:]), sorted(grows[1:])):
                fa, fb = a.split("\t"), b.split("\t")
                self.assertEqual(len(fa), len(fb))
                self.assertEqual(len(fa[3]), len(fb[3]), "JobRuntime keeps GNU's width")
                self.assertEqual(fa[0:2] + fa[4:], fb[0:2] + fb[4:])

    def test_retries_rerun_a_failing_job(self):
        counter = os.path.join(self.dir, "count")
        cmd = f": {{}}; echo x >> {counter}; test $(wc -l < {counter}) -ge 3"
        rc, _, _ = self.fk("--retries", "3", "--retry-delay", "10ms", cmd, ":::", "1")
        self.assertEqual(rc, 0)
        with open(counter) as f:
            self.assertEqual(len(f.read().splitlines()), 3)

    def test_halt_now_on_first_failure(self):
        rc, out, _ = self.fk("-j1", "--halt", "now,fail=1", "echo {}; exit {}", ":::", "0", "1", "0", "0")
        self.assertNotEqual(rc, 0)
        self.assertNotIn(b"0\n0\n0\n", out)

    def test_bad_input_is_one_line_error_and_exit_255(self):
        for args in (["--no-such-option", "echo"], ["--halt", "sometimes", "echo", ":::", "a"],
                     ["echo", "::::", os.path.join(self.dir, "missing.txt")]):
            rc, out, err = self.fk(*args)
            self.assertEqual(rc, 255, args)
            self.assertEqual(out, b"", "nothing ran")
            self.assertEqual(len(err.strip().splitlines()), 1, err)
        rc, _, err = self.fk("--halt", "sometimes", "echo", ":::", "a")
        self.assertIn(b"sometimes", err)

    # --- timeouts, signals, resume, temp files ------------------------------------------------

    def test_timeout_kills_the_whole_process_tree(self):
        tag = "forklift-test-sleeper-%d" % os.getpid()
        cmd = f"sh -c 'sleep 100 & exec -a {tag} sleep 100' ; true"
        cmd = f"bash -c 'exec -a {tag} sleep 100' & bash -c 'exec -a {tag} sleep 100'"
        t0 = time.time()
        rc, _, _ = self.fk("--timeout", "0.5", cmd, ":::", "1")
        self.assertLess(time.time() - t0, 10)
        self.assertEqual(rc, 1)
        # Zombies (not yet reaped by an init that does not reap) keep no cmdline.
        wait_for(lambda: our_sleepers(tag) == [], timeout=5, what="no orphan after the timeout")

    def test_first_sigint_lets_running_jobs_finish(self):
        # The jobs mark that they started and wait for 'go': the signal comes while exactly
        # two run, however slow the machine (no sleep decides it).
        log = os.path.join(self.dir, "jl")
        cmd = "touch started.{}; while [ ! -e go ]; do sleep 0.01; done; echo done {}"
        p = subprocess.Popen([FORKLIFT, "map", "-j2", "--joblog", log, cmd,
                              ":::", *map(str, range(10))], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=self.env, cwd=self.dir)
        wait_for(lambda: len(self._started()) == 2, what="two jobs running")
        p.send_signal(signal.SIGINT)
        self.assertIn(b"starting no new jobs", p.stderr.readline())
        open(os.path.join(self.dir, "go"), "w").close()
        out, _ = p.communicate(timeout=20)
        self.assertNotEqual(p.returncode, 0)
        running = sorted(b"done " + f.split(".")[1].encode() for f in self._started())
        self.assertEqual(sorted(out.split(b"\n")[:-1]), running)
        with open(log) as f:
            self.assertEqual(len(f.read().splitlines()), 3, "both running jobs are logged")

    def test_second_sigint_kills_running_jobs(self):
        tag = "forklift-test-int-%d" % os.getpid()
        p = subprocess.Popen([FORKLIFT, "map", "-j2",
                              f"touch started.{{}}; bash -c 'exec -a {tag} sleep 100'",
                              ":::", "1", "2"], stderr=subprocess.PIPE, env=self.env, cwd=self.dir)
        wait_for(lambda: len(self._started()) == 2, what="two jobs running")
        p.send_signal(signal.SIGINT)
        self.assertIn(b"starting no new jobs", p.stderr.readline())
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=20)
        self.assertNotEqual(p.returncode, 0)
        wait_for(lambda: our_sleepers(tag) == [], timeout=5, what="the killed jobs gone")

    def test_resume_after_sigkill_reruns_no_recorded_job(self):
        out = os.path.join(self.dir, "ran.txt")
        log = os.path.join(self.dir, "jl")
        args = ["-j2", "--joblog", log, f"sleep 0.02; echo {{}} >> {out}", ":::", *map(str, range(200))]
        p = subprocess.Popen([FORKLIFT, "map", *args], env=self.env, cwd=self.dir)
        deadline = time.time() + 20
        while time.time() < deadline:
            if os.path.exists(out) and len(open(out).read().split()) > 40:
                break
            time.sleep(0.01)
        p.send_signal(signal.SIGKILL)
        p.wait()
        with open(log) as f:
            logged = {row.split("\t")[8] for row in f.read().splitlines()[1:]
                      if row.split("\t")[6] == "0"}
        self.assertGreater(len(logged), 0)
        rc, _, _ = self.fk("--resume", *args)
        self.assertEqual(rc, 0)
        with open(out) as f:
            ran = f.read().split()
        counts = {x: ran.count(x) for x in set(ran)}
        self.assertEqual(set(counts), {str(i) for i in range(200)}, "every job ran")
        for cmd in logged:
            job = cmd.split("echo ")[1].split(" ")[0]
            self.assertEqual(counts[job], 1, f"job {job} was logged done, yet ran again")

    def _gated_jobs(self, n):
        """Job args for n jobs that mark they started, wait for the file 'go', then mark done."""
        cmd = "touch started.{}; while [ ! -e go ]; do sleep 0.01; done; touch done.{}"
        return ["-j2", "--joblog", os.path.join(self.dir, "r.log"), cmd, ":::", *map(str, range(1, n + 1))]

    def _started(self):
        return sorted(f for f in os.listdir(self.dir) if f.startswith("started."))

    def test_resume_after_sigint_runs_the_jobs_that_never_started(self):
        # issue 10's blocker: jobs cancelled before they ran were recorded as failed, and
        # --resume skipped them. They get no joblog row and no journal entry (GNU parallel).
        args = self._gated_jobs(10)
        p = subprocess.Popen([FORKLIFT, "map", *args], stderr=subprocess.PIPE,
                             env=self.env, cwd=self.dir)
        wait_for(lambda: len(self._started()) == 2, what="two jobs running")
        p.send_signal(signal.SIGINT)
        first_line = p.stderr.readline()  # the signal was taken: nothing new starts
        self.assertIn(b"starting no new jobs", first_line)
        open(os.path.join(self.dir, "go"), "w").close()
        _, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, 130)
        self.assertNotIn(b"Cancelled", err, "jobs that never ran are not reported as failed")
        with open(os.path.join(self.dir, "r.log")) as f:
            self.assertEqual(len(f.read().splitlines()), 3, "two rows: the jobs that ran")
        first = set(self._started())
        self.assertEqual(len(first), 2, "nothing new started after the SIGINT")
        rc, _, err = self.fk("--resume", *args)
        self.assertEqual(rc, 0, err)
        done = sorted(f for f in os.listdir(self.dir) if f.startswith("done."))
        self.assertEqual(done, sorted(f"done.{i}" for i in range(1, 11)), "every job ran")

    def test_resume_reruns_jobs_killed_by_the_second_sigint(self):
        args = self._gated_jobs(4)
        p = subprocess.Popen([FORKLIFT, "map", *args], stderr=subprocess.PIPE,
                             env=self.env, cwd=self.dir)
        wait_for(lambda: len(self._started()) == 2, what="two jobs running")
        p.send_signal(signal.SIGINT)
        self.assertIn(b"starting no new jobs", p.stderr.readline())
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, 130)
        self.assertIn(b"killed", err)
        with open(os.path.join(self.dir, "r.log")) as f:
            self.assertEqual(len(f.read().splitlines()), 1,
                             "killed jobs did not finish: no joblog row (as GNU parallel)")
        killed = [f.split(".")[1] for f in self._started()]
        open(os.path.join(self.dir, "go"), "w").close()
        rc, _, err = self.fk("--resume", *args)
        self.assertEqual(rc, 0, err)
        for job in killed:
            self.assertTrue(os.path.exists(os.path.join(self.dir, f"done.{job}")),
                            f"killed job {job} ran again on --resume")
        self.assertEqual(len([f for f in os.listdir(self.dir) if f.startswith("done.")]), 4)

    def test_resume_keys_jobs_by_content_and_occurrence(self):
        # GNU parallel's test suite: an input that appears twice is two jobs. The halt
        # stops the run before the second "a"; --resume must run it, not take it for the
        # first one.
        out = os.path.join(self.dir, "out")
        args = ["-j1", "--joblog", os.path.join(self.dir, "jl"), "--halt", "soon,fail=1",
                f"echo {{}} >> {out}; [ {{}} != fail ]", ":::", "a", "fail", "a"]
        rc, _, _ = self.fk(*args)
        self.assertEqual(rc, 1)
        with open(out) as f:
            self.assertEqual(f.read().split(), ["a", "fail"])
        rc, _, err = self.fk("--resume", *args)
        self.assertEqual(rc, 0, err)
        with open(out) as f:
            self.assertEqual(f.read().split(), ["a", "fail", "a"], "the second a ran once")
        rc, _, err = self.fk("--resume", *args)
        with open(out) as f:
            self.assertEqual(len(f.read().split()), 3, "nothing left to run")

    def test_delay_starts_jobs_in_order(self):
        rc, out, _ = self.same_as_gnu(["--delay", "0.15", "-j2", "echo", ":::", "0", "1", "2", "3"])
        self.assertEqual(rc, 0)
        self.assertEqual(out, b"0\n1\n2\n3\n")
        # The race needs workers taking jobs at once: eight slots make it show (before the
        # fix, about one run in three started two jobs swapped).
        # The order is read from the joblog's start times, not from the output: output comes
        # in completion order, which a busy host may swap for two jobs started 50 ms apart.
        inputs = [str(i) for i in range(16)]
        log = os.path.join(self.dir, "delay.log")
        for _ in range(8):
            if os.path.exists(log):
                os.remove(log)
            rc, out, _ = self.fk("--delay", "0.05", "-j8", "--joblog", log, "echo", ":::", *inputs)
            self.assertEqual(rc, 0)
            self.assertEqual(sorted(out.decode().split(), key=int), inputs)
            with open(log) as f:
                rows = [line.split("\t") for line in f.read().splitlines()[1:]]
            by_start = sorted(rows, key=lambda r: float(r[2]))
            self.assertEqual([int(r[0]) for r in by_start], list(range(1, 17)))

    def test_halt_now_with_one_job_slot_never_starts_another(self):
        for _ in range(20):
            rc, out, err = self.fk("-j1", "--halt", "now,fail=1", "echo {}; exit {}", ":::", "1", "0", "0", "0")
            self.assertEqual(out, b"1\n")
            self.assertEqual(rc, 1)
        self.assertIn(b"--halt now,fail=1: job 1 failed (exit 1): echo 1; exit 1", err)
        self.assertIn(b"killing the running jobs and starting no more", err)

    def test_output_that_cannot_be_written_stops_the_run_with_255(self):
        # stdout on /dev/full: the first job's output fails (ENOSPC); the run stops there
        # instead of running every job into the void, and says why.
        log = os.path.join(self.dir, "jl")
        for mode in ([], ["--line-buffer"]):
            with open("/dev/full", "wb") as full:
                p = subprocess.run([FORKLIFT, "map", "-j1", *mode, "--joblog", log, "echo",
                                    ":::", *map(str, range(100))], stdout=full,
                                   stderr=subprocess.PIPE, env=self.env, cwd=self.dir, timeout=60)
            self.assertEqual(p.returncode, 255, mode)
            self.assertIn(b"forklift map: writing", p.stderr, mode)
            self.assertIn(b"No space left on device", p.stderr, mode)
            with open(log) as f:
                self.assertLess(len(f.read().splitlines()), 10, mode)

    def test_timeout_kill_says_so(self):
        rc, _, err = self.fk("--timeout", "0.2", "sleep", ":::", "30")
        self.assertEqual(rc, 1)
        self.assertIn(b"job 1 was killed because it timed out: sleep 30", err)

    def test_sighup_stops_gracefully(self):
        # GNU parallel: SIGHUP starts no new jobs and waits for the running ones.
        args = self._gated_jobs(6)
        p = subprocess.Popen([FORKLIFT, "map", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=self.env, cwd=self.dir)
        wait_for(lambda: len(self._started()) == 2, what="two jobs running")
        p.send_signal(signal.SIGHUP)
        self.assertIn(b"HUP: starting no new jobs", p.stderr.readline())
        open(os.path.join(self.dir, "go"), "w").close()
        p.communicate(timeout=20)
        self.assertEqual(p.returncode, 128 + signal.SIGHUP)
        done = [f for f in os.listdir(self.dir) if f.startswith("done.")]
        self.assertEqual(len(done), 2, "the running jobs finished, none started")

    def test_unlimited_jobs_fit_the_descriptor_limit(self):
        n = 60
        rc, out, err = run(["sh", "-c", f'ulimit -n 64 && exec "$0" map -j0 echo ::: $(seq {n})', FORKLIFT],
                           env=self.env, cwd=self.dir)
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(out.split()), sorted(str(i).encode() for i in range(1, n + 1)))
        self.assertIn(b"only enough file descriptors", err)

    def test_results_with_a_256_byte_argument(self):
        arg = "a" * 256
        rc, _, err = self.fk("--results", "res", "echo", ":::", arg)
        self.assertEqual(rc, 0, err)
        with open(os.path.join(self.dir, "res", "1", "a" * 255, "stdout")) as f:
            self.assertEqual(f.read(), arg + "\n")
        if PARALLEL:
            gnu("--results", "theirs", "echo", ":::", arg, cwd=self.dir)
            self.assertEqual(os.listdir(os.path.join(self.dir, "theirs", "1")), ["a" * 255])

    def test_resume_says_where_its_state_is_and_a_missing_joblog_starts_over(self):
        out = os.path.join(self.dir, "out")
        log = os.path.join(self.dir, "jl")
        args = ["--joblog", log, f"echo {{}} >> {out}", ":::", "a", "b"]
        self.fk(*args)
        rc, _, err = self.fk("--resume", *args)
        self.assertEqual(rc, 0)
        self.assertIn(b"resuming run map-", err)
        self.assertIn(self.env["FORKLIFT_JOURNAL"].encode(), err)
        self.assertIn(b"delete the joblog", err)
        with open(out) as f:
            self.assertEqual(len(f.read().split()), 2, "nothing reran")
        os.unlink(log)
        rc, _, err = self.fk("--resume", *args)
        self.assertEqual(rc, 0)
        self.assertIn(b"starting a new run", err)
        with open(out) as f:
            self.assertEqual(sorted(f.read().split()), ["a", "a", "b", "b"], "all ran again")

    def test_resume_with_a_long_malformed_joblog_line_is_an_error_not_a_crash(self):
        # issue 16: the joblog's loose pattern ran on std::regex and crashed (SIGSEGV).
        log = os.path.join(self.dir, "jl")
        with open(log, "w") as f:
            f.write("Seq\n" + "x1 " + "a" * 30000 + "\n")
        rc, _, err = self.fk("--joblog", log, "--resume", "echo", ":::", "a")
        self.assertEqual(rc, 255)
        self.assertIn(b"format of --joblog", err)
        self.assertLess(len(err), 1000, "the error quotes the line's start only")

    def test_colsep_regex_on_a_long_line(self):
        # issue 16: std::regex recursed per character and crashed (SIGSEGV) at 30 KB.
        line = b"a" + b" " * 30000 + b"b\n"
        rc, out, err = self.fk("--dry-run", "--colsep", r"\s+", "echo", "{2}", stdin=line)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"echo b\n")

    def test_help_and_forklift_help_cmd(self):
        rc, out, err = self.fk("--help")
        self.assertEqual(rc, 0, err)
        self.assertIn(b"usage: forklift map", out)
        for group in (b"Input sources", b"Job control", b"Output", b"Logging and resume", b"Progress"):
            self.assertIn(group, out)
        rc2, out2, _ = self.fk("-h")
        self.assertEqual((rc2, out2), (0, out))
        for cmd in ("map", "run", "load", "runs", "dlq", "report"):
            a = run([FORKLIFT, cmd, "--help"], env=self.env, cwd=self.dir)
            b = run([FORKLIFT, "help", cmd], env=self.env, cwd=self.dir)
            self.assertEqual(a, b, cmd)
            self.assertEqual(a[0], 0, cmd)
            self.assertNotIn(b"commands:\n  map", a[1], f"{cmd}: its own help, not the top level")

    def test_gnu_options_we_lack_and_typos(self):
        rc, out, err = self.fk("--pipe", "wc", ":::", "a")
        self.assertEqual(rc, 255)
        self.assertIn(b"not supported by forklift map (GNU parallel option)", err)
        rc, out, err = self.fk("--jbos", "2", "echo", ":::", "a")
        self.assertEqual(rc, 255)
        self.assertIn(b"did you mean '--jobs'?", err)

    def test_terminal_input_warns_and_ctrl_c_exits_at_once(self):
        import pty
        master, slave = pty.openpty()
        p = subprocess.Popen([FORKLIFT, "map", "echo"], stdin=slave, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=self.env, cwd=self.dir)
        os.close(slave)
        try:
            import select
            ready, _, _ = select.select([p.stderr], [], [], 10)
            self.assertTrue(ready, "no warning within 10 s")
            self.assertIn(b"reading arguments from the terminal", p.stderr.readline())
            p.send_signal(signal.SIGINT)
            p.wait(timeout=5)
            self.assertEqual(p.returncode, 130)
        finally:
            if p.poll() is None:
                p.kill()
            os.close(master)

    def test_bar_is_plain_lines_off_a_terminal_and_a_bar_on_one(self):
        rc, out, err = self.fk("--bar", "echo", ":::", "a", "b", "c")
        self.assertEqual(rc, 0)
        self.assertIn(b"map: 100% 3/3 jobs, 0 failed", err)
        self.assertNotIn(b"\r", err)
        self.assertNotIn(b"\x1b", err)
        self.assertNotIn(b"map-", err, "no internal run id")
        import pty
        master, slave = pty.openpty()
        p = subprocess.Popen([FORKLIFT, "map", "--eta", "sleep 0.3; echo", ":::", "a", "b", "c"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                             env=self.env, cwd=self.dir)
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        p.wait(timeout=20)
        os.close(master)
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"\r\x1b[2Kmap [", seen)
        self.assertIn(b"100% 3/3 jobs", seen)
        self.assertIn(b"jobs/s", seen)
        self.assertNotIn(b"map-", seen)

    def test_resume_survives_reordered_input(self):
        out = os.path.join(self.dir, "ran.txt")
        args = ["--joblog", os.path.join(self.dir, "jl"), f"echo {{}} >> {out}", ":::"]
        self.fk(*args, "a", "b", "c")
        self.fk("--resume", *args, "c", "b", "a", "d")
        with open(out) as f:
            self.assertEqual(sorted(f.read().split()), ["a", "b", "c", "d"])

    def test_large_outputs_spill_and_no_temp_file_survives(self):
        rc, out, _ = self.fk("-j2", "head -c 3000000 /dev/zero; : {}", ":::", "1", "2")
        self.assertEqual(rc, 0)
        self.assertEqual(len(out), 6000000)
        self.assertEqual(os.listdir(self.env["TMPDIR"]), [])

    def test_line_buffer_passes_whole_lines_as_they_come(self):
        rc, out, _ = self.fk("--line-buffer", "-j2", "echo {}-1; sleep 0.3; echo {}-2", ":::", "a", "b")
        lines = out.decode().splitlines()
        self.assertEqual(sorted(lines), ["a-1", "a-2", "b-1", "b-2"])
        self.assertEqual(set(lines[:2]), {"a-1", "b-1"}, "first lines arrive before the jobs end")

    def test_ungrouped_output_and_quote_and_shell_quote(self):
        rc, out, _ = self.fk("-u", "-j1", "echo", ":::", "a", "b")
        self.assertEqual(out, b"a\nb\n")
        self.same_as_gnu(["-q", "-k", "echo", "a b", ":::", "x"])
        rc, out, _ = self.same_as_gnu(["--shell-quote", ":::", "a b", "it's"])
        self.assertEqual(out, b"'a b'\n'it'\"'\"'s'\n")

    def test_results_dir_layout_matches_gnu_parallel(self):
        self.fk("--results", "mine", "echo", ":::", "a", "b/c", ":::", "x")
        files = lambda root: sorted(os.path.relpath(os.path.join(d, f), os.path.join(self.dir, root))
                                    for d, _, fs in os.walk(os.path.join(self.dir, root)) for f in fs)
        self.assertEqual(files("mine"), ["1/a/2/x/seq", "1/a/2/x/stderr", "1/a/2/x/stdout",
                                         "1/b\\_c/2/x/seq", "1/b\\_c/2/x/stderr", "1/b\\_c/2/x/stdout"])
        with open(os.path.join(self.dir, "mine/1/a/2/x/stdout"), "rb") as f:
            self.assertEqual(f.read(), b"a x\n")
        if PARALLEL:
            gnu("--results", "theirs", "echo", ":::", "a", "b/c", ":::", "x", cwd=self.dir)
            self.assertEqual(files("mine"), files("theirs"))

    def test_resume_failed_and_retry_failed(self):
        log = os.path.join(self.dir, "jl")
        rc, _, _ = self.fk("--joblog", log, "exit {}", ":::", "0", "1", "2")
        self.assertEqual(rc, 2)
        rc, _, _ = self.fk("--joblog", log, "--retry-failed", "exit {}", ":::", "0", "1", "2")
        self.assertEqual(rc, 2, "the two failed commands ran again from the joblog")
        with open(log) as f:
            rows = f.read().splitlines()[1:]
        cmds = [r.split("\t")[8] for r in rows]
        self.assertEqual(sorted(cmds[:3]), ["exit 0", "exit 1", "exit 2"])
        self.assertEqual(sorted(cmds[3:]), ["exit 1", "exit 2"], "only the failed ones reran")
        marker = os.path.join(self.dir, "m")
        rc, _, _ = self.fk("--joblog", log, "--resume-failed", f"echo {{}} >> {marker}; exit 0", ":::", "0", "1", "2")
        self.assertEqual(rc, 0)

    def test_timeout_percent_of_median_and_delay(self):
        rc, _, _ = self.fk("-j1", "--timeout", "300%", "sleep {}", ":::", "0.1", "0.1", "0.1", "5")
        self.assertEqual(rc, 1, "the 5 s job ran past 3 x the 0.1 s median")
        t0 = time.time()
        rc, _, _ = self.fk("-j4", "--delay", "0.2", "true", ":::", "1", "2", "3", "4")
        self.assertEqual(rc, 0)
        self.assertGreaterEqual(time.time() - t0, 0.6, "4 starts 0.2 s apart")

    def test_runs_lists_map_runs(self):
        self.fk("echo", ":::", "a")
        rc, out, _ = run([FORKLIFT, "runs", "--kind", "map"], env=self.env, cwd=self.dir)
        self.assertEqual(rc, 0)
        self.assertIn(b"map", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
