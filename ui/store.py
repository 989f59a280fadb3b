"""The run archive and download payloads, as the pages use them."""

from __future__ import annotations

import io
import json
from typing import Any

import torch

from pareto_app.result import Result
from pareto_app.store import RunStore


def archive() -> RunStore:
    """The SQLite archive (path from PARETO_APP_DB, or the per-user default)."""
    return RunStore()


def exports(point: dict[str, Any], result: Result) -> tuple[bytes, bytes, bytes]:
    """(the point as JSON, its run's history as CSV, its x and y as a torch file)."""
    as_json = json.dumps(point, indent=1).encode()
    as_csv = result.history.to_csv(index=False).encode()
    buffer = io.BytesIO()
    tensors = {k: torch.tensor(point[k], dtype=torch.float64) for k in ("x", "y")}
    torch.save({**{k: v for k, v in point.items() if k not in tensors}, **tensors}, buffer)
    return as_json, as_csv, buffer.getvalue()
