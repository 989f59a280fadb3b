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

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..hypergrad import stochastic_neumann
from ..oracles import Oracles
from ..problem import Problem
from ..stepsize import hypergradient_lipschitz, power_iteration, weighted_step
from .base import Option, StepOutput, normalized, to_numpy
from .wc_mhgd import LIPSCHITZ_MARGIN, chebyshev_weighting, resolve_lower_level


@dataclass
class State:
    x: torch.Tensor
    y: torch.Tensor
    k: int
    options: dict[str, Any]
    oracles: Oracles
    generator: torch.Generator
    hessian_batches: list[int]  # |B_j|, j = 1..Q
    lipschitz: float


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
        kappa = opts["L_g"] / max(opts["mu_g"], opts["L_g"] * 1e-6)
        Q = opts["Q"] if opts["Q"] is not None else int(np.clip(math.ceil(kappa * math.log(1e3)), 5, 300))
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
        return State(x=problem.x0.clone(), y=problem.y0.clone(), k=0, options=opts, oracles=oracles,
                     generator=generator, hessian_batches=sizes, lipschitz=lipschitz)

    def step(self, state: State, preference: np.ndarray) -> tuple[State, StepOutput]:
        o, opts, x, gen = state.oracles, state.options, state.x, state.generator
        mb = o.problem.minibatches
        S = o.problem.num_objectives
        # Lines 3-6: D SGD steps, a fresh batch T_{t-1} each.
        y = state.y
        for _ in range(opts["D"]):
            y = y - opts["alpha"] * o.lower_grad_y(x, y, batch=mb.sample_lower(opts["batch_lower"], gen))
        # Line 7: D_G, and D_H as Q independent batches of shrinking size.
        batch_G = mb.sample_lower(opts["batch_jvp"], gen)
        batches_H = [mb.sample_lower(size, gen) for size in state.hessian_batches]
        # Lines 8-12, batched over s: v^(s),0 = ∇_y F^(s)(D_F^s), Alg. 3, then line 11.
        batches_F = [mb.sample_upper(s, opts["batch_upper"], gen) for s in range(S)]
        phi_hat, gx, gy = o.upper(x, y, batches=batches_F)
        v = stochastic_neumann(o, x, y, gy, opts["eta"], batches_H)
        hyper = gx - o.jvp_xy(x, y, v, batch=batch_G)
        # Line 13: Eq. (5) on the sampled Gram matrix and objective estimates.
        gram = (hyper @ hyper.T).double().cpu().numpy()
        w = chebyshev_weighting(opts["u"])(gram, preference, to_numpy(phi_hat))
        # Line 14.
        d = torch.as_tensor(w, dtype=hyper.dtype, device=hyper.device) @ hyper
        beta = opts["beta"] if state.lipschitz == 0.0 else weighted_step(state.lipschitz, float(preference.max()))
        new = State(x=x - beta * d, y=y, k=state.k + 1, options=opts, oracles=o, generator=gen,
                    hessian_batches=state.hessian_batches, lipschitz=state.lipschitz)
        return new, StepOutput(x=x, y=y, objectives=o.upper_values(x, y), weights=normalized(w),
                               direction_norm=float(d @ d))


SOLVER = StochasticWCMHGD()
