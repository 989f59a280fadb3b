"""The run archive and download payloads, as the pages use them."""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pareto_app.result import Result
from pareto_app.store import RunStore, default_db_path

# One RunStore per path for the whole server: it holds only its path (every call opens its own
# connection), and opening one checks the schema, which is not worth doing on every tick.
_stores: dict[str, RunStore] = {}
_fallback: dict[str, str] = {}


def archive() -> RunStore:
    """The SQLite archive (path from PARETO_APP_DB, or the per-user default).

    An archive that cannot be opened (locked, corrupt, read-only, a folder) is replaced by a
    temporary one, so the app still starts; `archive_problem()` says what went wrong.
    """
    path = str(default_db_path())
    if path not in _stores:
        try:
            _stores[path] = RunStore(path)
        except ValueError as err:
            temporary = Path(tempfile.mkdtemp(prefix="pareto-app-")) / "runs.db"
            _stores[path] = RunStore(temporary)
            _fallback[path] = (f"{err}. Runs go to a temporary archive, {temporary}, lost when the machine "
                               f"restarts: fix or move {path}, or set PARETO_APP_DB to another file, then restart.")
    return _stores[path]


def archive_problem() -> str | None:
    """Why the configured archive could not be used, if it could not."""
    archive()
    return _fallback.get(str(default_db_path()))


def exports(point: dict[str, Any], result: Result | Callable[[], Result]
            ) -> tuple[bytes, Callable[[], bytes], Callable[[], bytes] | None]:
    """(the point as JSON, its run's history as CSV, its x and y as a torch file, or None without them).

    The CSV and the torch file are functions, called by their download button when it is clicked: a long run's
    history takes seconds to read and write, and the page reruns on every move of the preference. `result`
    may be a function that loads the run, called only then."""
    as_json = json.dumps(point, indent=1).encode()

    def as_csv() -> bytes:
        run = result() if callable(result) else result
        return run.history.to_csv(index=False).encode()

    if point.get("x") is None:
        return as_json, as_csv, None

    def as_torch() -> bytes:
        buffer = io.BytesIO()
        tensors = {k: torch.tensor(point[k], dtype=torch.float64) for k in ("x", "y")}
        torch.save({**{k: v for k, v in point.items() if k not in tensors}, **tensors}, buffer)
        return buffer.getvalue()

    return as_json, as_csv, as_torch
