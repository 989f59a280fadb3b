"""The status of a live run (progress, status line, weights), updated from its feed without reruns.

The component (ui/components/live_status/index.html) draws `content` at once, then asks `feed`
(ui/live_feed.py) for newer content at the pace each answer gives. Its value is the run's state
("status|command") when that differs from the state drawn: a change of it reruns the caller (a
fragment: the fragment), which redraws what depends on the state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit.components.v1 as components

FOLDER = Path(__file__).resolve().parent / "components" / "live_status"

_component = components.declare_component("live_status", path=str(FOLDER))


def live_status(content: dict[str, Any], key: str, feed: str | None = None, version: str | None = None,
                every: float | None = None) -> str | None:
    """Draw `content` ({progress, line: [[text, bold], ...], caption, state}); with `feed`, follow it. The
    state the browser last reported (None before any)."""
    return _component(content=content, feed=feed, version=version, every=every, key=key, default=None)
