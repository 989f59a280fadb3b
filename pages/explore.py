"""Explore: run a solver, watch it stream, steer it with the preference, choose and export a point."""

from __future__ import annotations

import json

import streamlit as st

from pareto_app.background import BackgroundRun
from ui.charts import metric_lines, objective_space, thin, weights_chart
from ui.exploration import Exploration, point_payload, record_result
from ui.preference import preference_widget
from ui.setup import Setup, analytic_front, current_setup
from ui.store import archive, exports

setup: Setup = current_setup()
exploration: Exploration = st.session_state.setdefault("explore_exploration", Exploration())
worker: BackgroundRun | None = st.session_state.get("explore_worker")
running = worker is not None and worker.alive

st.title("Explore")
st.caption("Drag the preference while the solver runs: it follows from its next step.")

for message in setup.errors:
    st.error(message)
problem = setup.problem
labels = problem.labels if problem is not None else ["f1", "f2"]
S = problem.num_objectives if problem is not None else 2

left, right = st.columns([1, 2])
with left:
    st.subheader("Preference")
    preference = preference_widget(S, labels, prefix=f"explore_pref{S}")
    c1, c2, c3 = st.columns(3)
    start = c1.button("Start", type="primary", key="explore_start", disabled=running or not setup.ok or preference is None)
    if running and not worker.controller.paused:
        if c2.button("Pause", key="explore_pause"):
            worker.controller.pause()
            st.rerun()
    elif c2.button("Resume", key="explore_resume", disabled=not running):
        worker.controller.resume()
        st.rerun()
    if c3.button("Stop", key="explore_stop", disabled=not running):
        worker.controller.stop()
        worker.join(5)
        st.rerun()

if start and preference is not None and problem is not None:
    try:
        worker = BackgroundRun(problem, setup.solver, preference, steps=setup.steps, seed=setup.seed,
                               device=setup.device, metrics_every=setup.metrics_every, abandon_after=60.0,
                               **setup.options).start()
    except ValueError as err:
        st.error(str(err))
    else:
        st.session_state["explore_worker"] = worker
        st.session_state["explore_record"] = exploration.new_run(
            task=setup.task, task_params=setup.task_params, solver=setup.solver, options=setup.options,
            seed=setup.seed, steps=setup.steps)
        st.session_state["explore_sent"] = list(preference)
        st.rerun()

# Steering: a moved preference goes to the running solver, used from its next step on.
if running and preference is not None and list(preference) != st.session_state.get("explore_sent"):
    worker.controller.set_preference(preference)
    st.session_state["explore_sent"] = list(preference)


def _collect() -> None:
    """Drain the worker into the session's exploration; archive a run once it ends."""
    record = st.session_state.get("explore_record")
    current = st.session_state.get("explore_worker")
    if record is None or current is None:
        return
    exploration.add(record, current.drain())
    record.resolved_options = current.options
    if not current.alive and record.status == "running":
        exploration.add(record, current.drain())
        record.status, record.message = current.status, current.message
        if record.rows:
            try:
                record.store_id = archive().save(record_result(record, device=setup.device), label=record.label)
            except (OSError, ValueError) as err:
                st.warning(f"the run could not be archived: {err}")


def _changes(record) -> list[int]:
    return [int(row["step"]) for row in record.rows if row.get("preference_changed")]


@st.fragment(run_every=0.5 if running else None)
def live() -> None:
    if st.session_state.pop("explore_choice_clicked", False):
        st.rerun()  # the click reran only this fragment: redraw the page, whose selectbox shows the choice
    _collect()
    record = st.session_state.get("explore_record")
    current = st.session_state.get("explore_worker")
    if record is None:
        st.info("Set a preference and press Start.")
        return
    if current is not None and running and not current.alive:
        st.rerun()  # the run ended: refresh the buttons
    history = record.history
    if record.status in ("diverged", "failed"):
        st.error(f"{record.label} stopped: {record.message}")
    if history.empty:
        st.write("starting…")
        return
    last = record.rows[-1]
    rate = (last["step"] + 1) / last["elapsed"] if last["elapsed"] > 0 else 0.0
    oracle = ", ".join(f"{k[len('oracle_'):]} {int(v)}" for k, v in last.items()
                       if k.startswith("oracle_") and k != "oracle_total")
    state = "paused" if current is not None and current.alive and current.controller.paused else record.status
    st.markdown(f"**{record.label}** · {state} · step **{int(last['step']) + 1}**"
                f"{'' if record.steps is None else f' / {record.steps}'} · {rate:.0f} it/s · oracle calls: {oracle}")
    st.caption("weights: " + ", ".join(f"{labels[s]} {last[f'w{s + 1}']:.3f}" for s in range(S) if f"w{s + 1}" in last))
    explored = thin(exploration.points(setup.task), 3000)
    front = exploration.front(setup.task)
    analytic = analytic_front(setup)
    shown_pref = preference if preference is not None else [last[f"r{s + 1}"] for s in range(S)]
    history = thin(history)
    fig = objective_space(explored, front, history, shown_pref, labels, analytic, _changes(record), run=record.number)
    st.plotly_chart(fig, key="explore_objective_space", on_select=_remember_front_click, selection_mode="points")
    c1, c2 = st.columns(2)
    c1.plotly_chart(metric_lines(history, ["kkt_residual", "constraint_violation", "stationarity"],
                                 "KKT residual and constraint violation", changes=_changes(record)), key="explore_metrics")
    c2.plotly_chart(weights_chart(history, labels, _changes(record)), key="explore_weights")
    st.session_state["explore_front_size"] = len(front)


