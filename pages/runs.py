"""Runs: every finished run, kept in the SQLite archive; reload, export, delete."""

from __future__ import annotations

import streamlit as st

from pareto_app.store import export_csv, export_json, export_torch
from ui.charts import metric_lines, weights_chart
from ui.setup import current_setup
from ui.store import archive

current_setup()
st.title("Runs")
store = archive()
st.caption(f"archive: {store.path}")
runs = store.list()
if runs.empty:
    st.info("No runs yet: start one on the Explore or Sweep page.")
    st.stop()
shown = runs.copy()
shown["preference"] = shown["preference"].map(lambda r: "(" + ", ".join(f"{v:.3f}" for v in r) + ")")
st.dataframe(shown, hide_index=True, key="runs_table")
ids = runs["id"].tolist()
run_id = st.selectbox("Run", ids, format_func=lambda i: f"#{i} · {runs.set_index('id').loc[i, 'solver']} · "
                      f"{runs.set_index('id').loc[i, 'task']} · {runs.set_index('id').loc[i, 'status']}", key="runs_choice")
result = store.load(int(run_id))
labels = [f"f{s + 1}" for s in range(len(result.objectives))]
st.markdown(f"**{result.solver}** on **{result.task}** · preference {', '.join(f'{v:.3f}' for v in result.preference)}"
            f" · status {result.status}" + (f" — {result.message}" if result.message else ""))
st.write("objectives: " + ", ".join(f"{v:.6g}" for v in result.objectives))
history = result.history
c1, c2 = st.columns(2)
c1.plotly_chart(metric_lines(history, ["kkt_residual", "constraint_violation", "stationarity"], "Metrics"),
                key="runs_metrics")
c2.plotly_chart(weights_chart(history, labels), key="runs_weights")
d1, d2, d3, d4 = st.columns(4)
d1.download_button("Result (JSON)", export_json(result), file_name=f"run-{run_id}.json", mime="application/json",
                   key="runs_dl_json")
d2.download_button("History (CSV)", export_csv(result), file_name=f"run-{run_id}.csv", mime="text/csv", key="runs_dl_csv")
d3.download_button("x and y (torch)", export_torch(result), file_name=f"run-{run_id}.pt", key="runs_dl_pt")
if d4.button("Delete", key="runs_delete"):
    store.delete(int(run_id))
    st.rerun()
