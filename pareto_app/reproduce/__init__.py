"""Reproductions of the papers' claims: `python -m pareto_app reproduce NAME [--quick]`.

Each writes `reports/NAME/README.md` (tables, what came out, where it disagrees with the
paper) and its Plotly figures as HTML and PNG.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import cost_scaling, hyper_cleaning_table, penalty_vs_al, preference_study, rates

REPRODUCTIONS: dict[str, Callable[..., Path]] = {
    "hyper-cleaning-table": hyper_cleaning_table.run,
    "preference-study": preference_study.run,
    "cost-scaling": cost_scaling.run,
    "rates": rates.run,
    "ecmo-penalty-vs-al": penalty_vs_al.run,
}


def names() -> list[str]:
    return list(REPRODUCTIONS)


def run(name: str, *, quick: bool = False, out: str | Path = "reports") -> Path:
    """Run reproduction `name`; returns the path of its README.md."""
    if name not in REPRODUCTIONS:
        raise ValueError(f"unknown reproduction {name!r}; accepted: {', '.join(REPRODUCTIONS)}")
    return REPRODUCTIONS[name](quick=quick, out=out)
