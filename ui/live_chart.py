"""A Plotly chart that stays one chart while its figure changes: the charts of a live run.

`st.plotly_chart` makes its element's identity from the figure, so every redraw with new points
mounts a new chart in the browser (Plotly.newPlot; for a 3-D scene a new WebGL context: 0.3-0.9 s
of the page's main thread each time on a machine without a GPU, measured), and a click that lands on
a chart being replaced is lost. This component (ui/components/live_chart/index.html, a Streamlit
component of its own) keeps one plot per key and updates it in place with Plotly.react; a click on a
point comes back as the component's value.

Its files are served from a folder of its own: the page, and plotly.js as the installed plotly
package ships it (no network, and the same version as the figures are built for).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import plotly
import plotly.graph_objects as go
import streamlit as st
import streamlit.components.v1 as components

from ui.live_feed import Update
from ui.served import FEED_JS, served_folder

PAGE = Path(__file__).resolve().parent / "components" / "live_chart" / "index.html"
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


def _served_folder() -> Path:
    """The component's folder: its page beside copies of plotly.js and of the feed follower (`served_folder`)."""
    return served_folder("live_chart", {"index.html": PAGE, "plotly.min.js": PLOTLY_JS, "feed.js": FEED_JS})


_component = components.declare_component("live_chart", path=str(_served_folder()))


def figure_spec(fig: go.Figure) -> str:
    """`fig` as the chart draws it (`fig` is given away: its template is dropped for the page's own, Streamlit's
    look, and 6 kB less per redraw)."""
    fig.layout.template = None
    return fig.to_json(validate=False)


def chart_feed(update: Update) -> Update:
    """A live chart's feed answer from `update`, whose content is a figure: {"spec": `figure_spec(...)`}."""
    return Update(update.version, lambda: {"spec": figure_spec(update.content())}, update.every)


def live_chart(fig: go.Figure, key: str, on_click: Callable[[], None] | None = None, height: int | None = None,
               feed: str | None = None, version: str | None = None, every: float | None = None,
               kick_after: float = 0.0) -> None:
    """Draw `fig` in the chart with `key`, in place of what it showed (`fig` is given away, see `figure_spec`).
    With `on_click`, a click on a point calls it (a widget callback); `clicked_points(key)` then says which
    points. With `feed` (ui/live_feed.py, answered by a `chart_feed`), the chart then follows it from `version`
    on, asking first after `every` seconds; with no `every`, it asks when the page's status line says a run started
    (`live_status(kick=...)`), `kick_after` seconds later."""
    shown_height = int(height or fig.layout.height or 450)
    _component(spec=figure_spec(fig), height=shown_height, clickable=on_click is not None, feed=feed, version=version,
               every=every, kick_after=kick_after, key=key, on_change=on_click, default=None)


def clicked_points(key: str) -> list[dict[str, Any]]:
    """The points of the last click on the chart with `key`: {curve, index, customdata, and x, y, z or
    a, b, c}; [] before any click."""
    value = st.session_state.get(key)
    if not isinstance(value, dict):
        return []
    return [p for p in value.get("points", []) if isinstance(p, dict)]
