"""What one browser session watches: runs read from the archive, and the front they trace.

Plain Python (no Streamlit), so it is tested without a server. The runs themselves execute in
worker processes and live in the archive; a page keeps, per run it watches, a bounded
`History` (at most `capacity` rows, however long the run) and the archive cursor it has read up
to, and reads only the rows after it on each tick. x and y stay in the archive until a person
chooses a point.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pareto_app.history import METRICS, History, columns, named, vectors
from pareto_app.indicators import hypervolume, nondominated
from pareto_app.result import Result
from pareto_app.store import LIVE_STATES, RunStore

# Rows read from the archive per tick, at most: opening a long run catches up over a few ticks.
READ_PER_TICK = 20_000


def problem_key(task: str, task_params: dict[str, Any]) -> str:
    """A problem's identity: its task and the task's parameters (as the sidebar sets them)."""
    return json.dumps([str(task), task_params or {}], sort_keys=True, default=str)


@dataclass
class RunView:
    """A run as a page sees it: its spec, its kept rows, and its live state."""

    run_id: int
    spec: dict[str, Any]
    history: History
    seq: int = 0  # the archive's cursor: rows up to here are in `history`
    status: str = "queued"
    message: str = ""
    progress: float = 0.0
    command: str = "run"  # what a page last asked the worker (run, pause, stop)

    @property
    def label(self) -> str:
        return f"run #{self.run_id}: {self.spec.get('solver', '')}"

    @property
    def task(self) -> str:
        return str(self.spec.get("task", ""))

    @property
    def problem(self) -> str:
        """Which problem the run solves (`problem_key`): runs of one task with other parameters (another S,
        other data) have fronts of their own."""
        return problem_key(self.task, self.spec.get("task_params") or {})

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATES

    @property
    def steps(self) -> int | None:
        return (self.spec.get("termination") or {}).get("steps") or self.spec.get("steps")

    behind: bool = False  # the last read hit READ_PER_TICK: more rows are waiting
    read_at: float = 0.0  # time.monotonic() of the last read
    watched_at: float = 0.0  # time.monotonic() when a page last marked the run watched (RunStore.watch)
    # The status line asks at its fast pace (the run is due to end, or a click is not obeyed yet): each of its
    # asks then reads the archive anew, not the read another part made up to READ_EVERY_S before (see `read_every`).
    hurried: bool = False

    def refresh(self, store: RunStore) -> int:
        """Read what is new in the archive; the number of new rows."""
        self.read_at = time.monotonic()
        # The state first: rows a worker writes before it ends are then all read below.
        state = store.state(self.run_id)
        self.status, self.message, self.progress = state["status"], state["message"] or "", float(state["progress"])
        self.command = store.control(self.run_id)["command"]
        rows = store.rows_since(self.run_id, self.seq, limit=READ_PER_TICK)
        if rows:
            self.seq = rows[-1][0]
            self.history.extend(row for _, row in rows)
        self.behind = len(rows) == READ_PER_TICK
        return len(rows)

    def refresh_if_older(self, store: RunStore, seconds: float) -> int:
        """`refresh`, unless the last read is less than `seconds` old (the parts of a page shown live ask
        one after the other: one read serves them all); the number of new rows."""
        return self.refresh(store) if time.monotonic() - self.read_at >= seconds else 0

    @property
    def shown_status(self) -> str:
        """The state a person should read: what they asked for shows at once ("pausing…")."""
        if self.live and self.command == "stop":
            return "stopping…"
        if self.status == "running" and self.command == "pause":
            return "pausing…"
        if self.status == "paused" and self.command == "run":
            return "resuming…"
        return self.status

    @property
    def command_pending(self) -> bool:
        """A command given to the run is not obeyed yet (what `shown_status` says with "…")."""
        return self.shown_status != self.status


def look_every(view: RunView | None, redraw_every: float, paused_every: float, busy: float = 1.0) -> float | None:
    """Seconds between a page's looks at `view`: never once the run ended (or with none shown);
    `paused_every` while it is paused (a resume from another tab, or the idle limit, is still noticed);
    else `redraw_every`, times `busy` squared (stepping workers per core, at least 1) on a loaded machine once
    the run has an iterate: before that, the page waits for its first step, what a person who pressed Start looks
    for, and a few asks cost little (four tabs on two cores: "step 1" showed 1.6-1.9 s after Start in three of them,
    asked once a second, while their charts had drawn the trajectory a second before).

    Squared: with k pages each watching its own run on c cores, the pages' redraws per second in all
    fall as c / k (k / c times as many pages, each (k / c)² times less often), so that the workers keep
    most of the machine. Linear kept the total fixed at c / redraw_every, and with four tabs on two
    cores the browsers could not draw that much anyway (0.4-0.6 updates per second per tab, measured,
    of the 1.25 asked), while the clicks waited behind the backlog."""
    if view is None or not view.live:
        return None
    if view.status == "paused" and view.command == "pause":
        return paused_every
    return redraw_every * max(1.0, busy) ** 2 if len(view.history) else redraw_every


def nothing_to_draw_yet(view: RunView, have: str | None) -> bool:
    """Whether a browser that shows a chart (version `have`) keeps it for `view`'s run: live, with no iterate yet,
    the figure sent would be the idle chart (or the run shown before it, with what the run adds not there yet), and
    the first iterate brings the whole figure anyway. Four tabs starting at once each drew their charts twice in
    the run's first second, where the page and the workers' first steps compete for the cores."""
    return have is not None and view.live and not len(view.history)


def until_obeyed(view: RunView, every: float | None, floor: float) -> float | None:
    """`every`, or `floor` while a command given to `view`'s run is not obeyed yet ("stopping…", "pausing…",
    "resuming…"): the worker obeys within its control poll (0.05 s), and the page should say "stopped" as soon,
    not a whole look (0.25 s, or 1 s on a loaded machine) after the click's rerun drew "stopping…"."""
    return floor if every is not None and view.command_pending else every


