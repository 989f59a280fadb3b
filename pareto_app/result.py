"""Iterates and results: what a run records, and how it is saved and loaded."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from pareto_app.history import VECTORS, column, named


@dataclass
class Iterate:
    """One recorded step of a solver: the point, its objectives and its metrics.

    `stationarity` and `kkt_residual` are NaN on steps between metric evaluations
    (every `metrics_every` steps, the first and the last).
    """

    step: int
    x: torch.Tensor
    y: torch.Tensor
    objectives: np.ndarray
    weights: np.ndarray
    preference: np.ndarray
    constraint_violation: float
    stationarity: float
    kkt_residual: float
    direction_norm: float
    oracle_calls: dict[str, int]
    elapsed: float
    preference_changed: bool = False

    def row(self) -> dict[str, Any]:
        """A flat record for the history table."""
        rec: dict[str, Any] = {"step": self.step}
        for name in VECTORS:
            rec.update({column(name, s): float(v) for s, v in enumerate(getattr(self, name))})
        rec.update(
            constraint_violation=self.constraint_violation,
            stationarity=self.stationarity,
            kkt_residual=self.kkt_residual,
            direction_norm=self.direction_norm,
            elapsed=self.elapsed,
            preference_changed=self.preference_changed,
            oracle_total=sum(self.oracle_calls.values()),
            **{f"oracle_{k}": v for k, v in self.oracle_calls.items()},
        )
        return rec


@dataclass
class Result:
    """The outcome of a run: its last good point, its history, and how to reproduce it."""

    solver: str
    task: str
    task_params: dict[str, Any]
    preference: list[float]
    options: dict[str, Any]
    seed: int
    steps: int
    status: str  # "finished" | "stopped" | "diverged"
    message: str
    x: torch.Tensor
    y: torch.Tensor
    objectives: np.ndarray
    history: pd.DataFrame
    device: str = "cpu"
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_run(cls, *, solver: str, task: str, task_params: dict[str, Any], options: dict[str, Any], seed: int,
               steps: int, device: str, history: pd.DataFrame, x: torch.Tensor, y: torch.Tensor, status: str,
               message: str, metadata: dict[str, Any] | None = None) -> Result:
        """The one builder of a Result (the library's runs, the workers, a live run read from the archive).

        The history's last row is the run's last good iterate (a diverging step is never recorded),
        so its objectives and preference are the Result's; x and y are that iterate's.
        """
        if len(history) == 0:
            raise ValueError("a Result needs at least one recorded iterate")
        last = named(history.iloc[-1].to_dict())
        return cls(solver=solver, task=task, task_params=dict(task_params), preference=last["preference"],
                   options=options, seed=int(seed), steps=int(steps), status=status, message=message,
                   x=x.detach().cpu(), y=y.detach().cpu(), objectives=np.array(last["objectives"]), history=history,
                   device=str(device), metadata=dict(metadata or {}))

    @property
    def final(self) -> dict[str, Any]:
        return self.history.iloc[-1].to_dict() if len(self.history) else {}

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to reproduce the run, as JSON-ready data."""
        return {
            "solver": self.solver,
            "task": self.task,
            "task_params": self.task_params,
            "preference": list(map(float, self.preference)),
            "options": _jsonable(self.options),
            "seed": self.seed,
            "steps": self.steps,
            "status": self.status,
            "message": self.message,
            "device": self.device,
            "objectives": [float(v) for v in self.objectives],
            "x": self.x.detach().double().cpu().tolist(),
            "y": self.y.detach().double().cpu().tolist(),
            "metadata": _jsonable(self.metadata),
            "history": history_records(self.history),
        }

    def save(self, path: str | Path) -> Path:
        """Save by suffix: `.json` (everything), `.csv` (the history), `.pt` (x, y and everything else).

        The same bytes as the app's downloads (`pareto_app.exports`), floats at full precision.
        """
        from .exports import export_csv, export_json, export_torch

        path = writable_result_path(path)
        writers = {".json": export_json, ".csv": export_csv, ".pt": export_torch}
        try:
            path.write_bytes(writers[path.suffix](self))
        except OSError as err:
            raise ValueError(f"cannot write the result to {str(path)!r}: {err.strerror or err}") from err
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        history = pd.DataFrame(data.get("history", []))
        x, y = data["x"], data["y"]
        return cls(
            solver=data["solver"], task=data["task"], task_params=data.get("task_params", {}),
            preference=list(data["preference"]), options=data.get("options", {}), seed=data.get("seed", 0),
            steps=data.get("steps", len(history)), status=data.get("status", "finished"),
            message=data.get("message", ""),
            x=x if isinstance(x, torch.Tensor) else torch.tensor(x, dtype=torch.float64),
            y=y if isinstance(y, torch.Tensor) else torch.tensor(y, dtype=torch.float64),
            objectives=np.asarray(data["objectives"], dtype=float), history=history,
            device=data.get("device", "cpu"), metadata=data.get("metadata", {}),
        )

    @classmethod
    def load(cls, path: str | Path) -> Result:
        """Load a result saved as `.json` or `.pt`."""
        path = Path(path)
        if path.suffix == ".json":
            return cls.from_dict(json.loads(path.read_text()))
        if path.suffix == ".pt":
            # Tensors and plain data only: loading never runs code from the file.
            return cls.from_dict(torch.load(path, weights_only=True))
        raise ValueError(f"cannot load a result from {path.suffix!r}; accepted: .json, .pt")


SAVED_SUFFIXES = (".json", ".csv", ".pt")


def writable_result_path(path: str | Path) -> Path:
    """`path` as a Path a Result can be saved to; ValueError naming what is wrong (a suffix other than
    .json/.csv/.pt, a folder that does not exist or cannot be written, a folder given as the file) —
    checked before a run, so that no run's work is lost to a bad output path."""
    path = Path(path).expanduser()
    if path.suffix not in SAVED_SUFFIXES:
        raise ValueError(f"cannot save a result as {str(path)!r} (suffix {path.suffix!r}); accepted: "
                         + ", ".join(SAVED_SUFFIXES))
    folder = path.parent
    if path.is_dir():
        raise ValueError(f"cannot save a result as {str(path)!r}: it is a folder; give a file name such as "
                         f"{str(path / ('result' + path.suffix))!r}")
    if not folder.is_dir():
        raise ValueError(f"cannot save a result as {str(path)!r}: the folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"cannot save a result as {str(path)!r}: no permission to write there")
    return path


def history_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The history as one dict per row at full precision (to_json would round to 10 digits); NaN is None."""
    cleaned = frame.astype(object).where(frame.notna(), None)
    return _jsonable(cleaned.to_dict(orient="records"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if hasattr(value, "__dataclass_fields__"):
        return _jsonable(asdict(value))
    return value
