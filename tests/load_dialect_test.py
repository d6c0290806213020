#!/usr/bin/env python3
"""End-to-end tests of `forklift load`'s CSV dialects (--quote, --escape, --encoding,
--skip-lines) into the fixture's PostgreSQL and SQLite files: quoted fields reach the table
byte for byte (CR, LF and CRLF inside quotes included), latin1 and windows-1252 files
arrive as UTF-8, an undefined windows-1252 byte is dead-lettered naming its line, bad
values are refused before anything is written, and an encoded file resumes after SIGKILL
(checksums are over the file's bytes: the rerun skips the committed chunks).

Run by ctest with FORKLIFT=<path to binary>; alone:
    FORKLIFT=$PWD/build/forklift python3 tests/load_dialect_test.py -v
"""
import csv
import io
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg_fixture import PgServer, PgServerError  # noqa: E402

FORKLIFT = os.environ.get("FORKLIFT", os.path.join(os.path.dirname(__file__), "..", "build", "forklift"))

PG = None

# A file in the single-quote, backslash-escape dialect with two preamble lines (one with an
# unbalanced quote: skipped lines are not parsed), and what each row's note must be.
DIALECT_FILE = (b"exported by 'tool\r\n"
                b"# second preamble line\n"
                b"id,note\n"
                b"1,'lf\ninside'\n"
                b"2,'crlf\r\ninside\r\n'\r\n"
                b"3,'it\\'s, a \\\\ backslash'\n"
                b"4,say \"hi\"\n"
                b"5,''\n"
                b"6,'lone\rcr and \\n as data'\n")
DIALECT_NOTES = {1: b"lf\ninside", 2: b"crlf\r\ninside\r\n", 3: b"it's, a \\ backslash",
                 4: b'say "hi"', 5: b"", 6: b"lone\rcr and \\n as data"}
DIALECT_ARGS = ["--quote", "'", "--escape", "\\", "--skip-lines", "2"]


def setUpModule():
    global PG
    PG = PgServer()


def tearDownModule():
    if PG is not None:
        PG.close()


def scalar(query):
    return PG.sql(query).strip()


