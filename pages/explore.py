"""Explore: run a solver, watch it stream, steer it with the preference, choose and export a point.

The run executes in its own worker process and writes to the archive; this page's live parts (status
line, charts) ask the server for what is newer, several times a second, and the page writes its clicks (pause,
resume, stop, a new preference) to the run's control row, which the worker reads at every step.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from pareto_app import launcher
from pareto_app.result import Result
from pareto_app.runspec import RunSpec
from pareto_app.store import LIVE_STATES
from pareto_app.termination import Termination
from ui import live_feed
from ui.charts import metric_lines, objective_space, run_step, thin, weights_chart
from ui.exploration import (
    Exploration,
    RunView,
    live_point_payload,
    look_every,
    nothing_to_draw_yet,
    objective_matrix,
    point_payload,
    problem_key,
    read_every,
    status_pace,
)
from ui.live_chart import chart_feed, clicked_points, live_chart
from ui.live_status import live_status
from ui.preference import preference_widget, show_preference
from ui.setup import Setup, analytic_front, current_setup
from ui.store import archive, archive_problem, exports
from ui.trajectory_feed import TrajectoryFeed

# While a run is live, its status line and charts follow the archive through their feeds (ui/live_feed.py):
# each asks the server for its newer content at the pace the answer sets, with no Streamlit rerun per update
# (a rerun costs the browser a render of the page's whole element tree, changed or not). The page reruns
# only on a click, and on a change of the run's state that it draws differently (buttons; the whole page
# once the run has ended). A click on Start, Pause or Stop reruns only the small panel, after waiting up to
# ACK_WAIT_S for the worker to obey, so that it shows the state reached; on Start the panel publishes the
# new run's feeds, and its status line tells the charts (which always have their feeds' addresses) to ask
# theirs: a full rerun there kept the browser busy for a second or more while the solver took its first
# steps (seconds with four tabs, measured). While a run is paused the feeds are asked slowly; with more
# stepping workers than cores, less often.
STATUS_EVERY_S = 0.25
FINISH_EVERY_S = 0.05  # the status line's pace once its run is due to end or to obey a click (until_finished, _obeyed)
REDRAW_EVERY_S = 0.4
FULL_EVERY_S = 2.0  # the objective space's whole figure, between tails of its trajectory (ui/trajectory_feed.py)
METRICS_EVERY_S = 2.0
METRICS_DRAWN_AFTER = 10  # rows
# A started run's metrics charts ask this long after its status line and objective space: in a run's first second
# the page's drawing and the solver's first steps compete for the cores (its first 50 steps took 0.06-0.17 s
# longer watched than not, measured), and a line of a few points tells little.
METRICS_KICKED_AFTER_S = 1.0
ACK_WAIT_S = 0.3
PAUSED_EVERY_S = 1.0
WATCH_EVERY_S = 1.0
READ_EVERY_S = 0.1  # the feeds of one page ask one after the other: one archive read serves them all
CORES = os.cpu_count() or 1


METRIC_PARTS = ("metrics", "weights")
IDLE_STATUS = {"progress": None, "line": [["Set a preference and press Start.", False]], "caption": "", "state": "idle"}
TRAJECTORY_SHOWN = 800
EXPLORED_SHOWN = 1000
METRIC_POINTS_SHOWN = 600

setup: Setup = current_setup()
setup_problem = problem_key(setup.task, setup.task_params)  # the sidebar's problem: its runs share a front
store = archive()
launcher.warm()  # the fork server ready before the first Start
exploration: Exploration = st.session_state.setdefault("explore_exploration", Exploration())
# The session's views are read by this script and by its feeds (server threads): one at a time.
lock: threading.RLock = st.session_state.setdefault("explore_lock", threading.RLock())
token: str = st.session_state.setdefault("explore_live_token", live_feed.new_token())
trajectory_feeds: dict[int, TrajectoryFeed] = st.session_state.setdefault("explore_trajectory_feeds", {})


def adopt_started() -> None:
    """The run this page started becomes the run it shows, steered from the preference it started with
    (`Exploration.started`); unless the person has chosen another since (the Runs page's "Open in Explore",
    a rerun that cut the start short on its way there): that one is shown, and the started run is on the Runs page."""
    if exploration.started is not None:
        started, sent, shown_before = exploration.started
        if st.session_state.get("explore_run") == shown_before:
            st.session_state["explore_run"] = st.session_state["explore_adopted"] = started
            st.session_state["explore_sent"] = sent
        exploration.started = None


adopt_started()  # a start that a rerun cut short
run_id: int | None = st.session_state.get("explore_run")
view: RunView | None = None
if run_id is not None:
    try:
        with lock:
            view = exploration.watch(store, run_id)
            view.refresh(store)
    except KeyError:  # deleted from the Runs page
        st.session_state.pop("explore_run", None)
        exploration.views.pop(run_id, None)
        run_id = None
running = view is not None and view.live

st.title("Explore")
st.caption("Drag the preference while the solver runs: it follows from its next step.")
if archive_problem():
    st.warning(archive_problem())
for message in setup.errors:
    st.error(message)
problem = setup.problem
labels = problem.labels if problem is not None else ["f1", "f2"]
S = problem.num_objectives if problem is not None else 2
watching_other_task = view is not None and (view.task != setup.task or view.history.S != S)

if view is not None and st.session_state.get("explore_adopted") != view.run_id:
    # A run opened here from the Runs page: the widget takes up the run's preference, so the page
    # does not steer it to whatever the widget held before.
    st.session_state["explore_adopted"] = view.run_id
    shown = view.history.preference[-1] if len(view.history) else view.spec.get("preference")
    if shown is not None and len(shown) == S and not watching_other_task:
        st.session_state["explore_sent"] = show_preference(S, f"explore_pref{S}", shown)

left, right = st.columns([1, 2])
with left:
    st.subheader("Preference")
    preference = preference_widget(S, labels, prefix=f"explore_pref{S}")
    panel = st.container()  # Start, Pause/Resume, Stop and the status line: the run panel fragment, below
    tolerance = st.number_input("Feasibility tolerance", min_value=0.0, value=1e-2, format="%g", key="explore_tolerance",
                                help="iterates whose constraint violation ‖∇_y g‖ is above this are left out of the "
                                     "front offered for choosing")

# Steering: a moved preference goes to the running solver, used from its next step on.
if running and not watching_other_task and preference is not None \
        and list(preference) != st.session_state.get("explore_sent"):
    store.steer(view.run_id, [float(v) for v in preference])
    st.session_state["explore_sent"] = list(preference)


def _rate(history) -> str:
    if len(history) < 2 or history.elapsed[-1] <= 0:
        return ""
    per_second = (history.last["step"] + 1) / history.elapsed[-1]
    return f"{per_second:.0f} it/s" if per_second >= 1 else f"{1 / per_second:.1f} s/step"


def start_run() -> RunView:
    """Start a run with what the page shows; its view, read once the worker has taken its first step (or after
    ACK_WAIT_S)."""
    spec = RunSpec(task=setup.task, task_params=setup.task_params, solver=setup.solver, options=setup.options,
                   preference=[float(v) for v in preference], seed=setup.seed, device=setup.device,
                   metrics_every=setup.metrics_every,
                   divergence_factor=setup.divergence_factor, termination=Termination(steps=setup.steps),
                   idle_limit=setup.idle_limit)
    shown_before = st.session_state.get("explore_run")
    started = launcher.start(store, spec, num_objectives=S)
    # Kept where no rerun comes in between: the session's state, assigned first, yields to a rerun the person asked
    # for meanwhile (a moved slider), and the run would go on unseen. The page's next run adopts it (top).
    exploration.started = (started, list(spec.preference), shown_before)
    adopt_started()
    with lock:
        view = exploration.watch(store, started)
    follow_run(started)
    # A forked worker takes its first step within a tenth of a second: the page drawn next shows it, rather
    # than "starting" for a tick.
    deadline = time.monotonic() + ACK_WAIT_S
    while time.monotonic() < deadline and _starting(store.state(started)):
        time.sleep(0.02)
    with lock:
        view.refresh(store)
    keep_watching(view)
    return view


def follow_run(run: int) -> None:
    """Every live part's feed now answers for run `run`: what the charts ask once the status line tells them
    (`live_status(kick=...)`), with no rerun of theirs."""
    publish_status(run)
    publish_objective(run)
    for part in METRIC_PARTS:
        publish_metrics(run, part)


def publish_status(run: int) -> str:
    return live_feed.publish(token, "status", lambda: status_update(run), lock)


def publish_metrics(run: int, part: str) -> str:
    return live_feed.publish(token, part, lambda have: chart_feed(metrics_update(run, part, have=have)), lock,
                             with_have=True)


def _starting(state: dict) -> bool:
    return state["iterations"] == 0 and state["status"] in LIVE_STATES


def send(run: int, command: str) -> None:
    """on_click: the command reaches the archive before anything is redrawn; the rerun the click makes
    then waits a moment for the worker (it reads its control row every step), so that it shows the state
    reached rather than "pausing…" and, a tick later, "paused"."""
    store.command(run, command)
    deadline = time.monotonic() + ACK_WAIT_S
    while time.monotonic() < deadline and not _obeyed(command, store.state(run)["status"]):
        time.sleep(0.02)


def _obeyed(command: str, status: str) -> bool:
    if command == "stop":
        return status not in LIVE_STATES
    return status == ("paused" if command == "pause" else "running")


def run_state(current: RunView) -> str:
    """What the page draws differently: the run's status, the command last given, whether it has iterates."""
    return f"{current.status}|{current.command}|{'rows' if len(current.history) else 'none'}"


