"""A live objective space that sends a running trajectory's new points, not the whole figure, between redraws.

plotly.js redraws every trace of a plot on any change of its data (`Plotly.react`, `restyle` and
`extendTraces` alike: 25-28 ms of the browser's main thread for the live figure, measured), and building the
figure costs the server about 30 ms more. Most updates of a live run only lengthen its trajectory. So the
feed answers with the whole figure now and then ("spec": at most every `full_every` seconds, when the run's
state changes, or when the trajectory leaves the axes' ranges), and in between with the trajectory's points
after the last figure ("tail"), which the chart draws over its plot (ui/components/live_chart/index.html): a
few hundred numbers and one canvas path.

A version names the figure the browser has (numbered across all pages and runs) and the archive row it is up
to; a tail is sent only to a browser that has the very figure it follows.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ui.exploration import RunView, nothing_to_draw_yet
from ui.live_chart import figure_spec
from ui.live_feed import Update

TAIL_SHOWN = 800  # points of a tail at most (evenly thinned, the last kept)


# Figures are numbered across every page and run: a version names one figure only, whichever feed made it.
_figures = itertools.count(1)


@dataclass
class TrajectoryFeed:
    """What one page was last sent of the objective space of run `run_id`: the figure tails follow (its version,
    the archive row and status it was made at, when, up to which step, with which axes' ranges)."""

    run_id: int
    figure_version: str = ""
    figure_key: tuple[int, str] | None = None
    full_at: float = -np.inf
    full_step: float = -np.inf
    ranges: tuple[tuple[float, float], tuple[float, float]] | None = None

    def figure(self, view: RunView, make: Callable[[], go.Figure]) -> tuple[str, go.Figure]:
        """A whole figure from `make()`, the one tails follow from now on: (its version, the figure)."""
        fig = make()
        self.figure_version = f"{self.run_id}:{view.seq}:{view.status}:figure{next(_figures)}"
        self.figure_key = (view.seq, view.status)
        self.full_at = time.monotonic()
        self.full_step = float(view.history.step[-1]) if len(view.history) else -np.inf
        x_range, y_range = fig.layout.xaxis.range, fig.layout.yaxis.range
        self.ranges = (tuple(x_range), tuple(y_range)) if x_range is not None and y_range is not None else None
        return self.figure_version, fig

    def answer(self, view: RunView, have: str | None, make: Callable[[], go.Figure], every: float | None,
               full_every: float) -> Update:
        """What to send a browser that has version `have`: nothing (the same version, or a live run with no iterate
        yet: 204), the trajectory's tail after the figure it has, or a whole new figure from `make()` (see the
        module's docstring)."""
        tail_version = f"{self.figure_version}|tail:{view.seq}:{view.status}"
        has_current = have is not None and (
            have == tail_version or have == self.figure_version and (view.seq, view.status) == self.figure_key)
        if has_current or nothing_to_draw_yet(view, have):
            return Update(have, lambda: None, every)
        follows = have is not None and self.figure_version != "" and (
            have == self.figure_version or have.startswith(self.figure_version + "|tail:"))
        if (follows and view.status == self.figure_key[1] == "running" and view.history.S == 2
                and time.monotonic() - self.full_at < full_every):
            tail = self._tail(view)
            if tail is not None:
                return Update(tail_version, lambda: {"tail": tail}, every)
        version, fig = self.figure(view, make)
        return Update(version, lambda: {"spec": figure_spec(fig)}, every)

    def _tail(self, view: RunView) -> dict[str, Any] | None:
        """The trajectory's points after the figure's last step ({x, y, step}), or None where one falls outside the
        figure's axes or the figure has no trajectory to continue (the figure is then drawn anew).

        A figure made before the run's first iterate (the idle chart, drawn while the worker builds the task) has no
        trajectory trace, and the chart paints a tail only from the figure's trajectory: tails after it showed
        nothing until the next whole figure, up to `full_every` later (2-8 s; a whole run of seconds with four tabs
        on two cores, measured)."""
        if self.ranges is None or self.full_step == -np.inf:
            return None
        history = view.history
        new = history.step > self.full_step
        F = history.objectives[new]
        (x_lo, x_hi), (y_lo, y_hi) = self.ranges
        if not np.all((F[:, 0] >= x_lo) & (F[:, 0] <= x_hi) & (F[:, 1] >= y_lo) & (F[:, 1] <= y_hi)):
            return None
        if len(F) > TAIL_SHOWN:
            F = F[np.unique(np.r_[np.linspace(0, len(F) - 1, TAIL_SHOWN).astype(int), len(F) - 1])]
        return {"x": F[:, 0].tolist(), "y": F[:, 1].tolist(), "step": int(history.step[-1]) if len(history) else None}
