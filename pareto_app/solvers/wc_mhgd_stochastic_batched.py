"""Stochastic WC-MHGD (mobl-wc-mhgd Algorithm 2 with Algorithm 3, `wc_mhgd_stochastic.py`) for B runs at once.

Runs of one sweep share a seed, so each of their sequential runs draws the same minibatches in the
same order: here one draw serves every run, and each oracle call evaluates all runs on it.

    Y^t = Y^{t−1} − α ∇_y G(X, Y^{t−1}; T_{t−1}),  t ≤ D                         (line 5)
    V^Q = Alg. 3 on ∇_y F^(s)(X, Y^D; D_F^s) with Q shrinking batches B_j       (lines 9-10)
    ∇̂Φ = ∇_x F^(s)(X, Y^D; D_F^s) − ∇²_xy G(X, Y^D; D_G) V^Q                   (line 11)
    λ from Eq. (5) per run;  X ← X − β_b ∇̂Φ (r ⊙ λ)                            (lines 13-14)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..batched_oracles import BatchedOracles
from ..oracles import Oracles
from ..problem import Problem
from ..qp import wc_weights_batched
from ..stepsize import weighted_step
from .wc_mhgd_batched import Output, normalized_weights


@dataclass(frozen=True)
class Config:
    alpha: float
    D: int
    eta: float
    u: float
    beta: float | None  # a given β; None: β_b = 1/(r_b,max L̂_φ)
    lipschitz: float
    batch_lower: int
    batch_upper: int
    batch_jvp: int
    hessian_batches: tuple[int, ...]  # |B_j|, j = 1..Q
    generator: torch.Generator  # the runs' shared stream of minibatches (advanced by each step)


@dataclass(frozen=True)
class State:
    X: torch.Tensor  # (B, p)
    Y: torch.Tensor  # (B, q)


def config_of(options: dict[str, Any], lipschitz: float, hessian_batches: list[int],
              generator: torch.Generator) -> Config:
    """The resolved options of the sequential init (`lipschitz` 0: β given)."""
    return Config(alpha=float(options["alpha"]), D=int(options["D"]), eta=float(options["eta"]), u=float(options["u"]),
                  beta=None if lipschitz != 0.0 else float(options["beta"]), lipschitz=lipschitz,
                  batch_lower=int(options["batch_lower"]), batch_upper=int(options["batch_upper"]),
                  batch_jvp=int(options["batch_jvp"]), hessian_batches=tuple(hessian_batches), generator=generator)


def start(algo: Any, problem: Problem, options: dict[str, Any], preferences: np.ndarray, steps: int,
          generator: torch.Generator, oracles: Oracles) -> tuple[Config, State, list[dict[str, Any]]]:
    """(config, the state at the start, each run's resolved options): the sequential init, run once."""
    with torch.no_grad():
        first = algo.init(problem, preferences[0], dict(options, steps=steps), oracles, generator)
    resolved = {k: v for k, v in first.options.items() if k != "steps"}
    estimated = first.lipschitz != 0.0
    config = first.config
    B = len(preferences)
    state = State(X=problem.x0.expand(B, -1).clone(), Y=problem.y0.expand(B, -1).clone())
    per_run = [dict(resolved, beta=weighted_step(first.lipschitz, float(np.max(r)))) if estimated else dict(resolved)
               for r in preferences]
    return config, state, per_run


def restart(config: Config, state: State, dead: torch.Tensor, problem: Problem, R: torch.Tensor) -> State:
    """The runs marked `dead` (diverged) step on from the start, harmlessly."""
    return State(X=torch.where(dead[:, None], problem.x0, state.X), Y=torch.where(dead[:, None], problem.y0, state.Y))


def step(config: Config, state: State, R: torch.Tensor, oracles: BatchedOracles) -> tuple[State, Output]:
    mb, gen, X = oracles.problem.minibatches, config.generator, state.X
    S = oracles.problem.num_objectives
    # Lines 3-6: D SGD steps, a fresh batch T_{t−1} each (drawn in the sequential run's order).
    Y = state.Y
    for _ in range(config.D):
        Y = Y - config.alpha * oracles.lower_grad_y(X, Y, batch=mb.sample_lower(config.batch_lower, gen))
    # Line 7: D_G, and D_H as Q independent batches of shrinking size.
    batch_G = mb.sample_lower(config.batch_jvp, gen)
    batches_H = [mb.sample_lower(size, gen) for size in config.hessian_batches]
    # Lines 8-12: v^(s),0 = ∇_y F^(s)(D_F^s); Alg. 3, v = η Σ_i Π_{j≤i} (I − η ∇²_yy G(B_j)) v^0; line 11.
    batches_F = [mb.sample_upper(s, config.batch_upper, gen) for s in range(S)]
    phi_hat, GX, GY = oracles.upper(X, Y, batches=batches_F)
    nu, acc = GY, GY.clone()
    for batch in batches_H:
        nu = nu - config.eta * oracles.at(X, Y, batch).hvp(nu)
        acc = acc + nu
    hyper = GX - oracles.at(X, Y, batch_G).jvp_xy(config.eta * acc)
    # Line 13: Eq. (5) on the sampled Gram matrices and objective estimates.
    gram = (hyper @ hyper.transpose(1, 2)).double()
    finite = torch.isfinite(gram).all(dim=(1, 2)) & torch.isfinite(phi_hat).all(dim=1)
    eye = torch.eye(S, dtype=gram.dtype, device=gram.device).expand_as(gram)
    Rd = R.double()
    lam, gap = wc_weights_batched(torch.where(finite[:, None, None], gram, eye), Rd,
                                  torch.where(finite[:, None], phi_hat.double(), 0.0), config.u)
    w = Rd * lam
    # Line 14.
    d = torch.einsum("bs,bsp->bp", w.to(hyper.dtype), hyper)
    beta = (torch.full_like(Rd[:, 0], config.beta) if config.beta is not None
            else 1.0 / (Rd.amax(dim=1) * max(config.lipschitz, 1e-300))).to(X.dtype)
    # The objectives reported are the deterministic F(x_k, y_k^D), as in the sequential run.
    return State(X=X - beta[:, None] * d, Y=Y), Output(
        X=X, Y=Y, objectives=oracles.upper_values(X, Y), weights=normalized_weights(w),
        direction_norm=(d * d).sum(dim=1), qp_gap=gap, finite_weighting=finite)
