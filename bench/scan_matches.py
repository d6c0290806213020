#!/usr/bin/python3
"""Every match of the anchor's scan, one 'SYMBOL DATE' line each, sorted.

usage: scan_matches.py ANCHORS_DIR SCAN.db WORKERS [SYMBOLS]

Runs scan_ppe.py's own process_symbol (imported, not copied), so the dates compared with
forklift-scan --print-matches are the anchor's, computed by the anchor's code. The anchor
itself prints only the count; this is the list behind it.
"""
import importlib
import sys
from concurrent.futures import ProcessPoolExecutor

anchor = None


def load_anchor(anchors, db):
    """Imports scan_ppe, which reads its database from sys.argv[1] at import time."""
    sys.path.insert(0, anchors)
    saved, sys.argv = sys.argv, ["scan_ppe.py", db]
    try:
        module = importlib.import_module("scan_ppe")
    finally:
        sys.argv = saved
    module.DB = db
    return module


def init_worker(anchors, db):
    global anchor
    anchor = load_anchor(anchors, db)


def scan_one(sym):
    return anchor.process_symbol(sym)


if __name__ == "__main__":
    anchors, db, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 2500
    syms = [f"SYM{i:05d}" for i in range(n)]
    lines = []
    with ProcessPoolExecutor(workers, initializer=init_worker, initargs=(anchors, db)) as ex:
        for sym, dates, _ in ex.map(scan_one, syms, chunksize=25):
            lines.extend(f"{sym} {d}" for d in dates)
    lines.sort()
    sys.stdout.write("".join(line + "\n" for line in lines))
