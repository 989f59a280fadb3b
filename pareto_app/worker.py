"""A run's own process: it rebuilds the problem, runs the solver and writes the run to the archive.

The archive is the bus. The worker appends iterates (one transaction at least every
`FLUSH_EVERY_S`), a heartbeat, and every `CHECKPOINT_EVERY_S` a checkpoint that continues the
run; it reads its control row (pause, resume, stop, a new preference) at every step and between
oracle calls of a slow step. Pages only read and write rows, so a run outlives a closed tab and a
restarted server, and the server's redraws never compete with the solver for the GIL.

    python -m pareto_app.worker         # the fork server: a worker per "DB<TAB>RUN_ID<TAB>start|resume" line
    python -m pareto_app.worker --one   # one such job in this process (where there is no fork server)

Workers are forked from a fork server started ahead of time (torch imported and warmed up), so a
run starts at once: `pareto_app.launcher` keeps one per server.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
import torch

from . import tasks
from .api import Diverged, Run, check_divergence_factor, make_result, prepare
from .batched_sweep import BATCHED, batched_results
from .preference import normalize_preference
from .result import Iterate
from .runspec import RunSpec
from .store import LIVE_STATES, RunStore

FLUSH_EVERY_S = 0.25  # iterates reach the archive at least this often
HEARTBEAT_EVERY_S = 1.0  # a paused or slow-stepping worker still says it is alive
CHECKPOINT_EVERY_S = 2.0  # at most this much work is lost when the worker dies
NICENESS = 10  # a worker's CPU priority below the server's (Unix nice) on a crowded machine: see StepAside
CROWDED_EVERY_S = 2.0  # how often a worker at full priority asks whether the machine has become crowded
POLL_EVERY_S = 0.05  # the control row is read at most this often (pause and stop wait at most this)
SWEEP_BATCH = 64  # preferences per batched run of a sweep (pa.sweep's batch_size)
KEEP_POINTS_UP_TO = 4096  # x and y of every iterate are kept when p + q is at most this; else at checkpoints


class RunStopped(Exception):
    """Raised from inside a step when the control row says stop."""


class LiveWriter:
    """Buffers a run's iterates and writes them, with a heartbeat and checkpoints, to the archive."""

    def __init__(self, store: RunStore, run_id: int, spec: RunSpec, runner: Run | None = None) -> None:
        self.store, self.run_id, self.spec, self.runner = store, run_id, spec, runner
        self.rows: list[dict[str, Any]] = []
        self.points: list[tuple[bytes, bytes] | None] = []
        self.keep_points = True
        self.status = "running"
        self.progress = 0.0
        self.last: Iterate | None = None
        self._flushed = self._checkpointed = time.monotonic()
        self._first = True

    def add(self, it: Iterate) -> None:
        self.last = it
        row = it.row()
        self.rows.append(row)
        self.keep_points = it.x.numel() + it.y.numel() <= KEEP_POINTS_UP_TO
        self.points.append((_blob(it.x), _blob(it.y)) if self.keep_points else None)
        self.progress = self.spec.termination.progress(it.step + 1, row["oracle_total"], it.elapsed)
        # The first iterate goes out at once: a page shows "step 1" as soon as the run has taken one.
        if self._first or time.monotonic() - self._flushed >= FLUSH_EVERY_S:
            self._first = False
            self.flush()

    def flush(self, status: str | None = None, checkpoint: bool = False, message: str | None = None) -> None:
        """Write what is buffered; a checkpoint too when one is due (or `checkpoint`)."""
        if status is not None:
            self.status = status
        if message is None and self.last is None and self.runner is not None and self.runner.oracles is not None:
            # Before the first step: the solver reads its step sizes off the problem (power iterations).
            message = f"estimating step sizes ({self.runner.oracles.counts.total} oracle calls so far)"
        elif message is None and self.rows and len(self.rows) == self.rows[-1]["step"] + 1:
            message = ""
        self.store.append(self.run_id, self.rows, self.points, status=self.status, progress=self.progress,
                          pid=os.getpid(), message=message)
        self.rows, self.points = [], []
        now = time.monotonic()
        self._flushed = now
        if self.runner is not None and self.last is not None and (checkpoint or now - self._checkpointed
                                                                  >= CHECKPOINT_EVERY_S):
            buffer = io.BytesIO()
            torch.save(self.runner.checkpoint(), buffer)
            self.store.checkpoint(self.run_id, self.last.step, buffer.getvalue())
            self._checkpointed = now

    def beat(self, status: str | None = None) -> None:
        """A heartbeat (and the buffered rows) when one is due or the status changes."""
        if (status is not None and status != self.status) or time.monotonic() - self._flushed >= HEARTBEAT_EVERY_S:
            self.flush(status)


