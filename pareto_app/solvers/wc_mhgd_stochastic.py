"""WC-MHGD, stochastic (mobl-wc-mhgd Algorithm 2 with Algorithm 3).

    for k = 0, 1, ...
        y_k^0 = y_{k-1}^D                                                  (line 3)
        y_k^t = y_k^{t-1} − α ∇_y G(x_k, y_k^{t-1}; T_{t-1}),  t ≤ D          (line 5, fresh batch each)
        draw D_G and D_H = {B_j}_{j=1..Q}                                  (line 7)
        for s: v^(s),0 = ∇_y F^(s)(x_k, y_k^D; D_F^s)                      (lines 9-10)
               v^(s),Q = Alg. 3 (Neumann with independent, shrinking B_j)
               ∇̂φ_s = ∇_x F^(s)(x_k, y_k^D; D_F^s) − ∇²_xy G(x_k, y_k^D; D_G) v^(s),Q   (line 11)
        λ_k from Eq. (5);  x_{k+1} = x_k − β ∇̂Φ (r ⊙ λ_k)                  (lines 13-14)

Alg. 3's batches shrink geometrically, |B_j| = max(B/8, ⌈B (1 − ημ)^{j-1}⌉): deep terms of
the series are damped by (1 − ημ)^j, so they need fewer samples (Ji, Yang and Liang 2021).
The objectives reported are the deterministic F(x_k, y_k^D), for honest charts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..batched_oracles import BatchedOracles
from ..oracles import Oracles
from ..problem import Problem
from ..stepsize import (
    condition_number,
    hypergradient_lipschitz,
    power_iteration,
    stochastic_series_terms,
    weighted_step,
)
from . import wc_mhgd_stochastic_batched as batched
from .base import Option, StepOutput
from .one_run import preference_row, step_output
from .wc_mhgd import LIPSCHITZ_MARGIN, resolve_lower_level


@dataclass
class State:
    """One run: B = 1 of the batched step (`wc_mhgd_stochastic_batched`), the same code as a sweep's rows."""

    x: torch.Tensor
    y: torch.Tensor
    lam: torch.Tensor | None  # the last Eq. 5 solution (1, S), the next QP's warm start
    k: int
    options: dict[str, Any]
    oracles: Oracles
    generator: torch.Generator
    hessian_batches: list[int]  # |B_j|, j = 1..Q
    lipschitz: float
    config: batched.Config
    batched: BatchedOracles


@dataclass(frozen=True)
class StochasticWCMHGD:
    name: str = "wc-mhgd-stochastic"
    summary: str = "Stochastic WC-MHGD (Alg. 2 + Alg. 3): minibatch hypergradients, shrinking Neumann batches"
    needs_strong_convexity: bool = True

    @property
    def options(self) -> dict[str, Option]:
        return {
            "alpha": Option(None, "lower-level step size α (default 1/L_g)", low=1e-12, high=1e6),
            "beta": Option(None, "upper-level step size β (default 1/(r_max L̂_φ))", low=1e-12, high=1e6),
            "eta": Option(None, "Neumann step η of Alg. 3 (default 1/L of its smallest batch)", low=1e-12, high=1e6),
            "D": Option(None, "inner SGD steps per iteration (default from κ)", low=1, high=10_000, integer=True),
            "Q": Option(None, "Neumann terms of Alg. 3 (default from κ)", low=1, high=10_000, integer=True),
            "u": Option(10.0, "weight u of the WC-scalarization term of Eq. 5", low=0.0, high=1e8),
            "batch_lower": Option(256, "batch size of each inner SGD step (T_t)", low=1, high=1e7, integer=True),
            "batch_upper": Option(256, "batch size of each objective's gradients (D_F^s)", low=1, high=1e7, integer=True),
            "batch_jvp": Option(256, "batch size of the Jacobian-vector product (D_G)", low=1, high=1e7, integer=True),
            "batch_hessian": Option(256, "size of the first Neumann batch B_1 (D_H)", low=1, high=1e7, integer=True),
        }

    def init(self, problem: Problem, preference: np.ndarray, options: dict[str, Any], oracles: Oracles,
             generator: torch.Generator) -> State:
        if problem.minibatches is None:
            raise ValueError(f"{self.name} needs a problem with a stochastic (minibatch) form; "
                             f"{problem.name!r} has none: use 'wc-mhgd'")
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        opts = resolve_lower_level(problem, oracles, {**options, "N": None}, neumann=False, seed=seed)
        del opts["N"]
        kappa = condition_number(opts["L_g"], opts["mu_g"])
        Q = opts["Q"] if opts["Q"] is not None else stochastic_series_terms(kappa)
        # Deep Neumann terms get small batches, whose curvature can far exceed the full
        # Hessian's: a floor on their size, and η from the curvature of the smallest one, keep
        # every factor (I − η ∇²G(B_j)) a contraction.
        smallest = max(1, opts["batch_hessian"] // 8)
        eta = opts["eta"]
        if eta is None:
            L_batch = power_iteration(lambda v: oracles.hvp(problem.x0, problem.y0, v,
                                                            batch=problem.minibatches.sample_lower(smallest, generator)),
                                      torch.randn(problem.y0.numel(), generator=generator, dtype=problem.dtype)
                                      .to(problem.device), 20)
            eta = 1.0 / max(opts["L_g"], 1.25 * abs(L_batch))
        contraction = max(1.0 - eta * opts["mu_g"], 0.0)
        sizes = [max(smallest, math.ceil(opts["batch_hessian"] * contraction ** j)) for j in range(Q)]
        opts.update(eta=eta, Q=Q)
        lipschitz = 0.0
        if opts["beta"] is None:
            lipschitz = LIPSCHITZ_MARGIN * hypergradient_lipschitz(
                oracles, problem.x0, problem.y0, opts["alpha"], inner=max(opts["D"], 20), cg_steps=20, seed=seed)
            opts["L_phi"] = lipschitz
            opts["beta"] = weighted_step(lipschitz, float(preference.max()))
        return State(x=problem.x0.clone(), y=problem.y0.clone(), lam=None, k=0, options=opts, oracles=oracles,
                     generator=generator, hessian_batches=sizes, lipschitz=lipschitz,
                     config=batched.config_of(opts, lipschitz, sizes, generator),
                     batched=BatchedOracles.single(oracles))

    def step(self, state: State, preference: np.ndarray) -> tuple[State, StepOutput]:
        core = batched.State(X=state.x[None], Y=state.y[None], warm=None, memory=state.lam)
        core, out = batched.step(state.config, core, preference_row(preference, state.x), state.batched)
        return dataclasses.replace(state, x=core.X[0], y=core.Y[0], lam=core.memory, k=state.k + 1), step_output(out)


SOLVER = StochasticWCMHGD()
