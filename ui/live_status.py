"""The status of a live run (progress, status line, weights), updated from its feed without reruns.

The component (ui/components/live_status/index.html) draws `content` at once, then asks `feed`
(ui/live_feed.py) for newer content at the pace each answer gives. Its value is the run's state
("status|command") when that differs from the state drawn: a change of it reruns the caller (a
fragment: the fragment), which redraws what depends on the state.
"""

from __future__ import annotations

from typing import Any

import streamlit.components.v1 as components

from ui.served import COMPONENTS, FEED_JS, served_folder

PAGE = COMPONENTS / "live_status" / "index.html"

_component = components.declare_component("live_status", path=str(served_folder("live_status", {
    "index.html": PAGE, "feed.js": FEED_JS})))


def live_status(content: dict[str, Any], key: str, feed: str | None = None, version: str | None = None,
                every: float | None = None, kick: str | None = None) -> str | None:
    """Draw `content` ({progress, line: [[text, bold], ...], caption, state}); with `feed`, follow it. A `kick`
    the browser has not had yet (a started run's id) tells the page's other live parts to ask their feeds at
    once: they were published anew with no rerun of those parts. The state the browser last reported (None
    before any)."""
    return _component(content=content, feed=feed, version=version, every=every, kick=kick, key=key, default=None)
