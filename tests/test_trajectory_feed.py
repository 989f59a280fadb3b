"""The objective space's feed sends a live trajectory's new points between whole figures (ui/trajectory_feed.py)."""

from __future__ import annotations

import json
import time

import numpy as np
import plotly.graph_objects as go
import pytest

from pareto_app.history import History
from tests.test_history import fake_rows
from ui.exploration import RunView
from ui.trajectory_feed import TAIL_SHOWN, TrajectoryFeed

FULL_EVERY = 60.0


def _view(steps: int, S: int = 2) -> RunView:
    view = RunView(3, {"task": "toy-quadratic"}, History(S, 4000))
    view.status = "running"
    _grow(view, 0, steps)
    return view


def _grow(view: RunView, start: int, stop: int) -> None:
    rows = fake_rows(start, stop)
    if view.history.S == 3:
        rows = [{**row, "f3": 0.5, "w3": 0.0, "r3": 0.0} for row in rows]
    view.history.extend(rows)
    view.seq += stop - start


def _figure(view: RunView) -> go.Figure:
    """A stand-in for the page's figure: the trajectory so far, on ranges that hold f1, f2 in [0, 1]."""
    F = view.history.objectives
    fig = go.Figure(go.Scatter(x=F[:, 0], y=F[:, 1], name="trajectory"))
    fig.update_xaxes(range=[-0.1, 1.1])
    fig.update_yaxes(range=[-0.1, 1.1])
    return fig


def _answer(feed: TrajectoryFeed, view: RunView, have: str | None, full_every: float = FULL_EVERY):
    made = []

    def make() -> go.Figure:
        made.append(True)
        return _figure(view)

    update = feed.answer(view, have, make, 0.4, full_every)
    return update, bool(made)


def test_a_live_trajectory_gets_its_new_points_between_whole_figures():
    view = _view(100)
    feed = TrajectoryFeed(view.run_id)
    version, _ = feed.figure(view, lambda: _figure(view))  # what the page drew
    update, made = _answer(feed, view, version)
    assert update.version == version and not made  # nothing new: the browser's version, so 204
    _grow(view, 100, 150)
    update, made = _answer(feed, view, version)
    content = update.content()
    assert not made and update.every == 0.4 and update.version != version
    assert set(content) == {"tail"} and content["tail"]["step"] == 149
    # Exactly the points after the figure's last step, in order.
    np.testing.assert_allclose(content["tail"]["x"], [1.0 / (k + 1) for k in range(100, 150)])
    np.testing.assert_allclose(content["tail"]["y"], [1.0 - 1.0 / (k + 1) for k in range(100, 150)])
    json.dumps(content)  # what the feed sends
    # A tail is of the figure the browser has: from a later tail the next one still starts after the figure.
    _grow(view, 150, 160)
    later = _answer(feed, view, update.version)[0].content()
    assert len(later["tail"]["x"]) == 60
    # A long tail is thinned, its last point kept.
    _grow(view, 160, 160 + 3 * TAIL_SHOWN)
    long = _answer(feed, view, update.version)[0].content()["tail"]
    assert len(long["x"]) <= TAIL_SHOWN + 1 and long["x"][-1] == pytest.approx(1.0 / (160 + 3 * TAIL_SHOWN))


def test_a_whole_figure_comes_when_a_tail_would_not_do():
    view = _view(100)
    feed = TrajectoryFeed(view.run_id)
    version, _ = feed.figure(view, lambda: _figure(view))
    _grow(view, 100, 110)
    # A browser with another figure (none, the idle chart's, an older one of this page, another page's or run's)
    # gets a figure.
    older = version
    version, _ = feed.figure(view, lambda: _figure(view))
    other = TrajectoryFeed(view.run_id)
    other_version, _ = other.figure(view, lambda: _figure(view))
    for have in (None, "idle", older, other_version, other_version + f"|tail:{view.seq}:running"):
        update, made = _answer(feed, view, have)
        assert made and "spec" in update.content() and update.version == feed.figure_version != have, have
        version = update.version
    # Once the figure is `full_every` old (and there is something new).
    same, made = _answer(feed, view, version, full_every=0.0)
    assert same.version == version and not made  # nothing new: 204, however old the figure
    _grow(view, 110, 115)
    update, made = _answer(feed, view, version, full_every=0.0)
    assert made and json.loads(update.content()["spec"])["data"][0]["name"] == "trajectory"
    version = update.version
    # A point outside the figure's axes.
    view.history.extend([{**fake_rows(115, 116)[0], "f1": 5.0}])
    view.seq += 1
    update, made = _answer(feed, view, version)
    assert made and "spec" in update.content()
    # Paused, or ended: the figure as the page draws it, once; then 204.
    view.status = "paused"
    update, made = _answer(feed, view, update.version)
    assert made
    again, made = _answer(feed, view, update.version)
    assert again.version == update.version and not made


def test_three_objectives_always_get_the_whole_figure():
    view = _view(50, S=3)
    feed = TrajectoryFeed(view.run_id)
    version, _ = feed.figure(view, lambda: _figure(view))
    _grow(view, 50, 60)
    update, made = _answer(feed, view, version)
    assert made and "spec" in update.content()


def test_a_figure_is_followed_only_for_full_every_seconds():
    view = _view(20)
    feed = TrajectoryFeed(view.run_id)
    version, _ = feed.figure(view, lambda: _figure(view))
    _grow(view, 20, 30)
    assert not _answer(feed, view, version, full_every=0.5)[1]
    time.sleep(0.55)
    _grow(view, 30, 40)
    assert _answer(feed, view, version, full_every=0.5)[1]


def test_a_figure_made_before_the_first_iterate_is_followed_by_a_whole_figure_not_a_tail():
    # The worker is still building the task (running, no iterate) when the page's chart asks: it gets the idle
    # chart, with no trajectory trace; the chart paints a tail only from the figure's trajectory.
    view = _view(0)
    feed = TrajectoryFeed(view.run_id)

    def idle() -> go.Figure:
        fig = go.Figure(go.Scatter(x=[0.2, 0.8], y=[0.8, 0.2], name="analytic front"))
        return fig.update_xaxes(range=[-0.1, 1.1]).update_yaxes(range=[-0.1, 1.1])

    # A browser that shows a chart (the idle one, or the run shown before) keeps it until there is a step to draw.
    for have in ("idle", "7:1200:finished:figure3"):
        made = []
        kept = feed.answer(view, have, lambda: made.append(True) or idle(), 0.4, FULL_EVERY)
        assert kept.version == have and not made and kept.every == 0.4  # 204, asked again at the usual pace
    # One that has none (a figure made on a rerun of the page before the first step) gets the idle chart.
    update = feed.answer(view, None, idle, 0.4, FULL_EVERY)
    assert "trajectory" not in update.content()["spec"]
    _grow(view, 0, 10)  # within the idle chart's axes: a tail would be sent, and not be seen
    update, made = _answer(feed, view, update.version)
    assert made and json.loads(update.content()["spec"])["data"][0]["name"] == "trajectory"
    # From that figure on, the trajectory's new points come as tails.
    _grow(view, 10, 20)
    tail, made = _answer(feed, view, update.version)
    assert not made and len(tail.content()["tail"]["x"]) == 10