def ask_every(current: RunView, every: float) -> float | None:
    """Seconds until a feed of `current` asks again (None: the run ended; see `look_every`)."""
    return look_every(current, every, PAUSED_EVERY_S, store.stepping_workers() / CORES)


def keep_watching(current: RunView) -> None:
    """What a page does while it shows a run: it marks the run watched (its idle limit counts from the last
    mark), and, while the run waits for its worker, takes up the fork server's answers (a job it could not
    start fails its run, said here)."""
    if current.status == "queued":
        launcher.warm()
    # A write: once a second is plenty for an idle limit of seconds, and leaves the archive to the worker.
    # (On the view, not in the session's state: a feed asks from a server thread, outside the script.)
    if current.live and time.monotonic() - current.watched_at >= WATCH_EVERY_S:
        store.watch(current.run_id)
        current.watched_at = time.monotonic()


@st.fragment
def run_panel() -> None:
    """The buttons and the status line of the run shown; rerun on a click on one of its buttons, and when
    the status line's feed sees the run's state change."""
    current = exploration.views.get(st.session_state.get("explore_run"))
    if current is not None:
        with lock:
            current.refresh(store)
        keep_watching(current)
    failure = ""
    # A click on Start is in the button's state before the button is drawn: the run starts first, and this
    # same run of the panel draws it (Start disabled, Pause, the status line), where drawing the buttons first
    # took a second run of the panel, two sets of changes for the browser while the solver takes its first steps.
    if (st.session_state.get("explore_start") and not (current is not None and current.live) and setup.ok
            and preference is not None and problem is not None):
        try:
            current = start_run()
        except (ValueError, OSError, sqlite3.Error) as err:  # the buttons below are still drawn, and usable
            failure = f"The run could not start: {err}"
    live_now = current is not None and current.live
    c1, c2, c3 = st.columns(3)
    c1.button("Start", type="primary", key="explore_start", disabled=live_now or not setup.ok or preference is None)
    if live_now and current.command != "pause":
        c2.button("Pause", key="explore_pause", on_click=send, args=(current.run_id, "pause"))
    else:
        c2.button("Resume", key="explore_resume", disabled=not live_now, on_click=send,
                  args=(current.run_id if current is not None else 0, "run"))
    c3.button("Stop", key="explore_stop", disabled=not live_now, on_click=send,
              args=(current.run_id if current is not None else 0, "stop"))
    notes = st.container()  # what the status line has to say in words, above its frame, which stays where it is
    if failure:
        notes.error(failure)
    if current is None:
        # The status line's frame is drawn before any run, as the charts are: made when a run starts, its page
        # would load and lay out while the solver takes its first steps.
        live_status(IDLE_STATUS, key="explore_status")
        return
    status_line(current, notes)
    if not current.live and st.session_state.get("explore_drawn") != (current.run_id, run_state(current)):
        st.rerun()  # the run ended: the charts and the front are drawn anew
    if current.status in ("interrupted", "stopped") and store.last_checkpoint(current.run_id) is not None:
        if st.button("Resume from its last checkpoint", key="explore_continue",
                     help="a new worker process continues the run from the last state it saved"):
            try:
                launcher.resume(store, current.run_id)
            except ValueError as err:
                st.error(str(err))
            else:
                exploration.views.pop(current.run_id, None)
                st.rerun()