def read_every(view: RunView, every: float) -> float:
    """How old a read of `view` may be for its status line's ask: `every`, or none at all while the line is
    `hurried`. At the end of a run of seconds, a read kept for `every` (0.1 s) after the other parts' asks made
    "finished" show 0.09-0.24 s after the worker wrote it (the line asks at 0.05 s)."""
    return 0.0 if view.hurried else every


def until_finished(view: RunView, every: float | None, floor: float) -> float | None:
    """`every` (seconds until a page looks again, `look_every`), or `floor` once `view`'s run is due to end within
    two of those: due by its pace so far (its last iterate's elapsed time and its progress towards its budget).
    Two, because what the page has read lags the worker by up to a write (0.25 s) and a read. A run of seconds
    that ends between two looks would otherwise show "finished" up to `every` late."""
    if every is None or view.status != "running" or not len(view.history) or not 0.0 < view.progress < 1.0:
        return every
    due = float(view.history.elapsed[-1]) * (1.0 - view.progress) / view.progress
    return floor if due < 2.0 * every else every


def status_pace(view: RunView, every: float | None, floor: float) -> float | None:
    """Seconds until `view`'s status line asks again: `every`, or `floor` while its run is due to end
    (`until_finished`) or has not obeyed a click yet (`until_obeyed`). The view is `hurried` meanwhile: those
    asks read the archive anew (`read_every`)."""
    pace = until_obeyed(view, until_finished(view, every, floor), floor)
    view.hurried = pace is not None and pace <= floor
    return pace


def open_view(store: RunStore, run_id: int, capacity: int = 4000) -> RunView:
    """A fresh view of archived run `run_id` (any status), read up to now."""
    state = store.state(run_id)
    spec = state["spec"]
    if spec is None:  # a Result saved whole (the CLI, an older archive): its history is in the payload
        result = store.load(run_id)
        spec = {"task": result.task, "task_params": result.task_params, "solver": result.solver,
                "options": result.options, "seed": result.seed, "steps": result.steps, "preference": result.preference}
        view = RunView(run_id, spec, History(len(result.objectives), capacity))
        view.history.extend(result.history.to_dict(orient="records"))
        view.status, view.message = result.status, result.message
        return view
    S = len(spec.get("preference") or []) or 2
    view = RunView(run_id, spec, History(S, capacity))
    view.refresh(store)
    return view


