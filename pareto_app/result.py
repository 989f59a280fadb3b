"""Iterates and results: what a run records, and how it is saved and loaded."""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import warnings
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
    schedule: dict[str, float] | None = None  # what an adaptive solver set this step (penalty_u, step_size, ...)

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
        if self.schedule:
            rec.update(self.schedule)
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
            "format": RESULT_FORMAT,
            "version": RESULT_VERSION,
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
            "x_dtype": str(self.x.dtype),
            "y_dtype": str(self.y.dtype),
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
    def from_dict(cls, data: dict[str, Any], source: str = "the data", history: pd.DataFrame | None = None) -> Result:
        """The Result of `to_dict` (or of a saved file's contents); ValueError naming what is missing or wrong.

        `history`, when given, is the run's history as a table already (the archive keeps it typed) and
        replaces the records of `data`."""
        data = _checked_payload(data, source, history is None)
        if history is None:
            history = pd.DataFrame(data["history"])
        return cls(
            solver=data["solver"], task=data["task"], task_params=dict(data.get("task_params") or {}),
            preference=[float(v) for v in data["preference"]], options=dict(data.get("options") or {}),
            seed=int(data.get("seed", 0)), steps=int(data.get("steps", len(history))),
            status=str(data.get("status", "finished")), message=str(data.get("message", "")),
            x=_tensor(data, "x", source), y=_tensor(data, "y", source),
            objectives=np.asarray(data["objectives"], dtype=float), history=history,
            device=str(data.get("device", "cpu")), metadata=dict(data.get("metadata") or {}),
        )

    @classmethod
    def load(cls, path: str | Path) -> Result:
        """Load a result saved as `.json` or `.pt` (`save`, the app's downloads).

        Never runs code from the file (`.pt` loads with `weights_only=True`). A file that cannot be
        read, is not a pareto-app result, or was written by a newer version gives a ValueError
        saying so. The `.csv` export holds the history only: `read_history_csv` reads it back.
        """
        path = Path(path).expanduser()
        if path.suffix not in (".json", ".pt"):
            raise ValueError(f"cannot load a result from {str(path)!r} (suffix {path.suffix!r}); accepted: .json, .pt "
                             "(a .csv export is the history only: pareto_app.result.read_history_csv reads it)")
        try:
            raw = path.read_bytes()
        except OSError as err:
            raise ValueError(f"cannot read {str(path)!r}: {err.strerror or err}") from None
        source = repr(str(path))
        if path.suffix == ".json":
            try:
                data = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise ValueError(f"{source} is not a pareto-app result: not UTF-8 text; expected the JSON that "
                                 "Result.save or the app's download writes") from None
            except RecursionError:
                raise ValueError(f"{source} is not a pareto-app result: JSON nested too deeply to read") from None
            except json.JSONDecodeError as err:
                raise ValueError(f"{source} is not a pareto-app result: not JSON ({err.msg} at line {err.lineno}, "
                                 f"column {err.colno}); expected the JSON that Result.save writes") from None
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # torch warns about pickle protocols before refusing
                    # Tensors and plain data only: a pickle that would run code is refused, never executed.
                    data = torch.load(io.BytesIO(raw), weights_only=True)
            except pickle.UnpicklingError:
                raise ValueError(f"{source} is not a pareto-app result: not a torch file of tensors and plain data "
                                 "(torch's safe loader refused it; other pickled objects are never loaded, as they "
                                 "could run code); expected a .pt file that Result.save writes") from None
            except Exception as err:  # torch raises RuntimeError, EOFError, ... for a file that is not its format
                reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise ValueError(f"{source} is not a pareto-app result: not a torch file ({reason[:160]}); expected "
                                 "a .pt file that Result.save writes") from None
        return cls.from_dict(data, source)


# What a saved result says it is, and the version of its layout; a reader refuses newer versions.
RESULT_FORMAT = "pareto-app result"
RESULT_VERSION = 1
REQUIRED = {"solver": str, "task": str, "preference": list, "objectives": list, "x": (list, torch.Tensor),
            "y": (list, torch.Tensor)}


