"""A sweep as one batched run (issue 9): every preference a row of the same tensors, one step for all.

What `api.Run` does for one run — the start, divergence, the metrics of recorded iterates, the
history and the Result — done here for B runs of the solvers that have a batched step
(`BATCHED`). Each run's Result is the one its sequential `pa.solve` gives, to rounding: the
options are resolved by the same init, and every run steps with its own preference and β.
Values come to the host once per recorded step (every `metrics_every`, or every 0.25 s when the steps
are streamed), all the steps since the last copy at once: the steps between never wait for the device.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch

from .batched_oracles import BatchedOracles
from .metrics import batched_point_metrics
from .oracles import Oracles
from .problem import Problem
from .result import Iterate, Result
from .solvers import forum_batched, itd_batched, wc_lagrangian, wc_mhgd_batched, wc_mhgd_stochastic_batched
from .termination import divergence_reason

# The batched step of each solver that has one: a module with start, step and restart
# (`solvers/wc_mhgd_batched.py` documents them).
ENGINES: dict[str, Any] = {"wc-mhgd": wc_mhgd_batched, "mgda": wc_mhgd_batched, "linear": wc_mhgd_batched,
                           "wc-penalty": wc_lagrangian, "wc-al": wc_lagrangian,
                           "moml": itd_batched, "moco": itd_batched, "forum": forum_batched,
                           "wc-mhgd-stochastic": wc_mhgd_stochastic_batched}
BATCHED = tuple(ENGINES)
STREAM_EVERY_S = 0.25  # a streamed sweep hears of its steps at least this often, recorded or not


def batched_results(problem: Problem, algo: Any, options: dict[str, Any], preferences: np.ndarray,
                    *, steps: int, seed: int, metrics_every: int, divergence_factor: float,
                    progress: Callable[[int, int], None] | None = None,
                    on_step: Callable[[int, list[Iterate | None]], str | None] | None = None) -> list[Result]:
    """One Result per row of `preferences` (B×S, normalised), all runs stepping together on problem's device.

    `on_step(k, iterates)` sees each step's iterate of every run (None for a run that has diverged),
    as a stream of B runs; a reason it returns stops every run there (status "stopped")."""
    B = len(preferences)
    engine = ENGINES[algo.name]
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    init_oracles = Oracles(problem)
    config, state, per_run_options = engine.start(algo, problem, options, preferences, steps, generator, init_oracles)
    oracles = BatchedOracles(problem)
    measure = BatchedOracles(problem)  # metrics cost oracle calls too, but not the solver's
    device = problem.device
    # float64 whatever the problem's dtype: the QP, β and the KKT multipliers read the preference exactly.
    R = torch.as_tensor(preferences, dtype=torch.float64, device=device)
    rows: list[list[dict[str, Any]]] = [[] for _ in range(B)]
    last: list[Iterate | None] = [None] * B
    failure: list[str] = [""] * B
    alive = np.ones(B, dtype=bool)
    start_values: np.ndarray | None = None
    worst_gap = np.zeros(B)
    init_counts = init_oracles.counts.as_dict()
    started = time.perf_counter()
    stopped = ""
    pending: list[tuple[int, dict[str, torch.Tensor], dict[str, int], float]] = []
    flushed = time.monotonic()
    for k in range(steps):
        record = k % metrics_every == 0 or k == steps - 1
        with torch.no_grad():
            state, out = engine.step(config, state, R, oracles)
            if record:
                metrics = batched_point_metrics(measure, out.X, out.Y, R, out.weights, out.multipliers)
            else:
                nan = torch.full_like(out.direction_norm, float("nan"))
                metrics = {"constraint_violation": measure.lower_grad_y(out.X, out.Y).norm(dim=1),
                           "stationarity": nan, "kkt_residual": nan}
        values = {"f": out.objectives, "weights": out.weights, "norms": out.direction_norm,
                  "violation": metrics["constraint_violation"], "stationarity": metrics["stationarity"],
                  "kkt": metrics["kkt_residual"], "qp_gap": out.qp_gap,
                  "finite_points": torch.isfinite(out.X).all(dim=1) & torch.isfinite(out.Y).all(dim=1),
                  "finite_weighting": out.finite_weighting, "X": out.X, "Y": out.Y,
                  **{f"schedule:{name}": v for name, v in (out.schedule or {}).items()}}
        counts = {name: init_counts[name] + value for name, value in oracles.counts.as_dict().items()}
        pending.append((k, values, counts, time.perf_counter() - started))
        # Values come to the host once per recorded step, or sooner when a stream would wait (a slow step):
        # the steps between run on without waiting for the device.
        if not (record or on_step is not None and time.monotonic() - flushed >= STREAM_EVERY_S):
            continue
        flushed = time.monotonic()
        host = {name: torch.stack([v[name] for _, v, _, _ in pending]).detach() for name in pending[0][1]
                if name not in ("X", "Y")}
        host = {name: (t.double() if t.is_floating_point() else t).cpu().numpy() for name, t in host.items()}
        schedule_names = [name for name in host if name.startswith("schedule:")]
        for j, (step_k, values, counts, elapsed) in enumerate(pending):
            f = host["f"][j]
            # The QP's certificate, read with the rest: on the CPU an uncertified instance was already solved
            # exactly; on a GPU the run's worst gap is reported with its result.
            worst_gap = np.maximum(worst_gap, host["qp_gap"][j])
            if start_values is None:
                start_values = np.abs(f)
            current: list[Iterate | None] = [None] * B
            for b in np.flatnonzero(alive):
                bad = divergence_reason(f[b], bool(host["finite_points"][j][b]), start_values[b], divergence_factor)
                if not bad and not host["finite_weighting"][j][b]:  # what pareto_app.qp raises on in a sequential run
                    bad = "the weighting QP's Gram matrix has non-finite entries"
                if bad:
                    alive[b] = False
                    failure[b] = (f"{algo.name} diverged at step {step_k}: {bad}; the last good iterate is kept. "
                                  "Try a smaller step size.")
                    continue
                schedule = {name.split(":", 1)[1]: float(host[name][j][b]) for name in schedule_names}
                it = Iterate(step=step_k, x=values["X"][b], y=values["Y"][b], objectives=f[b],
                             weights=host["weights"][j][b], preference=preferences[b].copy(),
                             constraint_violation=float(host["violation"][j][b]),
                             stationarity=float(host["stationarity"][j][b]), kkt_residual=float(host["kkt"][j][b]),
                             direction_norm=float(host["norms"][j][b]), oracle_calls=dict(counts), elapsed=elapsed,
                             schedule=schedule or None)
                rows[b].append(it.row())
                last[b] = current[b] = it
            if progress is not None:
                progress(step_k + 1, steps)
            if on_step is not None:
                stopped = on_step(step_k, current) or ""
            if not alive.any() or stopped:
                break
        pending = []
        if not alive.any() or stopped:
            break
        # A run that has diverged steps on from the start, harmlessly: its non-finite values would
        # otherwise reach the batch's QPs and metrics. Its rows are no longer recorded.
        if not alive.all():
            state = engine.restart(config, state, torch.as_tensor(~alive, device=device), problem, R)
    results = []
    for b in range(B):
        it = last[b]
        if it is None:
            from .api import Diverged

            raise Diverged(f"run {b} of the sweep (preference {preferences[b].tolist()}): {failure[b]}", None)
        status = "diverged" if failure[b] else "stopped" if stopped else "finished"
        results.append(Result.of_run(
            solver=algo.name, task=problem.name, task_params=problem.params,
            options=per_run_options[b],
            seed=seed, steps=steps, device=str(device), history=pd.DataFrame(rows[b]), x=it.x, y=it.y,
            status=status, message=failure[b] or stopped,
            metadata={"oracle_calls": it.oracle_calls, "elapsed": it.elapsed, "batched": B,
                      "qp_gap_max": float(worst_gap[b]),
                      "vmap": not oracles.looped}))
    return results
