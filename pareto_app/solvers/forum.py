"""FORUM (forum Algorithm 1): a first-order method on the value-function reformulation.

    min_z F(z)  s.t.  q̃(z) = g(x, y) − g(x, ỹ^T) ≤ 0,   z = (x, y)

    for k = 0, ..., K−1
        ỹ^0 = y_k;  ỹ^{t+1} = ỹ^t − η ∇_y g(x_k, ỹ^t), t < T        (lines 4-7, Eq. 5)
        ∇q̃(z_k) = ∇_z g(z_k) − (∇_x g(x_k, ỹ^T), 0)                   (line 9)
        φ_k = (ρ/2) ‖∇q̃‖²;  π_i = (2φ_k − ⟨∇q̃, ∇F_i⟩) / ‖∇q̃‖²          (Eq. 10)
        λ^k = argmin of QP (12)                                       (line 11)
        λ̃^k = (1 − β_k) λ̃^{k−1} + β_k λ^k,  β_k = (k+1)^{-3/4}         (line 12)
        ν = max(Σ_i λ̃_i π_i, 0);  d_k = −(Σ_i λ̃_i ∇F_i + ν ∇q̃)         (Eqs. 9-10)
        z_{k+1} = z_k + μ d_k                                         (line 15)

FORUM takes no preference: it stops at some point of the front. Theorem 1 takes
μ = O(K^{-1/2}); the default is μ = min(1, √(100/K)) / L̂ with L̂ the largest curvature of
Σ_s f_s and of g in z (power iteration), and η = 1/L_g.

The Pareto set is not a fixed point of this iteration. On the feasible set ∇q̃ = 0 (the
value-function constraint has no gradient there, hence no constraint qualification), so
d_k = −Σ λ̃_i ∇F_i, whose y-part pushes y off y*(x); the ρ-term pulls back only once ‖∇q̃‖
has grown. The iterates settle about 4μ from the set on toy-quadratic, whatever ρ
(tests/test_solvers.py starts FORUM on the set and measures it), which is why its last
iterate is not held to the 1e-3 of the hypergradient solvers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.func import grad, jvp

from ..batched_oracles import BatchedOracles
from ..oracles import Oracles
from ..problem import Problem
from ..stepsize import condition_number, lower_curvature, power_iteration, tracking_steps
from . import forum_batched
from .base import Option, StepOutput
from .one_run import preference_row, step_output


@dataclass
class State:
    """One run: B = 1 of the batched step (`forum_batched`), the same code as a sweep's rows."""

    x: torch.Tensor
    y: torch.Tensor
    lam_bar: torch.Tensor  # λ̃^{k−1}, [S] (S numbers in a checkpoint of an earlier version)
    k: int
    options: dict[str, Any]
    oracles: Oracles
    config: forum_batched.Config
    batched: BatchedOracles


def z_curvature(problem: Problem, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> float:
    """max(λ_max ∇²_z Σ_s f_s, λ_max ∇²_z g) at z by power iteration (setup cost, not counted)."""
    p = x.numel()

    def hess(fn: Any) -> Any:
        def hv(w: torch.Tensor) -> torch.Tensor:
            tangent = jvp(lambda zz: grad(lambda a: fn(a[:p], a[p:]))(zz), (torch.cat([x, y]),), (w,))[1]
            return tangent

        return hv

    total = lambda a, b: sum(f(a, b) for f in problem.upper)  # noqa: E731
    w0 = torch.randn(p + y.numel(), generator=generator, dtype=x.dtype).to(x.device)
    return max(abs(power_iteration(hess(total), w0, 30)), abs(power_iteration(hess(problem.lower), w0, 30)))


@dataclass(frozen=True)
class Forum:
    name: str = "forum"
    summary: str = "FORUM (first-order, value-function constraint, QP (12), momentum on the weights)"
    needs_strong_convexity: bool = True

    @property
    def options(self) -> dict[str, Option]:
        return {
            "mu": Option(None, "upper-level step size μ (default min(1, √(100/K))/L̂ in z)", low=1e-12, high=1e6),
            "eta": Option(None, "lower-level step size η (default 1/L_g)", low=1e-12, high=1e6),
            "T": Option(None, "lower-level steps per iteration (default from κ)", low=1, high=10_000, integer=True),
            "rho": Option(0.5, "ρ of φ_k = (ρ/2)‖∇q̃‖²", low=0.0, high=1e6),
        }

    def init(self, problem: Problem, preference: np.ndarray, options: dict[str, Any], oracles: Oracles,
             generator: torch.Generator) -> State:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        L, mu_g = lower_curvature(oracles, problem.x0, problem.y0, seed=seed)
        kappa = condition_number(L, mu_g)
        eta = options["eta"] if options["eta"] is not None else 1.0 / L
        T = options["T"] if options["T"] is not None else tracking_steps(kappa)
        mu = options["mu"]
        if mu is None:
            K = options.get("steps") or 100
            mu = min(1.0, (100 / K) ** 0.5) / (1.25 * z_curvature(problem, problem.x0, problem.y0, generator))
        S = problem.num_objectives
        opts = {**options, "mu": mu, "eta": eta, "T": T, "L_g": L, "mu_g": mu_g}
        x = problem.x0.clone()
        return State(x=x, y=problem.y0.clone(), lam_bar=torch.full((S,), 1.0 / S, dtype=torch.float64, device=x.device),
                     k=0, options=opts, oracles=oracles, config=forum_batched.config_of(opts),
                     batched=BatchedOracles.single(oracles))

    def step(self, state: State, preference: np.ndarray) -> tuple[State, StepOutput]:
        lam_bar = torch.as_tensor(state.lam_bar, dtype=torch.float64, device=state.x.device)
        core = forum_batched.State(X=state.x[None], Y=state.y[None], lam_bar=lam_bar[None], k=state.k)
        core, out = forum_batched.step(state.config, core, preference_row(preference, state.x), state.batched)
        new = dataclasses.replace(state, x=core.X[0], y=core.Y[0], lam_bar=core.lam_bar[0], k=core.k)
        return new, step_output(out)


SOLVER = Forum()
