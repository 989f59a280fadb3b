"""FORUM (forum Algorithm 1, `forum.py`) for B runs at once (issue 9).

    Ỹ^{t+1} = Ỹ^t − η ∇_y g(X, Ỹ^t), t < T, from Ỹ^0 = Y                  (lines 4-7)
    ∇q̃ = ∇_z g(Z) − (∇_x g(X, Ỹ^T), 0)                                    (line 9)
    λ from QP (12) per run, on the device (`qp.forum_weights_batched`) (line 11)
    λ̃ ← (1 − β_k) λ̃ + β_k λ,  β_k = (k+1)^{-3/4}                          (line 12)
    ν = max(λ̃ᵀπ, 0);  D = −(∇F λ̃ + ν ∇q̃);  Z ← Z + μ D                     (Eqs. 9-10, line 15)

FORUM reads no preference, so every run of a sweep is the same run: the batch is there for the
engine's sake (one code path, a sweep that costs one run's oracle calls per step for all).
A single run (`forum.py`) is B = 1 of this step. Where ‖∇q̃‖ vanishes against the objectives' gradients
(`tiny`), π = 0, ν = 0 and λ is the min-norm weighting; QP (12) then sees a γ without effect on the
direction when ∇q̃ = 0 exactly, the only case the iterates meet (y on y*(x)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..batched_oracles import BatchedOracles
from ..oracles import Oracles
from ..problem import Problem
from ..qp import forum_weights_batched
from ..weighting import normalized_weights
from .base import Output


@dataclass(frozen=True)
class Config:
    mu: float
    eta: float
    T: int
    rho: float


@dataclass(frozen=True)
class State:
    X: torch.Tensor  # (B, p)
    Y: torch.Tensor  # (B, q)
    lam_bar: torch.Tensor  # (B, S) λ̃^{k−1}, float64
    k: int


def config_of(options: dict[str, Any]) -> Config:
    """The resolved options of the sequential init."""
    return Config(mu=float(options["mu"]), eta=float(options["eta"]), T=int(options["T"]), rho=float(options["rho"]))


def start(algo: Any, problem: Problem, options: dict[str, Any], preferences: np.ndarray, steps: int,
          generator: torch.Generator, oracles: Oracles) -> tuple[Config, State, list[dict[str, Any]]]:
    """(config, the state at the start, each run's resolved options): the sequential init, run once."""
    with torch.no_grad():
        first = algo.init(problem, preferences[0], dict(options, steps=steps), oracles, generator)
    resolved = {k: v for k, v in first.options.items() if k != "steps"}
    config = config_of(resolved)
    B, S = len(preferences), problem.num_objectives
    state = State(X=problem.x0.expand(B, -1).clone(), Y=problem.y0.expand(B, -1).clone(),
                  lam_bar=torch.full((B, S), 1.0 / S, dtype=torch.float64, device=problem.device), k=0)
    return config, state, [dict(resolved) for _ in range(B)]


def restart(config: Config, state: State, dead: torch.Tensor, problem: Problem, R: torch.Tensor) -> State:
    """The runs marked `dead` (diverged) step on from the start, harmlessly."""
    return State(X=torch.where(dead[:, None], problem.x0, state.X), Y=torch.where(dead[:, None], problem.y0, state.Y),
                 lam_bar=torch.where(dead[:, None], 1.0 / R.shape[1], state.lam_bar), k=state.k)


def step(config: Config, state: State, R: torch.Tensor, oracles: BatchedOracles) -> tuple[State, Output]:
    X, Y = state.X, state.Y
    # Lines 4-7: T steps on g(x_k, ·) from ỹ^0 = y_k.
    Y_t = Y
    for _ in range(config.T):
        Y_t = Y_t - config.eta * oracles.lower_grad_y(X, Y_t)
    # Line 9: ∇q̃(z_k) = ∇_z g(z_k) − (∇_x g(x_k, ỹ^T), 0).
    gx_g, gy_g = oracles.lower_grad(X, Y)
    gx_t, _ = oracles.lower_grad(X, Y_t)
    grad_q = torch.cat([gx_g - gx_t, gy_g], dim=1)  # (B, p+q)
    # Line 10: ∇F_i(z_k).
    f, gx, gy = oracles.upper(X, Y)
    grad_F = torch.cat([gx, gy], dim=2)  # (B, S, p+q)
    # Line 11: QP (12) on the Gram matrices of [∇F_1..∇F_S, ∇q̃].
    stacked = torch.cat([grad_F, grad_q[:, None, :]], dim=1)
    gram = (stacked @ stacked.transpose(1, 2)).double()
    S = f.shape[1]
    finite = torch.isfinite(gram).all(dim=(1, 2))
    gram = torch.where(finite[:, None, None], gram, torch.eye(S + 1, dtype=gram.dtype, device=gram.device))
    q_sq = gram[:, S, S]
    phi_k = 0.5 * config.rho * q_sq
    trace = torch.diagonal(gram, dim1=1, dim2=2).sum(dim=1)
    tiny = q_sq <= 1e-30 * trace.clamp_min(1e-300)
    pi = torch.where(tiny[:, None], 0.0, (2 * phi_k[:, None] - gram[:, S, :S]) / torch.where(tiny, 1.0, q_sq)[:, None])
    lam, gap = forum_weights_batched(gram, pi, phi_k)  # Eq. (10) gives π
    # Line 12: momentum on the weights.
    beta_k = (state.k + 1) ** -0.75
    lam_bar = (1 - beta_k) * state.lam_bar + beta_k * lam
    # Lines 13-15: ν(λ̃) by Eq. (10), d_k by Eq. (9), z_{k+1} = z_k + μ d_k.
    nu = torch.where(tiny, 0.0, (lam_bar * pi).sum(dim=1).clamp_min(0.0)).to(X.dtype)
    d = -(torch.einsum("bs,bsn->bn", lam_bar.to(X.dtype), grad_F) + nu[:, None] * grad_q)
    p = X.shape[1]
    new = State(X=X + config.mu * d[:, :p], Y=Y + config.mu * d[:, p:], lam_bar=lam_bar, k=state.k + 1)
    return new, Output(X=X, Y=Y, objectives=f, weights=normalized_weights(lam_bar), direction_norm=(d * d).sum(dim=1),
                       qp_gap=gap, finite_weighting=finite)
