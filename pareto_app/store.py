"""The run archive: Results kept in an embedded SQLite database, and exports as bytes.

    store = RunStore()                      # $PARETO_APP_DB, else ~/.local/share/pareto-app/runs.db
    run_id = store.save(result, label="baseline")
    store.list(task="toy-quadratic")        # a DataFrame, newest first, without the payloads
    result = store.load(run_id)             # the Result, history and tensors exactly as saved
    store.delete(run_id)

The app saves from a worker thread and lists from the page thread, so every call opens its
own connection (sqlite3 connections must not be shared across threads unguarded) and the
database runs in WAL mode, where readers never wait on a writer.

`export_json`, `export_csv` and `export_torch` return bytes for download buttons;
`export_point` is the JSON-ready record of one iterate a person picked on the front.
"""

from __future__ import annotations

import io
import json
import math
import os
import sqlite3
import zlib
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .result import Result, _jsonable

# Bump when the table layout or the payload format changes, and add a step to _MIGRATIONS.
SCHEMA_VERSION = 1
# Layout version of the compressed payload; stored inside it, so a payload explains itself.
PAYLOAD_FORMAT = 1
# Seconds a writer waits for another writer (thread or process) before SQLite gives up.
BUSY_TIMEOUT_S = 30.0

# Statements that take a database from schema version v to v + 1, run in one transaction.
# (Not executescript: it would COMMIT the transaction that holds the write lock.)
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    0: ("""
CREATE TABLE runs (
    -- AUTOINCREMENT: ids are never reused after a delete, so a stale id held by a page
    -- can never silently name a different run.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,                  -- ISO 8601, UTC
    label TEXT NOT NULL DEFAULT '',
    task TEXT NOT NULL,
    task_params TEXT NOT NULL,              -- JSON
    solver TEXT NOT NULL,
    options TEXT NOT NULL,                  -- JSON
    preference TEXT NOT NULL,               -- JSON list, the last preference of the run
    seed INTEGER NOT NULL,
    steps INTEGER NOT NULL,                 -- steps asked for
    iterations INTEGER NOT NULL,            -- history rows recorded (fewer when diverged or stopped)
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    device TEXT NOT NULL DEFAULT 'cpu',
    num_objectives INTEGER NOT NULL,
    objectives TEXT NOT NULL,               -- JSON list
    stationarity REAL,
    kkt_residual REAL,
    constraint_violation REAL,
    payload BLOB NOT NULL,                  -- zlib-compressed JSON: the whole Result, history lossless
    x BLOB NOT NULL,                        -- float64 little-endian; shape and dtype in the payload
    y BLOB NOT NULL
)""",
        "CREATE INDEX runs_task ON runs (task, id)"),
}

_METRICS = ("stationarity", "kkt_residual", "constraint_violation")
_LIST_COLUMNS = ("id", "created", "label", "task", "solver", "status", "message", "steps", "iterations", "seed",
                 "device", "preference", "num_objectives", "objectives", *_METRICS)


def default_db_path() -> Path:
    """Where runs are kept: `$PARETO_APP_DB` if set, else a per-user data folder.

    The default follows the XDG base-directory convention (`$XDG_DATA_HOME`, else
    `~/.local/share`) and `%LOCALAPPDATA%` on Windows: `.../pareto-app/runs.db`. Nothing is
    created here; RunStore makes the parent folders when it first opens the database.
    """
    env = os.environ.get("PARETO_APP_DB", "").strip()
    if env:
        return Path(env).expanduser()
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    else:
        xdg = os.environ.get("XDG_DATA_HOME", "").strip()
        # The XDG spec says to ignore a relative XDG_DATA_HOME.
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "pareto-app" / "runs.db"


