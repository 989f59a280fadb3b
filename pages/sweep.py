"""Sweep: many preferences (a simplex grid or random), one run each, the front they trace.

The sweep is one run in the archive (kind "sweep") whose worker process runs a child run per
preference, one after another, or (Run on: Ray cluster) hands chunks of them to Ray tasks.
This page starts it, keeps its id, and redraws the front from
the children that have ended while the rest run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from pareto_app import launcher
from pareto_app.exports import export_point
from pareto_app.indicators import hypervolume, nondominated
from pareto_app.result import Result
from pareto_app.runspec import RunSpec
from pareto_app.tasks.quadratic_common import simplex_grid
from pareto_app.termination import Termination
from ui.charts import front_chart
from ui.jobs import cancel_button, children_states, end_notice, is_live, live_progress, parent_state
from ui.live_chart import clicked_points, live_chart
from ui.setup import Setup, analytic_front, current_setup
from ui.store import archive, archive_problem, exports


def ray_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None
  # the name front_chart gives the clickable trace

setup: Setup = current_setup()
store = archive()
launcher.warm()  # the fork server ready before the first Run sweep
sweep = parent_state(store, "sweep_run")
running = is_live(sweep)
if st.session_state.get("sweep_summaries_of") != st.session_state.get("sweep_run"):
    # Summaries are of one sweep's runs: start afresh when the page shows another sweep (or none).
    st.session_state["sweep_summaries"] = {}
    st.session_state["sweep_summaries_of"] = st.session_state.get("sweep_run")

st.title("Sweep")
st.caption("One run per preference; the non-dominated results trace the front.")
if archive_problem():
    st.warning(archive_problem())
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
r1, r2 = st.columns([2, 3])
where = r1.radio("Run on", ["this machine", "Ray cluster"], key="sweep_backend", horizontal=True,
                 help="Ray cluster: the preferences are cut into chunks, each a Ray task (one batched run where the "
                      "solver has a batched step); runs appear as their chunk ends")
address = r2.text_input("Ray address", key="sweep_ray_address", placeholder="empty: a local Ray instance",
                        disabled=where != "Ray cluster",
                        help="host:port of a running Ray cluster's head (`ray start --head` prints it); empty starts "
                             "a Ray instance on this machine. Every node needs pareto-app installed "
                             "(pip install 'pareto-app[ray]') and the data files of the task.").strip()
backend = "ray" if where == "Ray cluster" else "local"
if backend == "ray" and not ray_installed():
    st.error("Ray is not installed on this server: pip install 'pareto-app[ray]' (or pip install ray), then reload")
st.caption(f"{len(P)} preferences · {setup.solver} · {setup.steps} steps each"
           + (f" · on Ray ({address or 'local instance'})" if backend == "ray" else ""))

b1, b2 = st.columns([1, 4])
if b1.button("Run sweep", type="primary", key="sweep_start",
             disabled=running or not setup.ok or (backend == "ray" and not ray_installed())):
    spec = RunSpec(kind="sweep", preferences=[[float(v) for v in r] for r in P], task=setup.task,
                   task_params=setup.task_params, solver=setup.solver, options=setup.options, seed=setup.seed,
                   device=setup.device, metrics_every=setup.metrics_every,
                   divergence_factor=setup.divergence_factor, termination=Termination(steps=setup.steps),
                   idle_limit=setup.idle_limit, backend=backend, address=address or None if backend == "ray" else None)
    st.session_state["sweep_run"] = launcher.start(store, spec, num_objectives=S, label="sweep")
    st.session_state.pop("sweep_choice", None)  # a choice names a run of the previous sweep
    st.rerun()
with b2:
    cancel_button(store, sweep, "sweep_cancel")


def _summaries(children: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Preference, final objectives and status of each child that has ended, read once each.

    An ended run does not change (unless resumed from the Runs page: its status and iterations
    tell), so its summary is kept in the session and a tick loads only the runs that ended since.
    """
    known: dict[int, dict[str, Any]] = st.session_state.setdefault("sweep_summaries", {})
    for child in children:
        seen = (child["status"], child["iterations"], child["saved"])
        if is_live(child) or known.get(child["id"], {}).get("seen") == seen:
            continue
        summary: dict[str, Any] = {"status": child["status"], "message": child["message"] or "", "seen": seen}
        try:
            result = store.load(int(child["id"]))
            summary.update(preference=[float(v) for v in result.preference],
                           objectives=[float(v) for v in np.asarray(result.objectives, dtype=float).ravel()])
        except KeyError:  # it ended before its first iterate (a refused option, a crash)
            pass
        known[int(child["id"])] = summary
    return known


def _chosen_result(run_id: int, seen: tuple[str, int, bool]) -> Result:
    # The exports of the chosen run are rebuilt on every tick: keep its Result (keyed by what
    # would change it), not reload it.
    cached = st.session_state.get("sweep_loaded")
    if cached is None or cached[0] != (run_id, seen):
        cached = ((run_id, seen), store.load(run_id))
        st.session_state["sweep_loaded"] = cached
    return cached[1]


