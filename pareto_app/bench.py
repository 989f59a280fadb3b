"""Benchmarks you can rerun: `python -m pareto_app bench qp|hvp|iteration`.

Each prints ratios measured in one run (the machine is shared and noisy: absolute times
move, ratios much less).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .batched_oracles import BatchedOracles
from .oracles import Oracles
from .problem import Problem


def digits_mlp_problem(hidden: int = 256, samples: int = 1024, l2: float = 0.05, seed: int = 0) -> Problem:
    """A 64-`hidden`-10 MLP on scikit-learn's digits with per-sample weights x (the bench model).

    g(x, y) = mean_i σ(x_i) CE(MLP_y(a_i), b_i) + l2 ‖y‖²;  f(x, y) = CE on held-out digits.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(digits.target), generator=gen)
    features = torch.tensor(digits.data, dtype=torch.float32)[order] / 16.0
    labels = torch.tensor(digits.target, dtype=torch.long)[order]
    train_a, train_b = features[:samples], labels[:samples]
    val_a, val_b = features[samples:], labels[samples:]
    shapes = [(hidden, 64), (hidden,), (10, hidden), (10,)]
    sizes = [int(np.prod(s)) for s in shapes]

    def mlp(y: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        W1, b1, W2, b2 = (p.reshape(s) for p, s in zip(torch.split(y, sizes), shapes))
        return torch.relu(a @ W1.T + b1) @ W2.T + b2

    def lower(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        losses = torch.nn.functional.cross_entropy(mlp(y, train_a), train_b, reduction="none")
        return (torch.sigmoid(x) * losses).mean() + l2 * y.pow(2).sum()

    def upper(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(mlp(y, val_a), val_b)

    y0 = torch.cat([torch.randn(n, generator=gen) * (0.1 if len(s) > 1 else 0.0) for n, s in zip(sizes, shapes)])
    return Problem(upper=[upper, upper], lower=lower, x0=torch.zeros(samples), y0=y0, name="digits-mlp")


def _time(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def bench_hvp(repeats: int = 20, rounds: int = 5) -> list[dict[str, Any]]:
    """HVP time over gradient time on the 64-256-10 MLP, for each way of taking the HVP.

    Gradient and products are timed back to back in each round and the ratio is the median
    over rounds, so a change in the machine's load between measurements cancels out.
    """
    problem = digits_mlp_problem()
    x, y = problem.x0, problem.y0
    v = torch.randn_like(y)
    oracles = Oracles(problem)
    rows = []
    for mode in ("reverse", "forward"):
        o = Oracles(problem, second_order=mode)
        point = o.at(x, y)
        grad_s, fresh_s, reused_s = [], [], []
        for _ in range(rounds):
            grad_s.append(_time(lambda: oracles.lower_grad_y(x, y), repeats))
            fresh_s.append(_time(lambda: o.at(x, y).hvp(v), repeats))  # graph built for one product
            reused_s.append(_time(lambda: point.hvp(v), repeats))  # the N products of a CG solve
        g, f, r = (np.array(t) for t in (grad_s, fresh_s, reused_s))
        rows.append({"mode": mode, "grad_ms": 1e3 * float(np.median(g)), "hvp_ms": 1e3 * float(np.median(f)),
                     "hvp_over_grad": float(np.median(f / g)), "hvp_reused_over_grad": float(np.median(r / g))})
    return rows


class _TimedCalls:
    """Oracles that also add up the wall time spent inside them (a mixin over Oracles or BatchedOracles)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem)  # type: ignore[call-arg]
        self.seconds = 0.0

    _inside = 0  # timed calls in progress, over every timed object: a single run's batched oracles call its own

    def _timed(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if _TimedCalls._inside:  # counted by the call that made this one
            return fn(*args, **kwargs)
        start = time.perf_counter()
        _TimedCalls._inside += 1
        try:
            return fn(*args, **kwargs)
        finally:
            _TimedCalls._inside -= 1
            self.seconds += time.perf_counter() - start

    def upper(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed(super().upper, *args, **kwargs)  # type: ignore[misc]

    def lower_grad_y(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed(super().lower_grad_y, *args, **kwargs)  # type: ignore[misc]

    def lower_grad(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed(super().lower_grad, *args, **kwargs)  # type: ignore[misc]

    def at(self, *args: Any, **kwargs: Any) -> Any:
        point = self._timed(super().at, *args, **kwargs)  # type: ignore[misc]
        for name in ("hvp", "jvp_xy", "jvp_and_hvp", "constraint_jvp"):
            method = getattr(point, name)
            setattr(point, name, lambda *a, _m=method, **k: self._timed(_m, *a, **k))
        return point


class TimedOracles(_TimedCalls, Oracles):
    """Oracles that also add up the wall time spent inside them."""


class TimedBatchedOracles(_TimedCalls, BatchedOracles):
    """A single run's batched oracles (what its step calls) that also add up the wall time spent inside them."""


def bench_iteration(steps: int = 30, hypergrad: str = "cg") -> list[dict[str, Any]]:
    """Share of a wc-mhgd iteration spent outside oracle calls, on the MLP and on toy-quadratic."""
    from . import tasks
    from .solvers import check_options, get

    rows = []
    for label, problem in (("digits-mlp", digits_mlp_problem()), ("toy-quadratic", tasks.get("toy-quadratic"))):
        solver = get("wc-mhgd")
        options = check_options(solver, {"hypergrad": hypergrad, "alpha": 0.1, "beta": 1e-3, "D": 10, "N": 10})
        oracles = TimedOracles(problem)
        r = np.full(problem.num_objectives, 1.0 / problem.num_objectives)
        with torch.no_grad():
            state = solver.init(problem, r, options, oracles, torch.Generator().manual_seed(0))
            # A single run steps as B = 1 of the batched loop, through its batched oracles.
            timed = TimedBatchedOracles.single(oracles)
            state = dataclasses.replace(state, batched=timed)
            state, _ = solver.step(state, r)  # warm-up
            oracles.seconds = timed.seconds = 0.0
            start = time.perf_counter()
            for _ in range(steps):
                state, _ = solver.step(state, r)
        total = time.perf_counter() - start
        rows.append({"problem": label, "ms_per_iteration": 1e3 * total / steps,
                     "outside_oracles_share": 1.0 - (oracles.seconds + timed.seconds) / total})
    return rows


def bench_qp(calls: int = 200) -> list[dict[str, Any]]:
    from .bench_qp import run_qp_bench

    return run_qp_bench(calls=calls)


def print_rows(title: str, rows: list[dict[str, Any]]) -> None:
    print(title)
    if not rows:
        return
    keys = list(rows[0])
    print("  " + "  ".join(f"{k:>22}" for k in keys))
    for row in rows:
        cells = [f"{v:>22.4g}" if isinstance(v, float) else f"{v!s:>22}" for v in row.values()]
        print("  " + "  ".join(cells))
