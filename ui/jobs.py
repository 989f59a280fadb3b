"""A sweep or a comparison on its page: a parent run whose worker process runs its child runs.

The page keeps only the parent's id in its session state; everything else (its progress, its
children and their results) is read from the archive on each tick, so a closed tab or a
restarted server loses nothing. Plain helpers over `RunStore` plus the few widgets both pages
draw the same way.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from pareto_app import launcher
from pareto_app.store import LIVE_STATES, RunStore

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


def progress_bar(store: RunStore, state: dict[str, Any], children: list[dict[str, Any]], total: int, unit: str) -> None:
    """The parent's progress ("k / n runs"), and how far its current child is."""
    done = sum(1 for child in children if not is_live(child))
    text = f"**{done} / {total} {unit}** · {shown_status(store, state)}"
    running = [child for child in children if child["status"] == "running"]
    if len(running) > 1 and is_live(state):  # a batched sweep: its runs step together
        text += f" · {len(running)} runs stepping together at {min(float(c['progress']) for c in running):.0%}"
    elif running and is_live(state):
        current = running[0]
        text += f" · run #{current['id']} ({current['solver']}) at {float(current['progress']):.0%}"
    st.progress(min(1.0, max(0.0, float(state["progress"]))), text=text)


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