class ArchiveControl:
    """The Controller protocol over a run's control row (and its parent's, for a sweep's runs).

    Read at every step and between oracle calls, at most every `POLL_EVERY_S`; a run nobody
    watched for `idle_limit` seconds stops itself.
    """

    def __init__(self, store: RunStore, run_id: int, idle_limit: float | None, writer: LiveWriter,
                 parent: int | None = None) -> None:
        self.store, self.run_id, self.idle_limit, self.writer, self.parent = store, run_id, idle_limit, writer, parent
        self.num_objectives: int | None = None
        self.reason = ""
        self._read_at = -math.inf
        self._row: dict[str, Any] = {}
        self._refresh(force=True)

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._read_at < POLL_EVERY_S:
            return
        self._read_at = now
        row = self.store.control(self.run_id)
        if self.parent is not None:
            above = self.store.control(self.parent)
            row["command"] = "stop" if "stop" in (row["command"], above["command"]) else \
                "pause" if "pause" in (row["command"], above["command"]) else "run"
            row["watched"] = max(w for w in (row["watched"], above["watched"], 0.0) if w is not None)
        self._row = row
        if _step_aside is not None:
            _step_aside.check(self.store)
        if self.reason:
            return
        if row["command"] == "stop":
            self.reason = "stopped from the page"
        elif self.idle_limit is not None and row["watched"] and time.time() - row["watched"] > self.idle_limit:
            self.reason = f"stopped by itself: no page watched it for {self.idle_limit:g} s (its idle limit)"

    @property
    def stopped(self) -> bool:
        self._refresh()
        return bool(self.reason)

    @property
    def paused(self) -> bool:
        return self._row.get("command") == "pause"

    def wait_while_paused(self, timeout: float | None = None) -> bool:
        # Asked at every step: the control row as last read (at most POLL_EVERY_S old), not a read per step
        # (one SQLite read is 2-3 % of a step of the default task).
        self._refresh()
        if not self.paused or self.reason:
            return True
        # A paused run is one likely to be left (its tab closed, the machine shut down): resumed after a crash,
        # it continues from where it paused.
        self.writer.flush("paused", checkpoint=True)
        while self.paused and not self.reason:
            time.sleep(POLL_EVERY_S)
            self._refresh(force=True)
            self.writer.beat()
        self.writer.flush("running")
        return True

    def take_preference(self, seen: int) -> tuple[int, np.ndarray | None]:
        self._refresh()
        version = self._row.get("version", 0)
        if version == seen or self._row.get("preference") is None:
            return seen, None
        return version, np.asarray(self._row["preference"], dtype=float)

    def poll(self) -> None:
        """Between oracle calls: stop (raise), pause (block) or just say alive."""
        self._refresh()
        if self.paused and not self.reason:
            self.wait_while_paused()
        if self.reason:
            raise RunStopped(self.reason)
        self.writer.beat()


def _blob(t: torch.Tensor) -> bytes:
    return t.detach().to("cpu", torch.float64).contiguous().numpy().astype("<f8", copy=False).tobytes()


