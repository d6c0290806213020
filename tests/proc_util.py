"""What the end-to-end tests ask /proc: is a process alive, which processes a run left.

This sandbox's PID 1 does not reap orphans, so a zombie counts as gone.
"""
import os
import time


def is_live(pid):
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def processes_of_run(run_id):
    """Live pids whose environment carries FORKLIFT_RUN_ID=run_id (a flow's tasks, and what
    they start: a fan-out's map and its jobs)."""
    mark = f"FORKLIFT_RUN_ID={run_id}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if mark in env and is_live(int(name)):
            found.append(int(name))
    return found


def wait_for(predicate, timeout=30, what="an event"):
    """Polls predicate until it holds; AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def marked(name, value):
    """Live pids whose environment holds NAME=VALUE."""
    mark = f"{name}={value}".encode()
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/environ", "rb") as f:
                if mark in f.read().split(b"\0") and is_live(int(p)):
                    found.append(int(p))
        except OSError:
            pass
    return found
