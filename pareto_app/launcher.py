"""Starting worker processes for runs, from the server (or any process), with one kept warm.

A worker process imports torch before it is given a job, which takes seconds; the launcher
keeps one spare waiting on its stdin, so a run starts at once. The next spare is not started
beside a run that has just begun (its imports would take a core from the run's first seconds):
only once the launcher's runs have ended, or the newest has run `SPARE_AFTER_S`.
Workers run in their own session: they outlive the page, the server and a Ctrl-C of it, and
stop at their budget, when stopped, or after their idle limit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .runspec import RunSpec
from .store import RunStore

_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
SPARE_AFTER_S = 20.0
_lock = threading.Lock()  # the server calls from several session threads
_spare: subprocess.Popen | None = None
_children: list[subprocess.Popen] = []
_handed_at = -float("inf")  # when the newest run went to a worker (time.monotonic())


def _spawn() -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
    return subprocess.Popen([sys.executable, "-m", "pareto_app.worker"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, cwd=_PACKAGE_ROOT, env=env, text=True,
                            start_new_session=True)


def _reap() -> None:
    # poll() collects an ended child, so finished workers do not linger as zombies.
    _children[:] = [p for p in _children if p.poll() is None]


def _hand(run_id: int, store: RunStore, mode: str) -> subprocess.Popen:
    global _spare, _handed_at
    with _lock:
        _reap()
        proc = _spare if _spare is not None and _spare.poll() is None else _spawn()
        _spare = None
        try:
            proc.stdin.write(f"{store.path}\t{run_id}\t{mode}\n")
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            proc = _spawn()
            proc.stdin.write(f"{store.path}\t{run_id}\t{mode}\n")
            proc.stdin.close()
        _children.append(proc)
        _handed_at = time.monotonic()
        timer = threading.Timer(SPARE_AFTER_S, warm)
        timer.daemon = True
        timer.start()
        return proc


def warm() -> None:
    """Start the spare worker if there is none, and no run started in the last `SPARE_AFTER_S` is
    still going (pages call this on each redraw; a timer calls it after each start)."""
    global _spare
    with _lock:
        _reap()
        if _children and time.monotonic() - _handed_at < SPARE_AFTER_S:
            return
        if _spare is None or _spare.poll() is not None:
            _spare = _spawn()


def start(store: RunStore, spec: RunSpec, *, num_objectives: int, label: str = "") -> int:
    """Archive `spec` as a queued run and hand it to a worker process; returns the run's id."""
    run_id = store.create(spec.to_dict(), num_objectives=num_objectives, label=label)
    _hand(run_id, store, "start")
    return run_id


def resume(store: RunStore, run_id: int) -> None:
    """Continue an interrupted or stopped run in a new worker process: a single run from its last
    checkpoint; a sweep or comparison from its first child that had not finished."""
    state = store.state(run_id)
    if state["status"] in ("queued", "running", "paused"):
        raise ValueError(f"run {run_id} is {state['status']}; only an interrupted or stopped run can be resumed")
    if state["spec"] is None:
        raise ValueError(f"run {run_id} cannot be resumed: it was saved whole, not run by a worker")
    if state["spec"].get("kind", "run") == "run":
        checkpoint = store.last_checkpoint(run_id)
        if checkpoint is None:
            raise ValueError(f"run {run_id} has no checkpoint to resume from (it ended before its first one)")
        store.rewind(run_id, checkpoint[0])
    else:
        store.rewind(run_id, -1)  # a group keeps no iterates of its own: this only queues it again
    _hand(run_id, store, "resume")


def workers() -> list[Any]:
    """The worker processes this process started that are still running (not the spare)."""
    with _lock:
        _reap()
        return list(_children)


def shutdown_spare() -> None:
    """End the spare worker (tests; a server that exits closes its stdin, which ends it too)."""
    global _spare
    with _lock:
        spare, _spare = _spare, None
    if spare is None:
        return
    try:
        spare.stdin.close()  # end of input: a waiting spare exits
        spare.wait(20)
    except (OSError, subprocess.TimeoutExpired, AssertionError):
        spare.kill()  # still importing under a heavy load: nothing of value is lost
