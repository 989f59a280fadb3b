"""When a run ends: a step budget, an oracle budget, a wall time; and how far along it is.

pymoo's `Termination` keeps this apart from the algorithm's settings; so do we. Progress is in
[0, 1] (what a progress bar needs): the furthest of the criteria set, 0 when none is (a run that
goes on until it is stopped).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Termination:
    """Stop at `steps` steps, `oracle_budget` oracle calls (Definition 4.2) or `wall_time` seconds,
    whichever comes first; None leaves a criterion out."""

    steps: int | None = None
    oracle_budget: float | None = None
    wall_time: float | None = None

    def __post_init__(self) -> None:
        if self.steps is not None and (isinstance(self.steps, bool) or not isinstance(self.steps, int)
                                       or self.steps < 1):
            raise ValueError(f"steps={self.steps!r}; accepted: a whole number ≥ 1, or None")
        for name in ("oracle_budget", "wall_time"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value <= 0):
                raise ValueError(f"{name}={value!r}; accepted: a positive number, or None")

    def progress(self, steps_done: int, oracle_calls: float, elapsed: float) -> float:
        """How far along the run is, in [0, 1]."""
        parts = [0.0]
        if self.steps is not None:
            parts.append(steps_done / self.steps)
        if self.oracle_budget is not None:
            parts.append(oracle_calls / self.oracle_budget)
        if self.wall_time is not None:
            parts.append(elapsed / self.wall_time)
        return min(1.0, max(parts))

    def reached(self, steps_done: int, oracle_calls: float, elapsed: float) -> bool:
        """Whether the run has ended after `steps_done` steps (the first step that reaches a budget ends it)."""
        return (self.steps is not None and steps_done >= self.steps
                or self.oracle_budget is not None and oracle_calls >= self.oracle_budget
                or self.wall_time is not None and elapsed >= self.wall_time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Termination:
        return cls(**{k: data.get(k) for k in ("steps", "oracle_budget", "wall_time")})


def divergence_reason(f: np.ndarray, finite_point: bool, first: np.ndarray, factor: float) -> str:
    """Why a run whose objectives are `f` (its first: `first`) has diverged, or "" if it has not: a
    non-finite objective or point, or an objective past `factor` × (|its start| + 1)."""
    if not np.all(np.isfinite(f)):
        return f"an objective became non-finite ({f.tolist()})"
    if not finite_point:
        return "x or y became non-finite"
    if np.any(np.abs(f) > factor * (first + 1.0)):
        return (f"the objectives exploded ({f.tolist()}, more than divergence_factor={factor:g} times their start "
                f"{first.tolist()} plus one)")
    return ""
