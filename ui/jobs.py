"""Showing a background job (a sweep, a comparison) on its page."""

from __future__ import annotations

from typing import Any

import streamlit as st

from pareto_app.background import BackgroundJob


def finished_result(key: str, unit: str, expected: int, was_running: bool) -> Any:
    """Draw the job's progress bar; its result once it has finished, else None.

    `was_running` is whether the job was alive when the page started: if it has ended since,
    the whole page reruns so its buttons come back.
    """
    job: BackgroundJob | None = st.session_state.get(key)
    if job is None:
        return None
    st.progress(job.fraction, text=f"{job.done} / {job.total or expected} {unit}")
    if job.alive:
        return None
    if was_running:
        st.rerun()
    if job.status == "failed":
        st.error(job.message)
        return None
    return job.result
