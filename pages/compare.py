"""Compare: solvers on the same task and preference at an equal oracle budget or wall time.

The comparison is one run in the archive (kind "compare") whose worker process runs a child
run per solver, each until the first step that reaches the shared budget. This page starts
it, keeps its id, and overlays the arms' histories, redrawn while they run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import pareto_app as pa
from pareto_app import launcher
from pareto_app.history import column
from pareto_app.runspec import RunSpec
from pareto_app.termination import Termination
from ui.exploration import RunView, open_view
from ui.jobs import cancel_button, children_states, end_notice, is_live, live_progress, parent_state
from ui.live_chart import live_chart
from ui.preference import preference_widget
from ui.setup import Setup, current_setup
from ui.store import archive, archive_problem

AXES = {"oracle_total": "oracle calls", "elapsed": "wall time (s)"}

setup: Setup = current_setup()
store = archive()
launcher.warm()  # the fork server ready before the first Run comparison
comparison = parent_state(store, "compare_run")
running = is_live(comparison)

st.title("Compare")
st.caption("Each solver runs with its default options until the first step that reaches the same budget.")
if archive_problem():
    st.warning(archive_problem())
for message in setup.errors:
    if "needs a strongly convex" not in message:  # the sidebar's solver is not used here
        st.error(message)
problem = setup.problem
S = problem.num_objectives if problem is not None else 2
labels = problem.labels if problem is not None else ["f1", "f2"]

usable = [name for name in pa.solvers.names()
          if problem is None or problem.strongly_convex or not pa.solvers.get(name).needs_strong_convexity]
default = [n for n in ("wc-mhgd", "moml", "forum") if n in usable] or usable[:2]
chosen = st.multiselect("Solvers", usable, default=default, key="compare_solvers")
c1, c2 = st.columns(2)
by = c1.radio("Budget", ["oracle", "time"], format_func={"oracle": "equal oracle calls", "time": "equal wall time"}.get,
              key="compare_by", horizontal=True)
budget = float(c2.number_input("Oracle calls" if by == "oracle" else "Seconds", min_value=1.0,
                               value=20000.0 if by == "oracle" else 5.0, key=f"compare_budget_{by}"))
preference = preference_widget(S, labels, prefix=f"compare_pref{S}")

if len(chosen) < 2:
    st.info("Choose two or more solvers.")
b1, b2 = st.columns([1, 4])
if b1.button("Run comparison", type="primary", key="compare_start",
             disabled=running or problem is None or len(chosen) < 2 or preference is None):
    termination = Termination(oracle_budget=budget) if by == "oracle" else Termination(wall_time=budget)
    # The parent's solver column names the arms, so the Runs page lists it readably; each child
    # runs the solver of its arm.
    spec = RunSpec(kind="compare", arms=[(name, {}) for name in chosen], solver=" vs ".join(chosen),
                   preference=[float(v) for v in preference], task=setup.task, task_params=setup.task_params,
                   seed=setup.seed, device=setup.device, metrics_every=setup.metrics_every,
                   divergence_factor=setup.divergence_factor, termination=termination,
                   idle_limit=setup.idle_limit)
    st.session_state["compare_run"] = launcher.start(store, spec, num_objectives=S, label="compare")
    st.rerun()
with b2:
    cancel_button(store, comparison, "compare_cancel")


def _views(children: list[dict]) -> dict[int, RunView]:
    """A view per arm, read on from where the last tick left off (only new rows are read)."""
    parent = st.session_state.get("compare_run")
    if st.session_state.get("compare_views_of") != parent:
        st.session_state["compare_views"] = {}
        st.session_state["compare_views_of"] = parent
        st.session_state["compare_settled"] = set()
    views: dict[int, RunView] = st.session_state["compare_views"]
    # Arms read to their end. A refresh reads the rows, then the status: rows written between
    # the two reads are only certain to be in once a refresh began after the arm had ended.
    settled: set[int] = st.session_state["compare_settled"]
    for child in children:
        run_id = int(child["id"])
        if run_id in settled:
            view = views[run_id]
            if (child["status"], child["iterations"]) == (view.status, view.history.seen):
                continue
            # Resumed from the Runs page: its rows after the checkpoint were replaced; read it afresh.
            settled.discard(run_id)
            del views[run_id]
        try:
            if run_id not in views:
                views[run_id] = open_view(store, run_id)
                continue
            ended_before = not views[run_id].live
            views[run_id].refresh(store)
        except KeyError:  # deleted meanwhile
            views.pop(run_id, None)
            continue
        if ended_before and not views[run_id].behind:
            settled.add(run_id)
    return views


def overlay(views: dict[int, RunView], column: str, x: str, title: str, log: bool = True) -> go.Figure:
    """One line per arm of `column` against oracle calls or time."""
    fig = go.Figure()
    for view in views.values():
        frame = view.history.frame()
        if column in frame and x in frame:
            data = frame[[x, column]].dropna()
            if log:
                data = data[data[column] > 0]
            fig.add_trace(go.Scatter(x=data[x], y=data[column], mode="lines", name=view.spec.get("solver", "")))
    if log:
        fig.update_yaxes(type="log", exponentformat="power")
    fig.update_layout(title=title, xaxis_title=AXES[x], height=320, margin={"t": 40},
                      legend={"orientation": "h", "y": -0.3})
    return fig


def below_one_step(view: RunView) -> str | None:
    """The notice for an arm whose first step already spent more than the whole budget."""
    termination = view.spec.get("termination") or {}
    history = view.history
    if len(history) == 0:
        return None
    solver = view.spec.get("solver", "")
    oracle_budget, wall_time = termination.get("oracle_budget"), termination.get("wall_time")
    if oracle_budget is not None and history.oracle_total[0] > oracle_budget:
        return (f"budget {oracle_budget:g} is below one step of {solver} ({history.oracle_total[0]:.0f} oracle calls): "
                f"it stopped after its first step")
    if wall_time is not None and history.elapsed[0] > wall_time:
        return f"budget {wall_time:g} s is below one step of {solver} ({history.elapsed[0]:.3g} s): it stopped after its " \
               f"first step"
    return None


def summary_table(views: dict[int, RunView], arm_labels: list[str]) -> pd.DataFrame:
    rows = []
    for view in views.values():
        history, last = view.history, view.history.last or {}
        rows.append({"run": f"#{view.run_id}", "solver": view.spec.get("solver", ""), "status": view.status,
                     "steps": int(last.get("step", -1)) + 1, "oracle calls": int(last.get("oracle_total", 0) or 0),
                     "seconds": float(last.get("elapsed", np.nan) or np.nan),
                     **{arm_labels[s]: float(history.objectives[-1, s]) if len(history) else np.nan
                        for s in range(history.S)},
                     "stationarity": _last_finite(history.stationarity),
                     "KKT residual": _last_finite(history.kkt_residual)})
    return pd.DataFrame(rows)


def _last_finite(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if len(finite) else np.nan


# Rerun (not ticking) when its live progress line says the page draws something differently: a run ended, or the
# runs going on moved a twentieth further (ui/jobs.py live_progress).
@st.fragment
def results() -> None:
    state = parent_state(store, "compare_run")
    if state is None:
        st.info("Choose the solvers and the budget, and press Run comparison.")
        return
    if running and not is_live(state):
        st.rerun()  # the comparison ended: redraw the whole page, whose buttons depend on it
    if is_live(state):
        store.watch(int(state["id"]))  # its arms count a watched parent as watched (idle limit)
    spec = state["spec"] or {}
    children = children_states(store, int(state["id"]))
    live_progress(store, state, children, len(spec.get("arms") or []), "solvers", key="compare_status")
    end_notice(state)
    views = _views(children)
    for child in children:
        view = views.get(int(child["id"]))
        if child["status"] in ("diverged", "failed", "interrupted"):
            st.warning(f"{child['solver']} (run #{child['id']}) {child['status']}: {child['message']}")
        elif view is not None and not view.live and (notice := below_one_step(view)):
            st.warning(notice)
    views = {i: v for i, v in views.items() if len(v.history)}
    if not views:
        st.caption("The arms' curves appear here as they run.")
        return
    S_run = next(iter(views.values())).history.S
    same = spec.get("task") == setup.task and len(labels) == S_run
    arm_labels = labels if same else [f"f{s + 1}" for s in range(S_run)]
    x = st.radio("Against", list(AXES), format_func=AXES.get, key="compare_axis", horizontal=True)
    c1, c2 = st.columns(2)
    with c1:
        live_chart(overlay(views, "stationarity", x, "Pareto stationarity"), key="compare_stat")
    with c2:
        live_chart(overlay(views, "kkt_residual", x, "KKT residual at the preference"), key="compare_kkt")
    cols = st.columns(min(S_run, 3))
    for s in range(S_run):
        with cols[s % len(cols)]:
            live_chart(overlay(views, column("objectives", s), x, arm_labels[s], log=False), key=f"compare_f{s}")
    st.dataframe(summary_table(views, arm_labels), hide_index=True, key="compare_summary")


results()