def wait_for(predicate, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Base(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="forklift-dialect-test-")
        self.journal = os.path.join(self.dir, "journal.db")
        self.env = dict(os.environ, FORKLIFT_JOURNAL=os.path.join(self.dir, "env-journal.db"))
        self.schema = "d_" + re.sub(r"[^a-z0-9_]", "_", self._testMethodName[5:].lower())[:50]
        PG.sql(f"drop schema if exists {self.schema} cascade; create schema {self.schema}")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def load(self, *args, timeout=120):
        p = subprocess.run([FORKLIFT, "load", *args, "--journal", self.journal],
                           capture_output=True, env=self.env, cwd=self.dir, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def load_json(self, *args, expect_rc=0):
        rc, out, err = self.load(*args, "--json")
        self.assertEqual(rc, expect_rc, f"stdout: {out}\nstderr: {err}")
        return json.loads(out.splitlines()[0]), err

    def pg_table(self, name="t", value="note text"):
        PG.sql(f"create table {self.schema}.{name} (id bigint primary key, {value})")
        return f"{self.schema}.{name}"

    def pg_bytes(self, table, column="note"):
        """{id: the column's UTF-8 bytes}, exactly as stored."""
        out = PG.sql(f"select id || ':' || coalesce(encode(convert_to({column}, 'UTF8'), 'hex'), "
                     f"'NULL') from {table} order by id")
        rows = {}
        for line in out.split():
            k, v = line.split(":")
            rows[int(k)] = None if v == "NULL" else bytes.fromhex(v)
        return rows

    def ledger_exists(self):
        return scalar(f"select to_regclass('{self.schema}.forklift_load_chunks') is not null") == "t"

    def sqlite_db(self, ddl="create table t (id integer primary key, note text)"):
        db = os.path.join(self.dir, "t.db")
        con = sqlite3.connect(db)
        con.execute(ddl)
        con.commit()
        con.close()
        return db

    def sqlite_bytes(self, db, column="note"):
        con = sqlite3.connect(db)
        con.text_factory = bytes
        rows = dict(con.execute(f"select id, {column} from t order by id").fetchall())
        con.close()
        return rows


class QuoteEscapeSkipLinesTest(Base):
    def test_pg_quoted_fields_reach_the_table_byte_for_byte(self):
        path = self.write("d.csv", DIALECT_FILE)
        table = self.pg_table()
        for workers in ("1", "2"):
            PG.sql(f"truncate {table}")
            s, err = self.load_json(path, "--to", PG.dsn(), "--table", table, *DIALECT_ARGS,
                                    "--load-id", f"dialect-{workers}", "--workers", workers)
            self.assertEqual((s["rows_loaded"], s["rows_rejected"]), (6, 0), err)
            self.assertEqual(self.pg_bytes(table), DIALECT_NOTES)

    def test_pg_text_column_types_use_csv_copy(self):
        # A column type binary COPY does not convert (here: an enum) sends the rows as CSV.
        PG.sql(f"create type {self.schema}.kind as enum ('a', 'b')")
        table = self.pg_table(value=f"note text, k {self.schema}.kind")
        data = (b"x\ny\nid,k,note\n1,a,'lf\ninside'\n2,a,'crlf\r\ninside\r\n'\r\n"
                b"3,a,'it\\'s, a \\\\ backslash'\n4,a,say \"hi\"\n5,a,''\n"
                b"6,b,'lone\rcr and \\n as data'\n")
        path = self.write("d.csv", data)
        s, err = self.load_json(path, "--to", PG.dsn(), "--table", table, *DIALECT_ARGS)
        self.assertEqual((s["rows_loaded"], s["rows_rejected"]), (6, 0), err)
        self.assertEqual(self.pg_bytes(table), DIALECT_NOTES)

    def test_pg_upsert_in_a_dialect(self):
        path = self.write("d.csv", DIALECT_FILE)
        table = self.pg_table()
        s, err = self.load_json(path, "--to", PG.dsn(), "--table", table, *DIALECT_ARGS,
                                "--mode", "upsert", "--key", "id")
        self.assertEqual((s["rows_loaded"], s["rows_rejected"]), (6, 0), err)
        self.assertEqual(self.pg_bytes(table), DIALECT_NOTES)

    def test_sqlite_quoted_fields_reach_the_table_byte_for_byte(self):
        path = self.write("d.csv", DIALECT_FILE)
        db = self.sqlite_db()
        s, err = self.load_json(path, "--to", f"sqlite:{db}", "--table", "t", *DIALECT_ARGS)
        self.assertEqual((s["rows_loaded"], s["rows_rejected"]), (6, 0), err)
        self.assertEqual(self.sqlite_bytes(db), DIALECT_NOTES)

    def test_default_dialect_crlf_and_lf_inside_quotes(self):
        data = b'id,note\r\n1,"a\r\nb"\r\n2,"c\nd"\n3,"e""f"\n'
        path = self.write("q.csv", data)
        want = {1: b"a\r\nb", 2: b"c\nd", 3: b'e"f'}
        table = self.pg_table()
        s, err = self.load_json(path, "--to", PG.dsn(), "--table", table)
        self.assertEqual(s["rows_loaded"], 3, err)
        self.assertEqual(self.pg_bytes(table), want)
        db = self.sqlite_db()
        s, err = self.load_json(path, "--to", f"sqlite:{db}", "--table", "t")
        self.assertEqual(s["rows_loaded"], 3, err)
        self.assertEqual(self.sqlite_bytes(db), want)

    def test_skip_lines_keeps_the_files_line_numbers_in_dead_letters(self):
        path = self.write("s.csv", b"junk\njunk\nid,note\n1,ok\n2,too,many\n")
        db = self.sqlite_db()
        dlq = os.path.join(self.dir, "dlq.csv")
        s, err = self.load_json(path, "--to", f"sqlite:{db}", "--table", "t", "--skip-lines", "2",
                                "--dlq", dlq, expect_rc=s_rc_rejected())
        self.assertEqual((s["rows_loaded"], s["rows_rejected"], s["rows_read"]), (1, 1, 2), err)
        with open(dlq, newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([(r["line"], r["raw"]) for r in rows], [("5", "2,too,many")])

    def test_single_quote_without_escape_doubles(self):
        path = self.write("s.csv", b"id,note\n1,'it''s'\n2,\"x\"\n")
        db = self.sqlite_db()
        s, err = self.load_json(path, "--to", f"sqlite:{db}", "--table", "t", "--quote", "'")
        self.assertEqual(s["rows_loaded"], 2, err)
        self.assertEqual(self.sqlite_bytes(db), {1: b"it's", 2: b'"x"'})


def s_rc_rejected():
    """The exit status of a load that finished with rejected rows (docs/load.md)."""
    return 3


class EncodingTest(Base):
    # 'é' is 0xE9 in both; '€' is 0x80 and the curly quotes 0x93/0x94 in windows-1252 only.
    LATIN1 = "id,note\n1,caf\xe9\n2,\"na\xefve, \xa0\"\n".encode("latin-1")
    CP1252 = b"id,note\n1,\x80 5\n2,caf\xe9 \x93q\x94\n3,bad \x81 byte\n4,after\n"
    CP1252_WANT = {1: "€ 5".encode(), 2: "café “q”".encode(), 4: b"after"}

    def test_pg_latin1_and_windows_1252_arrive_as_utf8(self):
        table = self.pg_table()
        path = self.write("l.csv", self.LATIN1)
        s, err = self.load_json(path, "--to", PG.dsn(), "--table", table, "--encoding", "latin1")
        self.assertEqual(s["rows_loaded"], 2, err)
        self.assertEqual(self.pg_bytes(table), {1: "café".encode(), 2: "naïve, \xa0".encode()})
        PG.sql(f"truncate {table}")
        path = self.write("w.csv", self.CP1252)
        dlq = os.path.join(self.dir, "dlq.csv")
        s, err = self.load_json(path, "--to", PG.dsn(), "--table", table, "--encoding",
                                "windows-1252", "--dlq", dlq, expect_rc=s_rc_rejected())
        self.assertEqual((s["rows_loaded"], s["rows_rejected"]), (3, 1), err)
        self.assertEqual(self.pg_bytes(table), self.CP1252_WANT)
        self.assert_undefined_byte_letter(dlq)
        # Its letters are the file's windows-1252 bytes: `dlq retry` refuses them.
        p = subprocess.run([FORKLIFT, "dlq", "retry", s["load_id"], "--journal", self.journal],
                           capture_output=True, env=self.env, cwd=self.dir, timeout=60)
        self.assertNotEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"read its files with --quote \" --escape \" --encoding windows-1252",
                      p.stderr)
        self.assertEqual(self.pg_bytes(table), self.CP1252_WANT)

    def test_sqlite_latin1_and_windows_1252_arrive_as_utf8(self):
        db = self.sqlite_db()
        s, err = self.load_json(self.write("l.csv", self.LATIN1), "--to", f"sqlite:{db}",
                                "--table", "t", "--encoding", "ISO-8859-1")
        self.assertEqual(s["rows_loaded"], 2, err)
        self.assertEqual(self.sqlite_bytes(db), {1: "café".encode(), 2: "naïve, \xa0".encode()})
        db2 = os.path.join(self.dir, "t2.db")
        con = sqlite3.connect(db2)
        con.execute("create table t (id integer primary key, note text)")
        con.commit()
        con.close()
        dlq = os.path.join(self.dir, "dlq.csv")
        s, err = self.load_json(self.write("w.csv", self.CP1252), "--to", f"sqlite:{db2}",
                                "--table", "t", "--encoding", "cp1252", "--dlq", dlq,
                                expect_rc=s_rc_rejected())
        self.assertEqual((s["rows_loaded"], s["rows_rejected"]), (3, 1), err)
        self.assertEqual(self.sqlite_bytes(db2), self.CP1252_WANT)
        self.assert_undefined_byte_letter(dlq)

    def assert_undefined_byte_letter(self, dlq):
        with open(dlq, "rb") as f:
            rows = list(csv.DictReader(io.StringIO(f.read().decode("latin-1")), ))
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0]["line"], "4")
        self.assertIn("0x81", rows[0]["reason"])
        self.assertIn("windows-1252", rows[0]["reason"])
        self.assertEqual(rows[0]["raw"].encode("latin-1"), b"3,bad \x81 byte")  # the file's bytes

    def test_header_names_are_converted(self):
        PG.sql(f"create table {self.schema}.t (id bigint, \"café\" text)")
        path = self.write("h.csv", 'id,"caf\xe9"\n1,x\n'.encode("latin-1"))
        s, err = self.load_json(path, "--to", PG.dsn(), "--table", f"{self.schema}.t",
                                "--encoding", "latin1")
        self.assertEqual(s["rows_loaded"], 1, err)
        self.assertEqual(scalar(f"select \"café\" from {self.schema}.t"), "x")

    def test_load_id_changes_only_with_a_non_default_dialect(self):
        path = self.write("a.csv", b"id,note\n1,x\n")
        db = self.sqlite_db()
        a, _ = self.load_json(path, "--to", f"sqlite:{db}", "--table", "t")
        b, _ = self.load_json(path, "--to", f"sqlite:{db}", "--table", "t", "--encoding", "utf-8",
                              "--skip-lines", "0", "--quote", '"')
        # Another load id: it reads the row again (and the key refuses it).
        c, _ = self.load_json(path, "--to", f"sqlite:{db}", "--table", "t", "--encoding", "latin1",
                              expect_rc=1)
        self.assertEqual((c["rows_skipped"], c["rows_rejected"]), (0, 1))
        self.assertEqual(a["load_id"], b["load_id"])
        self.assertEqual((b["rows_skipped"], b["rows_loaded"]), (1, 0))
        self.assertNotEqual(a["load_id"], c["load_id"])


