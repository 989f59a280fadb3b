"""The preference widget: a slider (S = 2), a clickable ternary plot with exact inputs (S = 3),
sliders (S > 3); always shown normalised. Invalid input gets an inline message."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st

from pareto_app.preference import normalize_preference

from .charts import ternary_grid, ternary_picker
from .live_chart import clicked_points, live_chart


def _r3_key(prefix: str, s: int) -> str:
    # The number inputs' keys carry a version that a click (or show_preference) bumps: the inputs are
    # then new widgets, and the browser's values of the old ones (sent with every rerun, a fragment's
    # auto-rerun included) cannot put the old preference back.
    return f"{prefix}_r3_{s}_v{st.session_state.get(f'{prefix}_r3_version', 0)}"


def _set_r3(prefix: str, r: Sequence[float]) -> None:
    st.session_state[f"{prefix}_r3"] = [float(round(v, 4)) for v in r]
    st.session_state[f"{prefix}_r3_version"] = st.session_state.get(f"{prefix}_r3_version", 0) + 1


def _copy_ternary_click(prefix: str) -> None:
    # Into our own key (a plain key, not the inputs' keys: this callback may run in the Explore fragment's
    # auto-rerun, whose widget states are the browser's of before the click).
    for point in clicked_points(f"{prefix}_ternary"):
        if point.get("curve") == 0 and isinstance(point.get("index"), int):
            _set_r3(prefix, ternary_grid()[point["index"]])


def _copy_r3_input(prefix: str, s: int) -> None:
    st.session_state[f"{prefix}_r3"][s] = float(st.session_state[_r3_key(prefix, s)])


def preference_widget(S: int, labels: Sequence[str], prefix: str) -> np.ndarray | None:
    """The normalised preference, or None (with an inline error) when the input is invalid."""
    if S == 2:
        r1 = st.slider(f"Preference on {labels[0]} (the rest on {labels[1]})", 0.0, 1.0, 0.5, 0.01,
                       key=f"{prefix}_r2")
        raw = [r1, 1.0 - r1]
    elif S == 3:
        current = st.session_state.setdefault(f"{prefix}_r3", [round(1 / 3, 4)] * 3)
        try:
            shown = normalize_preference(current, 3)
        except ValueError:
            shown = np.full(3, 1 / 3)
        live_chart(ternary_picker(shown, labels), key=f"{prefix}_ternary", on_click=lambda: _copy_ternary_click(prefix))
        cols = st.columns(3)
        raw = [cols[s].number_input(labels[s], min_value=0.0, max_value=1e6, value=float(current[s]), step=0.05,
                                    format="%.4f", key=_r3_key(prefix, s), on_change=_copy_r3_input, args=(prefix, s))
               for s in range(3)]
    else:
        raw = [st.slider(f"Preference on {labels[s]}", 0.0, 1.0, round(1 / S, 2), 0.01, key=f"{prefix}_rn_{s}")
               for s in range(S)]
    try:
        r = normalize_preference(raw, S)
    except ValueError as err:
        st.error(str(err))
        return None
    st.caption("r = (" + ", ".join(f"{v:.3f}" for v in r) + ")  (normalised to the simplex)")
    return r


def show_preference(S: int, prefix: str, preference: Sequence[float]) -> list[float]:
    """Set the widget of `preference_widget(S, ..., prefix)` to `preference` (before it is drawn);
    returns the normalised preference the widget will then give."""
    r = np.asarray(preference, dtype=float)
    if S == 2:
        r1 = float(round(r[0] / r.sum(), 2))
        st.session_state[f"{prefix}_r2"] = r1
        raw = [r1, 1.0 - r1]
    elif S == 3:
        raw = [float(round(v, 4)) for v in r]
        _set_r3(prefix, raw)
    else:
        raw = [float(round(v, 2)) for v in r]
        for s in range(S):
            st.session_state[f"{prefix}_rn_{s}"] = raw[s]
    return [float(v) for v in normalize_preference(raw, S)]