def status_line(current: RunView, notes: DeltaGenerator) -> None:
    """The status line of `current`, followed through its feed while the run is live; what it says in words (a
    failure, an ended run's message) in `notes`."""
    if current.status in ("diverged", "failed", "interrupted"):
        (notes.warning if current.status == "interrupted" else notes.error)(f"{current.label} {current.status}: "
                                                                             f"{current.message}")
    elif current.message and not current.live:
        notes.caption(current.message)
    with lock:
        update = status_update(current.run_id, read=False)
    feed = None
    if current.live:
        feed = publish_status(current.run_id)
    else:
        live_feed.withdraw(token, "status")
    live_status(update.content(), key="explore_status", feed=feed, version=update.version, every=update.every,
                kick=str(current.run_id) if current.live else None)


def status_update(run: int, read: bool = True) -> live_feed.Update:
    """The status line of run `run` as the page shows it: a progress bar, the status line ("run #7:
    wc-mhgd · running · step 42 / 500 · 812 it/s · oracle calls: ...") and the weights. With `read`, the
    newest rows are read first (and the run marked watched): what its feed answers."""
    current = exploration.views[run]
    if read:
        current.refresh_if_older(store, read_every(current, READ_EVERY_S))
        keep_watching(current)
    history = current.history
    if len(history) == 0:
        waited = time.time() - _timestamp(store.state(current.run_id)["created"])
        line = [[current.label, True], [f" · {current.shown_status} · starting: "
                                        f"{current.message or 'waiting for a worker process'} · {waited:.0f} s", False]]
        content = {"progress": 0.0, "line": line, "caption": "", "state": run_state(current)}
    else:
        last = history.last
        oracle = ", ".join(f"{k[len('oracle_'):]} {int(v)}" for k, v in last.items()
                           if k.startswith("oracle_") and k != "oracle_total")
        steps = current.steps
        line = [[current.label, True], [f" · {current.shown_status} · step ", False], [f"{int(last['step']) + 1}", True],
                [f"{'' if steps is None else f' / {steps}'} · {_rate(history)} · oracle calls: {oracle}", False]]
        caption = "weights: " + ", ".join(f"{labels[s] if s < len(labels) else f'f{s + 1}'} {history.weights[-1, s]:.3f}"
                                          for s in range(history.S))
        content = {"progress": current.progress, "line": line, "caption": caption, "state": run_state(current)}
    version = json.dumps(content, default=str)
    every = status_pace(current, ask_every(current, STATUS_EVERY_S), FINISH_EVERY_S)
    return live_feed.Update(version, lambda: content, every)


