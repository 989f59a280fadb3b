"""WC-MHGD, deterministic (mobl-wc-mhgd Algorithm 1), and its weighting-rule relatives.

    for k = 0, 1, ...
        y_k^0 = y_{k-1}^D                                      (line 3, warm start)
        y_k^t = y_k^{t-1} − α ∇_y g(x_k, y_k^{t-1}),  t ≤ D     (line 5)
        ∇̂φ_s(x_k) by CG (Eq. 3, warm-started v) or Neumann (Eq. 4)   (lines 7-14)
        λ_k = weighting(∇̂Φᵀ∇̂Φ, r, Φ(x_k))                      (line 15, Eq. 5)
        x_{k+1} = x_k − β ∇̂Φ(x_k)(r ⊙ λ_k)                     (line 16)

The weighting rule is a value: Eq. 5 for `wc-mhgd`, the min-norm rule with no preference
for `mgda` (u = 0, r uniform), fixed weights r for `linear`. All three share this loop.

Defaults are read off the problem: α = 1/L_g and κ = L_g/μ_g from power iteration on
∇²_yy g(x0, y0); D and N from κ (Theorem 5.5: D ≳ κ log 1/ε, N ≳ √κ log 1/ε); β = 1/(w_max L̂_φ)
with L̂_φ a power-iteration estimate of the hypergradients' Lipschitz constant, so the step
is stable for any weights of the rule (w_max bounds the largest weight it can put on one
objective: r_max for Eq. 5 and for `linear`, 1 for `mgda`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..batched_oracles import BatchedOracles
from ..oracles import Oracles
from ..problem import Problem
from ..stepsize import (
    cg_steps,
    condition_number,
    hypergradient_lipschitz,
    lower_curvature,
    series_steps,
    tracking_steps,
    weighted_step,
)
from ..weighting import Chebyshev, Rule
from .base import Option, StepOutput
from .one_run import preference_row, step_output

# The Lipschitz estimate is a Rayleigh quotient, a lower bound: keep a margin.
LIPSCHITZ_MARGIN = 1.25


@dataclass
class State:
    """One run: B = 1 of the batched loop (`wc_mhgd_batched`), the same code as a sweep's rows."""

    x: torch.Tensor
    y: torch.Tensor  # y_{k-1}^D, the warm start of the next inner loop
    V: torch.Tensor | None  # CG's warm start v_{k-1}^{(s),N}, (1, S, q)
    lam: torch.Tensor | None  # the last QP solution (1, S), the next QP's warm start
    k: int
    options: dict[str, Any]  # resolved values, estimated ones included
    oracles: Oracles
    batched: BatchedOracles  # the run's own oracles (plain functions, its counts), in the batched loop's shape
    lipschitz: float  # L̂_φ, for the automatic β


def hypergradient_options(with_u: bool) -> dict[str, Option]:
    options = {
        "hypergrad": Option("cg", "hypergradient estimator: conjugate gradient (Eq. 3) or Neumann series (Eq. 4)",
                            choices=("cg", "neumann")),
        "alpha": Option(None, "lower-level step size α (default 1/L_g)", low=1e-12, high=1e6),
        "beta": Option(None, "upper-level step size β (default 1/(w_max L̂_φ))", low=1e-12, high=1e6),
        "D": Option(None, "inner gradient steps per iteration (default from κ)", low=1, high=10_000, integer=True),
        "N": Option(None, "CG steps per hypergradient (default from κ)", low=1, high=10_000, integer=True),
    }
    if with_u:
        options["u"] = Option(10.0, "weight u of the WC-scalarization term of Eq. 5", low=0.0, high=1e8)
    return options


def resolve_lower_level(problem: Problem, oracles: Oracles, options: dict[str, Any], *, neumann: bool,
                        seed: int) -> dict[str, Any]:
    """α, D, N from the curvature of g at the start (recorded in the result)."""
    L, mu = lower_curvature(oracles, problem.x0, problem.y0, seed=seed)
    alpha = options["alpha"] if options["alpha"] is not None else 1.0 / L
    kappa = condition_number(L, mu)
    # Neumann's truncation error is (1 − αμ)^D, so it needs D ≈ κ log 1/ε terms; CG's inner
    # loop only tracks y*(x) from a warm start.
    D = options["D"] if options["D"] is not None else series_steps(kappa) if neumann else tracking_steps(kappa)
    N = options["N"] if options["N"] is not None else cg_steps(kappa)
    return {**options, "alpha": alpha, "D": D, "N": N, "L_g": L, "mu_g": mu}


@dataclass(frozen=True)
class HypergradientDescent:
    """The loop of Algorithm 1 with a given weighting rule."""

    name: str
    summary: str
    rule: Callable[[dict[str, Any]], Rule]  # line 15's weighting rule, from the resolved options
    takes_u: bool = False  # the rule has Eq. 5's u among the options
    needs_strong_convexity: bool = True

    @property
    def options(self) -> dict[str, Option]:
        return hypergradient_options(with_u=self.takes_u)

    def _max_weight(self, options: dict[str, Any], r: np.ndarray) -> float:
        return float(self.rule(options).max_weight(torch.as_tensor(np.asarray(r, dtype=float)[None]))[0])

    def init(self, problem: Problem, preference: np.ndarray, options: dict[str, Any], oracles: Oracles,
             generator: torch.Generator) -> State:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        neumann = options["hypergrad"] == "neumann"
        opts = resolve_lower_level(problem, oracles, options, neumann=neumann, seed=seed)
        lipschitz = 0.0
        if opts["beta"] is None:
            lipschitz = LIPSCHITZ_MARGIN * hypergradient_lipschitz(
                oracles, problem.x0, problem.y0, opts["alpha"], inner=max(opts["D"], 20), cg_steps=max(opts["N"], 20),
                seed=seed)
            opts["L_phi"] = lipschitz
            opts["beta"] = weighted_step(lipschitz, self._max_weight(opts, preference))
        return State(x=problem.x0.clone(), y=problem.y0.clone(), V=None, lam=None, k=0, options=opts, oracles=oracles,
                     batched=BatchedOracles.single(oracles), lipschitz=lipschitz)

    def step(self, state: State, preference: np.ndarray) -> tuple[State, StepOutput]:
        from . import wc_mhgd_batched as batched

        # An estimated β follows the preference (L̂_φ known); a given one, or a resumed run's, is fixed.
        config = batched.config_of(self, state.options, state.lipschitz,
                                   given_beta=None if state.lipschitz else state.options["beta"])
        core = batched.State(X=state.x[None], Y=state.y[None], warm=state.V, memory=state.lam)
        core, out = batched.step(config, core, preference_row(preference, state.x), state.batched)
        new = dataclasses.replace(state, x=core.X[0], y=core.Y[0], V=core.warm, lam=core.memory, k=state.k + 1)
        return new, step_output(out)


SOLVER = HypergradientDescent(
    name="wc-mhgd",
    summary="WC-MHGD (Alg. 1): preference-guided multi-hypergradient descent, CG or Neumann hypergradients",
    rule=lambda options: Chebyshev(u=float(options["u"])),
    takes_u=True,
)
