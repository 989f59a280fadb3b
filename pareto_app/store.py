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
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .exports import export_csv, export_json, export_point, export_torch  # noqa: F401 - their old home
from .history import column, columns, named
from .result import Result, _jsonable

# Bump when the table layout or the payload format changes, and add a step to _MIGRATIONS.
SCHEMA_VERSION = 4
# Layout version of the compressed payload; stored inside it, so a payload explains itself.
PAYLOAD_FORMAT = 1
# Seconds a writer waits for another writer (thread or process) before SQLite gives up.
BUSY_TIMEOUT_S = 30.0

# A row (JSON as _dumps writes it) of an iterate at which a new preference took effect.
_PREFERENCE_CHANGED = "instr(row, '\"preference_changed\": true') > 0"
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
    # Version 2: the archive is the bus between a run's worker process and the pages. A live run
    # has an empty payload until it ends; its iterates, checkpoint and control row stand beside it.
    1: (
        "ALTER TABLE runs ADD COLUMN spec TEXT",          # JSON RunSpec: what the worker runs (NULL: saved whole)
        "ALTER TABLE runs ADD COLUMN heartbeat REAL",     # unix time of the worker's last sign of life
        "ALTER TABLE runs ADD COLUMN pid INTEGER",        # the worker's process id while it runs
        "ALTER TABLE runs ADD COLUMN parent INTEGER",     # the sweep or comparison a run belongs to
        "ALTER TABLE runs ADD COLUMN progress REAL NOT NULL DEFAULT 0",  # in [0, 1], from its Termination
        """
CREATE TABLE iterates (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- readers ask for the rows after the last seq they have
    run_id INTEGER NOT NULL,
    step INTEGER NOT NULL,
    row TEXT NOT NULL,                      -- JSON of Iterate.row(), floats exact
    x BLOB,                                 -- float64 little-endian, where the point is small enough to keep
    y BLOB
)""",
        "CREATE INDEX iterates_run ON iterates (run_id, seq)",
        """
CREATE TABLE checkpoints (
    run_id INTEGER PRIMARY KEY,             -- the latest checkpoint of each run only
    step INTEGER NOT NULL,
    saved REAL NOT NULL,
    state BLOB NOT NULL                     -- torch.save of tensors and numbers (loads with weights_only=True)
)""",
        """
CREATE TABLE control (
    run_id INTEGER PRIMARY KEY,
    command TEXT NOT NULL DEFAULT 'run',    -- run | pause | stop
    preference TEXT,                        -- JSON list: the preference a page asked for
    version INTEGER NOT NULL DEFAULT 0,     -- bumped on every preference change
    watched REAL                            -- unix time a page last looked at the run
)"""),
    # Version 3: the rows where a run's preference changed, found without reading its every row (a page
    # choosing a point of a long live run; see preference_rows). The expression is preference_rows' own.
    2: (f"CREATE INDEX iterates_preference_changes ON iterates (run_id, seq) WHERE {_PREFERENCE_CHANGED}",),
    # Version 4: the live runs found on their status, not by reading every run's row (pages ask how many workers
    # step at each feed answer, workers while they may still step aside, `reap` at each page; 4.4 ms a scan with
    # 5,000 runs archived, 0.5 ms with 1,000, measured: a share of a core per tab that grew with the archive).
    3: ("CREATE INDEX runs_status ON runs (status, pid)",),
}

# A run in one of these states has (or had, if it crashed) a worker writing it.
LIVE_STATES = ("queued", "running", "paused")
# A live run that no worker process has taken for this long was interrupted (a worker imports torch
# first, which takes seconds on a loaded machine).
STALE_AFTER_S = 120.0