@dataclass
class Exploration:
    """The runs a session watches, and the objective vectors of their kept iterates."""

    views: dict[int, RunView] = field(default_factory=dict)
    # A run the page started, with the preference it was started with, not yet recorded as the page's run in the
    # session's state: an assignment there first yields to a rerun asked for meanwhile, and can be cut short
    # (pages/explore.py adopts it on its next run).
    started: tuple[int, list[float], int | None] | None = None  # (run, preference, the run shown before it)

    def watch(self, store: RunStore, run_id: int) -> RunView:
        if run_id not in self.views:
            self.views[run_id] = open_view(store, run_id)
        return self.views[run_id]

    def points(self, problem: str | None = None, tolerance: float | None = None) -> pd.DataFrame:
        """One row per kept iterate (run, step, f1..fS, constraint_violation) of runs on `problem`
        (`problem_key`; None: every run).

        With a `tolerance`, iterates whose constraint violation ‖∇_y g‖ is above it are left out.
        """
        frames = []
        for view in self.views.values():
            h = view.history
            if problem is not None and view.problem != problem or len(h) == 0:
                continue
            frame = pd.DataFrame(h.objectives, columns=columns("objectives", h.S))
            frame.insert(0, "step", h.step.astype(int))
            frame.insert(0, "run", view.run_id)
            frame["constraint_violation"] = h.constraint_violation
            frames.append(frame)
        if not frames:
            return pd.DataFrame(columns=["run", "step"])
        pts = pd.concat(frames, ignore_index=True)
        if tolerance is not None:
            pts = pts[~(pts["constraint_violation"] > tolerance)].reset_index(drop=True)
        return pts

    def front(self, problem: str | None = None, tolerance: float | None = None) -> pd.DataFrame:
        """The non-dominated kept iterates of runs on `problem` (same columns as `points`)."""
        pts = self.points(problem, tolerance)
        if pts.empty:
            return pts
        F = objective_matrix(pts)
        finite = np.isfinite(F).all(axis=1)
        pts, F = pts[finite], F[finite]
        return pts[nondominated(F)].reset_index(drop=True) if len(pts) else pts

    def hypervolume(self, problem: str | None = None, reference: Any = None, tolerance: float | None = None) -> float:
        front = self.front(problem, tolerance)
        return 0.0 if front.empty else hypervolume(objective_matrix(front), reference)


def objective_matrix(frame: pd.DataFrame) -> np.ndarray:
    return vectors(frame, "objectives")


def preference_schedule(history: pd.DataFrame) -> list[dict[str, Any]]:
    """The preferences a run followed: its first, and each one set while it ran (step it took effect)."""
    schedule: list[dict[str, Any]] = []
    preferences = vectors(history, "preference")
    for step, changed, r in zip(history["step"], history["preference_changed"], preferences.tolist()):
        if not schedule or changed or r != schedule[-1]["preference"]:
            schedule.append({"from_step": int(step), "preference": r})
    return schedule


def point_payload(result: Result, step: int, x: Any, y: Any) -> dict[str, Any]:
    """A chosen point as JSON-ready data: where it is, what produced it, how to reproduce it.

    `result` is its run as the archive has it (`RunStore.load`); x and y are None where the
    archive did not keep them for this step.
    """
    history = result.history
    row = named(history[history["step"] == step].iloc[-1].to_dict())
    schedule = [p for p in preference_schedule(history) if p["from_step"] <= step]
    run = {"task": result.task, "task_params": result.task_params, "solver": result.solver,
           "options": result.options, "seed": result.seed}
    return _payload(row, schedule, run, x, y)


def live_point_payload(store: RunStore, run_id: int, step: int, x: Any, y: Any) -> dict[str, Any]:
    """`point_payload` of a run the archive has not saved whole yet (live, stopped, interrupted), from
    the one row at `step` and the rows where its preference changed (`RunStore.preference_rows`): what
    `store.load` would give, without reading a long run's every row on each rerun of the page. KeyError
    if there is no iterate `step`."""
    record = store.iterate(run_id, step)
    if record is None:
        raise KeyError(f"run {run_id} has no iterate {step}")
    row = named(record)
    schedule = preference_schedule(pd.DataFrame(store.preference_rows(run_id, step)))
    spec = store.spec(run_id)
    run = {"task": spec["task"], "task_params": spec["task_params"], "solver": spec["solver"],
           "options": spec.get("options", {}), "seed": int(spec.get("seed", 0))}
    return _payload(row, schedule, run, x, y)


def _payload(row: dict[str, Any], schedule: list[dict[str, Any]], run: dict[str, Any], x: Any, y: Any
             ) -> dict[str, Any]:
    step = row["step"]
    return {
        "objectives": row["objectives"],
        "weights": row["weights"],
        "preference": row["preference"],
        "metrics": {k: row[k] for k in METRICS},
        "oracle_calls": row["oracle_calls"],
        "step": int(step),
        "x": None if x is None else x.double().tolist(),
        "y": None if y is None else y.double().tolist(),
        "reproduce": {**run, "steps": int(step) + 1, "preference_schedule": schedule},
    }