def _same_task(spec: dict[str, Any]) -> bool:
    """Whether the sidebar's problem is the one the sweep ran on (its reference point and labels apply)."""
    return problem is not None and spec.get("task") == setup.task and spec.get("task_params") == setup.task_params


def _remember_click() -> None:
    # The run a point shows is its customdata: the figure a click lands on may be older than the page's list.
    ids = set(st.session_state.get("sweep_point_ids", []))
    for point in clicked_points("sweep_front"):
        run = point.get("customdata")
        if isinstance(run, int) and run in ids:
            st.session_state["sweep_choice"] = run


# Rerun (not ticking) when its live progress line says the page draws something differently: a run ended, or the
# runs going on moved a twentieth further (ui/jobs.py live_progress).
@st.fragment
def progress() -> None:
    state = parent_state(store, "sweep_run")
    if state is None:
        st.info("Choose the preferences and press Run sweep.")
        return
    if running and not is_live(state):
        st.rerun()  # the sweep ended: redraw the whole page, whose buttons depend on it
    if is_live(state):
        store.watch(int(state["id"]))  # its children count a watched parent as watched (idle limit)
    spec = state["spec"] or {}
    total = len(spec.get("preferences") or [])
    children = children_states(store, int(state["id"]))
    live_progress(store, state, children, total, "runs", key="sweep_status")
    end_notice(state)
    summaries = _summaries(children)
    ended = [child["id"] for child in children if child["id"] in summaries and not is_live(child)]
    trouble = [i for i in ended if summaries[i]["status"] not in ("finished", "stopped")]
    for i in trouble:
        st.warning(f"run #{i} {summaries[i]['status']}: {summaries[i]['message']}")
    ids = [i for i in ended if summaries[i]["status"] == "finished" and "objectives" in summaries[i]]
    # Runs of a batched sweep step together: their latest points move on every redraw.
    moving = np.array([c["objectives"] for c in children if is_live(c) and c["objectives"]], dtype=float)
    same = _same_task(spec)
    width = len(summaries[ids[0]]["objectives"]) if ids else moving.shape[1] if len(moving) else S
    shown_labels = labels if same and len(labels) == width else [f"f{s + 1}" for s in range(width)]
    if not ids:
        if len(moving):
            st.caption(f"{len(moving)} runs converging (open circles); choose a point once a run has finished")
            # The same chart as the front's below: updated in place when the first runs end.
            live_chart(front_chart(np.empty((0, width)), np.zeros(0, dtype=bool), shown_labels,
                                   analytic_front=analytic_front(setup) if same else None, moving=moving),
                       key="sweep_front")
        else:
            st.caption("The front appears here as the runs end.")
        return
    F = np.array([summaries[i]["objectives"] for i in ids])
    R = np.array([summaries[i]["preference"] for i in ids])
    mask = nondominated(F)
    reference = problem.reference_point if same else None
    st.metric("Hypervolume of the front", f"{hypervolume(F[mask], reference):.6g}",
              help="of the non-dominated runs, bounded by the task's reference point"
                   if reference is not None else "of the non-dominated runs, bounded just past their worst values")
    st.caption(f"{int(mask.sum())} non-dominated of {len(ids)} finished runs"
               + (" (more are on their way)" if is_live(state) else ""))
    fig = front_chart(F, mask, shown_labels, R, analytic_front(setup) if same else None,
                      moving=moving if len(moving) else None, runs=ids)
    st.session_state["sweep_point_ids"] = ids
    live_chart(fig, key="sweep_front", on_click=_remember_click)
    if st.session_state.get("sweep_choice") not in ids:
        st.session_state["sweep_choice"] = ids[int(np.flatnonzero(mask)[0])]
    position = {i: n for n, i in enumerate(ids)}
    choice = st.selectbox("Run", ids, key="sweep_choice", format_func=lambda i: (
        f"r = ({', '.join(f'{v:.2f}' for v in R[position[i]])}) → F = ({', '.join(f'{v:.4g}' for v in F[position[i]])})"
        f" · run #{i}" + ("  ★ front" if mask[position[i]] else "")))
    try:
        result = _chosen_result(int(choice), summaries[choice]["seen"])
    except KeyError as err:  # deleted from the Runs page meanwhile
        st.error(str(err))
        return
    point = export_point(result, int(result.history["step"].iloc[-1]))
    as_json, as_csv, as_torch = exports(point, result)
    d1, d2, d3 = st.columns(3)
    d1.download_button("Point (JSON)", as_json, file_name=f"sweep-point-run{choice}.json", mime="application/json",
                       key="sweep_dl_json")
    d2.download_button("Run history (CSV)", as_csv, file_name=f"sweep-history-run{choice}.csv", mime="text/csv",
                       key="sweep_dl_csv")
    d3.download_button("x and y (torch)", as_torch or b"", file_name=f"sweep-point-run{choice}.pt",
                       mime="application/octet-stream", key="sweep_dl_pt", disabled=as_torch is None)


progress()
