#!/usr/bin/env python3
"""forklift as a user installs it (issue 15): `make install`, the CMake package, pkg-config,
the public headers on their own, man pages against --help, completions, and the .deb.

    install_test.py InstallTest   install into a scratch prefix (and with DESTDIR), build
                                  examples/consumer against it with CMake (shared, static)
                                  and pkg-config and run it; man pages and completions
    install_test.py HeadersTest   every installed header compiles alone, GCC and clang
    install_test.py DebTest       cpack's .debs: fields, dependencies, contents; installed
                                  with dpkg into a scratch root, then `forklift version`

Run by ctest (label `install`) with FORKLIFT_BUILD (the build directory) set. Scratch
files live under FORKLIFT_BUILD/tests/install/, at fixed paths so that ccache serves the
consumer's compiles on a rerun.
"""
import concurrent.futures
import glob
import os
import re
import shutil
import subprocess
import sys
import time
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.path.abspath(os.environ.get("FORKLIFT_BUILD", os.path.join(ROOT, "build")))
SCRATCH = os.path.join(BUILD, "tests", "install")
FORKLIFT = os.path.join(BUILD, "forklift")
VERSION = "0.2.0"
SONAME = "libforklift.so.0.2"
# What only the forklift command needs: a user of the library must not need any of it.
CLI_ONLY_DEPS = re.compile(r"PostgreSQL|libpq|tomlplusplus|toml\+\+|CLI11|nlohmann|ZLIB|pcre2|xxhash",
                           re.I)
CCACHE = shutil.which("ccache")


def run(cmd, timeout=300, check=True, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def read(path):
    with open(path) as f:
        return f.read()


def scratch(name):
    path = os.path.join(SCRATCH, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def help_options(text):
    """The option names of a --help text's entries ("  -j,--jobs N  ..." -> -j, --jobs)."""
    names = set()
    for line in text.splitlines():
        m = re.match(r"^ {1,4}([-:].*)$", line)
        if not m:
            continue
        term = re.split(r"  ", m.group(1), maxsplit=1)[0]
        for word in term.split():
            for part in word.split(","):
                if re.match(r"^--?[A-Za-z0-9]", part):
                    names.add(part)
    return names


def man_options(roff):
    """The option names a man page's entries (.TP terms) list."""
    names = set()
    lines = roff.splitlines()
    for i, line in enumerate(lines):
        if line == ".TP" and i + 1 < len(lines):
            for bold in re.findall(r"\\fB(.*?)\\fR", lines[i + 1]):
                name = bold.replace("\\-", "-").replace("\\e", "\\")
                if re.match(r"^--?[A-Za-z0-9]", name):
                    names.add(name)
    return names


def installed_files(prefix):
    out = set()
    for dirpath, dirnames, filenames in os.walk(prefix):
        for f in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            out.add(os.path.relpath(os.path.join(dirpath, f), prefix))
    return out


def find_one(prefix, pattern):
    hits = glob.glob(os.path.join(prefix, "**", pattern), recursive=True)
    if len(hits) != 1:
        raise AssertionError(f"{pattern}: expected one under {prefix}, found {hits}")
    return hits[0]


def needed(path):
    out = run(["readelf", "-d", path]).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.*?)\]", out), \
        re.findall(r"\(SONAME\)\s+Library soname: \[(.*?)\]", out)


# Public headers of modules outside the library (they need libpq): never installed.
NOT_INSTALLED = {"forklift/queue_batch.h"}


def public_headers():
    """include/forklift/**/*.h, by glob: a header added tomorrow is covered too."""
    hs = [os.path.relpath(p, os.path.join(ROOT, "include"))
          for p in glob.glob(os.path.join(ROOT, "include", "forklift", "**", "*.h"), recursive=True)]
    return sorted(set(hs) - NOT_INSTALLED | {"forklift/version.h"})


def install(prefix, *extra, env=None):
    return run(["cmake", "--install", BUILD, "--prefix", prefix, *extra], env=env)