class RefusalTest(Base):
    def assert_refused(self, args, needle):
        table = self.pg_table()
        path = self.write("a.csv", b"id,note\n1,x\n")
        rc, out, err = self.load(path, "--to", PG.dsn(), "--table", table, *args)
        self.assertNotEqual(rc, 0, err)
        self.assertIn(needle, err)
        self.assertEqual(scalar(f"select count(*) from {table}"), "0")
        self.assertFalse(self.ledger_exists(), "nothing may be written")
        PG.sql(f"drop table {table}")

    def test_bad_values_are_refused_before_anything_is_written(self):
        cases = [
            (["--encoding", "ebcdic"], "--encoding 'ebcdic': unknown; expected utf-8, latin1 or windows-1252"),
            (["--quote", "ab"], "--quote 'ab': expected one character"),
            (["--quote", ""], "--quote '': expected one character"),
            (["--quote", ","], "--quote ',': cannot be the delimiter"),
            (["--escape", "\n"], "--escape: cannot be CR or LF"),
            (["--escape", "é"], "--escape '\\xc3\\xa9': expected one character"),
            (["--quote", "\xa7".encode("latin-1").decode("utf-8", "surrogateescape")],
             "--quote '\\xa7': must be an ASCII character"),
            (["--skip-lines", "-1"], "--skip-lines -1: must be >= 0"),
            (["--skip-lines", "x"], "--skip-lines"),
            (["--quote", "'", "--null", "'n'"], "--null: cannot contain the quote"),
        ]
        for args, needle in cases:
            with self.subTest(args=args):
                self.assert_refused(args, needle)

    def test_dialect_options_are_refused_with_a_query(self):
        for opt, val in (("--quote", "'"), ("--escape", "\\"), ("--encoding", "latin1"),
                         ("--skip-lines", "1")):
            with self.subTest(opt=opt):
                table = self.pg_table()
                rc, out, err = self.load("--from", PG.dsn(), "--query", "select 1 as id",
                                         "--to", PG.dsn(), "--table", table, opt, val)
                self.assertNotEqual(rc, 0)
                self.assertIn(f"{opt}: a --query result is read as forklift writes it", err)
                self.assertFalse(self.ledger_exists())
                PG.sql(f"drop table {table}")

    def test_dialect_options_are_refused_for_json_lines(self):
        table = self.pg_table()
        path = self.write("a.jsonl", b'{"id": 1, "note": "x"}\n')
        rc, out, err = self.load(path, "--to", PG.dsn(), "--table", table, "--encoding", "latin1")
        self.assertNotEqual(rc, 0)
        self.assertIn("--encoding: for CSV sources", err)
        self.assertFalse(self.ledger_exists())