@st.fragment
def live() -> None:
    """The objective space; while the run is live its feed follows the run."""
    if st.session_state.pop("explore_choice_clicked", False):
        st.rerun()  # the click reran only this fragment: redraw the page, whose selectbox shows the choice
    current = exploration.views.get(st.session_state.get("explore_run"))
    if current is None:
        live_feed.withdraw(token, "objective")
        live_chart(idle_figure(), key="explore_objective_space", on_click=_remember_front_click,
                   feed=live_feed.url(token, "objective"), version="idle", every=None)
        return
    if current.problem != setup_problem:
        other = current.task if current.task != setup.task else f"{current.task} with other task parameters"
        st.caption(f"this run is on {other}; choose them in the sidebar to steer it and to see its analytic front")
    with lock:
        version, fig = trajectory_feed(current.run_id).figure(current, lambda: objective_or_idle(current))
    if current.live:
        publish_objective(current.run_id)
    else:
        live_feed.withdraw(token, "objective")
    live_chart(fig, key="explore_objective_space", on_click=_remember_front_click,
               feed=live_feed.url(token, "objective"), version=version, every=objective_every(current)[0])


def trajectory_feed(run: int) -> TrajectoryFeed:
    """What this page was last sent of run `run`'s objective space (one run's at a time)."""
    if run not in trajectory_feeds:
        trajectory_feeds.clear()
        trajectory_feeds[run] = TrajectoryFeed(run)
    return trajectory_feeds[run]