# man page -> the commands whose --help it is made of (man/CMakeLists.txt).
MAN_PAGES = {
    "man1/forklift.1": [[], ["version"]],
    "man1/forklift-map.1": [["map"]],
    "man1/forklift-run.1": [["run"]],
    "man1/forklift-report.1": [["report"]],
    "man1/forklift-load.1": [["load"]],
    "man1/forklift-dlq.1": [["dlq"], ["dlq", "list"], ["dlq", "show"], ["dlq", "retry"],
                            ["dlq", "discard"]],
    "man1/forklift-runs.1": [["runs"]],
    "man1/forklift-worker.1": [["worker"]],
}


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.prefix = scratch("prefix")
        t = time.monotonic()
        install(cls.prefix)
        print(f"install: {time.monotonic() - t:.1f}s", file=sys.stderr)
        cls.files = installed_files(cls.prefix)
        cls.libdir = os.path.dirname(find_one(cls.prefix, "libforklift.so." + VERSION))

    def test_tree(self):
        rel_lib = os.path.relpath(self.libdir, self.prefix)
        want = {"bin/forklift",
                f"{rel_lib}/libforklift.so.{VERSION}", f"{rel_lib}/{SONAME}",
                f"{rel_lib}/libforklift.so", f"{rel_lib}/libforklift.a",
                f"{rel_lib}/pkgconfig/forklift.pc",
                f"{rel_lib}/cmake/forklift/forkliftConfig.cmake",
                f"{rel_lib}/cmake/forklift/forkliftConfigVersion.cmake",
                f"{rel_lib}/cmake/forklift/forklift-shared-targets.cmake",
                f"{rel_lib}/cmake/forklift/forklift-static-targets.cmake",
                "share/man/man5/forklift-flow.5",
                "share/bash-completion/completions/forklift",
                "share/zsh/site-functions/_forklift",
                "share/doc/forklift/CHANGELOG.md", "share/doc/forklift/install.md"}
        want |= {"share/man/" + p for p in MAN_PAGES}
        want |= {"include/" + h for h in public_headers()}
        self.assertEqual(sorted(want - self.files), [], "missing from the install")
        headers = {f for f in self.files if f.startswith("include/")}
        self.assertEqual(headers, {"include/" + h for h in public_headers()},
                         "the installed headers are exactly include/forklift/**/*.h and version.h")
        self.assertEqual(os.readlink(os.path.join(self.libdir, SONAME)), f"libforklift.so.{VERSION}")
        self.assertEqual(os.readlink(os.path.join(self.libdir, "libforklift.so")), SONAME)

    def test_shared_library(self):
        libs, soname = needed(os.path.join(self.libdir, f"libforklift.so.{VERSION}"))
        self.assertEqual(soname, [SONAME])
        self.assertTrue(any(l.startswith("libsqlite3") for l in libs), libs)
        self.assertFalse([l for l in libs if CLI_ONLY_DEPS.search(l)], libs)
        # Every symbol the library uses is resolved (-Wl,--no-undefined) and it exports
        # run_batch's engine and the version.
        syms = run(["nm", "-D", "--defined-only", "-C",
                    os.path.join(self.libdir, SONAME)]).stdout
        self.assertIn("forklift::LibraryVersion()", syms)
        self.assertIn("forklift::detail::", syms)

    def test_cmake_package_needs_no_cli_dependency(self):
        cmake_dir = os.path.join(self.libdir, "cmake", "forklift")
        for f in os.listdir(cmake_dir):
            text = read(os.path.join(cmake_dir, f))
            self.assertIsNone(CLI_ONLY_DEPS.search(text), f"{f} names a CLI-only dependency")
        pc = read(os.path.join(self.libdir, "pkgconfig", "forklift.pc"))
        self.assertIsNone(CLI_ONLY_DEPS.search(pc))
        self.assertIn(f"prefix={self.prefix}\n", pc)

    def test_version(self):
        out = run([os.path.join(self.prefix, "bin", "forklift"), "version"]).stdout
        self.assertRegex(out, r"^forklift 0\.2\.0 \(git ([0-9a-f]{12}(-dirty)?|unknown)\)\n$")
        self.assertEqual(out, run([FORKLIFT, "--version"]).stdout)
        self.assertIn(f"## {VERSION}", read(os.path.join(ROOT, "CHANGELOG.md")))

    def test_destdir(self):
        dest = scratch("destdir")
        env = dict(os.environ, DESTDIR=dest)
        install("/opt/forklift", env=env)
        staged = os.path.join(dest, "opt", "forklift")
        self.assertTrue(os.path.exists(os.path.join(staged, "bin", "forklift")))
        pc = find_one(staged, "forklift.pc")
        # The files are staged under DESTDIR, but name the prefix they will run from.
        self.assertIn("prefix=/opt/forklift\n", read(pc))
        self.assertTrue(os.path.exists(os.path.join(staged, "share/zsh/site-functions/_forklift")))

    def cmake_consumer(self, name, *flags):
        build = scratch(name)
        launcher = [f"-DCMAKE_CXX_COMPILER_LAUNCHER={CCACHE}"] if CCACHE else []
        # The CLI's packages are made unfindable: configuring must not need them.
        blocked = [f"-DCMAKE_DISABLE_FIND_PACKAGE_{p}=ON"
                   for p in ("PostgreSQL", "tomlplusplus", "CLI11", "nlohmann_json", "ZLIB")]
        run(["cmake", "-S", os.path.join(ROOT, "examples", "consumer"), "-B", build, "-G", "Ninja",
             f"-DCMAKE_PREFIX_PATH={self.prefix}", "-DCMAKE_BUILD_TYPE=Release", *blocked,
             *launcher, *flags])
        run(["cmake", "--build", build])
        exe = os.path.join(build, "forklift-consumer")
        out = run([exe, os.path.join(build, "journal.db")]).stdout
        self.assertIn("succeeded=99", out)
        self.assertIn("skipped=99", out)
        return exe

    def test_consumer_cmake_shared(self):
        exe = self.cmake_consumer("consumer-shared")
        libs, _ = needed(exe)
        self.assertIn(SONAME, libs)
        self.assertFalse([l for l in libs if CLI_ONLY_DEPS.search(l)], libs)

    def test_consumer_cmake_static(self):
        exe = self.cmake_consumer("consumer-static", "-DFORKLIFT_STATIC=ON")
        libs, _ = needed(exe)
        self.assertFalse([l for l in libs if "forklift" in l], libs)

    def test_consumer_pkg_config(self):
        out = scratch("consumer-pkgconfig")
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(self.libdir, "pkgconfig"))
        cxx = f"{CCACHE} g++" if CCACHE else "g++"
        run(["make", "-s", "-C", os.path.join(ROOT, "examples", "consumer"), f"O={out}",
             f"CXX={cxx}"], env=env)
        exe = os.path.join(out, "forklift-consumer")
        env["LD_LIBRARY_PATH"] = self.libdir
        p = run([exe, os.path.join(out, "journal.db")], env=env)
        self.assertIn("skipped=99", p.stdout)
        cflags = run(["pkg-config", "--cflags", "--libs", "forklift"], env=env).stdout
        self.assertIn("-lforklift", cflags)
        self.assertEqual(run(["pkg-config", "--modversion", "forklift"], env=env).stdout.strip(), VERSION)

    def test_help_matches_man_pages(self):
        man_dir = os.path.join(self.prefix, "share", "man")
        for page, commands in MAN_PAGES.items():
            roff = read(os.path.join(man_dir, page))
            want = set()
            for cmd in commands:
                p = run([FORKLIFT, *cmd, "--help"])
                self.assertEqual(p.returncode, 0)
                self.assertTrue(p.stdout.strip(), f"forklift {' '.join(cmd)} --help printed nothing")
                want |= help_options(p.stdout)
            got = man_options(roff)
            self.assertTrue(want or page == "man1/forklift.1", page)
            self.assertEqual(sorted(want - got), [], f"{page} lacks options of --help")
            self.assertEqual(sorted(got - want), [], f"{page} lists options --help does not")
            self.assertIn(".SH NAME", roff)
            self.assertIn(".SH SYNOPSIS", roff)
        # `forklift help CMD` is CMD --help, and every command --help lists is documented.
        for cmd in ("map", "run", "report", "load", "dlq", "runs", "worker"):
            self.assertEqual(run([FORKLIFT, "help", cmd]).stdout, run([FORKLIFT, cmd, "--help"]).stdout)
        top = run([FORKLIFT, "--help"]).stdout
        listed = re.findall(r"^  ([a-z]+) ", top.split("commands:")[1], re.M)
        self.assertEqual(sorted(listed),
                         sorted(["map", "run", "report", "load", "dlq", "runs", "worker", "version"]))
        forklift1 = read(os.path.join(man_dir, "man1", "forklift.1"))
        for cmd in listed:
            self.assertIn(f"\\fB{cmd}\\fR", forklift1)

    def test_flow_man_page_has_every_key(self):
        page = read(os.path.join(self.prefix, "share", "man", "man5", "forklift-flow.5"))
        page = page.replace("\\-", "-").replace("\\e", "\\")
        src = read(os.path.join(ROOT, "src", "flow", "flow_file.cc"))
        keys = set()
        for m in re.finditer(r"k(?:Flow|Task)Keys\s*=\s*\{(.*?)\};", src, re.S):
            keys |= set(re.findall(r'"([a-z_]+)"', m.group(1)))
        self.assertGreater(len(keys), 20, "the key lists of src/flow/flow_file.cc were not found")
        self.assertEqual(sorted(k for k in keys if f"\\fB{k}\\fR" not in page and k not in page), [])
        self.assertIn(".TH \"FORKLIFT-FLOW\" 5", page)
        self.assertIn("[tasks.", page)  # the example flow

    def test_man_pages_render(self):
        groff = shutil.which("groff")
        if not groff:
            self.skipTest("groff is not installed (Debian package groff-base)")
        for page in list(MAN_PAGES) + ["man5/forklift-flow.5"]:
            p = run([groff, "-man", "-Tutf8", "-ww", "-z",
                     os.path.join(self.prefix, "share", "man", page)])
            self.assertEqual(p.stderr, "", f"{page}: groff warnings")

    def bash_complete(self, line):
        """The words bash completion offers for LINE (completion of its last word)."""
        script = os.path.join(self.prefix, "share", "bash-completion", "completions", "forklift")
        words = line.split(" ")
        prog = os.path.join(self.prefix, "bin", "forklift")
        words[0] = prog
        code = ("source \"$1\"; shift; COMP_WORDS=(\"$@\"); COMP_CWORD=$(( $# - 1 )); "
                "COMP_LINE=\"$*\"; COMP_POINT=${#COMP_LINE}; _forklift; printf '%s\\n' \"${COMPREPLY[@]}\"")
        p = run(["bash", "-c", code, "bash", script, *words], cwd=self.work)
        return set(p.stdout.split())

    def test_completions(self):
        self.work = scratch("completion")
        flow = os.path.join(self.work, "flow.toml")
        with open(flow, "w") as f:
            f.write('[tasks.extract]\ncmd = "true"\n[tasks.report]\ncmd = "true"\nafter = ["extract"]\n')
        env = dict(os.environ)
        env.pop("FORKLIFT_JOURNAL", None)
        run([FORKLIFT, "run", flow], env=env, cwd=self.work)
        runs = run([FORKLIFT, "runs", "--flow", flow, "--json"], env=env).stdout
        run_id = re.search(r'"run_id":"([^"]+)"', runs).group(1)

        self.assertLessEqual({"map", "run", "load", "report", "runs", "dlq", "worker", "version"},
                             self.bash_complete("forklift "))
        self.assertEqual(self.bash_complete("forklift ru"), {"run", "runs"})
        self.assertLessEqual({"--only", "--resume", "--jobs", "-j", "--dry-run", "--journal"},
                             self.bash_complete("forklift run flow.toml -"))
        self.assertEqual(self.bash_complete("forklift run flow.toml --only "), {"extract", "report"})
        self.assertEqual(self.bash_complete("forklift run flow.toml --resume "), {"last", run_id})
        self.assertEqual(self.bash_complete(f"forklift report --flow {flow} "), {run_id})
        self.assertEqual(self.bash_complete("forklift load --mode "), {"insert", "upsert", "insert-ignore"})
        self.assertEqual(self.bash_complete("forklift runs --kind "), {"batch", "map", "flow", "load"})
        self.assertEqual(self.bash_complete("forklift dlq "), {"list", "show", "retry", "discard"})
        self.assertIn("--letter", self.bash_complete("forklift dlq discard --"))
        self.assertLessEqual({"--joblog", "--resume-failed", "-j", "--bar"},
                             self.bash_complete("forklift map -"))
        self.assertEqual(self.bash_complete("forklift run --jobs "), set())  # a number
        self.assertEqual(self.bash_complete("forklift run fl"), {"flow.toml"})
        # Every option of every --help is offered.
        for cmd in (["map"], ["run"], ["load"], ["runs"], ["report"], ["dlq", "retry"], ["worker"]):
            want = help_options(run([FORKLIFT, *cmd, "--help"]).stdout)
            line = "forklift " + " ".join(cmd) + " -"
            self.assertEqual(sorted(want - self.bash_complete(line)), [], cmd)

        zsh = shutil.which("zsh")
        if not zsh:
            self.skipTest("zsh is not installed: its completion was not checked")
        zfile = os.path.join(self.prefix, "share", "zsh", "site-functions", "_forklift")
        run([zsh, "-n", zfile])
        # The zsh script's option table is bash's, command by command.
        prog = os.path.join(self.prefix, "bin", "forklift")
        for cmd in ("map", "run", "load"):
            z = run([zsh, "-c", f"eval \"$(sed '$d' {zfile})\"; _forklift_option_table {prog} {cmd}"]).stdout
            b = run(["bash", "-c", f"source {os.path.join(self.prefix, 'share/bash-completion/completions/forklift')}; "
                     f"_forklift_option_table {prog} {cmd}"]).stdout
            self.assertEqual(z, b, cmd)
            self.assertTrue(z.strip())
        z = run([zsh, "-c", f"eval \"$(sed '$d' {zfile})\"; _forklift_commands {prog}"]).stdout
        self.assertIn("run:run a flow file", z)
        # _forklift itself, with zsh's completion functions stubbed to print what they get.
        self.assertEqual(self.zsh_complete(zsh, zfile, "forklift run flow.toml --only "),
                         {"extract", "report"})
        self.assertEqual(self.zsh_complete(zsh, zfile, "forklift run flow.toml --resume "),
                         {"last", run_id})
        self.assertEqual(self.zsh_complete(zsh, zfile, "forklift load --mode "),
                         {"insert", "upsert", "insert-ignore"})
        self.assertEqual(self.zsh_complete(zsh, zfile, "forklift run fl"), {"FILES:-g *.toml"})
        self.assertLessEqual({"--only", "--resume", "-j"},
                             {w.split(":")[0] for w in self.zsh_complete(zsh, zfile, "forklift run x.toml -")})
        self.assertLessEqual({"map", "run", "load"},
                             {w.split(":")[0] for w in self.zsh_complete(zsh, zfile, "forklift ")})

    def zsh_complete(self, zsh, zfile, line):
        words = line.split(" ")
        words[0] = os.path.join(self.prefix, "bin", "forklift")
        code = ("_describe() { print -rl -- ${(P)${@[-1]}} }; _files() { print -r -- FILES:$* }; "
                "_message() { print -r -- MESSAGE }; "
                f"eval \"$(sed '$d' {zfile})\"; words=(\"$@\"); CURRENT=$#; PREFIX=${{@[-1]}}; _forklift")
        p = run([zsh, "-c", code, "zsh", *words], cwd=self.work)
        return set(p.stdout.splitlines())


