"""Solvers side by side on one problem and preference, at an equal oracle budget or wall time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from .api import Diverged, stream
from .problem import Problem
from .termination import Termination

BUDGETS = ("oracle", "time")


def compare(problem: Problem, solvers: Sequence[str | tuple[str, dict[str, Any]]], preference: Sequence[float] | None,
            *, budget: float, by: str = "oracle", seed: int = 0, device: str = "auto", metrics_every: int = 5,
            progress: Callable[[int, int], None] | None = None) -> dict[str, pd.DataFrame]:
    """Run each solver until it has spent `budget` oracle calls (`by="oracle"`, Definition 4.2's
    count: UL and LL gradients, JVPs and HVPs) or `budget` seconds (`by="time"`).

    Returns one history per solver (label → DataFrame; a solver given twice gets "#2").
    A solver that diverges keeps the history it had, with a `status` column saying so.
    """
    if by not in BUDGETS:
        raise ValueError(f"budget kind {by!r} is not accepted; choose one of {list(BUDGETS)}")
    if not budget > 0:
        raise ValueError(f"budget={budget!r} must be positive")
    if len(solvers) == 0:
        raise ValueError("compare needs at least one solver")
    termination = Termination(oracle_budget=budget) if by == "oracle" else Termination(wall_time=budget)
    runs = [(s, {}) if isinstance(s, str) else (s[0], dict(s[1])) for s in solvers]
    out: dict[str, pd.DataFrame] = {}
    for i, (name, options) in enumerate(runs):
        label = name if name not in out else f"{name} #{sum(k.startswith(name) for k in out) + 1}"
        rows, status = [], "finished"
        try:
            for it in stream(problem, name, preference, steps=None, seed=seed, device=device,
                             metrics_every=metrics_every, **options):
                rows.append(it.row())
                if termination.reached(it.step + 1, rows[-1]["oracle_total"], it.elapsed):
                    break
        except Diverged as err:
            status = f"diverged: {err}"
        frame = pd.DataFrame(rows)
        frame["status"] = status
        out[label] = frame
        if progress is not None:
            progress(i + 1, len(runs))
    return out
