"""The sidebar shared by all pages: task and its parameters, solver and its options, device, steps."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import streamlit as st
import torch

import pareto_app as pa
from pareto_app.api import DIVERGENCE_FACTOR
from pareto_app.problem import Problem, resolve_device
from pareto_app.runspec import DEFAULT_IDLE_LIMIT_S
from pareto_app.solvers import check_options
from pareto_app.tasks.dataset import MAX_FILE_BYTES, save_upload

MIN_IDLE_LIMIT_S = 10.0


@dataclass
class Setup:
    """What the sidebar says; `error` is set (and `problem` None) when something is invalid."""

    task: str
    task_params: dict[str, Any]
    solver: str
    options: dict[str, Any]
    device: str
    steps: int
    seed: int
    metrics_every: int
    divergence_factor: float = DIVERGENCE_FACTOR
    idle_limit: float | None = DEFAULT_IDLE_LIMIT_S
    problem: Problem | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is not None and not self.errors


def _problem(task: str, params: dict[str, Any], device: str) -> Problem:
    # Building a data task costs a little; keep the last few per browser session.
    cache: dict[str, Problem] = st.session_state.setdefault("_problems", {})
    key = json.dumps([task, params, device], sort_keys=True, default=str)
    if key not in cache:
        if len(cache) > 8:
            cache.clear()
        cache[key] = pa.tasks.get(task, device=device, **params)
    return cache[key]


def _data_upload(task: str, errors: list[str]) -> str:
    """The sidebar's upload box of a data task: the saved file's path, or "" for the bundled digits."""
    upload = st.file_uploader(
        f"Your data set (.npz or .csv, up to {MAX_FILE_BYTES // 2**20} MB)", type=["npz", "csv"],
        key=f"setup_task_{task}_upload",
        help=".npz: arrays X (n × d numbers) and y (n integer labels; for multitask-weighting one column per task). "
             ".csv: a header row, the label column named by the `label` parameter, every other column a feature. "
             "Empty: scikit-learn's 1,797 digits.")
    if upload is None:
        st.caption("data: scikit-learn's digits (8×8 images, 10 classes)")
        return ""
    try:
        path = save_upload(upload.name, upload.getvalue())
    except (ValueError, OSError) as err:
        errors.append(str(err))
        return ""
    st.caption(f"data: {upload.name} ({upload.size / 2**20:.1f} MB)")
    return str(path)


def _parse_option(text: str) -> Any:
    text = text.strip()
    if text in ("", "auto"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def render_sidebar() -> Setup:
    errors: list[str] = []
    with st.sidebar:
        st.header("Problem")
        names = pa.tasks.names()
        task = st.selectbox("Task", names, index=names.index(pa.tasks.DEFAULT_TASK), key="setup_task",
                            help="The bilevel problem to explore")
        spec = pa.tasks.spec(task)
        st.caption(spec.summary)
        params: dict[str, Any] = {}
        if "data" in spec.params:
            params["data"] = _data_upload(task, errors)
        with st.expander("Task parameters", expanded=False):
            for name, p in spec.params.items():
                key = f"setup_task_{task}_{name}"
                if name == "data":
                    continue
                if isinstance(p.default, str) and p.choices is None:
                    params[name] = st.text_input(name, value=p.default, key=key, help=p.help)
                elif p.choices is not None:
                    params[name] = st.selectbox(name, list(p.choices), index=list(p.choices).index(p.default), key=key,
                                                help=p.help)
                elif isinstance(p.default, bool):
                    params[name] = st.checkbox(name, value=p.default, key=key, help=p.help)
                elif isinstance(p.default, int):
                    params[name] = int(st.number_input(name, value=p.default, step=1, key=key, help=p.help))
                else:
                    params[name] = float(st.number_input(name, value=float(p.default), key=key, help=p.help,
                                                         format="%g"))
        device = st.selectbox("Device", ["auto", "cpu", "cuda"], key="setup_device")
        try:
            picked = resolve_device(device)
            gpu = f" ({torch.cuda.get_device_name()})" if picked.type == "cuda" else ""
            st.caption(f"running on: {picked.type}{gpu}")
        except ValueError as err:
            errors.append(str(err))
            picked = None
        problem = None
        if picked is not None:
            try:
                problem = _problem(task, params, picked.type)
            except ValueError as err:
                errors.append(str(err))
        st.header("Solver")
        solvers = pa.solvers.names()
        solver_key = f"setup_solver_{task}"
        if solver_key not in st.session_state:
            st.session_state[solver_key] = "wc-penalty" if problem is not None and not problem.strongly_convex else "wc-mhgd"
        solver = st.selectbox("Solver", solvers, key=solver_key, help=pa.solvers.get(st.session_state[solver_key]).summary)
        algo = pa.solvers.get(solver)
        raw: dict[str, Any] = {}
        with st.expander("Solver options (paper defaults; empty = estimated)", expanded=False):
            for name, opt in algo.options.items():
                key = f"setup_opt_{solver}_{name}"
                if opt.choices is not None:
                    raw[name] = st.selectbox(name, list(opt.choices), key=key, help=opt.help)
                else:
                    shown = "" if opt.default is None else str(opt.default)
                    raw[name] = _parse_option(st.text_input(name, value=shown, placeholder="auto", key=key, help=opt.help))
        options = {k: v for k, v in raw.items() if v is not None}
        try:
            check_options(algo, options)
        except ValueError as err:
            errors.append(str(err))
        st.header("Run")
        steps = int(st.number_input("Steps", min_value=1, max_value=1_000_000, value=500, step=100, key="setup_steps"))
        seed = int(st.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, key="setup_seed"))
        metrics_every = int(st.number_input("Metrics every", min_value=1, max_value=10_000, value=5, key="setup_metrics",
                                            help="stationarity and KKT residual are computed every this many steps"))
        divergence = float(st.number_input(
            "Divergence factor", min_value=1.001, max_value=1e300, value=DIVERGENCE_FACTOR, format="%g",
            key="setup_divergence", help="a run whose objectives grow past this many times their start (plus one) "
                                         "stops itself as diverged and keeps its last good iterate"))
        idle = float(st.number_input("Idle limit (s)", min_value=0.0, max_value=7 * 86400.0, value=DEFAULT_IDLE_LIMIT_S,
                                     step=60.0, key="setup_idle_limit",
                                     help="a run goes on when its tab is closed; it stops by itself once no page has "
                                          f"looked at it for this long (0: never; at least {MIN_IDLE_LIMIT_S:g} s, "
                                          "so that a page busy for a moment does not stop the run it shows)"))
        if 0 < idle < MIN_IDLE_LIMIT_S:
            errors.append(f"Idle limit {idle:g} s: accepted 0 (never) or at least {MIN_IDLE_LIMIT_S:g} s; a page "
                          "records that it watches a run with each redraw, and a busy moment could stop it")
    if problem is not None and algo.needs_strong_convexity and not problem.strongly_convex:
        errors.append(f"{solver} needs a strongly convex lower level; {task} is merely convex: use 'wc-penalty'")
    return Setup(task=task, task_params=params, solver=solver, options=options, device=device, steps=steps, seed=seed,
                 metrics_every=metrics_every, divergence_factor=divergence, idle_limit=idle or None, problem=problem,
                 errors=errors)


def analytic_front(setup: Setup, points: int = 60) -> Any:
    """The task's known Pareto front (S = 2 only, for the charts), computed once per session."""
    problem = setup.problem
    if problem is None or problem.pareto_front is None or problem.num_objectives != 2:
        return None
    cache: dict[str, Any] = st.session_state.setdefault("_analytic_fronts", {})
    key = json.dumps([setup.task, setup.task_params], sort_keys=True, default=str)
    if key not in cache:
        cache[key] = problem.pareto_front(points)
    return cache[key]


def current_setup() -> Setup:
    """The sidebar of this run: drawn by app.py before the page (so its widgets, and their
    values, are the same on every page), or by the page itself when it runs alone (AppTest)."""
    return st.session_state.pop("_setup", None) or render_sidebar()
