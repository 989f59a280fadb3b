"""The objective space draws each dot on the screen once: markers one cannot tell apart are left out."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pareto_app.history import column
from ui.charts import SCREEN_CELLS, distinct_on_screen, objective_space

LO, HI = np.array([0.0, -1.0]), np.array([2.0, 1.0])


def _cells(F: np.ndarray, cells: int = SCREEN_CELLS) -> list[tuple[int, int]]:
    """The grid cell of each point, computed point by point (outside the ranges: None)."""
    out = []
    for x, y in F:
        i, j = (x - LO[0]) / (HI[0] - LO[0]) * cells, (y - LO[1]) / (HI[1] - LO[1]) * cells
        out.append((int(i), int(j)) if 0 <= i < cells and 0 <= j < cells else None)
    return out


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(0, 300), st.just(2)),
              elements=st.one_of(st.floats(-0.5, 2.5), st.sampled_from([0.0, 1.0, 1.0 + 1e-4, 1.0 + 2e-3]))))
def test_one_point_is_kept_per_cell_the_last_and_every_point_outside(F):
    kept = distinct_on_screen(F, LO, HI)
    cells = _cells(F)
    assert list(kept) == sorted(set(kept.tolist()))
    kept_cells = [cells[i] for i in kept if cells[i] is not None]
    assert len(kept_cells) == len(set(kept_cells))  # no two in one cell
    assert set(kept_cells) == {c for c in cells if c is not None}  # every cell that has a point shows one
    for i in kept:  # the last point of its cell
        assert cells[i] is None or all(cells[j] != cells[i] for j in range(i + 1, len(F)))
    assert all(i in set(kept.tolist()) for i, c in enumerate(cells) if c is None)


def _run(run: int, steps: int, target: tuple[float, float]) -> pd.DataFrame:
    """A run converging geometrically from (2, 2) to `target`, as a solver's iterates do."""
    t = 0.97 ** np.arange(steps)
    F = np.asarray(target) + np.outer(t, np.array([2.0, 2.0]) - np.asarray(target))
    return pd.DataFrame({"run": run, "step": np.arange(steps), column("objectives", 0): F[:, 0],
                         column("objectives", 1): F[:, 1]})


def test_converged_runs_are_drawn_as_the_dots_they_make():
    explored = pd.concat([_run(1, 1000, (0.2, 0.9)), _run(2, 1000, (0.9, 0.2))])
    front = _run(3, 1000, (0.5, 0.5)).iloc[-400:]
    fig = objective_space(explored, front, _run(4, 300, (0.4, 0.6)), [0.5, 0.5], ["f1", "f2"], run=4)
    traces = {t.name: t for t in fig.data}
    shown, shown_front = len(traces["explored"].x), len(traces["front (click to choose)"].x)
    assert 20 < shown < 400 and 1 <= shown_front < 40  # of 2,000 and 400
    # The points drawn are points of the run, named by their run and step, and they span what the runs span.
    steps = {f"{r}:{s}" for r, s in zip(explored["run"], explored["step"])}
    assert set(traces["explored"].customdata) <= steps
    assert min(traces["explored"].x) <= 0.2 + 1e-3 and max(traces["explored"].x) == 2.0
    x_range = fig.layout.xaxis.range
    assert x_range[0] < 0.2 and x_range[1] > 2.0
