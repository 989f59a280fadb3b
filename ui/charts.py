"""Plotly figures built from domain objects (no Streamlit here, so they test without a server)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from pareto_app.history import column, vectors
from pareto_app.tasks.quadratic_common import simplex_grid

TRAJECTORY_SCALE = "Viridis"
FRONT_COLOUR = "#d62728"
EXPLORED_COLOUR = "#c7c7c7"
TRAJECTORY_COLOUR = "#2a7f62"
# Charts redrawn several times a second keep fixed margins: Plotly's automatic margins re-measure
# every label and the legend on each redraw (a quarter of a redraw's time in Chromium's profile).
# The legend sits below the plot, in the fixed bottom margin, where it covers no point to click.
FIXED_MARGIN = {"l": 64, "r": 16, "t": 40, "b": 96, "autoexpand": False}
BELOW_LEGEND = {"orientation": "h", "x": 0.0, "xanchor": "left", "y": -0.16, "yanchor": "top", "font": {"size": 11}}


def _figure(traces: list[dict], layout: dict, revision: str) -> go.Figure:
    """A 2-D figure made in one call from its traces and layout, with fixed margins (no automatic ones) and
    `uirevision` (a zoom or a hidden trace survives the redraws).

    In one call, not trace by trace with `update_layout` after: plotly's figure methods parse every property
    path and validate it anew at each call, 20-35 ms per figure of a live run against 3-12 ms (the server
    builds one every few seconds per chart shown)."""
    layout = {**layout, "margin": FIXED_MARGIN, "uirevision": revision}
    for axis in ("xaxis", "yaxis"):
        layout[axis] = {**layout.get(axis, {}), "automargin": False}
    return go.Figure(data=traces, layout=layout)


def _step_lines(changes: Sequence[int]) -> list[dict]:
    """A dotted vertical line at each step where the preference moved (what `add_vline` would make)."""
    return [{"type": "line", "xref": "x", "yref": "y domain", "x0": step, "x1": step, "y0": 0, "y1": 1,
             "line": {"dash": "dot", "color": "#ff7f0e"}} for step in changes]


def thin(frame: pd.DataFrame, limit: int = 1500) -> pd.DataFrame:
    """At most about `limit` rows, evenly strided, keeping the last row and every preference change.

    Redrawn twice a second, a long run would otherwise send the browser ever more points.
    """
    if len(frame) <= limit:
        return frame
    keep = np.zeros(len(frame), dtype=bool)
    keep[:: int(np.ceil(len(frame) / limit))] = True
    keep[-1] = True
    if "preference_changed" in frame:
        keep |= frame["preference_changed"].fillna(False).to_numpy(dtype=bool)
    return frame[keep]


# Markers closer than this fraction of the axes' ranges are one dot on the screen: a chart 700 pixels wide draws
# them within 2 pixels of each other, under markers 5-9 pixels wide.
SCREEN_CELLS = 400


def distinct_on_screen(F: np.ndarray, lo: np.ndarray, hi: np.ndarray, cells: int = SCREEN_CELLS) -> np.ndarray:
    """Indices (in order) of the points of `F` (n × 2) to draw within the ranges [lo, hi]: the last of each cell of
    a `cells` × `cells` grid, so that no two are within a cell of each other; points outside the ranges are kept.

    A run's iterates crowd where it converges: three 500-step runs of the default task fill 53 of 160,000 cells.
    A live chart redraws every marker on each update (plotly.js, SVG: ~50 ms per redraw for 1,000 markers,
    measured), so the points one cannot tell apart are drawn once."""
    if len(F) == 0:
        return np.arange(0)
    scaled = (F - lo) / np.maximum(hi - lo, 1e-300) * cells
    inside = np.all((scaled >= 0) & (scaled < cells), axis=1)
    cell = np.where(inside, np.floor(scaled[:, 0]).clip(0, cells - 1) * cells + np.floor(scaled[:, 1]).clip(0, cells - 1),
                    -1 - np.arange(len(F)))  # outside: a cell of its own
    _, last = np.unique(cell[::-1], return_index=True)
    return np.sort(len(F) - 1 - last)


def _run_step(points: pd.DataFrame) -> np.ndarray | None:
    """"run:step" per point, as one array: Plotly validates a nested list element by element (most of
    a redraw's server time for a long front), and a string comes back whole in a click event."""
    if not len(points):
        return None
    return (points["run"].astype(int).astype(str) + ":" + points["step"].astype(int).astype(str)).to_numpy(dtype=object)


def run_step(custom: object) -> tuple[int, int] | None:
    """(run, step) from a chart point's customdata ("run:step"); None for anything else."""
    try:
        run, step = str(custom).split(":")
        return int(run), int(step)
    except ValueError:
        return None


def _objectives(frame: pd.DataFrame, S: int = 0) -> np.ndarray:
    """The objective vectors of `frame`'s rows; a frame with no columns (nothing yet) has none, S wide."""
    return vectors(frame, "objectives") if len(frame.columns) else np.zeros((len(frame), S))


def preference_ray(preference: Sequence[float], F: np.ndarray) -> np.ndarray:
    """Points on the weighted-Chebyshev ray {t (1/r_s)_s}: where r_s f_s are all equal."""
    r = np.asarray(preference, dtype=float)
    direction = np.where(r > 0, 1.0 / np.maximum(r, 1e-12), 0.0)
    direction = direction / max(direction.max(), 1e-12)
    top = float(np.nanmax(F)) * 1.05 if F.size else 1.0
    return np.outer(np.linspace(0.0, top, 2), direction)


def objective_space(explored: pd.DataFrame, front: pd.DataFrame, trajectory: pd.DataFrame,
                    preference: Sequence[float], labels: Sequence[str], analytic_front: np.ndarray | None = None,
                    changes: Sequence[int] = (), run: int | None = None) -> go.Figure:
    """The objective space: explored points, their front, the current trajectory (coloured by
    step), the preference ray; 2-D scatter for S = 2, 3-D for S = 3, parallel coordinates above."""
    S = len(labels)
    F_traj = _objectives(trajectory, S)  # S wide when empty: it is stacked with the explored points below
    if S > 3:
        fig = go.Figure()
        data = _objectives(front) if len(front) else F_traj
        dims = [{"label": labels[s], "values": data[:, s]} for s in range(S)] if len(data) else \
            [{"label": lab, "values": []} for lab in labels]
        fig.add_trace(go.Parcoords(dimensions=dims, line={"color": FRONT_COLOUR}))
        fig.update_layout(title="Front (parallel coordinates)", height=460)
        return fig
    ray = preference_ray(preference, np.vstack([F_traj, _objectives(explored)]) if len(explored) else F_traj)
    steps = trajectory["step"].to_numpy() if len(trajectory) else np.array([])
    if S == 2:
        traces = []
        if analytic_front is not None:
            traces.append({"type": "scatter", "x": analytic_front[:, 0], "y": analytic_front[:, 1], "mode": "lines",
                           "line": {"color": "#999", "dash": "dot"}, "name": "analytic front"})
        layout = {"xaxis": {"title": {"text": labels[0]}}, "yaxis": {"title": {"text": labels[1]}}, "height": 460,
                  "clickmode": "event+select", "legend": BELOW_LEGEND}
        E = _objectives(explored)
        F_all = np.vstack([a for a in (E, F_traj) if len(a)]) if len(E) or len(F_traj) else np.zeros((0, 2))
        if len(F_all):
            lo, hi = F_all.min(axis=0), F_all.max(axis=0)
            pad = 0.08 * np.maximum(hi - lo, 1e-9)
            lo, hi = lo - pad, hi + pad
            layout["xaxis"]["range"] = [float(lo[0]), float(hi[0])]
            layout["yaxis"]["range"] = [float(lo[1]), float(hi[1])]
            shown = distinct_on_screen(E, lo, hi)
            explored, E = explored.iloc[shown], E[shown]
            # The front is where a click chooses a point: finer cells, so that a zoom still tells its points apart.
            Ff = _objectives(front)
            shown = distinct_on_screen(Ff, lo, hi, cells=4 * SCREEN_CELLS)
            front = front.iloc[shown]
        traces.append({"type": "scatter", "x": E[:, 0] if len(E) else [], "y": E[:, 1] if len(E) else [],
                       "mode": "markers", "marker": {"color": EXPLORED_COLOUR, "size": 5}, "name": "explored",
                       "customdata": _run_step(explored)})
        traces.append({"type": "scatter", "x": ray[:, 0], "y": ray[:, 1], "mode": "lines",
                       "line": {"color": "#1f77b4", "dash": "dash"}, "name": "preference ray"})
        # The trajectory is one path (cheap to redraw several times a second, whatever its length);
        # where it starts and where it is now are marked.
        traces.append({"type": "scatter", "x": F_traj[:, 0] if len(F_traj) else [],
                       "y": F_traj[:, 1] if len(F_traj) else [], "mode": "lines",
                       "line": {"color": TRAJECTORY_COLOUR, "width": 1.5}, "name": "trajectory", "hoverinfo": "skip"})
        if len(F_traj):
            ends = F_traj[[0, -1]]
            traces.append({"type": "scatter", "x": ends[:, 0], "y": ends[:, 1], "mode": "markers",
                           "name": "start / now",
                           "marker": {"color": ["#ffffff", TRAJECTORY_COLOUR], "size": [8, 11],
                                      "line": {"width": 1.5, "color": TRAJECTORY_COLOUR}},
                           "customdata": [f"{run}:{int(steps[0])}", f"{run}:{int(steps[-1])}"]
                           if run is not None else None,
                           "text": [f"step {int(steps[0])}", f"step {int(steps[-1])}"],
                           "hovertemplate": "%{text}<extra></extra>"})
        if len(changes):
            idx = [i for i, s in enumerate(steps) if s in set(changes)]
            traces.append({"type": "scatter", "x": F_traj[idx, 0], "y": F_traj[idx, 1], "mode": "markers",
                           "marker": {"symbol": "x", "size": 12, "color": "#ff7f0e"}, "name": "preference moved"})
        Ff = _objectives(front)
        traces.append({"type": "scatter", "x": Ff[:, 0] if len(Ff) else [], "y": Ff[:, 1] if len(Ff) else [],
                       "mode": "markers",
                       "marker": {"color": FRONT_COLOUR, "size": 9, "line": {"width": 1, "color": "white"}},
                       "name": "front (click to choose)", "customdata": _run_step(front)})
        return _figure(traces, layout, "objective-space")
    E, Ff = _objectives(explored), _objectives(front)
    fig = go.Figure()
    fig.add_trace(go.Scatter3d(x=E[:, 0] if len(E) else [], y=E[:, 1] if len(E) else [],
                               z=E[:, 2] if len(E) else [], mode="markers",
                               marker={"color": EXPLORED_COLOUR, "size": 2}, name="explored"))
    fig.add_trace(go.Scatter3d(x=ray[:, 0], y=ray[:, 1], z=ray[:, 2], mode="lines", line={"color": "#1f77b4"},
                               name="preference ray"))
    fig.add_trace(go.Scatter3d(x=F_traj[:, 0] if len(F_traj) else [], y=F_traj[:, 1] if len(F_traj) else [],
                               z=F_traj[:, 2] if len(F_traj) else [], mode="markers+lines",
                               marker={"color": steps, "colorscale": TRAJECTORY_SCALE, "size": 3},
                               line={"color": "rgba(0,0,0,0.2)"}, name="trajectory"))
    fig.add_trace(go.Scatter3d(x=Ff[:, 0] if len(Ff) else [], y=Ff[:, 1] if len(Ff) else [],
                               z=Ff[:, 2] if len(Ff) else [], mode="markers",
                               marker={"color": FRONT_COLOUR, "size": 4}, name="front"))
    fig.update_layout(scene={"xaxis_title": labels[0], "yaxis_title": labels[1], "zaxis_title": labels[2]},
                      height=520, margin={"t": 30}, legend={"orientation": "h"})
    return fig


def metric_lines(history: pd.DataFrame, columns: Sequence[str], title: str, x: str = "step",
                 changes: Sequence[int] = ()) -> go.Figure:
    """Metrics against step (or oracle calls, or time) on log axes; NaN rows are skipped."""
    traces = []
    for name in columns:
        if name not in history:
            continue
        data = history[[x, name]].dropna()
        data = data[data[name] > 0]
        traces.append({"type": "scatter", "x": data[x].to_numpy(), "y": data[name].to_numpy(), "mode": "lines",
                       "name": name})
    return _figure(traces, {"title": {"text": title}, "xaxis": {"title": {"text": x}},
                            "yaxis": {"type": "log", "exponentformat": "power"}, "height": 320,
                            "legend": BELOW_LEGEND, "shapes": _step_lines(changes)}, title)


def weights_chart(history: pd.DataFrame, labels: Sequence[str], changes: Sequence[int] = ()) -> go.Figure:
    """The solver's weights on each objective against step."""
    traces = []
    for s, label in enumerate(labels):
        name = column("weights", s)
        if name in history:
            traces.append({"type": "scatter", "x": history["step"].to_numpy(), "y": history[name].to_numpy(),
                           "mode": "lines", "name": label})
    return _figure(traces, {"title": {"text": "Weights on the objectives"}, "xaxis": {"title": {"text": "step"}},
                            "yaxis": {"range": [0, 1]}, "height": 320, "legend": BELOW_LEGEND,
                            "shapes": _step_lines(changes)}, "weights")


def ternary_picker(preference: Sequence[float], labels: Sequence[str], resolution: int = 20) -> go.Figure:
    """A clickable grid on the 2-simplex (clicks land on markers) with the current preference."""
    grid = simplex_grid(3, (resolution + 1) * (resolution + 2) // 2)
    fig = go.Figure()
    fig.add_trace(go.Scatterternary(a=grid[:, 0], b=grid[:, 1], c=grid[:, 2], mode="markers",
                                    marker={"size": 9, "color": "rgba(31,119,180,0.18)"}, name="pick",
                                    hovertemplate="r = (%{a:.2f}, %{b:.2f}, %{c:.2f})<extra></extra>"))
    r = np.asarray(preference, dtype=float)
    fig.add_trace(go.Scatterternary(a=[r[0]], b=[r[1]], c=[r[2]], mode="markers",
                                    marker={"size": 16, "color": FRONT_COLOUR, "symbol": "diamond"}, name="r",
                                    hoverinfo="skip"))
    fig.update_layout(ternary={"aaxis": {"title": labels[0]}, "baxis": {"title": labels[1]},
                               "caxis": {"title": labels[2]}},
                      height=340, margin={"t": 30, "b": 10, "l": 40, "r": 40}, showlegend=False,
                      clickmode="event+select")
    return fig


def ternary_grid(resolution: int = 20) -> np.ndarray:
    """The points of `ternary_picker`, in the same order (point index → preference)."""
    return simplex_grid(3, (resolution + 1) * (resolution + 2) // 2)


def front_chart(F: np.ndarray, mask: np.ndarray, labels: Sequence[str], preferences: np.ndarray | None = None,
                analytic_front: np.ndarray | None = None, moving: np.ndarray | None = None,
                runs: Sequence[int] | None = None) -> go.Figure:
    """A sweep's result: its points, the non-dominated ones highlighted (2-D, 3-D or parcoords);
    `moving`: the latest points of runs still converging (open circles); `runs`: each point's run id,
    which a click on it gives back (its customdata)."""
    S = len(labels)
    fig = go.Figure()
    text = None
    if preferences is not None:
        text = ["r = (" + ", ".join(f"{v:.2f}" for v in r) + ")" for r in preferences]
    if S == 2:
        if analytic_front is not None:
            fig.add_trace(go.Scatter(x=analytic_front[:, 0], y=analytic_front[:, 1], mode="lines",
                                     line={"color": "#999", "dash": "dot"}, name="analytic front"))
        fig.add_trace(go.Scatter(x=F[:, 0], y=F[:, 1], mode="markers", text=text, name="runs (click to choose)",
                                 marker={"size": 10, "color": np.where(mask, FRONT_COLOUR, EXPLORED_COLOUR)},
                                 customdata=None if runs is None else np.asarray(runs, dtype=int)))
        if moving is not None:
            fig.add_trace(go.Scatter(x=moving[:, 0], y=moving[:, 1], mode="markers", name="runs converging",
                                     marker={"size": 9, "symbol": "circle-open", "color": EXPLORED_COLOUR}))
        fig.update_layout(xaxis_title=labels[0], yaxis_title=labels[1], clickmode="event+select")
    elif S == 3:
        fig.add_trace(go.Scatter3d(x=F[:, 0], y=F[:, 1], z=F[:, 2], mode="markers", text=text, name="runs",
                                   marker={"size": 5, "color": np.where(mask, FRONT_COLOUR, EXPLORED_COLOUR)},
                                   customdata=None if runs is None else np.asarray(runs, dtype=int)))
        if moving is not None:
            fig.add_trace(go.Scatter3d(x=moving[:, 0], y=moving[:, 1], z=moving[:, 2], mode="markers",
                                       name="runs converging", marker={"size": 4, "symbol": "circle-open",
                                                                       "color": EXPLORED_COLOUR}))
        fig.update_layout(scene={"xaxis_title": labels[0], "yaxis_title": labels[1], "zaxis_title": labels[2]})
    else:
        shown = F[mask] if len(F) or moving is None else moving
        fig.add_trace(go.Parcoords(dimensions=[{"label": labels[s], "values": shown[:, s]} for s in range(S)]))
    fig.update_layout(height=480, margin={"t": 30})
    return fig
