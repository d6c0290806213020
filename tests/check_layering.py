#!/usr/bin/env python3
"""The layering DESIGN.md describes, checked over the include graph.

A module (src/NAME/) may include only its own headers, the public API (include/forklift/),
and the headers of modules it links, directly or through them, as CMakeLists.txt declares
them (`forklift_module(NAME DEPS forklift_X ...)`). So a module that includes one beside
or above it — map/ including flow/, core/ including process/ — fails, naming the file, the
line and the include; and so does a module cycle in CMakeLists.txt itself.

usage: tests/check_layering.py [REPO_ROOT]      exit 0: clean; 1: violations (listed)
       tests/check_layering.py --self-test     the check catches a made-up violation
"""
import os
import re
import sys

root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))


# DESIGN.md's layers, bottom up. A module links only modules of lower layers, and the one
# link inside a layer that docs/architecture.md names: sinks/ uses sources/. sqlite/ (the
# one SQLite wrapper) sits between core/ and the journal and sinks that stand on it.
LAYERS = {"core": 0, "sqlite": 1, "process": 2, "journal": 2, "sources": 2, "sinks": 2,
          "batch": 3, "queue": 3, "map": 4, "flow": 4, "load": 4, "cli": 5}
SAME_LAYER_LINKS = {("sinks", "sources")}


def declared_modules():
    """{module: set of modules it links directly}, from CMakeLists.txt."""
    text = open(os.path.join(root, "CMakeLists.txt")).read()
    deps = {}
    # forklift_module(NAME DEPS a b ... [TEST_DEPS ...]) may span lines.
    for m in re.finditer(r"forklift_module\(\s*(\w+)(.*?)\)", text, re.S):
        name, rest = m.group(1), m.group(2)
        rest = rest.split("TEST_DEPS")[0]
        deps[name] = set(re.findall(r"\bforklift_(\w+)\b", rest)) - {name}
    return deps


def closure(deps):
    full = {}

    def visit(name, stack):
        if name in full:
            return full[name]
        if name in stack:
            raise SystemExit("check_layering: a cycle of modules in CMakeLists.txt: " +
                             " -> ".join(stack + [name]))
        out = set()
        for d in deps.get(name, ()):
            out |= {d} | visit(d, stack + [name])
        full[name] = out
        return out

    for n in deps:
        visit(n, [])
    return full


def main():
    deps = declared_modules()
    allowed = closure(deps)
    modules = set(deps)
    bad_links = []
    for module, ds in sorted(deps.items()):
        for d in sorted(ds):
            if module not in LAYERS or d not in LAYERS:
                bad_links.append(f"CMakeLists.txt: module {module if module not in LAYERS else d}/ "
                                 "has no layer in tests/check_layering.py: add it to LAYERS")
            elif LAYERS[d] > LAYERS[module] or (LAYERS[d] == LAYERS[module] and
                                                  (module, d) not in SAME_LAYER_LINKS):
                bad_links.append(f"CMakeLists.txt: {module}/ links {d}/, which is beside or above it")
    if bad_links:
        print("\n".join(bad_links))
        return 1
    include = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[^"]+"')
    bad = []
    checked = 0
    for module in sorted(modules):
        folder = os.path.join(root, "src", module)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if not name.endswith((".h", ".cc")):
                continue
            # Tests beside the code may use test support of lower modules' tests too, but
            # not a module above: the same rule holds for them.
            path = os.path.join(folder, name)
            checked += 1
            with open(path, errors="replace") as f:
                for lineno, line in enumerate(f, 1):
                    m = include.match(line)
                    if not m:
                        continue
                    target = m.group(1)
                    if target in ("forklift", "support") or target == module:
                        continue
                    if target in modules and target not in allowed[module]:
                        where = "beside or above it"
                        bad.append(f"src/{module}/{name}:{lineno}: includes \"{target}/...\", "
                                   f"a module {module}/ does not link ({where}); it links: "
                                   f"{', '.join(sorted(allowed[module])) or 'nothing'}")
    if bad:
        print("\n".join(bad))
        print(f"check_layering: {len(bad)} include(s) against the layering")
        return 1
    print(f"check_layering: {checked} files in {len(modules)} modules follow the layering")
    return 0


def self_test():
    """A made-up tree where core/ includes process/ (above it) and map/ includes flow/
    (beside it): both must be reported, and the clean tree must pass."""
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "CMakeLists.txt"), "w") as f:
            f.write("forklift_module(core DEPS fmt::fmt)\nforklift_module(process DEPS forklift_core)\n"
                    "forklift_module(map DEPS forklift_process\n  TEST_DEPS forklift_flow)\n"
                    "forklift_module(flow DEPS forklift_process)\n")
        files = {"core/a.cc": '#include "core/a.h"\n#include "forklift/result.h"\n',
                 "process/b.cc": '#include "core/a.h"\n',
                 "map/c.cc": '#include "process/b.h"\n#include "core/a.h"\n',
                 "flow/d.cc": '#include "process/b.h"\n'}
        for rel, text in files.items():
            os.makedirs(os.path.join(d, "src", os.path.dirname(rel)), exist_ok=True)
            with open(os.path.join(d, "src", rel), "w") as f:
                f.write(text)
        run = lambda: subprocess.run([sys.executable, __file__, d], capture_output=True, text=True)
        clean = run()
        assert clean.returncode == 0, clean.stdout
        with open(os.path.join(d, "src", "core", "a.cc"), "a") as f:
            f.write('#include "process/b.h"\n')
        with open(os.path.join(d, "src", "map", "c.cc"), "a") as f:
            f.write('#include "flow/d.h"\n')
        dirty = run()
        assert dirty.returncode == 1, dirty.stdout
        assert 'src/core/a.cc:3: includes "process/..."' in dirty.stdout, dirty.stdout
        assert 'src/map/c.cc:3: includes "flow/..."' in dirty.stdout, dirty.stdout
        # Declaring the sideways link in CMakeLists.txt does not make it right.
        with open(os.path.join(d, "CMakeLists.txt"), "a") as f:
            f.write("forklift_module(load DEPS forklift_flow)\n")
        linked = run()
        assert linked.returncode == 1, linked.stdout
        assert "load/ links flow/, which is beside or above it" in linked.stdout, linked.stdout
    print("check_layering: self-test passed")
    return 0


if __name__ == "__main__":
    sys.exit(self_test() if sys.argv[1:] == ["--self-test"] else main())