def run_live(store: RunStore, run_id: int, spec: RunSpec, problem: Any, *, resume: bool = False,
             parent: int | None = None) -> str:
    """Execute one run, writing it to the archive as it goes; returns its final status."""
    writer = LiveWriter(store, run_id, spec)
    control = ArchiveControl(store, run_id, spec.idle_limit, writer, parent)
    checkpoint = None
    if resume:
        saved = store.last_checkpoint(run_id)
        if saved is None:
            raise ValueError(f"run {run_id} has no checkpoint to resume from")
        checkpoint = torch.load(io.BytesIO(saved[1]), weights_only=True)
    writer.flush("running")
    prepared = prepare(problem, spec.solver, spec.preference, spec.device, spec.options)
    runner = Run(prepared, spec.steps, spec.seed, control, spec.metrics_every, resume=checkpoint,
                 divergence_factor=check_divergence_factor(spec.divergence_factor))
    writer.runner = runner
    status, message = "finished", ""
    try:
        for it in runner:
            writer.add(it)
            if spec.termination.reached(it.step + 1, sum(it.oracle_calls.values()), it.elapsed):
                break
        if control.reason:
            status, message = "stopped", control.reason
    except RunStopped as err:
        status, message = "stopped", str(err)
    except Diverged as err:
        status, message = "diverged", str(err)
    except Exception as err:  # noqa: BLE001 - the page shows why; the rows so far are kept
        status, message = "failed", _why(err)
    # The final state goes out with the last iterates, at once: building the exact Result below reads the
    # whole history back and takes a while for a long run, and a page waiting on "stopping…" need not.
    writer.flush(status, checkpoint=status == "stopped", message=message)
    result = None
    if writer.last is not None:
        history = pd.DataFrame([row for _, row in store.rows_since(run_id)])
        # A diverged run raised before yielding its bad iterate: the last one written is the last good one.
        result = make_result(runner, history, writer.last, status, message, metadata={"run_id": run_id})
    store.finish(run_id, result, status, message)
    return status


def run_group(store: RunStore, run_id: int, spec: RunSpec, problem: Any) -> str:
    """A sweep (one child run per preference) or a comparison (one per solver), one after another.

    The group's progress is children done / children. Run again (resumed), it skips the children
    that finished, resumes an interrupted or stopped one from its checkpoint, and goes on.
    """
    if spec.kind == "sweep" and spec.backend == "ray":
        return run_sweep_on_ray(store, run_id, spec, problem)
    if (spec.kind == "sweep" and spec.solver in BATCHED and spec.steps is not None
            and spec.termination.oracle_budget is None and spec.termination.wall_time is None):
        return run_sweep_batched(store, run_id, spec, problem)
    if spec.kind == "sweep":
        children = [(spec.child(preference=list(r)), f"sweep {run_id} · {i + 1}")
                    for i, r in enumerate(spec.preferences or [])]
    else:
        children = [(spec.child(solver=solver, options=dict(options)), f"compare {run_id} · {solver}")
                    for solver, options in spec.arms or []]
    writer = LiveWriter(store, run_id, spec)
    control = ArchiveControl(store, run_id, spec.idle_limit, writer)
    made = store.children(run_id)  # made in order: child i runs children[i]
    for i, (child, label) in enumerate(children):
        if control.stopped:
            break
        resume = False
        if i < len(made):
            child_id = made[i]
            if store.state(child_id)["status"] == "finished":
                continue
            checkpoint = store.last_checkpoint(child_id)
            resume = checkpoint is not None
            store.rewind(child_id, checkpoint[0] if resume else -1)
        else:
            child_id = store.create(child.to_dict(), num_objectives=problem.num_objectives, label=label, parent=run_id)
        run_live(store, child_id, child, problem, resume=resume, parent=run_id)
        writer.progress = (i + 1) / len(children)
        writer.flush()
    status = "stopped" if control.reason else "finished"
    store.finish(run_id, None, status, control.reason)
    return status


