"""Sweep: many preferences (a simplex grid or random), one run each, the front they trace."""

from __future__ import annotations

import numpy as np
import streamlit as st

import pareto_app as pa
from pareto_app.background import BackgroundJob
from pareto_app.store import export_point
from pareto_app.tasks.quadratic_common import simplex_grid
from ui.charts import front_chart
from ui.jobs import finished_result
from ui.setup import Setup, analytic_front, current_setup
from ui.store import archive, exports

setup: Setup = current_setup()
job: BackgroundJob | None = st.session_state.get("sweep_job")
running = job is not None and job.alive

st.title("Sweep")
st.caption("One run per preference; the non-dominated results trace the front.")
for message in setup.errors:
    st.error(message)
problem = setup.problem
S = problem.num_objectives if problem is not None else 2
labels = problem.labels if problem is not None else ["f1", "f2"]

c1, c2, c3 = st.columns(3)
kind = c1.radio("Preferences", ["simplex grid", "random"], key="sweep_kind", horizontal=True)
count = int(c2.number_input("How many", min_value=2, max_value=500, value=9, key="sweep_count"))
seed = int(c3.number_input("Random seed", min_value=0, value=0, key="sweep_seed", disabled=kind != "random"))
if kind == "simplex grid":
    P = simplex_grid(S, count)
    P = P[(P > 0).any(axis=1)]
else:
    P = np.random.default_rng(seed).dirichlet(np.ones(S), size=count)
st.caption(f"{len(P)} preferences · {setup.solver} · {setup.steps} steps each")

if st.button("Run sweep", type="primary", key="sweep_start", disabled=running or not setup.ok):
    def work(progress, problem=problem, P=P, s=setup):
        return pa.sweep(problem, s.solver, P, steps=s.steps, seed=s.seed, device=s.device, progress=progress,
                        **s.options)

    st.session_state["sweep_job"] = BackgroundJob(work, name="sweep").start()
    st.session_state["sweep_saved"] = False
    st.rerun()


@st.fragment(run_every=0.5 if running else None)
def progress() -> None:
    if st.session_state.get("sweep_job") is None:
        st.info("Choose the preferences and press Run sweep.")
        return
    sweep: pa.Sweep | None = finished_result("sweep_job", "runs", len(P), running)
    if sweep is None:
        return
    if not st.session_state.get("sweep_saved"):
        store = archive()
        for result in sweep.results:
            store.save(result, label="sweep")
        st.session_state["sweep_saved"] = True
    F, mask = sweep.objectives, sweep.front_mask
    reference = problem.reference_point if problem is not None else None
    st.metric("Hypervolume of the front", f"{sweep.hypervolume(reference):.6g}")
    analytic = analytic_front(setup)
    st.plotly_chart(front_chart(F, mask, labels, sweep.preferences, analytic), key="sweep_front",
                    on_select=_remember_click, selection_mode="points")
    options = list(range(len(F)))
    if st.session_state.get("sweep_choice") not in options:
        st.session_state["sweep_choice"] = int(np.flatnonzero(mask)[0])
    choice = st.selectbox("Run", options, key="sweep_choice", format_func=lambda i: (
        f"r = ({', '.join(f'{v:.2f}' for v in sweep.preferences[i])}) → F = ({', '.join(f'{v:.4g}' for v in F[i])})"
        + ("  ★ front" if mask[i] else "")))
    result = sweep.results[choice]
    point = export_point(result, int(result.history["step"].iloc[-1]))
    as_json, as_csv, as_torch = exports(point, result)
    d1, d2, d3 = st.columns(3)
    d1.download_button("Point (JSON)", as_json, file_name=f"sweep-point-{choice}.json", mime="application/json",
                       key="sweep_dl_json")
    d2.download_button("Run history (CSV)", as_csv, file_name=f"sweep-history-{choice}.csv", mime="text/csv",
                       key="sweep_dl_csv")
    d3.download_button("x and y (torch)", as_torch, file_name=f"sweep-point-{choice}.pt", key="sweep_dl_pt")


def _remember_click() -> None:
    event = st.session_state.get("sweep_front")
    points = getattr(getattr(event, "selection", None), "points", None) or []
    for point in points:
        index = point.get("point_index")
        if index is not None:
            st.session_state["sweep_choice"] = int(index)


progress()