def publish_objective(run: int) -> str:
    return live_feed.publish(token, "objective", lambda have: objective_answer(run, have), lock, with_have=True)


def objective_every(current: RunView) -> tuple[float | None, float]:
    """(Seconds until the objective space asks again, at most how long a figure is followed by tails): a tail
    costs little, so it is asked at the usual pace whatever the load; whole figures, the busier the cores, the
    more rarely (`ask_every`)."""
    every = look_every(current, REDRAW_EVERY_S, PAUSED_EVERY_S)
    return every, ask_every(current, FULL_EVERY_S) or FULL_EVERY_S


def objective_answer(run: int, have: str | None) -> live_feed.Update:
    """The objective space of run `run` for a browser that has version `have`, with the newest rows read first:
    its trajectory's new points, or the whole figure (ui/trajectory_feed.py). What its feed answers."""
    current = exploration.views[run]
    current.refresh_if_older(store, READ_EVERY_S)
    every, full_every = objective_every(current)
    return trajectory_feed(run).answer(current, have, lambda: objective_or_idle(current), every, full_every)


def objective_or_idle(current: RunView):
    """The objective space of `current` (the front so far, other runs' iterates, its trajectory), or before its
    first step, the idle chart."""
    return objective_figure(current) if len(current.history) else idle_figure()


def objective_figure(current: RunView):
    history = current.history
    same_problem = current.problem == setup_problem
    front = exploration.front(current.problem, tolerance)
    # Other runs' iterates as points; this run's own are its trajectory, one path however long.
    explored = exploration.points(current.problem)
    explored = thin(explored[explored["run"] != current.run_id], EXPLORED_SHOWN)
    shown_labels = labels if history.S == S else [f"f{s + 1}" for s in range(history.S)]
    analytic = analytic_front(setup) if same_problem else None
    shown_pref = preference if preference is not None and len(preference) == history.S else history.preference[-1]
    return objective_space(explored, front, thin(history.frame(), TRAJECTORY_SHOWN), shown_pref, shown_labels,
                           analytic, history.changes, run=current.run_id)


def idle_figure():
    """Before a run's first step: the front so far, the analytic front and the preference ray. The chart (and
    plotly.js in its frame) is then ready when the iterates come, rather than loading as the run starts."""
    shown_pref = preference if preference is not None else [1.0 / S] * S
    return objective_space(exploration.points(setup_problem), exploration.front(setup_problem, tolerance),
                           pd.DataFrame(), shown_pref, labels, analytic_front(setup))


