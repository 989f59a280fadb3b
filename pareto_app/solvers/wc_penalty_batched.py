"""WC-Penalty (ecmo poster, Algorithm 1) for B runs at once (issue 9).

The loop of `wc_penalty.py` with a leading run axis: ρ (B,), X (B, p), Y (B, q), δ (B, S), and the
preferences Λ (B, S). One batched oracle call serves all runs.

    ω_b = v (λ_b ⊙ F(z_b) + δ_b − ρ_b)                                  (the KKT multipliers)
    ∇_ρ P = 1 − Σ_s ω_bs,   ∇_z P = u J_hᵀ h + Σ_s ω_bs λ_bs ∇f_s,   ∇_δ P = ω_b
    θ_b ← P_C(θ_b − η_b ∇P(θ_b))                                         (line 4; P_C clips δ at 0)

u, v and the horizon T are the sequential init's (they do not depend on the preference); η_b is
1/(1.25 L̂_P) with L̂_P the largest eigenvalue of ∇²P at each run's θ_0, by the same power iteration
on central differences of ∇P, batched, and from the same random start as a sequential run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..batched_oracles import BatchedOracles
from ..oracles import Oracles
from ..problem import Problem
from .wc_mhgd_batched import Output
from .wc_penalty import WCPenalty, penalties

POWER_ITERATIONS = 30  # as the sequential `WCPenalty._curvature`


@dataclass(frozen=True)
class Config:
    u: float
    v: float
    eta: torch.Tensor  # (B,) η per run


@dataclass(frozen=True)
class State:
    rho: torch.Tensor  # (B,)
    X: torch.Tensor  # (B, p)
    Y: torch.Tensor  # (B, q)
    delta: torch.Tensor  # (B, S), ≥ 0


def penalty_gradients(o: BatchedOracles, rho: torch.Tensor, X: torch.Tensor, Y: torch.Tensor, delta: torch.Tensor,
                      lam: torch.Tensor, u: float, v: float) -> tuple[torch.Tensor, ...]:
    """(∇_ρ P, ∇_X P, ∇_Y P, ∇_δ P = ω, F) of every run."""
    f, gx, gy = o.upper(X, Y)  # (B, S), (B, S, p), (B, S, q)
    h = o.lower_grad_y(X, Y)
    jx, jy = o.at(X, Y).jvp_and_hvp(h[:, None, :])  # J_hᵀ h = (∇²_xy g h, ∇²_yy g h)
    omega = v * (lam * f + delta - rho[:, None])
    coeff = omega * lam
    return (1.0 - omega.sum(dim=1), u * jx[:, 0] + torch.einsum("bs,bsp->bp", coeff, gx),
            u * jy[:, 0] + torch.einsum("bs,bsq->bq", coeff, gy), omega, f)


def start(algo: WCPenalty, problem: Problem, options: dict[str, Any], preferences: np.ndarray, steps: int,
          generator: torch.Generator, oracles: Oracles) -> tuple[Config, State, list[dict[str, Any]]]:
    """(config, the state at the start, each run's resolved options), as each run's sequential init."""
    T, u, v = penalties(options, steps)
    B, x0, y0 = len(preferences), problem.x0, problem.y0
    lam = torch.as_tensor(preferences, dtype=x0.dtype, device=x0.device)
    X, Y = x0.expand(B, -1).clone(), y0.expand(B, -1).clone()
    batched = BatchedOracles(problem)
    with torch.no_grad():
        f = batched.upper_values(X, Y)
    rho = (lam * f).amax(dim=1)
    delta = rho[:, None] - lam * f  # the slacks that make every WC constraint hold at the start
    if options.get("eta") is not None:
        eta = torch.full((B,), float(options["eta"]), dtype=x0.dtype, device=x0.device)
    else:
        eta = 1.0 / (1.25 * _curvature(batched, rho, X, Y, delta, lam, u, v, generator))
    # The init's oracle calls, as a sequential run counts them.
    for name, value in batched.counts.as_dict().items():
        setattr(oracles.counts, name, getattr(oracles.counts, name) + value)
    per_run = [{**options, "u": u, "v": v, "eta": float(e), "T": T} for e in eta.cpu().numpy()]
    return Config(u=u, v=v, eta=eta), State(rho=rho, X=X, Y=Y, delta=delta), per_run


def _curvature(o: BatchedOracles, rho: torch.Tensor, X: torch.Tensor, Y: torch.Tensor, delta: torch.Tensor,
               lam: torch.Tensor, u: float, v: float, generator: torch.Generator) -> torch.Tensor:
    """|λ_max(∇²P(θ_0))| per run: `WCPenalty._curvature` over the run axis."""
    p, q, S = X.shape[1], Y.shape[1], delta.shape[1]

    def grad_at(theta: torch.Tensor) -> torch.Tensor:
        r, xx, yy, dd = theta[:, 0], theta[:, 1:1 + p], theta[:, 1 + p:1 + p + q], theta[:, 1 + p + q:]
        gr, gx, gy, gd, _ = penalty_gradients(o, r, xx, yy, dd, lam, u, v)
        return torch.cat([gr[:, None], gx, gy, gd], dim=1)

    theta0 = torch.cat([rho[:, None], X, Y, delta], dim=1)
    eps = (1e-5 * theta0.norm(dim=1).clamp_min(1.0))[:, None]
    w = torch.randn(1 + p + q + S, generator=generator, dtype=X.dtype).to(X.device).expand_as(theta0)
    w = w / w.norm(dim=1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
    value = torch.zeros(len(theta0), dtype=X.dtype, device=X.device)
    going = torch.ones_like(value, dtype=torch.bool)
    for _ in range(POWER_ITERATIONS):
        hw = (grad_at(theta0 + eps * w) - grad_at(theta0 - eps * w)) / (2 * eps)
        value = torch.where(going, (w * hw).sum(dim=1), value)
        norm = hw.norm(dim=1)
        # A run whose product vanished or went non-finite keeps its value, as the sequential loop stops.
        going = going & torch.isfinite(norm) & (norm > 0)
        w = torch.where(going[:, None], hw / torch.where(going, norm, 1.0)[:, None], w)
    return value.abs()


def restart(config: Config, state: State, dead: torch.Tensor, problem: Problem, R: torch.Tensor) -> State:
    """Diverged runs step on from the start (their θ_0 is re-derived from the start's values)."""
    return State(rho=torch.where(dead, 0.0, state.rho), X=torch.where(dead[:, None], problem.x0, state.X),
                 Y=torch.where(dead[:, None], problem.y0, state.Y),
                 delta=torch.where(dead[:, None], 0.0, state.delta))


def step(config: Config, state: State, R: torch.Tensor, oracles: BatchedOracles) -> tuple[State, Output]:
    lam = R.to(state.X.dtype)
    g_rho, g_x, g_y, omega, f = penalty_gradients(oracles, state.rho, state.X, state.Y, state.delta, lam, config.u,
                                                  config.v)
    g_delta = omega
    eta = config.eta
    # Line 4: θ_{t+1} = P_C(θ_t − η ∇P(θ_t)).
    new = State(rho=state.rho - eta * g_rho, X=state.X - eta[:, None] * g_x, Y=state.Y - eta[:, None] * g_y,
                delta=(state.delta - eta[:, None] * g_delta).clamp_min(0.0))
    # As the sequential step: the weights are normalized(max(ω, 0) ⊙ λ).
    weights = (omega.clamp_min(0.0) * lam).double()
    total = weights.sum(dim=1, keepdim=True)
    weights = torch.where(total > 0, weights / torch.where(total > 0, total, 1.0), 1.0 / weights.shape[1])
    d2 = g_rho**2 + (g_x * g_x).sum(dim=1) + (g_y * g_y).sum(dim=1) + (g_delta * g_delta).sum(dim=1)
    zeros = torch.zeros_like(d2)
    return new, Output(X=state.X, Y=state.Y, objectives=f, weights=weights, direction_norm=d2, qp_gap=zeros,
                       finite_weighting=torch.ones_like(d2, dtype=torch.bool), multipliers=omega)
