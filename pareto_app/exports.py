"""Exports of a Result as bytes for downloads: JSON (everything), CSV (the history), a torch file,
and the JSON-ready record of one iterate a person picked on the front."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
import torch

from .result import Result, _jsonable, history_records


def _strict(value: Any) -> Any:
    # Strict JSON has no NaN or Infinity; other tools' parsers reject them, so they become null.
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return value


def export_json(result: Result) -> bytes:
    """The whole run as UTF-8 JSON (Result.to_dict, history at full precision; NaN as null).

    `Result.from_dict(json.loads(data))` rebuilds it, and the task, task_params, solver,
    options, preference and seed in it reproduce the run.
    """
    data = result.to_dict()
    data["task_params"] = _jsonable(result.task_params)
    return json.dumps(_strict(data), indent=1, allow_nan=False, default=str).encode()


def export_csv(result: Result) -> bytes:
    """The run's history, one row per step, as UTF-8 CSV with a header."""
    return result.history.to_csv(index=False).encode()


def export_torch(result: Result) -> bytes:
    """A torch file: {"x", "y"} as tensors plus everything else of Result.to_dict (tensors and plain data:
    `torch.load(..., weights_only=True)` reads it)."""
    data = result.to_dict()
    data.update(x=result.x.detach().cpu().clone(), y=result.y.detach().cpu().clone())
    buffer = io.BytesIO()
    torch.save(data, buffer)
    return buffer.getvalue()


def export_point(result: Result, step: int) -> dict[str, Any]:
    """The JSON-ready record of one iterate of `result.history` (the one whose `step` is `step`).

    It holds that iterate's objectives, weights, preference, metrics and oracle counts, and
    the run's task, task_params, solver, options and seed (what reproduces it). `x` and `y`
    are given for the run's last recorded iterate only (the history keeps no other points)
    and are None otherwise. KeyError if the history has no such step.
    """
    history = result.history
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise KeyError(f"step must be a whole number; got {step!r}")
    matches = np.flatnonzero(history["step"].to_numpy() == int(step)) if "step" in history else np.array([])
    if len(matches) == 0:
        span = f"{int(history['step'].min())}..{int(history['step'].max())}" if len(history) else "none"
        raise KeyError(f"step {step!r} is not in this run's history (recorded steps: {span})")
    position = int(matches[-1])
    row = history_records(history.iloc[[position]])[0]
    S = len(np.asarray(result.objectives).ravel())

    def vector(prefix: str) -> list[float | None]:
        return [row.get(f"{prefix}{s + 1}") for s in range(S) if f"{prefix}{s + 1}" in row]

    is_last = position == len(history) - 1
    record = {
        "task": result.task, "task_params": _jsonable(result.task_params), "solver": result.solver,
        "options": _jsonable(result.options), "seed": int(result.seed), "steps": int(result.steps),
        "status": result.status, "device": result.device, "step": int(row["step"]),
        "objectives": vector("f"), "weights": vector("w"), "preference": vector("r"),
        "metrics": {name: row.get(name) for name in ("constraint_violation", "stationarity", "kkt_residual",
                                                     "direction_norm") if name in row},
        "oracle_calls": {k.removeprefix("oracle_"): v for k, v in row.items()
                         if k.startswith("oracle_") and k != "oracle_total"},
        "oracle_total": row.get("oracle_total"), "elapsed": row.get("elapsed"),
        "preference_changed": row.get("preference_changed"),
        "x": result.x.detach().double().cpu().tolist() if is_last else None,
        "y": result.y.detach().double().cpu().tolist() if is_last else None,
    }
    return _strict(record)
