"""Runs: every run in the SQLite archive, live or ended; watch, stop, resume, open, export, delete.

Runs execute in worker processes, so this page only reads the archive and writes commands
to it. Opening it first marks the runs whose worker died (server or worker crash) as
interrupted; a single run interrupted or stopped continues from its last checkpoint with
Resume, and Open in Explore hands a run to the Explore page (to watch, steer and choose from).
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from pareto_app import launcher
from pareto_app.exports import export_csv, export_json, export_torch
from pareto_app.result import Result
from ui.charts import metric_lines, thin, weights_chart
from ui.exploration import RunView, open_view
from ui.jobs import children_states, follow_line, is_live, stop_following
from ui.live_chart import live_chart
from ui.setup import current_setup
from ui.store import archive, archive_problem

current_setup()
st.title("Runs")
store = archive()
launcher.warm()  # the fork server ready for Resume
reaped = store.reap()  # runs whose worker died show as interrupted (resumable), not as running forever

if archive_problem():
    st.warning(archive_problem())
st.caption(f"archive: {store.path}")
if reaped:
    st.caption(f"{len(reaped)} run(s) whose worker had stopped are now marked interrupted: "
               + ", ".join(f"#{i}" for i in reaped))
runs = store.list()
if runs.empty:
    st.info("No runs yet: start one on the Explore, Sweep or Compare page.")
    st.stop()


def _timezone() -> Any:
    """The browser's time zone where it said it, else the server's (None: the system's local zone)."""
    try:
        name = st.context.timezone
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_times(created: pd.Series) -> pd.Series:
    """UTC creation stamps as local wall-clock text, to the second."""
    zone = _timezone()
    # astimezone(None) is the system zone with the daylight-saving offset of that date.
    return created.map(lambda t: t.to_pydatetime().astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"))


created = local_times(runs["created"])
# Ids are never reused, so a label names one run for every session and after deletes.
names = {int(r.id): f"#{r.id} · {r.task} · {r.solver} · {created[n]} · {r.status}"
         for n, r in enumerate(runs.itertuples())}
shown = runs.drop(columns=["created"]).copy()
shown.insert(1, "created", created)
shown["preference"] = shown["preference"].map(lambda r: "(" + ", ".join(f"{v:.3f}" for v in r) + ")" if r else "")
st.dataframe(shown, hide_index=True, key="runs_table",
             column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0)})

ids = list(names)
if st.session_state.get("runs_choice") not in ids:
    st.session_state.pop("runs_choice", None)  # deleted, here or in another tab
run_id = int(st.selectbox("Run", ids, format_func=names.get, key="runs_choice"))
try:
    state = store.state(run_id)
except KeyError as err:  # deleted by another tab since the listing
    st.error(str(err))
    st.stop()
kind = (state["spec"] or {}).get("kind", "run")  # no spec: a Result saved whole, a single run
children = runs[runs["parent"] == run_id]
live = is_live(state)


def _open_in_explore(target: int) -> None:
    st.session_state["explore_run"] = int(target)
    try:
        st.switch_page("pages/explore.py")
    except StreamlitAPIException:  # the page runs alone (no navigation): nothing to switch to
        st.info(f"Run #{target} is set for the Explore page: open it from the navigation.")


def _loaded(target: int, seen: tuple[str, int, bool]) -> Result:
    # An ended run changes only when resumed (its status and iterations tell): keep the last one
    # loaded rather than decode it on every rerun.
    cached = st.session_state.get("runs_loaded")
    if cached is None or cached[0] != (target, seen):
        cached = ((target, seen), store.load(target))
        st.session_state["runs_loaded"] = cached
    return cached[1]


def _view(target: int) -> RunView:
    # A live run is read on from where the last tick left off (only its new rows). A resumed run
    # lost the rows after its checkpoint, which a view kept from before holds: read it afresh.
    view: RunView | None = st.session_state.get("runs_view")
    if view is None or view.run_id != target or not view.live:
        view = open_view(store, target)
        st.session_state["runs_view"] = view
    else:
        view.refresh(store)
    return view


def _describe(frame: pd.DataFrame, objectives: np.ndarray, S: int) -> None:
    labels = [f"f{s + 1}" for s in range(S)]
    st.write("objectives: " + ", ".join(f"{v:.6g}" for v in objectives))
    if frame.empty:
        return
    c1, c2 = st.columns(2)
    with c1:
        live_chart(metric_lines(thin(frame), ["kkt_residual", "constraint_violation", "stationarity"], "Metrics"),
                   key="runs_metrics")
    with c2:
        live_chart(weights_chart(thin(frame), labels), key="runs_weights")


def _children_table(parent: dict[str, Any]) -> None:
    """A sweep's or comparison's runs, as they are now (they change while it runs)."""
    total = len((parent["spec"] or {}).get("preferences") or (parent["spec"] or {}).get("arms") or [])
    own = children_states(store, run_id)
    st.subheader(f"Its runs ({len(own)} of {total})" if total else "Its runs")
    if not own:
        st.caption("None yet: its worker makes them one after another.")
        return
    st.dataframe(pd.DataFrame([{"id": c["id"], "solver": c["solver"], "status": c["status"],
                                "progress": float(c["progress"]), "iterations": c["iterations"], "label": c["label"],
                                "message": c["message"]} for c in own]),
                 hide_index=True, key="runs_children",
                 column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0)})


