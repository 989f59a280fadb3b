"""A sweep or a comparison on its page: a parent run whose worker process runs its child runs.

The page keeps only the parent's id in its session state; everything else (its progress, its
children and their results) is read from the archive on each tick, so a closed tab or a
restarted server loses nothing. Plain helpers over `RunStore` plus the few widgets both pages
draw the same way.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import streamlit as st

from pareto_app import launcher
from pareto_app.store import LIVE_STATES, RunStore
from ui import live_feed
from ui.live_status import live_status

# How often a page redraws a live sweep or comparison (seconds).
REDRAW_EVERY_S = 0.4


def is_live(state: dict[str, Any] | None) -> bool:
    """Whether a run (as `RunStore.state` gives it) still has a worker on it."""
    return state is not None and state["status"] in LIVE_STATES


def parent_state(store: RunStore, key: str) -> dict[str, Any] | None:
    """The state of the run whose id the page keeps under `key`, or None.

    A run deleted meanwhile (from the Runs page, or another tab) is forgotten, not an error.
    """
    run_id = st.session_state.get(key)
    if run_id is None:
        return None
    try:
        state = store.state(int(run_id))
    except KeyError:
        st.session_state.pop(key, None)
        return None
    if state["status"] == "queued":
        launcher.warm()  # takes up the fork server's answers: a job it could not start fails its run, said here
    return state


def children_states(store: RunStore, parent: int) -> list[dict[str, Any]]:
    """The states of a parent's child runs, in the order the worker made them (one read of the archive)."""
    return store.children_states(parent)


def shown_status(store: RunStore, state: dict[str, Any]) -> str:
    """The parent's status, with a stop that was asked for but not yet obeyed shown at once."""
    if is_live(state) and store.control(state["id"])["command"] == "stop":
        return "stopping…"
    return str(state["status"])


def progress_line(store: RunStore, state: dict[str, Any], children: list[dict[str, Any]], total: int,
                  unit: str) -> tuple[float, list[list[Any]]]:
    """The parent's progress in [0, 1] and its line as [text, bold] parts: "k / n runs", and how far its current
    child is."""
    done = sum(1 for child in children if not is_live(child))
    line: list[list[Any]] = [[f"{done} / {total} {unit}", True], [f" · {shown_status(store, state)}", False]]
    running = [child for child in children if child["status"] == "running"]
    if len(running) > 1 and is_live(state):  # a batched sweep: its runs step together
        line.append([f" · {len(running)} runs stepping together at {min(float(c['progress']) for c in running):.0%}",
                     False])
    elif running and is_live(state):
        current = running[0]
        line.append([f" · run #{current['id']} ({current['solver']}) at {float(current['progress']):.0%}", False])
    return min(1.0, max(0.0, float(state["progress"]))), line


def progress_bar(store: RunStore, state: dict[str, Any], children: list[dict[str, Any]], total: int, unit: str) -> None:
    """The parent's progress ("k / n runs"), and how far its current child is (`progress_line`)."""
    progress, line = progress_line(store, state, children, total, unit)
    st.progress(progress, text="".join(f"**{text}**" if bold else text for text, bold in line))


def redrawn_when(state: dict[str, Any], children: list[dict[str, Any]]) -> str:
    """What the page draws differently: the parent's status, how many children have ended, and its progress in
    twentieths (the latest points of the runs still going move on). A stop asked for shows in the line itself."""
    ended = sum(1 for child in children if not is_live(child))
    return f"{state['status']}|{ended}|{int(20 * float(state['progress']))}"


def live_progress(store: RunStore, state: dict[str, Any], children: list[dict[str, Any]], total: int, unit: str,
                  key: str) -> None:
    """The parent's progress line (`progress_line`): while the parent is live, followed over HTTP (`follow_line`);
    once it has ended, `progress_bar`."""
    if not is_live(state):
        stop_following(key)
        progress_bar(store, state, children, total, unit)
        return
    parent = int(state["id"])

    def line(now: dict[str, Any]) -> tuple[float, list[list[Any]], str]:
        kids = children_states(store, parent)
        return (*progress_line(store, now, kids, total, unit), redrawn_when(now, kids))

    follow_line(store, state, key, line)


def follow_line(store: RunStore, state: dict[str, Any], key: str,
                line: Callable[[dict[str, Any]], tuple[float, list[list[Any]], str]]) -> None:
    """A live run's progress bar and line, `line(state)` = (progress, [text, bold] parts, what the page draws
    differently), following the archive over HTTP (ui/live_feed.py) with no rerun of the page; the fragment calling
    this is rerun only when that third part changes. A fragment ticking a few times a second cost the browser a
    render of its elements each time, changed or not (0.35 cores during a sweep, against 0.09 so, measured). The
    run is marked watched as the line is asked for (its idle limit)."""
    token = st.session_state.setdefault(f"{key}_live_token", live_feed.new_token())
    lock = st.session_state.setdefault(f"{key}_live_lock", threading.RLock())
    run, watched = int(state["id"]), [0.0]

    def update(now: dict[str, Any] | None = None) -> live_feed.Update:
        now = now or store.state(run)
        if is_live(now) and time.monotonic() - watched[0] >= 1.0:
            store.watch(run)  # a sweep's or comparison's children count a watched parent as watched
            watched[0] = time.monotonic()
        progress, parts, redrawn = line(now)
        content = {"progress": progress, "line": parts, "caption": "", "state": redrawn}
        return live_feed.Update(json.dumps(content), lambda: content, REDRAW_EVERY_S if is_live(now) else None)

    first = update(state)
    feed = live_feed.publish(token, "progress", update, lock)
    live_status(first.content(), key=key, feed=feed, version=first.version, every=first.every)


def stop_following(key: str) -> None:
    """The line `follow_line` drew under `key` is no longer followed."""
    token = st.session_state.get(f"{key}_live_token")
    if token is not None:
        live_feed.withdraw(token, "progress")


def end_notice(state: dict[str, Any]) -> None:
    """Why a parent ended, when it did not simply finish."""
    if state["status"] in ("failed", "interrupted"):
        st.error(f"run #{state['id']} {state['status']}: {state['message']}")
    elif state["status"] == "stopped":
        st.info(f"run #{state['id']} stopped: {state['message'] or 'stopped from the page'}")


def cancel_button(store: RunStore, state: dict[str, Any] | None, key: str) -> None:
    """A Cancel button while the parent runs: it stops the current child and the rest."""
    if not is_live(state):
        return
    if st.button("Cancel", key=key, help="stop the run going on now and the ones not started"):
        store.command(int(state["id"]), "stop")
        st.rerun()
