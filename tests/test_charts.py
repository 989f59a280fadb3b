"""The objective space draws each dot on the screen once: markers one cannot tell apart are left out."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pareto_app.history import column
from ui.charts import SCREEN_CELLS, distinct_on_screen, metric_lines, objective_space, weights_chart

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


def test_live_charts_keep_fixed_margins_mark_preference_moves_and_skip_what_a_log_axis_cannot_show():
    steps = np.arange(40)
    history = pd.DataFrame({"step": steps, "kkt_residual": np.where(steps == 5, np.nan, 0.9 ** steps),
                            "constraint_violation": np.where(steps < 3, 0.0, 1e-3),
                            column("weights", 0): 0.25, column("weights", 1): 0.75})
    metrics = metric_lines(history, ["kkt_residual", "constraint_violation", "stationarity"], "KKT", changes=[10, 25])
    weights = weights_chart(history, ["f1", "f2"], changes=[10])
    objective = objective_space(pd.DataFrame(), pd.DataFrame(), _run(4, 30, (0.4, 0.6)), [0.5, 0.5], ["f1", "f2"],
                                changes=[7], run=4)
    for fig in (metrics, weights, objective):
        # Margins that do not move with the labels, and a zoom kept across redraws.
        assert fig.layout.margin.autoexpand is False and fig.layout.uirevision
        assert fig.layout.xaxis.automargin is False and fig.layout.yaxis.automargin is False
    # One line per metric the history has, without the NaN step and the zeros a log axis has no place for.
    lines = {t.name: t for t in metrics.data}
    assert set(lines) == {"kkt_residual", "constraint_violation"} and metrics.layout.yaxis.type == "log"
    assert 5 not in list(lines["kkt_residual"].x) and len(lines["kkt_residual"].x) == 39
    assert list(lines["constraint_violation"].x) == list(range(3, 40))
    # A dotted line across the plot at each step where the preference moved.
    assert [(s.x0, s.x1, s.yref, s.line.dash) for s in metrics.layout.shapes] == [(10, 10, "y domain", "dot"),
                                                                                 (25, 25, "y domain", "dot")]
    assert [s.x0 for s in weights.layout.shapes] == [10] and list(weights.layout.yaxis.range) == [0, 1]
    assert [list(t.y) for t in weights.data] == [[0.25] * 40, [0.75] * 40] and [t.name for t in weights.data] == ["f1", "f2"]
    # The objective space's axes hold the whole trajectory; where it moved is marked on it.
    traces = {t.name: t for t in objective.data}
    path = traces["trajectory"]
    (x_lo, x_hi), (y_lo, y_hi) = objective.layout.xaxis.range, objective.layout.yaxis.range
    assert x_lo < min(path.x) and max(path.x) < x_hi and y_lo < min(path.y) and max(path.y) < y_hi
    assert list(traces["preference moved"].x) == [path.x[7]]
    assert list(traces["start / now"].customdata) == ["4:0", "4:29"]


def test_the_objective_space_of_a_run_not_stepping_yet_shows_what_was_explored_before():
    # The idle figure of a page that watched runs before: a new run has no iterates yet (queued, or starting).
    explored = pd.concat([_run(1, 50, (0.2, 0.9)), _run(2, 50, (0.9, 0.2))])
    fig = objective_space(explored, explored.iloc[-5:], pd.DataFrame(), [0.5, 0.5], ["f1", "f2"])
    traces = {t.name: t for t in fig.data}
    assert len(traces["explored"].x) > 0 and len(traces["trajectory"].x) == 0
    assert len(traces["preference ray"].x) == 2
    three = pd.DataFrame({"run": 1, "step": np.arange(4), **{column("objectives", s): np.linspace(1, 2, 4) + s
                                                             for s in range(3)}})
    fig = objective_space(three, three, pd.DataFrame(), [1 / 3] * 3, ["f1", "f2", "f3"])
    assert len({t.name: t for t in fig.data}["explored"].x) == 4