@st.fragment
def live_metrics() -> None:
    """The KKT residual, constraint violation and weights; while the run is live their feeds follow it, more
    slowly than the objective space. Drawn, empty, before any run too, as the objective space: a chart first
    drawn when a run starts makes a frame that loads plotly.js while the solver steps."""
    current = exploration.views.get(st.session_state.get("explore_run"))
    for column, part in zip(st.columns(2), METRIC_PARTS):
        fig, version, every = idle_metrics_figure(part), "idle", None
        if current is not None:
            with lock:
                update = metrics_update(current.run_id, part, read=False)
                fig, version, every = update.content(), update.version, update.every
        if current is not None and current.live:
            publish_metrics(current.run_id, part)
        else:
            live_feed.withdraw(token, part)
        with column:
            live_chart(fig, key=f"explore_{part}", feed=live_feed.url(token, part), version=version, every=every,
                       kick_after=METRICS_KICKED_AFTER_S)


def idle_metrics_figure(part: str):
    """The chart `part` before any iterate: its title and axes."""
    if part == "metrics":
        return metric_lines(pd.DataFrame(), [], "KKT residual and constraint violation")
    return weights_chart(pd.DataFrame(), labels)


def metrics_update(run: int, part: str, read: bool = True, have: str | None = None) -> live_feed.Update:
    """The chart `part` ("metrics": KKT residual, constraint violation, stationarity; "weights") of run `run`, for a
    browser that has version `have` of it. With `read`, the newest rows are read first: what its feed answers."""
    current = exploration.views[run]
    if read:
        current.refresh_if_older(store, READ_EVERY_S)
    version = have if nothing_to_draw_yet(current, have) else f"{current.run_id}:{current.seq}:{current.status}"

    def content() -> dict:
        history = current.history
        if len(history) == 0:
            return idle_metrics_figure(part)
        frame = thin(history.frame(), METRIC_POINTS_SHOWN)
        if part == "metrics":
            fig = metric_lines(frame, ["kkt_residual", "constraint_violation", "stationarity"],
                               "KKT residual and constraint violation", changes=history.changes)
        else:
            shown_labels = labels if history.S == S else [f"f{s + 1}" for s in range(history.S)]
            fig = weights_chart(frame, shown_labels, history.changes)
        return fig

    # At the objective space's pace until there is a line to draw: a run's first seconds matter most.
    every = METRICS_EVERY_S if len(current.history) >= METRICS_DRAWN_AFTER else REDRAW_EVERY_S
    return live_feed.Update(version, content, ask_every(current, every))


def chosen_point(run_id: int, step: int, x, y) -> tuple[dict, Callable[[], Result]]:
    """The chosen point's payload, and how to load its whole run (for the history's CSV, when clicked).

    This runs on every rerun of the page, a move of the preference included: a run saved whole is loaded
    once (kept while its state is unchanged); a live one is read as its one row and preference changes,
    never its every row (a long run's would take seconds, and memory without bound)."""
    state = store.state(run_id)
    if not state["saved"]:
        return live_point_payload(store, run_id, step, x, y), lambda: store.load(run_id)
    key = (run_id, state["status"], state["iterations"])
    cached = st.session_state.get("explore_loaded")
    if cached is None or cached[0] != key:
        cached = st.session_state["explore_loaded"] = (key, store.load(run_id))
    result = cached[1]
    return point_payload(result, step, x, y), lambda: result


def _timestamp(created) -> float:
    from datetime import datetime

    return datetime.fromisoformat(str(created)).timestamp()


def _remember_front_click() -> None:
    # Front markers sit on trajectory markers, and a click may land on either: accept it when
    # the (run, step) it names is on the front.
    current = exploration.views.get(st.session_state.get("explore_run"))
    shown = current.problem if current is not None else setup_problem
    on_front = {(int(r.run), int(r.step)) for r in exploration.front(shown, tolerance).itertuples()}
    for point in clicked_points("explore_objective_space"):
        clicked = run_step(point.get("customdata"))
        if clicked in on_front:
            st.session_state["explore_choice"] = f"{clicked[0]}:{clicked[1]}"
            st.session_state["explore_choice_clicked"] = True


# What this run of the page draws: the panel reruns the page once the run shown has ended, if the page drew
# it otherwise (live, or another run: one started by the panel).
st.session_state["explore_drawn"] = (view.run_id, run_state(view)) if view is not None else None
with panel:
    run_panel()