class RunStore:
    """An archive of Results in one SQLite file, safe to use from several threads at once."""

    def __init__(self, path: str | Path | None = None) -> None:
        """Open (creating or migrating as needed) the database at `path`, default `default_db_path()`.

        Raises ValueError naming the path when it cannot hold a database: a directory, a
        folder that cannot be created, an unwritable or non-SQLite file, or a database
        written by a newer pareto-app.
        """
        if path is not None and str(path) == ":memory:":
            # Every call opens its own connection, and each in-memory connection is a fresh, empty database.
            raise ValueError("RunStore needs a file path, not ':memory:' (use a temporary file instead)")
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        if self.path.is_dir():
            raise ValueError(f"run database path {str(self.path)!r} is a directory; give a file path such as "
                             f"{str(self.path / 'runs.db')!r}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ValueError(f"cannot create the folder for the run database {str(self.path)!r}: {err}") from err
        try:
            self._initialize()
        except sqlite3.Error as err:
            raise ValueError(f"cannot use {str(self.path)!r} as a run database: {err}") from err

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    # -- connections ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE below), not the module's implicit ones.
        return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
        # writes can fail at once with SQLITE_BUSY instead of waiting for the other writer.
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _initialize(self) -> None:
        with closing(self._connect()) as conn:
            # WAL is a property of the file, set once; it cannot change inside a transaction.
            conn.execute("PRAGMA journal_mode = WAL")
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ValueError(f"run database {str(self.path)!r} has schema version {version}, written by a newer "
                                 f"pareto-app; this version reads up to {SCHEMA_VERSION}")
            while version < SCHEMA_VERSION:
                for statement in _MIGRATIONS[version]:
                    conn.execute(statement)
                version += 1
                conn.execute(f"PRAGMA user_version = {version:d}")

    # -- the archive --------------------------------------------------------------------------

    def save(self, result: Result, label: str = "") -> int:
        """Archive `result` under an optional `label`; returns the new run's id."""
        if not isinstance(result, Result):
            raise ValueError(f"RunStore.save expects a pareto_app.Result; got {type(result).__name__}")
        payload, x_blob, y_blob = _encode(result)
        history = result.history
        metrics = {name: _final_metric(history, name) for name in _METRICS}
        objectives = [float(v) for v in np.asarray(result.objectives, dtype=float).ravel()]
        row = {
            "label": str(label), "task": str(result.task), "task_params": _dumps(_jsonable(result.task_params)),
            "solver": str(result.solver), "options": _dumps(_jsonable(result.options)),
            "preference": _dumps([float(v) for v in result.preference]), "seed": int(result.seed),
            "steps": int(result.steps), "iterations": len(history), "status": str(result.status),
            "message": str(result.message), "device": str(result.device), "num_objectives": len(objectives),
            "objectives": _dumps(objectives), **metrics, "payload": payload, "x": x_blob, "y": y_blob,
        }
        with self._write() as conn:
            # Stamped inside the write lock, so creation times increase with the ids.
            row["created"] = datetime.now(timezone.utc).isoformat(timespec="microseconds")
            names = ", ".join(row)
            marks = ", ".join(f":{name}" for name in row)
            cursor = conn.execute(f"INSERT INTO runs ({names}) VALUES ({marks})", row)
            return int(cursor.lastrowid)

    def list(self, task: str | None = None) -> pd.DataFrame:
        """One row per run, newest first, without the payloads: for tables and pickers.

        Columns: id, created (UTC timestamps), label, task, solver, status, message, steps
        (asked for), iterations (recorded), seed, device, preference (a list), f1..fS (the
        final objectives; NaN where a run has fewer objectives than the widest one listed)
        and the final stationarity, kkt_residual and constraint_violation (the latest value
        measured, since a diverged or stopped run may end between metric evaluations).
        """
        query = f"SELECT {', '.join(_LIST_COLUMNS)} FROM runs"
        params: tuple[Any, ...] = ()
        if task is not None:
            query += " WHERE task = ?"
            params = (task,)
        with self._read() as conn:
            rows = conn.execute(query + " ORDER BY id DESC", params).fetchall()
        records = [dict(zip(_LIST_COLUMNS, row)) for row in rows]
        width = max((rec["num_objectives"] for rec in records), default=0)
        out = []
        for rec in records:
            objectives = json.loads(rec.pop("objectives"))
            rec.pop("num_objectives")
            rec["preference"] = json.loads(rec["preference"])
            rec.update({f"f{s + 1}": objectives[s] if s < len(objectives) else math.nan for s in range(width)})
            out.append(rec)
        head = [c for c in _LIST_COLUMNS if c not in ("num_objectives", "objectives", *_METRICS)]
        columns = [*head, *(f"f{s + 1}" for s in range(width)), *_METRICS]
        frame = pd.DataFrame(out, columns=columns)
        frame["created"] = pd.to_datetime(frame["created"], utc=True, format="ISO8601")
        # Explicit dtypes so an empty listing has the same column types as a full one.
        frame = frame.astype({name: "int64" for name in ("id", "steps", "iterations", "seed")})
        for name in _METRICS:
            # SQLite keeps NaN as NULL; give the listing float columns with NaN, not object columns of None.
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
        return frame

    def load(self, run_id: int) -> Result:
        """The archived Result `run_id`, exactly as saved. KeyError if there is no such run."""
        with self._read() as conn:
            row = conn.execute("SELECT payload, x, y FROM runs WHERE id = ?", (_check_id(run_id),)).fetchone()
        if row is None:
            raise KeyError(self._missing(run_id))
        return _decode(*row)

    def delete(self, run_id: int) -> None:
        """Remove run `run_id` from the archive. KeyError if there is no such run."""
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM runs WHERE id = ?", (_check_id(run_id),))
            if cursor.rowcount == 0:
                raise KeyError(self._missing(run_id))

    def count(self) -> int:
        """How many runs are archived."""
        with self._read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def _missing(self, run_id: int) -> str:
        return f"no run with id {run_id!r} in {str(self.path)!r} (it may have been deleted; see RunStore.list())"


def _check_id(run_id: Any) -> int:
    if isinstance(run_id, bool) or not isinstance(run_id, (int, np.integer)):
        raise KeyError(f"run id must be a whole number; got {run_id!r}")
    return int(run_id)


# -- payload encoding -------------------------------------------------------------------------

def _dumps(value: Any) -> str:
    # Python's json writes floats with repr (exact round trip) and NaN/Infinity as literals, which
    # its reader accepts; anything not JSON at all (a callable option, a timestamp) is kept as its str.
    return json.dumps(value, default=str)


def _encode_frame(frame: pd.DataFrame) -> dict[str, Any]:
    # DataFrame.to_json rounds floats to 10 digits; per-column lists with dtypes round-trip exactly.
    columns = []
    for name in frame.columns:
        series = frame[name]
        values = series.astype(object).where(series.notna(), None).tolist()
        columns.append({"name": name, "dtype": str(series.dtype), "values": _jsonable(values)})
    index = frame.index
    default_index = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
    return {"columns": columns, "index": None if default_index else _jsonable(index.tolist())}


def _decode_frame(data: dict[str, Any]) -> pd.DataFrame:
    series = {}
    for col in data["columns"]:
        try:
            series[col["name"]] = pd.Series(col["values"], dtype=col["dtype"])
        except (TypeError, ValueError):
            # A dtype this pandas cannot rebuild from plain values (an extension type): keep the values.
            series[col["name"]] = pd.Series(col["values"])
    frame = pd.DataFrame(series, columns=[col["name"] for col in data["columns"]])
    if data.get("index") is not None:
        frame.index = pd.Index(data["index"])
    return frame


def _tensor_blob(t: torch.Tensor) -> tuple[bytes, dict[str, Any]]:
    t = t.detach().cpu()
    # float64 holds every float16/bfloat16/float32 value exactly, so the original dtype comes back unchanged.
    array = t.to(torch.float64).contiguous().numpy().astype("<f8", copy=False)
    return array.tobytes(), {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}


def _blob_tensor(blob: bytes, info: dict[str, Any]) -> torch.Tensor:
    array = np.frombuffer(blob, dtype="<f8").reshape(info["shape"]).astype(np.float64)  # astype: a writable copy
    return torch.from_numpy(array).to(getattr(torch, info["dtype"]))


def _encode(result: Result) -> tuple[bytes, bytes, bytes]:
    data = result.to_dict()
    x_blob, x_info = _tensor_blob(result.x)
    y_blob, y_info = _tensor_blob(result.y)
    del data["x"], data["y"]  # kept as blobs beside the payload
    data.update(
        format=PAYLOAD_FORMAT, task_params=_jsonable(result.task_params), x_info=x_info, y_info=y_info,
        objectives=[float(v) for v in np.asarray(result.objectives, dtype=float).ravel()],
        history=_encode_frame(result.history),
    )
    return zlib.compress(_dumps(data).encode()), x_blob, y_blob


def _decode(payload: bytes, x_blob: bytes, y_blob: bytes) -> Result:
    data = json.loads(zlib.decompress(payload))
    fmt = data.pop("format", None)
    if fmt != PAYLOAD_FORMAT:
        raise ValueError(f"run payload format {fmt!r} is not one this version reads ({PAYLOAD_FORMAT})")
    history = _decode_frame(data.pop("history"))
    data["x"] = _blob_tensor(x_blob, data.pop("x_info"))
    data["y"] = _blob_tensor(y_blob, data.pop("y_info"))
    result = Result.from_dict(data)
    result.history = history  # from_dict would rebuild it from records; this one is exact, dtypes included
    return result


def _final_metric(history: pd.DataFrame, name: str) -> float | None:
    if name not in history or len(history) == 0:
        return None
    column = pd.to_numeric(history[name], errors="coerce")
    measured = column[np.isfinite(column.to_numpy(dtype=float))]
    return float(measured.iloc[-1]) if len(measured) else None


# -- exports ----------------------------------------------------------------------------------

def _strict(value: Any) -> Any:
    # Strict JSON has no NaN or Infinity; other tools' parsers reject them, so they become null.
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    # Full-precision records (to_json would round to 10 digits); NaN becomes None.
    cleaned = frame.astype(object).where(frame.notna(), None)
    return _jsonable(cleaned.to_dict(orient="records"))


def export_json(result: Result) -> bytes:
    """The whole run as UTF-8 JSON (Result.to_dict, history at full precision; NaN as null).

    `Result.from_dict(json.loads(data))` rebuilds it, and the task, task_params, solver,
    options, preference and seed in it reproduce the run.
    """
    data = result.to_dict()
    data["task_params"] = _jsonable(result.task_params)
    data["history"] = _records(result.history)
    return json.dumps(_strict(data), indent=1, allow_nan=False, default=str).encode()


def export_csv(result: Result) -> bytes:
    """The run's history, one row per step, as UTF-8 CSV with a header."""
    return result.history.to_csv(index=False).encode()


def export_torch(result: Result) -> bytes:
    """A torch file: {"x", "y"} as tensors plus everything else of Result.to_dict (load with weights_only=False)."""
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
    row = _records(history.iloc[[position]])[0]
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