def run_sweep_on_ray(store: RunStore, run_id: int, spec: RunSpec, problem: Any) -> str:
    """A sweep whose chunks run as Ray tasks (`pa.sweep(backend="ray")`); each run archived as its chunk ends.

    Every child run is made at once (queued), so the page shows the whole sweep; a chunk's runs
    are archived whole when it returns (their iterates, then their result). Run again (resumed),
    it skips the children that finished. Stop cancels the chunks still running.
    """
    from .ray_sweep import ray_sweep

    rows, made, todo, P = _sweep_children(store, run_id, spec, problem, "Ray")
    writer = LiveWriter(store, run_id, spec)
    control = ArchiveControl(store, run_id, spec.idle_limit, writer)
    where = spec.address or "a local Ray instance"
    done = len(rows) - len(todo)
    writer.progress = done / max(len(rows), 1)
    store.append(run_id, [], [], status="running", progress=writer.progress, pid=os.getpid(),
                 message=f"runs on {where}")

    def archive_chunk(first: int, results: list[Any]) -> None:
        nonlocal done
        for k, result in enumerate(results):
            child_id = made[todo[first + k]]
            records = result.history.to_dict("records")
            store.append(child_id, records, [None] * len(records), status="running", progress=1.0)
            store.finish(child_id, result, result.status, result.message)
        done += len(results)
        writer.progress = done / len(rows)
        writer.flush()

    def tick() -> bool:
        writer.beat()
        return control.stopped

    batched = spec.solver in BATCHED
    try:
        if len(todo):
            ray_sweep(problem, spec.solver, P, chunk_size=SWEEP_BATCH if batched else 1, address=spec.address, progress=None,
                      run_args=dict(batched=batched, steps=spec.steps or 1, seed=spec.seed, device=spec.device,
                                    metrics_every=spec.metrics_every, divergence_factor=spec.divergence_factor,
                                    **spec.options), on_chunk=archive_chunk, tick=tick)
    except Exception as err:  # noqa: BLE001 - the page shows why; the runs archived so far are kept
        return _end_sweep(store, run_id, made, "failed", _why(err))
    finally:
        if "ray" in sys.modules:  # this process's Ray (a local instance, or its cluster connection) ends with it
            sys.modules["ray"].shutdown()
    return _end_sweep(store, run_id, made, "stopped" if control.reason else "finished", control.reason)


def run_sweep_batched(store: RunStore, run_id: int, spec: RunSpec, problem: Any) -> str:
    """A sweep of a batched solver as batched runs of up to `SWEEP_BATCH` preferences (`pa.sweep`'s engine).

    Every child run is made at once and streams: each step writes every run's iterate, so the page
    shows the whole front moving. Pause and Cancel act on all the runs of the batch at the next step.
    Run again (resumed), it skips the children that finished and starts the others afresh.
    """
    rows, made, todo, P = _sweep_children(store, run_id, spec, problem, "batched")
    writer = LiveWriter(store, run_id, spec)
    control = ArchiveControl(store, run_id, spec.idle_limit, writer)
    done = len(rows) - len(todo)
    try:
        prepared = prepare(problem, spec.solver, P[0] if len(P) else None, spec.device, spec.options)
        for first in range(0, len(todo), SWEEP_BATCH):
            chunk = todo[first:first + SWEEP_BATCH]
            if control.stopped:
                break
            children = [LiveWriter(store, made[i], spec.child(preference=rows[i])) for i in chunk]
            for child in children:
                child.flush("running")

            def stream(k: int, iterates: list[Iterate | None], children: list[LiveWriter] = children) -> str | None:
                for child, it in zip(children, iterates):
                    if it is not None:
                        child.add(it)
                writer.progress = (done + sum(c.progress for c in children)) / len(rows)
                if not control.stopped and control.paused:  # `stopped` reads the control row (at most every 50 ms)
                    control.wait_while_paused()
                writer.beat()
                return control.reason or None

            results = batched_results(prepared.problem, prepared.solver, prepared.options, P[first:first + len(chunk)],
                                      steps=spec.steps or 1, seed=spec.seed, metrics_every=spec.metrics_every,
                                      divergence_factor=check_divergence_factor(spec.divergence_factor),
                                      on_step=stream)
            for child, result in zip(children, results):
                child.flush()
                store.finish(child.run_id, result, result.status, result.message)
            done += len(chunk)
            writer.progress = done / len(rows)
            writer.flush()
    except Exception as err:  # noqa: BLE001 - the page shows why; the runs archived so far are kept
        return _end_sweep(store, run_id, made, "failed", _why(err))
    return _end_sweep(store, run_id, made, "stopped" if control.reason else "finished", control.reason)


def _sweep_children(store: RunStore, run_id: int, spec: RunSpec, problem: Any, how: str
                    ) -> tuple[list[list[float]], list[int], list[int], np.ndarray]:
    """(rows, child ids, indices of the rows still to run, their normalised preferences): every child of
    the sweep made at once, queued."""
    rows = [list(r) for r in spec.preferences or []]
    made = store.children(run_id)
    for i in range(len(made), len(rows)):
        child = spec.child(preference=rows[i])
        made.append(store.create(child.to_dict(), num_objectives=problem.num_objectives,
                                 label=f"sweep {run_id} · {i + 1} ({how})", parent=run_id))
    todo = [i for i, child_id in enumerate(made) if store.state(child_id)["status"] != "finished"]
    for i in todo:
        store.rewind(made[i], -1)  # a resumed sweep runs its unfinished runs afresh
        # The worker's pid: while it lives, its queued runs are not "interrupted".
        store.append(made[i], [], [], status="queued", progress=0.0, pid=os.getpid(), message="")
    # Normalised as pa.sweep normalises its rows: the runs are then the library's, bit for bit.
    P = np.array([normalize_preference(rows[i], problem.num_objectives) for i in todo]).reshape(len(todo), -1)
    return rows, made, todo, P


