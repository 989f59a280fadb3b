"""The solver registry."""

from __future__ import annotations

from . import forum, linear, mgda, moco, moml, wc_al, wc_mhgd, wc_mhgd_stochastic, wc_penalty
from .base import Option, Solver, StepOutput, check_options

_SOLVERS: dict[str, Solver] = {
    m.SOLVER.name: m.SOLVER
    for m in (wc_mhgd, wc_mhgd_stochastic, wc_penalty, wc_al, forum, moml, moco, mgda, linear)
}


def names() -> list[str]:
    """The names of all solvers."""
    return list(_SOLVERS)


def get(name: str) -> Solver:
    """The solver called `name`."""
    if name not in _SOLVERS:
        raise ValueError(f"unknown solver {name!r}; accepted: {', '.join(_SOLVERS)}")
    return _SOLVERS[name]


__all__ = ["Option", "Solver", "StepOutput", "check_options", "get", "names"]