with right:
    live()
    live_metrics()

st.subheader("Choose a solution")
shown_problem = view.problem if view is not None else setup_problem
front = exploration.front(shown_problem, tolerance)
left_out = len(exploration.points(shown_problem)) - len(exploration.points(shown_problem, tolerance))
if front.empty:
    st.caption("Points of the front appear here once a run has produced iterates"
               + (f" ({left_out} iterates above the feasibility tolerance are left out)." if left_out else "."))
else:
    keys = [f"{int(r.run)}:{int(r.step)}" for r in front.itertuples()]
    F = objective_matrix(front)
    names = {k: f"run #{k.split(':')[0]} · step {k.split(':')[1]} · F = (" + ", ".join(f"{v:.4g}" for v in F[i]) + ")"
             for i, k in enumerate(keys)}
    if st.session_state.get("explore_choice") not in keys:
        st.session_state["explore_choice"] = keys[-1]  # the newest point of the front
    choice = st.selectbox("Front point (or click one on the chart)", keys, format_func=names.get, key="explore_choice")
    chosen_run, step = (int(v) for v in choice.split(":"))
    kept = store.point(chosen_run, step)
    x, y = kept if kept is not None else (None, None)
    payload, load_run = chosen_point(chosen_run, step, x, y)
    run_info = payload["reproduce"]
    S_chosen = len(payload["objectives"])
    chosen_labels = labels if S_chosen == S else [f"f{s + 1}" for s in range(S_chosen)]
    cols = st.columns(3)
    objectives = "\n".join(f"- {chosen_labels[s]}: {v:.6g}" for s, v in enumerate(payload["objectives"]))
    cols[0].markdown("**Objectives**\n\n" + objectives)
    cols[1].markdown("**Preference / weights**\n\n" + "\n".join(
        f"- {chosen_labels[s]}: r = {payload['preference'][s]:.3f}, w = {payload['weights'][s]:.3f}"
        for s in range(len(chosen_labels))))
    metrics = payload["metrics"]
    cols[2].markdown("**Metrics**\n\n" + "\n".join(f"- {k}: {'—' if v is None else f'{v:.3e}'}" for k, v in metrics.items()))
    if problem is not None and problem.evaluate is not None and run_info["task"] == setup.task and x is not None:
        held_out = problem.evaluate(x.to(problem.device, problem.dtype), y.to(problem.device, problem.dtype))
        payload["held_out"] = held_out
        st.markdown("**Held-out metrics** · " + " · ".join(f"{k} {v:.3f}" for k, v in held_out.items()))
    if x is None:
        st.caption("x and y are kept for every iterate only when the model is small (p + q ≤ 4096); for this run "
                   "they are kept with its checkpoints and its last point: see the Runs page.")
    st.caption(f"{run_info['solver']} · options {json.dumps(run_info['options'], default=str)} · "
               f"seed {run_info['seed']}")
    as_json, as_csv, as_torch = exports(payload, load_run)
    st.session_state["explore_last_export"] = as_json
    d1, d2, d3 = st.columns(3)
    d1.download_button("Point (JSON)", as_json, file_name=f"point-run{chosen_run}-step{step}.json",
                       mime="application/json", key="explore_dl_json")
    d2.download_button("Run history (CSV)", as_csv, file_name=f"history-run{chosen_run}.csv", mime="text/csv",
                       key="explore_dl_csv")
    d3.download_button("x and y (torch)", as_torch or b"", file_name=f"point-run{chosen_run}-step{step}.pt",
                       mime="application/octet-stream", key="explore_dl_pt", disabled=as_torch is None)
    same_problem = problem is not None and shown_problem == setup_problem
    reference = problem.reference_point if same_problem else None
    st.caption(f"{len(front)} non-dominated of {len(exploration.points(shown_problem))} explored points"
               + (f" ({left_out} above the feasibility tolerance left out)" if left_out else "")
               + f" · hypervolume {exploration.hypervolume(shown_problem, reference, tolerance):.6g}")