def _line(now: dict[str, Any]) -> tuple[float, list[list[Any]], str]:
    """The live run's progress line, and what the details draw differently: its status, the command given, its
    progress in twentieths (its charts move on), and for a sweep or a comparison how many of its runs ended."""
    command = store.control(run_id)["command"]
    progress = min(1.0, max(0.0, float(now["progress"])))
    shown_status = "stopping…" if command == "stop" and is_live(now) else now["status"]
    ended = sum(1 for c in children_states(store, run_id) if not is_live(c)) if kind != "run" else 0
    return (progress, [[f"{progress:.0%} · {shown_status} · {now['iterations']} iterations", False]],
            f"{now['status']}|{command}|{int(20 * progress)}|{ended}")


# Rerun (not ticking) when the live run's progress line says the details draw something differently (`_line`).
@st.fragment
def details() -> None:
    try:
        current = store.state(run_id)
    except KeyError as err:
        st.error(str(err))
        return
    if live and not is_live(current):
        st.rerun()  # it ended: redraw the whole page, whose buttons depend on it
    what = {"sweep": " · a sweep", "compare": " · a comparison"}.get(kind, "")
    header = f"**{current['solver']}** on **{current['task']}**{what} · status **{current['status']}**"
    if current["label"]:
        header += f" · label {current['label']}"
    if current["parent"] is not None:
        header += f" · part of run #{current['parent']}"
    st.markdown(header)
    if current["message"]:
        (st.warning if current["status"] in ("diverged", "failed", "interrupted") else st.caption)(current["message"])
    if is_live(current):
        store.watch(run_id)  # someone is looking: the run's idle limit counts from now
        follow_line(store, current, "runs_status", _line)
    else:
        stop_following("runs_status")
    if kind != "run":
        _children_table(current)
        return
    try:
        if is_live(current):
            view = _view(run_id)
            frame = view.history.frame()
            objectives = view.history.objectives[-1] if len(view.history) else np.array([])
            _describe(frame, objectives, view.history.S)
        else:
            result = _loaded(run_id, (current["status"], current["iterations"], current["saved"]))
            objectives = np.asarray(result.objectives, dtype=float).ravel()
            _describe(result.history, objectives, len(objectives))
            d1, d2, d3 = st.columns(3)
            d1.download_button("Result (JSON)", export_json(result), file_name=f"run-{run_id}.json",
                               mime="application/json", key="runs_dl_json")
            d2.download_button("History (CSV)", export_csv(result), file_name=f"run-{run_id}.csv", mime="text/csv",
                               key="runs_dl_csv")
            d3.download_button("x and y (torch)", export_torch(result), file_name=f"run-{run_id}.pt",
                               mime="application/octet-stream", key="runs_dl_pt")
    except KeyError as err:  # no iterate yet (a run starting, or one that failed at once)
        st.caption(str(err))


details()

# -- what can be done with the chosen run ---------------------------------------------------------
b1, b2, b3, b4 = st.columns(4)
if kind == "run" and b1.button("Open in Explore", key="runs_open", help="watch it, steer it and choose from its front"):
    _open_in_explore(run_id)
resumable = kind == "run" and state["status"] in ("interrupted", "stopped") and store.last_checkpoint(run_id) is not None
if resumable and b2.button("Resume", key="runs_resume", help="a new worker continues it from its last checkpoint"):
    try:
        launcher.resume(store, run_id)
    except (KeyError, ValueError) as err:
        st.error(str(err))
    else:
        st.rerun()
if live and b3.button("Stop", key="runs_stop", help="the run ends at its next step, keeping what it has done"
                      + (" (and the runs not started)" if kind != "run" else "")):
    try:
        store.command(run_id, "stop")
    except (KeyError, ValueError) as err:
        st.error(str(err))
    else:
        st.rerun()
if b4.button("Delete", key="runs_delete", disabled=live, help="stop it first" if live else "asks to confirm"):
    st.session_state["runs_delete_pending"] = run_id

if st.session_state.get("runs_delete_pending") == run_id and not live:
    also = f" and its {len(children)} run(s)" if len(children) else ""
    st.warning(f"Delete run #{run_id}{also} from the archive? This cannot be undone.")
    k1, k2 = st.columns(2)
    if k1.button(f"Confirm delete of #{run_id}", key="runs_delete_confirm", type="primary"):
        st.session_state.pop("runs_delete_pending", None)
        try:
            for child in children["id"]:
                store.delete(int(child))
            store.delete(run_id)
        except (KeyError, ValueError) as err:  # gone already (another tab)
            st.error(str(err))
        else:
            st.session_state.pop("runs_choice", None)
            st.rerun()
    if k2.button("Keep it", key="runs_delete_keep"):
        st.session_state.pop("runs_delete_pending", None)
        st.rerun()

# -- a sweep's or comparison's own runs: one of them to the Explore page -------------------------------
if kind != "run" and not children.empty:
    child_ids = [int(i) for i in children["id"]]
    child = st.selectbox("One of its runs", child_ids, format_func=names.get, key="runs_child")
    if st.button("Open in Explore", key="runs_open_child", help="watch it and choose from its front"):
        _open_in_explore(int(child))
