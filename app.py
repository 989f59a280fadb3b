"""pareto-app: run a solver on a task and watch its objectives stream in.

A first, single page over the library; pages stay thin (widgets and plots only).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

import pareto_app as pa
from pareto_app.background import BackgroundRun
from pareto_app.preference import normalize_preference

st.set_page_config(page_title="pareto-app", layout="wide")
st.title("pareto-app: multi-objective bilevel explorer")

with st.sidebar:
    task_names = pa.tasks.names()
    task = st.selectbox("Task", task_names, index=task_names.index(pa.tasks.DEFAULT_TASK), key="explore_task")
    spec = pa.tasks.spec(task)
    S = int(st.number_input("Objectives S", min_value=2, max_value=5, value=2, key="explore_S")) \
        if "S" in spec.params else 2
    solver_names = pa.solvers.names()
    default_solver = "wc-penalty" if task == "toy-llgc" else "wc-mhgd"
    solver = st.selectbox("Solver", solver_names, index=solver_names.index(default_solver), key="explore_solver")
    steps = int(st.number_input("Steps", min_value=1, max_value=100_000, value=500, key="explore_steps"))
    seed = int(st.number_input("Seed", min_value=0, value=0, key="explore_seed"))
    st.caption("Preference r (normalised to the simplex)")
    raw = [st.slider(f"r{s + 1}", 0.0, 1.0, 1.0 / S, 0.01, key=f"explore_r{s}") for s in range(S)]

run: BackgroundRun | None = st.session_state.get("explore_run")

try:
    preference = normalize_preference(raw, S)
    st.write("r = (" + ", ".join(f"{v:.3f}" for v in preference) + ")")
except ValueError as err:
    preference = None
    st.error(str(err))

col_start, col_stop = st.columns(2)
if col_start.button("Start", type="primary", disabled=preference is None, key="explore_start"):
    try:
        problem = pa.tasks.get(task, S=S) if "S" in spec.params else pa.tasks.get(task)
        run = BackgroundRun(problem, solver, preference, steps=steps, seed=seed, device="auto").start()
        st.session_state["explore_run"] = run
        st.session_state["explore_rows"] = []
    except ValueError as err:
        st.error(str(err))
if col_stop.button("Stop", disabled=run is None or not run.alive, key="explore_stop") and run is not None:
    run.controller.stop()

if run is not None and preference is not None and run.alive:
    run.controller.set_preference(preference)


@st.fragment(run_every=0.5)
def live() -> None:
    current: BackgroundRun | None = st.session_state.get("explore_run")
    if current is None:
        st.info("Pick a task, a solver and a preference, then press Start.")
        return
    rows = st.session_state.setdefault("explore_rows", [])
    rows.extend(it.row() | {"objectives": it.objectives} for it in current.drain())
    if current.status in ("diverged", "failed"):
        st.error(current.message)
    if not rows:
        st.write("starting…")
        return
    last = rows[-1]
    st.write(f"step {last['step'] + 1} · status {current.status} · oracle calls {last['oracle_total']}")
    F = np.array([r["objectives"] for r in rows])
    fig = go.Figure()
    if F.shape[1] >= 2:
        fig.add_trace(go.Scatter(x=F[:, 0], y=F[:, 1], mode="markers+lines",
                                 marker={"color": np.arange(len(F)), "colorscale": "Viridis"}, name="iterates"))
        fig.update_layout(xaxis_title="f1", yaxis_title="f2", height=450)
    st.plotly_chart(fig, key="explore_front")


live()