def _remember_front_click() -> None:
    # The figure changes every tick and that resets its selection: keep the click in our own key.
    event = st.session_state.get("explore_objective_space")
    points = getattr(getattr(event, "selection", None), "points", None)
    if points is None and isinstance(event, dict):
        points = event.get("selection", {}).get("points", [])
    # Front markers sit on trajectory markers, and a click may land on either: accept it when
    # the (run, step) it names is on the front.
    on_front = {(int(r.run), int(r.step)) for r in exploration.front(setup.task).itertuples()}
    for point in points or []:
        custom = point.get("customdata")
        if custom is not None and len(custom) == 2 and (int(custom[0]), int(custom[1])) in on_front:
            st.session_state["explore_choice"] = f"{int(custom[0])}:{int(custom[1])}"
            st.session_state["explore_choice_clicked"] = True


with right:
    live()

st.subheader("Choose a solution")
front = exploration.front(setup.task)
if front.empty:
    st.caption("Points of the front appear here once a run has produced iterates.")
else:
    keys = [f"{int(r.run)}:{int(r.step)}" for r in front.itertuples()]
    names = {k: f"run {k.split(':')[0]} · step {k.split(':')[1]} · F = (" +
             ", ".join(f"{v:.4g}" for v in front.iloc[i].filter(regex=r'^f\d+$')) + ")" for i, k in enumerate(keys)}
    if st.session_state.get("explore_choice") not in keys:
        st.session_state["explore_choice"] = keys[-1]  # the newest point of the front
    choice = st.selectbox("Front point (or click one on the chart)", keys, format_func=names.get, key="explore_choice")
    run_number, step = (int(v) for v in choice.split(":"))
    chosen = exploration.point(run_number, step)
    record = chosen["record"]
    payload = point_payload(record, chosen["row"], chosen["x"], chosen["y"])
    cols = st.columns(3)
    objectives = "\n".join(f"- {labels[s]}: {v:.6g}" for s, v in enumerate(payload["objectives"]))
    cols[0].markdown("**Objectives**\n\n" + objectives)
    cols[1].markdown("**Preference / weights**\n\n" + "\n".join(
        f"- {labels[s]}: r = {payload['preference'][s]:.3f}, w = {payload['weights'][s]:.3f}" for s in range(S)))
    metrics = payload["metrics"]
    cols[2].markdown("**Metrics**\n\n" + "\n".join(f"- {k}: {'—' if v is None else f'{v:.3e}'}" for k, v in metrics.items()))
    if problem is not None and problem.evaluate is not None and record.task == setup.task:
        x_at, y_at = (chosen[k].to(problem.device, problem.dtype) for k in ("x", "y"))
        held_out = problem.evaluate(x_at, y_at)
        payload["held_out"] = held_out
        st.markdown("**Held-out metrics** · " + " · ".join(f"{k} {v:.3f}" for k, v in held_out.items()))
    st.caption(f"{record.solver} · options {json.dumps(payload['reproduce']['options'], default=str)} · seed {record.seed}")
    as_json, as_csv, as_torch = exports(payload, record_result(record, device=setup.device))
    st.session_state["explore_last_export"] = as_json
    d1, d2, d3 = st.columns(3)
    d1.download_button("Point (JSON)", as_json, file_name=f"point-run{run_number}-step{step}.json",
                       mime="application/json", key="explore_dl_json")
    d2.download_button("Run history (CSV)", as_csv, file_name=f"history-run{run_number}.csv", mime="text/csv",
                       key="explore_dl_csv")
    d3.download_button("x and y (torch)", as_torch, file_name=f"point-run{run_number}-step{step}.pt",
                       mime="application/octet-stream", key="explore_dl_pt")
    reference = problem.reference_point if problem is not None else None
    st.caption(f"{len(front)} non-dominated of {len(exploration.points(setup.task))} explored points · "
               f"hypervolume {exploration.hypervolume(setup.task, reference):.6g}")
