"""Starting worker processes for runs, from the server (or any process), through a fork server.

A fresh interpreter takes seconds to import torch; the launcher keeps one fork server
(`python -m pareto_app.worker`: torch imported and warmed up, waiting on its stdin) and each run
is a process forked from it, started at once however many start together. Workers leave the fork
server's session: they outlive the page, the server and a Ctrl-C of it, and stop at their budget,
when stopped, or after their idle limit. The fork server ends when its launcher does (end of input).
Where forking a process that has loaded torch is not safe (anything but Linux), each run gets a
fresh interpreter instead, with one kept waiting.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .runspec import RunSpec
from .store import RunStore, process_alive

_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
FORKS = sys.platform.startswith("linux") and hasattr(os, "fork")
_lock = threading.Lock()  # the server calls from several session threads
_server: subprocess.Popen | None = None
_children: list[Worker] = []
# Jobs handed to each fork server and not answered yet, oldest first: (archive path, run id); and the part
# of its replies read but not yet a whole line.
_pending: dict[subprocess.Popen, collections.deque[tuple[str, int]]] = {}
_unread: dict[subprocess.Popen, bytes] = {}


class Worker:
    """A worker process, known by its pid: forked by the fork server (not this process's child, so no Popen),
    or off Linux a fresh interpreter of its own."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._started = _start_time(pid)

    def poll(self) -> int | None:
        """None while it runs (as Popen.poll); 0 once it has ended."""
        alive = process_alive(self.pid) and _start_time(self.pid) == self._started  # not a reused pid
        return None if alive else 0

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
            time.sleep(0.02)
        return 0


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


def _spawn() -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
    server = subprocess.Popen([sys.executable, "-m", "pareto_app.worker", *([] if FORKS else ["--one"])],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=_PACKAGE_ROOT, env=env,
                              start_new_session=True)
    os.set_blocking(server.stdout.fileno(), False)  # its replies are read as they come, never waited for
    return server


def _reap() -> None:
    """Take up the fork servers' replies so far; forget the workers that ended."""
    for server in list(_pending):
        _read_replies(server)
    _children[:] = [w for w in _children if w.poll() is None]


def _fork_server() -> subprocess.Popen:
    global _server
    if _server is None or _server.poll() is not None:
        _server = _spawn()
        _pending[_server] = collections.deque()
        _unread[_server] = b""
    return _server


def _read_replies(server: subprocess.Popen) -> None:
    """Each "pid N" the fork server answered is a worker started, for its oldest job not yet answered (a fork
    server still importing torch answers when it is ready: the page meanwhile says it waits for a worker
    process). A job it could not fork, or did not answer before it ended, fails its run with the reason."""
    ended = False
    while True:
        try:
            chunk = os.read(server.stdout.fileno(), 65536)
        except BlockingIOError:
            break
        if not chunk:
            ended = True
            break
        _unread[server] += chunk
    *lines, _unread[server] = _unread[server].split(b"\n")
    for line in (raw.decode(errors="replace") for raw in lines):
        if not line.startswith(("pid ", "error ")):
            continue
        job = _pending[server].popleft() if _pending[server] else None
        if line.startswith("pid "):
            _children.append(Worker(int(line[4:])))
        elif job is not None:
            _fail(job, f"no worker process could be started for it: {line[6:].strip()}")
    if ended:
        for job in _pending.pop(server):
            _fail(job, "no worker process could be started for it: the process that starts them ended first "
                       "(the server's log says why); start it again")
        del _unread[server]
        server.stdout.close()


def _fail(job: tuple[str, int], message: str) -> None:
    path, run_id = job
    try:
        store = RunStore(path)
        if store.state(run_id)["status"] == "queued":
            store.finish(run_id, None, "failed", message)
    except (KeyError, OSError, ValueError):
        pass  # deleted meanwhile, or its archive is gone: nobody waits for it


def _hand(run_id: int, store: RunStore, mode: str) -> None:
    global _server
    job = f"{store.path}\t{run_id}\t{mode}\n"
    with _lock:
        _reap()
        for attempt in range(2):
            server = _fork_server()
            if server not in _pending:  # its output ended (it is exiting): its replies are no longer read
                _server = None
                server = _fork_server()
            try:
                server.stdin.write(job.encode())
                server.stdin.flush()
            except (BrokenPipeError, OSError):
                if attempt:
                    raise
                _server = None  # it died (killed, out of memory): a new one, once
                continue
            _pending[server].append((str(store.path), int(run_id)))
            if not FORKS:
                _server = None  # it runs this one job: the next goes to a new one
            return


def warm() -> None:
    """Start the fork server if there is none (pages call this on each redraw), so that the next run
    starts at once."""
    with _lock:
        _reap()
        _fork_server()


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


def workers() -> list[Worker]:
    """The worker processes this process started that are still running."""
    with _lock:
        _reap()
        return list(_children)


def shutdown_fork_server() -> None:
    """End the fork server (tests; a server that exits closes its input, which ends it too). Workers it
    forked go on."""
    global _server
    with _lock:
        server, _server = _server, None
    if server is None:
        return
    try:
        server.stdin.close()  # end of input: the fork server exits
        server.wait(20)
    except (OSError, subprocess.TimeoutExpired, AssertionError):
        server.kill()  # still importing under a heavy load: nothing of value is lost
        server.wait(20)
