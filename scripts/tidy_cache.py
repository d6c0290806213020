#!/usr/bin/env python3
"""A result cache for clang-tidy (scripts/ci-lint.sh): a file whose preprocessed text, with
the same .clang-tidy, clang-tidy version and flags, was already found clean is not checked
again. The key is a hash of `COMPILER -E -P` of the file (its text and every header it
includes, without line markers, so clones at other paths share it), the compile flags,
.clang-tidy and `clang-tidy --version`; only clean results are recorded, so a cached entry
can never hide a finding.

  tidy_cache.py todo BUILD_DIR REGEX      prints the files matching REGEX that need a run
  tidy_cache.py done BUILD_DIR FILE...    records FILEs as clean

Cache: $FORKLIFT_TIDY_CACHE, else ~/.cache/forklift/clang-tidy. Deleting it is always safe.
"""
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

CACHE = os.environ.get("FORKLIFT_TIDY_CACHE",
                       os.path.join(os.path.expanduser("~"), ".cache", "forklift", "clang-tidy"))


def commands(build):
    with open(os.path.join(build, "compile_commands.json")) as f:
        return {os.path.realpath(e["file"]): e for e in json.load(f)}


def common_key(root):
    h = hashlib.sha256()
    with open(os.path.join(root, ".clang-tidy"), "rb") as f:
        h.update(f.read())
    h.update(subprocess.run(["clang-tidy", "--version"], capture_output=True).stdout)
    return h.hexdigest()


def key(entry, common, root):
    args = entry.get("arguments") or shlex.split(entry["command"])
    # The compiler after the launcher (ccache, `cmake -E env ...`), then its flags without
    # the output and dependency-file options.
    while args and not re.search(r"(g\+\+|c\+\+|clang\+\+)(-\d+)?$", args[0]):
        args = args[1:]
    flags, skip = [], False
    for a in args[1:]:
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT", "-MQ", "-c"):
            skip = a != "-c"
            continue
        if a in ("-MD", "-MMD") or a == entry["file"]:
            continue
        flags.append(a)
    pre = subprocess.run([args[0], *flags, "-E", "-P", entry["file"]], capture_output=True,
                         cwd=entry["directory"])
    if pre.returncode != 0:
        return None  # let clang-tidy say what is wrong
    h = hashlib.sha256()
    h.update(common.encode())
    # Paths under the checkout are written relative to it: another clone's are the same.
    h.update(" ".join(flags).replace(root, "<root>").encode())
    h.update(pre.stdout.replace(root.encode(), b"<root>"))
    return h.hexdigest()


def main():
    mode, build = sys.argv[1], sys.argv[2]
    root = os.path.realpath(os.path.join(os.path.dirname(__file__), ".."))
    cmds = commands(build)
    common = common_key(root)
    if mode == "todo":
        rx = re.compile(sys.argv[3])
        files = sorted(f for f in cmds if rx.search(f))
    else:
        files = [os.path.realpath(f) for f in sys.argv[3:]]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        keys = list(pool.map(lambda f: key(cmds[f], common, root), files))
    os.makedirs(CACHE, exist_ok=True)
    for f, k in zip(files, keys):
        stamp = os.path.join(CACHE, k) if k else None
        if mode == "todo":
            if not stamp or not os.path.exists(stamp):
                print(f)
        elif stamp:
            with open(stamp, "w") as out:
                out.write(os.path.relpath(f, root) + "\n")


if __name__ == "__main__":
    main()