def _end_sweep(store: RunStore, run_id: int, made: list[int], status: str, message: str) -> str:
    """End the sweep, and the runs it did not end (failed with it, or stopped)."""
    for child_id in made:
        if store.state(child_id)["status"] in LIVE_STATES:
            store.finish(child_id, None, "failed" if status == "failed" else "stopped",
                         message or "the sweep stopped before this run")
    store.finish(run_id, None, status, message)
    return status


def _why(err: Exception, expected: tuple[type[Exception], ...] = (ValueError,)) -> str:
    """A failure as the page shows it: an `expected` error's message as it is, anything else with its type."""
    return str(err) if isinstance(err, expected) else f"{type(err).__name__}: {err}"


def execute(db: str | Path, run_id: int, resume: bool = False) -> str:
    """Run archived job `run_id` of the archive at `db` to its end; its status."""
    store = RunStore(db)
    try:
        spec = RunSpec.from_dict(store.spec(run_id))
        store.watch(run_id)  # the idle limit counts from when the run starts, not from when it was asked for
        store.append(run_id, [], [], status="running", progress=0.0, pid=os.getpid(), message="building the task")
        problem = tasks.get(spec.task, device=spec.device, **spec.task_params)
        if spec.kind in ("sweep", "compare"):
            return run_group(store, run_id, spec, problem)
        return run_live(store, run_id, spec, problem, resume=resume)
    except Exception as err:  # noqa: BLE001 - a worker that cannot run says why in its run's row
        store.finish(run_id, None, "failed", _why(err, (ValueError, KeyError)))
        return "failed"


def solver_threads() -> int:
    """torch's CPU threads for a worker: every core this process may use but one, which is left to the
    server and the browser that draw the run (OMP_NUM_THREADS, when set, decides instead)."""
    if os.environ.get("OMP_NUM_THREADS", "").strip().isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))  # not torch's count: a fork server set its own to 1
    return max(1, usable_cores() - 1)


