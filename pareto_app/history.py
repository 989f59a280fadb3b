"""A run's iterates as named arrays, with a bounded size for display.

The archive keeps every iterate; a page keeps a `History` of at most `capacity` rows per run,
so a run of 10^6 steps costs a page the same memory as one of 10^4. Past the capacity the
older half is thinned (every other row dropped), the newest rows stay dense, and rows where the
preference changed are always kept (the charts mark them).

    h = History(S=2, capacity=4000)
    h.extend(rows)                          # rows as the archive holds them (Iterate.row())
    h.objectives, h.weights, h.preference   # (n, S) arrays
    h.step, h.stationarity, ...             # (n,) arrays
    h.frame()                               # the flat DataFrame the charts draw

A flat record (one iterate as the archive, the CSV export and `Result.history` hold it) names
its vector fields `f1..fS`, `w1..wS`, `r1..rS`; this module is the one place that spells those
names: everything else asks `column`, `columns`, `vectors`, `num_objectives` or `named`.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

VECTORS = {"objectives": "f", "weights": "w", "preference": "r"}
SCALARS = ("step", "constraint_violation", "stationarity", "kkt_residual", "direction_norm", "elapsed",
           "oracle_total", "preference_changed")
METRICS = ("constraint_violation", "stationarity", "kkt_residual", "direction_norm", "elapsed")
ORACLE_PREFIX = "oracle_"


def column(field: str, s: int) -> str:
    """The flat record's column of component `s` (0-based) of `field` (objectives, weights, preference)."""
    return f"{VECTORS[field]}{s + 1}"


def columns(field: str, S: int) -> list[str]:
    return [column(field, s) for s in range(S)]


def num_objectives(record: Any) -> int:
    """S of a flat record (a dict) or table (a DataFrame): how many objective columns it has."""
    names = record.columns if isinstance(record, pd.DataFrame) else record
    S = 0
    while column("objectives", S) in names:
        S += 1
    return S


def vectors(table: pd.DataFrame, field: str = "objectives") -> np.ndarray:
    """The (n, S) array of `field` in a flat table."""
    return table[columns(field, num_objectives(table))].to_numpy(dtype=float)


def named(record: dict[str, Any]) -> dict[str, Any]:
    """A flat record as named fields: objectives, weights, preference (lists), the metrics (None where
    not measured), oracle_calls by kind, step and preference_changed."""
    S = num_objectives(record)
    out: dict[str, Any] = {field: [float(record.get(column(field, s), np.nan)) for s in range(S)] for field in VECTORS}
    out["step"] = int(record["step"])
    for name in METRICS:
        value = record.get(name)
        out[name] = None if value is None or pd.isna(value) else float(value)
    out["oracle_calls"] = {k[len(ORACLE_PREFIX):]: int(v) for k, v in record.items()
                           if k.startswith(ORACLE_PREFIX) and k != "oracle_total"}
    out["preference_changed"] = bool(record.get("preference_changed") or False)
    return out


class History:
    """Bounded, array-backed iterates of one run."""

    def __init__(self, S: int, capacity: int = 4000) -> None:
        if capacity < 8:
            raise ValueError(f"capacity={capacity!r}; accepted: a whole number ≥ 8")
        self.S, self.capacity = S, capacity
        self._vectors = {name: np.empty((0, S)) for name in VECTORS}
        self._scalars = {name: np.empty(0) for name in SCALARS}
        self.seen = 0  # rows ever added (the archive has them all)
        self.last: dict[str, Any] | None = None  # the newest row, whole (oracle counts by kind included)

    def __len__(self) -> int:
        return len(self._scalars["step"])

    def extend(self, rows: Iterable[dict[str, Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        S = self.S
        keys = [key for name in VECTORS for key in columns(name, S)] + list(SCALARS)
        # One C-level lookup per row (the page reads thousands of rows per tick); a row without some
        # field (an older archive's) takes the slower path. None (a metric not measured) becomes NaN.
        try:
            table = np.array(list(map(itemgetter(*keys), rows)), dtype=float)
        except KeyError:
            table = np.array([[row.get(key) for key in keys] for row in rows], dtype=float)
        for k, name in enumerate(VECTORS):
            self._vectors[name] = np.concatenate([self._vectors[name], table[:, k * S:(k + 1) * S]])
        for k, name in enumerate(SCALARS, start=len(VECTORS) * S):
            self._scalars[name] = np.concatenate([self._scalars[name], table[:, k]])
        self.seen += len(rows)
        self.last = dict(rows[-1])
        while len(self) > self.capacity and self._thin():
            pass

    def _thin(self) -> bool:
        """Drop every other older row; False when nothing could be dropped."""
        n = len(self)
        old = n - self.capacity // 2
        keep = np.ones(n, dtype=bool)
        keep[1:old:2] = False  # every other of the older rows; the first row stays
        keep |= self._scalars["preference_changed"] == 1
        for name in VECTORS:
            self._vectors[name] = self._vectors[name][keep]
        for name in SCALARS:
            self._scalars[name] = self._scalars[name][keep]
        return not keep.all()

    def __getattr__(self, name: str) -> np.ndarray:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in VECTORS:
            return self._vectors[name]
        if name in SCALARS:
            return self._scalars[name]
        raise AttributeError(f"History has no field {name!r}; fields: {', '.join([*VECTORS, *SCALARS])}")

    @property
    def changes(self) -> list[int]:
        """The steps at which the preference was changed while the run went on."""
        return [int(s) for s in self._scalars["step"][self._scalars["preference_changed"] == 1]]

    def frame(self) -> pd.DataFrame:
        """The kept rows as the flat table the charts draw (f1.., w1.., r1.. and the metrics)."""
        data: dict[str, Any] = {"step": self._scalars["step"].astype(int)}
        for name in VECTORS:
            for s, key in enumerate(columns(name, self.S)):
                data[key] = self._vectors[name][:, s]
        for name in SCALARS[1:]:
            data[name] = self._scalars[name]
        data["preference_changed"] = data["preference_changed"] == 1
        return pd.DataFrame(data)
