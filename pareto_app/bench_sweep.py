"""`bench sweep`: a sweep as one batched run against the same preferences run one after another.

Per task: the wall time of the batched sweep of B preferences, and the sequential time of the same
B runs (timed on `sequential_runs` of them, one after another, and scaled to B: every run does the
same work), on the same device. The ratio is what a user gains; both include each run's metrics.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from . import tasks
from .api import solve, sweep


def run_sweep_bench(task_names: list[str], device: str = "cpu", B: int = 64, steps: int = 50,
                    sequential_runs: int = 4, solver: str = "wc-mhgd", params: dict[str, Any] | None = None
                    ) -> list[dict[str, Any]]:
    """`params` go to every task (e.g. data=PATH, model=..., for a data set of realistic size)."""
    rows = []
    for name in task_names:
        problem = tasks.get(name, device=device, **(params or {}))
        S = problem.num_objectives
        preferences = np.random.default_rng(0).dirichlet(np.ones(S), B)
        sys.stderr.write(f"\rbench sweep: {name}, B = {B}, {steps} steps: sequential …   ")
        sys.stderr.flush()
        solve(problem, solver, preferences[0], steps=2, device=device)  # imports and caches warm
        started = time.perf_counter()
        for r in preferences[:sequential_runs]:
            solve(problem, solver, r, steps=steps, device=device)
        per_run = (time.perf_counter() - started) / min(sequential_runs, B)
        sys.stderr.write(f"\rbench sweep: {name}, B = {B}, {steps} steps: batched …     ")
        sys.stderr.flush()
        sweep(problem, solver, preferences[:2], steps=2, device=device, batch_size=B)
        started = time.perf_counter()
        sweep(problem, solver, preferences, steps=steps, device=device, batch_size=B)
        batched = time.perf_counter() - started
        rows.append({"task": name, "solver": solver, "device": device, "B": B, "steps": steps, "sequential_s": per_run * B,
                     "batched_s": batched, "speedup": per_run * B / batched})
    sys.stderr.write("\r" + " " * 70 + "\r")
    return rows
