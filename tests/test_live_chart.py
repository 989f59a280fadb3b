"""The live chart's served folder and what a redraw sends (ui/live_chart.py); the browser tests check the chart."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go

from ui import live_chart
from ui.served import FEED_JS


def test_the_served_folder_holds_the_page_and_the_packaged_plotly_js(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETO_APP_CACHE", str(tmp_path))
    folder = live_chart._served_folder()
    assert folder.parent == tmp_path
    assert (folder / "index.html").read_bytes() == live_chart.PAGE.read_bytes()
    assert (folder / "plotly.min.js").read_bytes() == live_chart.PLOTLY_JS.read_bytes()
    assert (folder / "feed.js").read_bytes() == FEED_JS.read_bytes()  # the follower its page shares
    # Made once: a second server finds it, and nothing half-made is left beside it.
    assert live_chart._served_folder() == folder
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]


def test_a_folder_missing_a_file_is_made_again_and_an_unwritable_cache_gives_a_private_one(tmp_path, monkeypatch):
    monkeypatch.setenv("PARETO_APP_CACHE", str(tmp_path / "cache"))
    folder = live_chart._served_folder()
    (folder / "plotly.min.js").unlink()  # a cleaner of old files
    assert live_chart._served_folder() == folder and (folder / "plotly.min.js").is_file()
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("PARETO_APP_CACHE", str(blocked / "cache"))  # cannot be made
    private = live_chart._served_folder()
    assert private.parent != blocked and (private / "index.html").is_file() and (private / "plotly.min.js").is_file()
    assert private.stat().st_mode & 0o077 == 0  # this user's only


def test_the_page_loads_plotly_from_its_own_folder():
    page = live_chart.PAGE.read_text()
    assert '<script src="plotly.min.js"></script>' in page
    assert "streamlit:componentReady" in page and "plotly_click" in page


def test_a_redraw_sends_the_figure_without_plotly_s_default_template(monkeypatch):
    sent = {}
    monkeypatch.setattr(live_chart, "_component", lambda **kwargs: sent.update(kwargs))
    fig = go.Figure(go.Scatter(x=np.arange(3.0), y=np.array([1.0, 4.0, 9.0]), name="t"))
    fig.update_layout(height=320)
    live_chart.live_chart(fig, key="k")
    spec = json.loads(sent["spec"])
    assert "template" not in spec["layout"]  # the page's own (Streamlit's look), and 6 kB less per redraw
    assert spec["data"][0]["name"] == "t" and sent["height"] == 320 and sent["key"] == "k"
    assert sent["clickable"] is False and sent["on_change"] is None
    live_chart.live_chart(fig, key="k", on_click=print)
    assert sent["clickable"] is True and sent["on_change"] is print


def test_clicked_points_reads_the_component_s_value(monkeypatch):
    state = {"k": {"clicks": 2, "points": [{"curve": 0, "index": 5, "customdata": "3:4"}, "junk"]}, "empty": None}
    monkeypatch.setattr(live_chart.st, "session_state", state)
    assert live_chart.clicked_points("k") == [{"curve": 0, "index": 5, "customdata": "3:4"}]
    assert live_chart.clicked_points("empty") == [] and live_chart.clicked_points("missing") == []