def niceness() -> int | None:
    """How much lower than its launcher's a worker's CPU priority is once the machine is crowded (`NICENESS`), or
    from the start when the person set `PARETO_APP_WORKER_NICENESS` (0 keeps the launcher's); None: the default."""
    raw = os.environ.get("PARETO_APP_WORKER_NICENESS", "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"PARETO_APP_WORKER_NICENESS={raw!r}; accepted: a whole number from 0 to 19") from None
    if not 0 <= value <= 19:
        raise ValueError(f"PARETO_APP_WORKER_NICENESS={value}; accepted: a whole number from 0 to 19")
    return value


def lower_priority(by: int = NICENESS) -> None:
    """Lower this process's CPU priority by `by` (Unix nice), for good: an unprivileged process cannot raise it again.

    On Linux with autogrouping (the default of most distributions), the scheduler first shares the CPU
    between sessions, and a process's nice value counts only within its own: a forked worker leads a
    session of its own (setsid), so its autogroup is given the niceness too. Without that, os.nice changed
    nothing against the server and the browser, which are in other sessions."""
    if not hasattr(os, "nice"):
        return
    with contextlib.suppress(OSError):
        os.nice(by)
    with contextlib.suppress(OSError):  # no such file: not Linux, or a kernel without autogroups
        Path("/proc/self/autogroup").write_text(str(os.getpriority(os.PRIO_PROCESS, 0)))


class StepAside:
    """A worker steps aside for the server and the browser once the machine is crowded: as many stepping
    workers as cores. A click and a redraw then get a core at once, and the workers take every cycle they
    leave (2 cores, 4 tabs, in one sitting: Stop → "stopped" on the page 0.61 s against 2.13 s at full priority,
    Pause 0.09 s against 0.27 s). With fewer workers than cores it keeps its priority: the page has a core of its
    own, and a niced worker only lost more of its time to the browser's bursts (1 tab, 1,000 steps: app time 1.61-1.63×
    the library's against 1.28-1.57× at full priority). Asked at most every CROWDED_EVERY_S; once lowered, the
    priority stays lowered. A niceness the person set applies from the start."""

    def __init__(self) -> None:
        chosen = niceness()  # a ValueError for a setting that is not accepted: the run says what is
        self.lowered = False
        self._asked_at = -math.inf
        if chosen is not None:
            lower_priority(chosen)
            self.lowered = True

    def check(self, store: RunStore) -> None:
        now = time.monotonic()
        if self.lowered or now - self._asked_at < CROWDED_EVERY_S:
            return
        self._asked_at = now
        if store.stepping_workers() >= usable_cores():
            lower_priority()
            self.lowered = True


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


_step_aside: StepAside | None = None  # this worker's, made by run_job


def warm_up() -> None:
    """What a run's first step would otherwise pay for, done once by the fork server before any job: torch's
    autograd imports sympy the first time it is given a vector to multiply a Jacobian with, as every
    Hessian-vector product is (0.5-0.7 s here, before the first step of every run)."""
    x = torch.ones(2, requires_grad=True)
    (g,) = torch.autograd.grad((x * x).sum(), x, create_graph=True)
    torch.autograd.grad(g, x, grad_outputs=torch.ones(2))


def run_job(line: str) -> None:
    """One job, "DB<TAB>RUN_ID<TAB>start|resume", in this process."""
    db, run_id, mode = line.rstrip("\n").split("\t")
    global _step_aside
    try:
        _step_aside = StepAside()
    except ValueError as err:  # the person who started the app set it: their run says what is accepted
        RunStore(db).finish(int(run_id), None, "failed", str(err))
        return
    torch.set_num_threads(solver_threads())
    execute(db, int(run_id), resume=mode == "resume")


def serve_forks(jobs: TextIO = sys.stdin, replies: TextIO = sys.stdout) -> None:
    """The fork server: imported and warmed up once, it forks a worker process per job line and answers
    each with "pid N" (or "error MESSAGE" when it could not fork), until its input ends (its launcher went
    away).

    A forked worker starts at once, whatever the machine is doing, where a fresh interpreter takes
    seconds to import torch (10-14 s measured with four tabs starting runs on 2 cores). The server
    starts no work of its own beside reading its input, and never touches a device or the archive, so
    that what a child inherits is sound: torch's thread pool is not started (one thread here; each
    worker sets its own), CUDA is not initialised, and no database connection is open. Linux only
    (`launcher.FORKS`): elsewhere forking a process that has loaded torch is not safe, and each run
    gets a fresh interpreter (`run_one`).
    """
    torch.set_num_threads(1)
    warm_up()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # ended workers are reaped by the kernel, not kept as zombies
    for line in jobs:
        if not line.strip():
            continue
        try:
            pid = os.fork()
        except OSError as err:  # out of processes or memory: this job's run says so, the server goes on
            replies.write(f"error {err}\n")
            replies.flush()
            continue
        if pid == 0:
            _become_worker(line)
        replies.write(f"pid {pid}\n")
        replies.flush()


def _become_worker(line: str) -> None:
    """In a forked child: leave the server's session, pipes and signal handling, run the job, exit."""
    status = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # a worker waits on its own children (Ray)
        os.setsid()  # outlives the app's server, and a Ctrl-C of it
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)  # the fork server's replies are not the worker's to write
        run_job(line)
        status = 0
    except BaseException:  # noqa: BLE001 - os._exit below would swallow it: the server's log shows it
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(status)


def run_one(jobs: TextIO = sys.stdin, replies: TextIO = sys.stdout) -> None:
    """Where there is no fork server: this process runs the one job it is given, and says so ("pid N")."""
    line = jobs.readline()
    if not line.strip():
        return  # the launcher went away before giving a job
    jobs.close()
    replies.write(f"pid {os.getpid()}\n")
    replies.flush()
    run_job(line)


def main() -> None:
    if "--one" in sys.argv[1:]:
        run_one()
    else:
        serve_forks()


if __name__ == "__main__":
    main()
