"""Compare: solvers on the same task and preference at an equal oracle budget or wall time."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

import pareto_app as pa
from pareto_app.background import BackgroundJob
from ui.jobs import finished_result
from ui.preference import preference_widget
from ui.setup import Setup, current_setup

setup: Setup = current_setup()
job: BackgroundJob | None = st.session_state.get("compare_job")
running = job is not None and job.alive

st.title("Compare")
st.caption("Each solver runs with its default options until it has spent the same budget.")
for message in setup.errors:
    if "needs a strongly convex" not in message:
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
budget = c2.number_input("Oracle calls" if by == "oracle" else "Seconds", min_value=1.0,
                         value=20000.0 if by == "oracle" else 5.0, key=f"compare_budget_{by}")
preference = preference_widget(S, labels, prefix=f"compare_pref{S}")

if len(chosen) < 2:
    st.info("Choose two or more solvers.")
if st.button("Run comparison", type="primary", key="compare_start",
             disabled=running or problem is None or len(chosen) < 2 or preference is None):
    def work(progress, problem=problem, chosen=tuple(chosen), r=preference, s=setup, budget=budget, by=by):
        return pa.compare(problem, list(chosen), r, budget=budget, by=by, seed=s.seed, device=s.device,
                          metrics_every=s.metrics_every, progress=progress)

    st.session_state["compare_job"] = BackgroundJob(work, name="compare").start()
    st.rerun()


def overlay(histories: dict, column: str, x: str, title: str, log: bool = True) -> go.Figure:
    fig = go.Figure()
    for label, frame in histories.items():
        if column in frame and x in frame:
            data = frame[[x, column]].dropna()
            fig.add_trace(go.Scatter(x=data[x], y=data[column], mode="lines", name=label))
    if log:
        fig.update_yaxes(type="log")
    fig.update_layout(title=title, xaxis_title={"oracle_total": "oracle calls", "elapsed": "seconds"}[x], height=320,
                      margin={"t": 40}, legend={"orientation": "h", "y": -0.3})
    return fig


@st.fragment(run_every=0.5 if running else None)
def results() -> None:
    histories = finished_result("compare_job", "solvers", len(chosen), running)
    if histories is None:
        return
    for label, frame in histories.items():
        status = frame["status"].iloc[0] if len(frame) else "no iterate"
        if status != "finished":
            st.warning(f"{label}: {status}")
    x = st.radio("Against", ["oracle_total", "elapsed"], format_func={"oracle_total": "oracle calls",
                                                                      "elapsed": "wall time"}.get,
                 key="compare_axis", horizontal=True)
    c1, c2 = st.columns(2)
    c1.plotly_chart(overlay(histories, "stationarity", x, "Pareto stationarity"), key="compare_stat")
    c2.plotly_chart(overlay(histories, "kkt_residual", x, "KKT residual at the preference"), key="compare_kkt")
    cols = st.columns(min(S, 3))
    for s in range(S):
        cols[s % len(cols)].plotly_chart(overlay(histories, f"f{s + 1}", x, labels[s], log=False), key=f"compare_f{s}")
    summary = {label: {"steps": len(f), "oracle calls": int(f["oracle_total"].iloc[-1]) if len(f) else 0,
                       **{labels[s]: float(f[f"f{s + 1}"].iloc[-1]) for s in range(S) if len(f)}}
               for label, f in histories.items()}
    st.dataframe(summary)


results()
