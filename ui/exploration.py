"""Everything one browser session explored: runs, their iterates, and the front they trace.

Plain Python (no Streamlit), so it is tested without a server. A page keeps one
Exploration in `st.session_state`; the worker thread never touches it (the page drains the
worker's queue into it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from pareto_app.indicators import hypervolume, nondominated
from pareto_app.result import Iterate, Result


@dataclass
class RunRecord:
    """One run of this session: what was asked, and what came back so far."""

    number: int
    task: str
    task_params: dict[str, Any]
    solver: str
    options: dict[str, Any]
    seed: int
    steps: int | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    points: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # (x, y) per row
    status: str = "running"
    message: str = ""
    resolved_options: dict[str, Any] = field(default_factory=dict)
    store_id: int | None = None

    @property
    def history(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    @property
    def label(self) -> str:
        return f"run {self.number}: {self.solver}"


@dataclass
class Exploration:
    """The session's runs and the objective vectors of every iterate they produced."""

    runs: list[RunRecord] = field(default_factory=list)

    def new_run(self, **kwargs: Any) -> RunRecord:
        record = RunRecord(number=len(self.runs) + 1, **kwargs)
        self.runs.append(record)
        return record

    def add(self, record: RunRecord, iterates: list[Iterate]) -> None:
        for it in iterates:
            record.rows.append(it.row())
            record.points.append((it.x.detach().cpu(), it.y.detach().cpu()))

    def points(self, task: str | None = None) -> pd.DataFrame:
        """One row per explored iterate (run, step, f1..fS), for runs on `task` (all if None)."""
        frames = []
        for record in self.runs:
            if task is not None and record.task != task or not record.rows:
                continue
            frame = record.history.filter(regex=r"^(step|f\d+)$").copy()
            frame.insert(0, "run", record.number)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run", "step"])

    def front(self, task: str | None = None) -> pd.DataFrame:
        """The non-dominated explored points (same columns as `points`)."""
        pts = self.points(task)
        if pts.empty:
            return pts
        F = pts.filter(regex=r"^f\d+$").to_numpy()
        return pts[nondominated(F)].reset_index(drop=True)

    def hypervolume(self, task: str | None = None, reference: Any = None) -> float:
        front = self.front(task)
        return 0.0 if front.empty else hypervolume(front.filter(regex=r"^f\d+$").to_numpy(), reference)

    def record(self, number: int) -> RunRecord:
        for record in self.runs:
            if record.number == number:
                return record
        raise KeyError(f"no run {number} in this session")

    def point(self, run: int, step: int) -> dict[str, Any]:
        """A chosen point: its run's settings, its row of metrics, and its x and y."""
        record = self.record(run)
        index = next(i for i, row in enumerate(record.rows) if row["step"] == step)
        x, y = record.points[index]
        return {"record": record, "row": record.rows[index], "x": x, "y": y}


def objective_matrix(frame: pd.DataFrame) -> np.ndarray:
    return frame.filter(regex=r"^f\d+$").to_numpy(dtype=float)


def preference_schedule(record: RunRecord) -> list[dict[str, Any]]:
    """The preferences a run followed: its first, and each one set while it ran (step it took effect)."""
    schedule = []
    S = sum(1 for k in record.rows[0] if k.startswith("r") and k[1:].isdigit()) if record.rows else 0
    for row in record.rows:
        r = [row[f"r{s + 1}"] for s in range(S)]
        if not schedule or row.get("preference_changed") or r != schedule[-1]["preference"]:
            schedule.append({"from_step": int(row["step"]), "preference": r})
    return schedule


def record_result(record: RunRecord, device: str = "cpu") -> Result:
    """A session run as a library Result (for the archive and for exports)."""
    history = record.history
    last = record.rows[-1]
    S = sum(1 for k in last if k.startswith("f") and k[1:].isdigit())
    x, y = record.points[-1]
    return Result(
        solver=record.solver, task=record.task, task_params=dict(record.task_params),
        preference=[float(last[f"r{s + 1}"]) for s in range(S)],
        options=dict(record.resolved_options or record.options), seed=record.seed,
        steps=int(record.steps if record.steps is not None else last["step"] + 1), status=record.status,
        message=record.message, x=x, y=y, objectives=np.array([last[f"f{s + 1}"] for s in range(S)]),
        history=history, device=device,
        metadata={"preference_schedule": preference_schedule(record), "session_run": record.number},
    )


def point_payload(record: RunRecord, row: dict[str, Any], x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """A chosen point as JSON-ready data: where it is, what produced it, how to reproduce it."""
    S = sum(1 for k in row if k.startswith("f") and k[1:].isdigit())
    step = int(row["step"])
    return {
        "objectives": [float(row[f"f{s + 1}"]) for s in range(S)],
        "weights": [float(row[f"w{s + 1}"]) for s in range(S)],
        "preference": [float(row[f"r{s + 1}"]) for s in range(S)],
        "metrics": {k: (None if pd.isna(row[k]) else float(row[k]))
                    for k in ("constraint_violation", "stationarity", "kkt_residual", "direction_norm", "elapsed")},
        "oracle_calls": {k[len("oracle_"):]: int(v) for k, v in row.items() if k.startswith("oracle_")},
        "step": step,
        "x": x.double().tolist(),
        "y": y.double().tolist(),
        "reproduce": {
            "task": record.task, "task_params": record.task_params, "solver": record.solver,
            "options": record.resolved_options or record.options, "seed": record.seed, "steps": step + 1,
            "preference_schedule": [p for p in preference_schedule(record) if p["from_step"] <= step],
        },
    }