def _checked_payload(data: Any, source: str, with_history: bool = True) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{source} is not a pareto-app result: it holds a {type(data).__name__}, "
                         f"expected a mapping with {', '.join(REQUIRED)}")
    fmt, version = data.get("format", RESULT_FORMAT), data.get("version", 0)
    if fmt != RESULT_FORMAT:
        raise ValueError(f"{source} is not a pareto-app result: its format is {fmt!r:.80}, expected {RESULT_FORMAT!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"{source}: format version {version!r:.40} is not a version number; expected 0..{RESULT_VERSION}")
    if version > RESULT_VERSION:
        raise ValueError(f"{source} was written by a newer pareto-app (result format version {version}); this one "
                         f"reads versions up to {RESULT_VERSION}: upgrade pareto-app to load it")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        found = ", ".join(map(str, list(data)[:8])) or "nothing"
        raise ValueError(f"{source} is not a pareto-app result: it lacks {', '.join(missing)} (found: {found})")
    for key, kind in REQUIRED.items():
        if not isinstance(data[key], kind):
            raise ValueError(f"{source}: {key} is a {type(data[key]).__name__}; expected "
                             f"{'text' if kind is str else 'a list of numbers'}")
    for key in ("preference", "objectives"):
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data[key]):
            raise ValueError(f"{source}: {key} must be a list of numbers; got {data[key]!r:.80}")
    for key in ("preference", "objectives"):
        try:
            finite = all(math.isfinite(v) for v in data[key])
        except OverflowError:  # an integer beyond the float range
            finite = False
        if not data[key] or not finite:
            raise ValueError(f"{source}: {key} must be a non-empty list of finite numbers; got {data[key]!r:.80}")
    if len(data["preference"]) != len(data["objectives"]):
        raise ValueError(f"{source}: preference has {len(data['preference'])} entries for "
                         f"{len(data['objectives'])} objectives")
    if with_history:
        _check_history(data.get("history"), len(data["objectives"]), source)
    status = data.get("status", "finished")
    if status not in STATUSES:
        raise ValueError(f"{source}: status {status!r:.40} is not one of {', '.join(STATUSES)}")
    for key in ("message", "device"):
        if key in data and not isinstance(data[key], str):
            raise ValueError(f"{source}: {key} must be text; got {type(data[key]).__name__}")
    for key in ("task_params", "options", "metadata"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise ValueError(f"{source}: {key} must be a mapping; got {type(data[key]).__name__}")
    for key in ("seed", "steps"):
        if key in data and (isinstance(data[key], bool) or not isinstance(data[key], int)):
            raise ValueError(f"{source}: {key} must be a whole number; got {data[key]!r:.40}")
    return data


STATUSES = ("finished", "stopped", "diverged", "running", "paused", "interrupted")


def _check_history(history: Any, S: int, source: str) -> None:
    if not isinstance(history, list) or not history or not all(isinstance(r, dict) for r in history):
        raise ValueError(f"{source}: history must be a non-empty list of records (one mapping per step); "
                         f"got {type(history).__name__}{' (empty)' if history == [] else ''}")
    needed = ["step", *(column("objectives", s) for s in range(S))]
    for i, record in enumerate(history):
        missing = [k for k in needed if k not in record]
        if missing:
            raise ValueError(f"{source}: history record {i} lacks {', '.join(missing)}")
        for key, value in record.items():
            if not isinstance(key, str) or not (value is None or isinstance(value, (int, float, str))):
                raise ValueError(f"{source}: history record {i} has {key!r:.40}: {value!r:.40}; expected numbers, "
                                 "text or null")


DTYPES = {str(t): t for t in (torch.float16, torch.bfloat16, torch.float32, torch.float64)}


def _tensor(data: dict[str, Any], key: str, source: str) -> torch.Tensor:
    value, dtype_name = data[key], data.get(f"{key}_dtype", "torch.float64")
    if not isinstance(dtype_name, str) or dtype_name not in DTYPES:
        raise ValueError(f"{source}: {key}_dtype {dtype_name!r:.40} is not one of {', '.join(DTYPES)}")
    if isinstance(value, torch.Tensor):
        tensor = value
    else:
        try:
            # float64 holds every float16/32 value exactly; the cast back to the saved dtype is exact.
            tensor = torch.tensor(value, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"{source}: {key} must be a flat list of numbers; got {value!r:.80}") from None
    if tensor.dim() != 1 or not tensor.is_floating_point():
        raise ValueError(f"{source}: {key} must be a flat list of numbers; got shape {tuple(tensor.shape)}, "
                         f"{tensor.dtype}")
    return tensor.to(DTYPES[dtype_name] if not isinstance(value, torch.Tensor) else tensor.dtype)


def read_history_csv(path: str | Path) -> pd.DataFrame:
    """The history of a `.csv` export, bit-exact: floats parsed by round trip (pandas 3's default;
    pandas 2's faster default parser could be off by an ulp)."""
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    try:
        return pd.read_csv(path, **exact)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"cannot read the history from {str(path)!r}: {err}") from None


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