_METRICS = ("stationarity", "kkt_residual", "constraint_violation")
_LIST_COLUMNS = ("id", "created", "label", "task", "solver", "status", "message", "steps", "iterations", "seed",
                 "device", "progress", "parent", "preference", "num_objectives", "objectives", *_METRICS)


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
            # Each thread has its own connection, and each in-memory connection is a fresh, empty database.
            raise ValueError("RunStore needs a file path, not ':memory:' (use a temporary file instead)")
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        self._local = threading.local()
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
        """This thread's connection, opened once: a worker reads its control row many times a second
        and a page several times per redraw, and opening a connection costs about a millisecond."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE below), not the module's
            # implicit ones, so every read outside them sees the latest commit.
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            # With WAL, NORMAL loses no committed transaction when a process dies (only on a power cut,
            # the last ones); FULL would fsync at every flush of a running worker.
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        yield self._connect()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
        # writes can fail at once with SQLITE_BUSY instead of waiting for the other writer.
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _initialize(self) -> None:
        with self._read() as conn:
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
            rec.update({column("objectives", s): objectives[s] if s < len(objectives) else math.nan
                        for s in range(width)})
            out.append(rec)
        head = [c for c in _LIST_COLUMNS if c not in ("num_objectives", "objectives", *_METRICS)]
        frame = pd.DataFrame(out, columns=[*head, *columns("objectives", width), *_METRICS])
        frame["created"] = pd.to_datetime(frame["created"], utc=True, format="ISO8601")
        # Explicit dtypes so an empty listing has the same column types as a full one.
        frame = frame.astype({name: "int64" for name in ("id", "steps", "iterations", "seed")})
        frame["progress"] = frame["progress"].astype(float)
        frame["parent"] = pd.to_numeric(frame["parent"], errors="coerce").astype("Int64")
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
        if len(row[0]) == 0:
            return self._load_live(int(run_id))
        return _decode(*row)

    def _load_live(self, run_id: int) -> Result:
        """A run still going (or interrupted): its iterates so far and its latest kept point."""
        spec, state = self.spec(run_id), self.state(run_id)
        rows = [r for _, r in self.rows_since(run_id)]
        if not rows:
            raise KeyError(f"run {run_id} has no iterate yet (status {state['status']})")
        last = rows[-1]
        with self._read() as conn:
            kept = conn.execute("SELECT step, x, y FROM iterates WHERE run_id = ? AND x IS NOT NULL ORDER BY seq DESC "
                                "LIMIT 1", (run_id,)).fetchone()
        checkpoint = self.last_checkpoint(run_id)
        if checkpoint is not None and (kept is None or checkpoint[0] > kept[0]):
            saved = torch.load(io.BytesIO(checkpoint[1]), weights_only=True)
            x, y = saved["x"], saved["y"]
        elif kept is not None:
            x, y = (torch.from_numpy(np.frombuffer(b, dtype="<f8").copy()) for b in kept[1:])
        else:
            raise KeyError(f"run {run_id} has no kept point yet (status {state['status']})")
        return Result.of_run(
            solver=spec["solver"], task=spec["task"], task_params=spec["task_params"], options=spec.get("options", {}),
            seed=int(spec.get("seed", 0)), steps=int(spec.get("steps") or last["step"] + 1),
            device=str(spec.get("device", "cpu")), history=pd.DataFrame(rows), x=x, y=y, status=state["status"],
            message=state["message"], metadata={"run_id": run_id})

    def delete(self, run_id: int) -> None:
        """Remove run `run_id` from the archive, with the runs of a sweep or comparison.

        KeyError if there is no such run; ValueError if it is still live (stop it first).
        """
        with self._write() as conn:
            row = conn.execute("SELECT status FROM runs WHERE id = ?", (_check_id(run_id),)).fetchone()
            if row is None:
                raise KeyError(self._missing(run_id))
            if row[0] in LIVE_STATES:
                raise ValueError(f"run {run_id} is {row[0]}: stop it before deleting it")
            ids = [int(run_id), *(int(r[0]) for r in conn.execute("SELECT id FROM runs WHERE parent = ?", (int(run_id),)))]
            for i in ids:
                conn.execute("DELETE FROM runs WHERE id = ?", (i,))
                for table in ("iterates", "checkpoints", "control"):
                    conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (i,))

    # -- live runs: the worker writes, the pages read and steer ---------------------------------

    def create(self, spec: dict[str, Any], *, num_objectives: int, label: str = "", parent: int | None = None) -> int:
        """Register a run a worker is about to execute (status "queued"); returns its id.

        `spec` is the JSON form of a RunSpec (task, task_params, solver, options, preference,
        seed, termination, device, ...). The run's payload stays empty until `finish`.
        """
        row = {
            "label": str(label), "task": str(spec["task"]), "task_params": _dumps(_jsonable(spec["task_params"])),
            "solver": str(spec.get("solver", "")), "options": _dumps(_jsonable(spec.get("options", {}))),
            "preference": _dumps([float(v) for v in spec.get("preference") or []]), "seed": int(spec.get("seed", 0)),
            "steps": int(spec.get("steps") or 0), "iterations": 0, "status": "queued", "message": "",
            "device": str(spec.get("device", "cpu")), "num_objectives": int(num_objectives), "objectives": "[]",
            "payload": b"", "x": b"", "y": b"", "spec": _dumps(_jsonable(spec)), "parent": parent,
        }
        with self._write() as conn:
            row["created"] = datetime.now(timezone.utc).isoformat(timespec="microseconds")
            row["heartbeat"] = _now()
            names = ", ".join(row)
            marks = ", ".join(f":{name}" for name in row)
            run_id = int(conn.execute(f"INSERT INTO runs ({names}) VALUES ({marks})", row).lastrowid)
            conn.execute("INSERT INTO control (run_id, preference, watched) VALUES (?, ?, ?)",
                         (run_id, row["preference"], _now()))
            return run_id

    def spec(self, run_id: int) -> dict[str, Any]:
        """The RunSpec (as JSON data) a live run was created with. KeyError if there is none."""
        with self._read() as conn:
            row = conn.execute("SELECT spec FROM runs WHERE id = ?", (_check_id(run_id),)).fetchone()
        if row is None or row[0] is None:
            raise KeyError(self._missing(run_id) if row is None else f"run {run_id} was saved whole; it has no spec")
        return json.loads(row[0])

    def append(self, run_id: int, rows: list[dict[str, Any]], points: list[tuple[bytes, bytes] | None], *,
               status: str, progress: float, pid: int | None = None, preference: list[float] | None = None,
               message: str | None = None) -> None:
        """The worker's periodic write: new iterate rows (with their x, y where kept) and a heartbeat."""
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO iterates (run_id, step, row, x, y) VALUES (?, ?, ?, ?, ?)",
                [(run_id, int(r["step"]), _dumps(r), *(p if p is not None else (None, None))) for r, p in zip(rows, points)])
            sets = {"status": status, "heartbeat": _now(), "progress": float(progress)}
            if pid is not None:
                sets["pid"] = pid
            if message is not None:
                sets["message"] = message
            if rows:
                last = rows[-1]
                fields = named(last)
                sets["objectives"] = _dumps(fields["objectives"])
                sets["preference"] = _dumps(fields["preference"])
                sets["constraint_violation"] = _finite(last.get("constraint_violation"))
                for name in ("stationarity", "kkt_residual"):
                    if _finite(last.get(name)) is not None:
                        sets[name] = _finite(last.get(name))
            elif preference is not None:
                sets["preference"] = _dumps(preference)
            assign = ", ".join(f"{k} = :{k}" for k in sets)
            conn.execute(f"UPDATE runs SET {assign}, iterations = iterations + :n WHERE id = :id",
                         {**sets, "n": len(rows), "id": run_id})

    def rows_since(self, run_id: int, seq: int = 0, limit: int | None = None) -> list[tuple[int, dict[str, Any]]]:
        """(seq, row) of the iterates of `run_id` written after `seq`, oldest first."""
        query = "SELECT seq, row FROM iterates WHERE run_id = ? AND seq > ? ORDER BY seq"
        params: tuple[Any, ...] = (_check_id(run_id), int(seq))
        if limit is not None:
            query += " LIMIT ?"
            params += (int(limit),)
        with self._read() as conn:
            return [(int(q), json.loads(r)) for q, r in conn.execute(query, params)]

    def iterate(self, run_id: int, step: int) -> dict[str, Any] | None:
        """The row of iterate `step` of a run (None if the archive has none): one row, however long the run."""
        with self._read() as conn:
            row = conn.execute("SELECT row FROM iterates WHERE run_id = ? AND step = ? ORDER BY seq DESC LIMIT 1",
                               (_check_id(run_id), int(step))).fetchone()
        return None if row is None else json.loads(row[0])

    def preference_rows(self, run_id: int, until_step: int) -> list[dict[str, Any]]:
        """The rows up to `until_step` where the run's preference took a value: its first row and each row
        marked `preference_changed` (a run marks every step at which a new preference takes effect).

        Read through a partial index of the marked rows: a page choosing a point of a long live run reads a
        handful of rows, not all of them."""
        run_id = _check_id(run_id)
        with self._read() as conn:
            first = conn.execute("SELECT seq, row FROM iterates WHERE run_id = ? ORDER BY seq LIMIT 1", (run_id,)).fetchone()
            if first is None or json.loads(first[1])["step"] > until_step:
                return []
            marked = conn.execute(f"SELECT seq, row FROM iterates WHERE run_id = ? AND {_PREFERENCE_CHANGED} AND seq > ? "
                                  "AND step <= ? ORDER BY seq", (run_id, first[0], int(until_step))).fetchall()
        return [json.loads(r) for _, r in [first, *marked]]

    def point(self, run_id: int, step: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(x, y) of iterate `step` of a run, where the archive kept it (None otherwise)."""
        with self._read() as conn:
            row = conn.execute("SELECT x, y FROM iterates WHERE run_id = ? AND step = ? AND x IS NOT NULL "
                               "ORDER BY seq DESC LIMIT 1", (_check_id(run_id), int(step))).fetchone()
        if row is None:
            return None
        return tuple(torch.from_numpy(np.frombuffer(b, dtype="<f8").copy()) for b in row)  # type: ignore[return-value]

    def checkpoint(self, run_id: int, step: int, state: bytes) -> None:
        """Keep `state` (a torch file of tensors and numbers) as the run's latest checkpoint."""
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO checkpoints (run_id, step, saved, state) VALUES (?, ?, ?, ?)",
                         (_check_id(run_id), int(step), _now(), state))

    def last_checkpoint(self, run_id: int) -> tuple[int, bytes] | None:
        """(step, state) of the run's latest checkpoint, or None."""
        with self._read() as conn:
            row = conn.execute("SELECT step, state FROM checkpoints WHERE run_id = ?", (_check_id(run_id),)).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def rewind(self, run_id: int, step: int) -> None:
        """Forget the iterates after `step` (a resumed run continues from its checkpoint at `step`; -1: all)
        and queue the run again."""
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM iterates WHERE run_id = ? AND step > ?", (_check_id(run_id), int(step)))
            conn.execute("UPDATE runs SET iterations = iterations - ?, status = 'queued', message = '', pid = NULL, "
                         "heartbeat = ?, payload = X'' WHERE id = ?", (cursor.rowcount, _now(), int(run_id)))
            conn.execute("UPDATE control SET command = 'run', watched = ? WHERE run_id = ?", (_now(), int(run_id)))

    def finish(self, run_id: int, result: Result | None, status: str, message: str = "") -> None:
        """A live run ended: keep its whole Result (history exact) as the payload, and its final status."""
        sets: dict[str, Any] = {"status": status, "message": str(message), "heartbeat": None, "pid": None}
        if status in ("finished", "stopped"):
            sets["progress"] = 1.0
        if result is not None:
            payload, x_blob, y_blob = _encode(result)
            sets.update(payload=payload, x=x_blob, y=y_blob, iterations=len(result.history),
                        objectives=_dumps([float(v) for v in np.asarray(result.objectives, dtype=float).ravel()]),
                        preference=_dumps([float(v) for v in result.preference]),
                        options=_dumps(_jsonable(result.options)),
                        **{name: _final_metric(result.history, name) for name in _METRICS})
        assign = ", ".join(f"{k} = :{k}" for k in sets)
        with self._write() as conn:
            conn.execute(f"UPDATE runs SET {assign} WHERE id = :id", {**sets, "id": _check_id(run_id)})

    # `saved`: its exact Result is in the archive. A worker writes a run's final status with its last iterates,
    # then builds and saves the Result (seconds for a long run); until then `load` builds one from the rows.
    _STATE = ("id", "status", "message", "iterations", "progress", "heartbeat", "pid", "parent", "spec", "task",
              "solver", "label", "created", "saved")
    _STATE_SQL = ", ".join("COALESCE(length(payload), 0) > 0" if name == "saved" else name for name in _STATE)

    def state(self, run_id: int) -> dict[str, Any]:
        """A run's live record: status, message, iterations, progress, heartbeat, pid, parent, spec, saved."""
        with self._read() as conn:
            row = conn.execute(f"SELECT {self._STATE_SQL} FROM runs WHERE id = ?", (_check_id(run_id),)).fetchone()
        if row is None:
            raise KeyError(self._missing(run_id))
        record = dict(zip(self._STATE, row))
        record["spec"] = json.loads(record["spec"]) if record["spec"] else None
        record["saved"] = bool(record["saved"])
        return record

    def children_states(self, parent: int) -> list[dict[str, Any]]:
        """The states of a sweep's or comparison's runs in one read, in the order they were made, each with
        its latest objectives and preference (lists; empty before the first iterate): a live front."""
        names = (*self._STATE, "objectives", "preference")
        with self._read() as conn:
            rows = conn.execute(f"SELECT {self._STATE_SQL}, objectives, preference FROM runs WHERE parent = ? ORDER BY id",
                                (int(parent),)).fetchall()
        records = []
        for row in rows:
            record = dict(zip(names, row))
            record["saved"] = bool(record["saved"])
            for key in ("spec", "objectives", "preference"):
                record[key] = json.loads(record[key]) if record[key] else None
            records.append(record)
        return records

    def children(self, parent: int) -> list[int]:
        """The ids of the runs of a sweep or comparison, in the order they were made."""
        with self._read() as conn:
            return [int(r[0]) for r in conn.execute("SELECT id FROM runs WHERE parent = ? ORDER BY id", (int(parent),))]

    # -- steering: the pages write, the worker reads ---------------------------------------------

    def control(self, run_id: int) -> dict[str, Any]:
        """The control row of a run: command (run, pause, stop), preference, version, watched."""
        with self._read() as conn:
            row = conn.execute("SELECT command, preference, version, watched FROM control WHERE run_id = ?",
                               (_check_id(run_id),)).fetchone()
        if row is None:
            return {"command": "run", "preference": None, "version": 0, "watched": None}
        return {"command": row[0], "preference": json.loads(row[1]) if row[1] else None, "version": int(row[2]),
                "watched": row[3]}

    def command(self, run_id: int, command: str) -> None:
        """Ask a run's worker to `run` (resume), `pause` or `stop`."""
        if command not in ("run", "pause", "stop"):
            raise ValueError(f"command {command!r} is not accepted; choose one of 'run', 'pause', 'stop'")
        with self._write() as conn:
            conn.execute("UPDATE control SET command = ?, watched = ? WHERE run_id = ?",
                         (command, _now(), _check_id(run_id)))

    def steer(self, run_id: int, preference: list[float]) -> None:
        """Ask a run's worker to follow `preference` from its next step on."""
        with self._write() as conn:
            conn.execute("UPDATE control SET preference = ?, version = version + 1, watched = ? WHERE run_id = ?",
                         (_dumps([float(v) for v in preference]), _now(), _check_id(run_id)))

    def watch(self, run_id: int) -> None:
        """A page is looking at the run (its idle limit counts from the last call)."""
        with self._write() as conn:
            conn.execute("UPDATE control SET watched = ? WHERE run_id = ?", (_now(), _check_id(run_id)))

    def stepping_workers(self) -> int:
        """How many worker processes are running a run now (a sweep's runs share their worker)."""
        with self._read() as conn:
            return int(conn.execute("SELECT COUNT(DISTINCT pid) FROM runs WHERE status = 'running' AND pid IS NOT NULL")
                       .fetchone()[0])

    def reap(self, stale_after: float = STALE_AFTER_S) -> list[int]:
        """Mark live runs whose worker is gone interrupted; their ids.

        A run whose worker process is alive is not interrupted, however long since its last
        write (a sweep writes between its runs only). A run with no worker yet is interrupted
        once `stale_after` seconds pass without one taking it.
        """
        marks = ", ".join("?" * len(LIVE_STATES))
        with self._read() as conn:
            live = conn.execute(f"SELECT id, pid, heartbeat FROM runs WHERE status IN ({marks})", LIVE_STATES).fetchall()
        now = _now()
        gone = [int(i) for i, pid, beat in live
                if (not _worker_alive(int(pid)) if pid is not None else beat is None or now - beat > stale_after)]
        if gone:
            with self._write() as conn:
                conn.executemany(
                    f"UPDATE runs SET status = 'interrupted', pid = NULL, message = 'its worker stopped without "
                    f"finishing (server or worker crash); resume it from its last checkpoint' "
                    f"WHERE id = ? AND status IN ({marks})", [(i, *LIVE_STATES) for i in gone])
        return gone

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
    encoded = []
    for name in frame.columns:
        series = frame[name]
        values = series.astype(object).where(series.notna(), None).tolist()
        encoded.append({"name": name, "dtype": str(series.dtype), "values": _jsonable(values)})
    index = frame.index
    default_index = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
    return {"columns": encoded, "index": None if default_index else _jsonable(index.tolist())}


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
    # The archive's table is exact, dtypes included; from_dict would rebuild it from records.
    return Result.from_dict(data, "the archive's run payload", history=history)


def _final_metric(history: pd.DataFrame, name: str) -> float | None:
    if name not in history or len(history) == 0:
        return None
    column = pd.to_numeric(history[name], errors="coerce")
    measured = column[np.isfinite(column.to_numpy(dtype=float))]
    return float(measured.iloc[-1]) if len(measured) else None


def _now() -> float:
    import time

    return time.time()


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _worker_alive(pid: int) -> bool:
    """Whether `pid` is a running pareto-app worker (not a zombie, not another program that got the pid)."""
    if not process_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"pareto_app" in f.read()
    except OSError:
        return True  # no /proc here: trust the pid


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (ended, not yet reaped by its parent) is not alive.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