class ResumeTest(Base):
    ROWS = 60_000

    def test_encoded_file_resumes_after_sigkill(self):
        lines = [b"preamble\n", b"id,note\n"]
        for i in range(self.ROWS):
            lines.append(b"%d,'\x80 %d caf\xe9\r\nline \\' two'\n" % (i, i))
        path = self.write("big.csv", b"".join(lines))
        table = self.pg_table()
        args = [path, "--to", PG.dsn(), "--table", table, "--encoding", "windows-1252",
                "--quote", "'", "--escape", "\\", "--skip-lines", "1", "--chunk-rows", "500",
                "--workers", "2"]
        err = open(os.path.join(self.dir, "bg.err"), "w+b")
        p = subprocess.Popen([FORKLIFT, "load", *args, "--journal", self.journal],
                             stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                             env=self.env, cwd=self.dir)
        self.addCleanup(err.close)

        def chunks():
            try:
                return int(scalar(f"select count(*) from {self.schema}.forklift_load_chunks "
                                  f"where chunk >= 0"))
            except PgServerError:
                return 0
        wait_for(lambda: p.poll() is not None or chunks() >= 3, "3 committed chunks")
        if p.poll() is None:
            p.kill()
        if p.wait(timeout=30) != -signal.SIGKILL:
            self.skipTest("the load finished before the kill")
        wait_for(lambda: int(scalar("select count(*) from pg_stat_activity "
                                    "where application_name = 'forklift'")) == 0,
                 "the killed load's sessions to end")
        committed = int(scalar(f"select coalesce(sum(rows), 0) from "
                               f"{self.schema}.forklift_load_chunks where chunk >= 0"))
        self.assertGreater(committed, 0)
        self.assertLess(committed, self.ROWS)
        s, e = self.load_json(*args)
        self.assertEqual(s["rows_skipped"], committed, e)
        self.assertEqual(s["rows_loaded"] + s["rows_skipped"], self.ROWS, e)
        self.assertEqual(s["rows_rejected"], 0, e)
        self.assertEqual(scalar(f"select count(*) from {table}"), str(self.ROWS))
        want = "€ 7 café\r\nline ' two".encode()
        self.assertEqual(self.pg_bytes(f"(select * from {table} where id = 7) x"), {7: want})
        self.assertEqual(scalar(f"select count(distinct note ~ '^€ [0-9]+ café\r\nline '' two$') "
                                f"from {table}"), "1")


if __name__ == "__main__":
    unittest.main()