class HeadersTest(unittest.TestCase):
    """Each installed public header compiles on its own (and twice: include guards), with
    -Wall -Wextra -Werror, C++20, under GCC and clang, seeing only the installed include
    directory and what Debian's -dev packages of its dependencies put in /usr/include."""

    ALLOWED = re.compile(r'^#include (<[a-z_]+>|<tl/expected\.hpp>|"forklift/[a-z_/]+\.h")$')

    def test_headers_compile_alone(self):
        prefix = scratch("headers")
        install(prefix, "--component", "dev")
        include = os.path.join(prefix, "include")
        compilers = [c for c in ("g++", "clang++") if shutil.which(c)]
        self.assertIn("g++", compilers)
        if "clang++" not in compilers:
            print("clang++ is not installed: headers checked with GCC only", file=sys.stderr)
        headers = public_headers()
        for h in headers:
            for line in read(os.path.join(include, h)).splitlines():
                if line.startswith("#include"):
                    self.assertRegex(line.strip(), self.ALLOWED, f"{h} includes what a user may not have")

        def compile_one(job):
            cxx, h = job
            src = f"#include <{h}>\n#include <{h}>\nint main() {{ return 0; }}\n"
            p = subprocess.run([cxx, "-std=c++20", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                                "-I", include, "-x", "c++", "-"], input=src, capture_output=True,
                               text=True, timeout=120)
            return cxx, h, p.returncode, p.stderr

        jobs = [(c, h) for c in compilers for h in headers]
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            failures = [f"{cxx} {h}:\n{err}" for cxx, h, rc, err in pool.map(compile_one, jobs) if rc]
        self.assertEqual(failures, [], "\n".join(failures))


class DebTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in ("cpack", "dpkg-deb", "dpkg-shlibdeps", "dpkg"):
            if not shutil.which(tool):
                raise unittest.SkipTest(f"{tool} is not installed (Debian: cmake, dpkg-dev)")
        cls.out = scratch("deb")
        t = time.monotonic()
        run(["cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", cls.out],
            cwd=BUILD)
        print(f"cpack: {time.monotonic() - t:.1f}s", file=sys.stderr)
        cls.debs = {os.path.basename(p).split("_")[0]: p for p in glob.glob(os.path.join(cls.out, "*.deb"))}

    def field(self, pkg, name):
        return run(["dpkg-deb", "--field", self.debs[pkg], name]).stdout.strip()

    def contents(self, pkg):
        out = run(["dpkg-deb", "--contents", self.debs[pkg]]).stdout
        return {line.split()[5].lstrip(".") for line in out.splitlines()}

    def test_packages(self):
        self.assertEqual(sorted(self.debs), ["forklift", "libforklift-dev", "libforklift0.2"])
        arch = run(["dpkg", "--print-architecture"]).stdout.strip()
        self.assertEqual(os.path.basename(self.debs["forklift"]), f"forklift_{VERSION}-1_{arch}.deb")
        for pkg in self.debs:
            self.assertEqual(self.field(pkg, "Version"), f"{VERSION}-1")
            info = run(["dpkg-deb", "--info", self.debs[pkg]]).stdout
            self.assertIn("Description:", info)

    def test_dependencies(self):
        dep_names = lambda pkg: {d.strip().split()[0] for d in self.field(pkg, "Depends").split(",") if d.strip()}
        cli = dep_names("forklift")
        self.assertLessEqual({"libc6", "libstdc++6", "libpq5", "libsqlite3-0", "zlib1g"}, cli)
        self.assertFalse([d for d in cli if d.endswith("-dev")], cli)
        lib = dep_names("libforklift0.2")
        self.assertIn("libsqlite3-0", lib)
        self.assertFalse({"libpq5", "zlib1g"} & lib, lib)
        dev = self.field("libforklift-dev", "Depends")
        self.assertIn(f"libforklift0.2 (= {VERSION}-1)", dev)
        self.assertIn("libexpected-dev", dev)
        info = run(["dpkg-deb", "--info", self.debs["libforklift0.2"]]).stdout
        self.assertIn(" shlibs ", info)
        self.assertIn(" triggers ", info)
        shlibs = run(["dpkg-deb", "--info", self.debs["libforklift0.2"], "shlibs"]).stdout
        self.assertEqual(shlibs.strip(), f"libforklift 0.2 libforklift0.2 (= {VERSION}-1)")
        triggers = run(["dpkg-deb", "--info", self.debs["libforklift0.2"], "triggers"]).stdout
        self.assertIn("activate-noawait ldconfig", triggers)
        self.assertTrue(self.field("forklift", "Description").startswith("batch work in parallel"))

    def test_contents(self):
        cli = self.contents("forklift")
        self.assertLessEqual({"/usr/bin/forklift", "/usr/share/man/man1/forklift.1",
                              "/usr/share/man/man1/forklift-map.1", "/usr/share/man/man1/forklift-run.1",
                              "/usr/share/man/man1/forklift-load.1", "/usr/share/man/man5/forklift-flow.5",
                              "/usr/share/bash-completion/completions/forklift",
                              "/usr/share/zsh/vendor-completions/_forklift"}, cli)
        lib = self.contents("libforklift0.2")
        # /usr/lib, or the multiarch directory for a build configured with prefix /usr.
        libdir = os.path.dirname(next(f for f in lib if f.endswith(f"libforklift.so.{VERSION}")))
        self.assertRegex(libdir, r"^/usr/lib(/[a-z0-9_]+-linux-gnu[a-z]*)?$")
        self.assertLessEqual({f"{libdir}/libforklift.so.{VERSION}", f"{libdir}/{SONAME}"}, lib)
        self.assertFalse([f for f in lib if f.endswith((".h", ".a"))], lib)
        dev = self.contents("libforklift-dev")
        self.assertLessEqual({f"{libdir}/libforklift.so", f"{libdir}/libforklift.a",
                              f"{libdir}/pkgconfig/forklift.pc", "/usr/include/forklift/batch.h",
                              "/usr/include/forklift/version.h",
                              f"{libdir}/cmake/forklift/forkliftConfig.cmake"}, dev)

    def test_install_into_scratch_root(self):
        """dpkg installs the three packages into an empty root whose package database is a
        copy of this host's: the dependencies are checked against the real Debian packages
        installed here (their files are not copied; the binary then runs with the host's
        libraries). Triggers (ldconfig) are not run: they would need a chroot."""
        root = scratch("root")
        admin = os.path.join(root, "var", "lib", "dpkg")
        for d in ("info", "updates", "triggers", "alternatives"):
            os.makedirs(os.path.join(admin, d))
        # The host's records of the packages the .debs depend on, and only those (dpkg
        # would warn about every other one's missing file list).
        wanted = set()
        for deb in self.debs.values():
            depends = run(["dpkg-deb", "--field", deb, "Depends"]).stdout
            wanted |= {d.strip().split()[0] for d in re.split(r"[,|]", depends) if d.strip()}
        stanzas = read("/var/lib/dpkg/status").split("\n\n")
        with open(os.path.join(admin, "status"), "w") as f:
            for st in stanzas:
                m = re.match(r"Package: (\S+)", st)
                if m and m.group(1) in wanted and "Status: install ok installed" in st:
                    f.write(st.strip() + "\n\n")
        open(os.path.join(admin, "available"), "w").close()
        # --force-script-chrootless: the root has no /bin/sh to run libforklift0.2's (empty)
        # postinst in; --no-triggers: nor ldconfig.
        p = run(["dpkg", f"--root={root}", "--log=/dev/null", "--force-not-root", "--no-triggers",
                 "--force-script-chrootless", "-i", *sorted(self.debs.values())])
        self.assertNotIn("dependency problems", p.stderr)
        status = run(["dpkg-query", f"--admindir={admin}", "-W", "-f=${Package} ${Status}\n",
                      "forklift", "libforklift0.2", "libforklift-dev"]).stdout
        for pkg in ("forklift", "libforklift0.2", "libforklift-dev"):
            self.assertRegex(status, rf"(?m)^{re.escape(pkg)} install ok (installed|triggers-pending)$")
        out = run([os.path.join(root, "usr", "bin", "forklift"), "version"]).stdout
        self.assertRegex(out, r"^forklift 0\.2\.0 \(git ")
        # The -dev package's CMake package finds itself from where it was unpacked.
        build = scratch("deb-consumer")
        run(["cmake", "-S", os.path.join(ROOT, "examples", "consumer"), "-B", build,
             f"-DCMAKE_PREFIX_PATH={root}/usr"])
        cache = read(os.path.join(build, "CMakeCache.txt"))
        config = find_one(os.path.join(root, "usr"), "forkliftConfig.cmake")
        self.assertIn(f"forklift_DIR:PATH={os.path.dirname(config)}\n", cache)


if __name__ == "__main__":
    unittest.main(verbosity=2)
