"""WC-Penalty (ecmo poster, Algorithm 1): projected gradient descent on the penalty P(θ).

For a lower level that is only convex, the bilevel problem is the ECMO problem with
h(z) = ∇_y g(x, y) = 0, z = (x, y). Its WC-scalarized form with slacks δ ≥ 0 is penalised:

    P(θ) = ρ + (u/2) ‖h(z)‖² + (v/2) Σ_s (λ_s f_s(z) + δ_s − ρ)²,   θ = (ρ, z, δ) ∈ R × R^k × R^S_+

    for t = 0, ..., T−1:   θ_{t+1} = P_C(θ_t − η ∇P(θ_t))

With ω_s = v (λ_s f_s + δ_s − ρ) (the multipliers of the KKT system K):

    ∇_ρ P = 1 − Σ_s ω_s,   ∇_z P = u J_hᵀ h + Σ_s ω_s λ_s ∇f_s,   ∇_δ P = ω

Defaults follow the theorem: u = v = c T^{1/4} and η = Θ(T^{-1/4}), with η = 1/L̂_P from
power iteration on ∇²P at θ_0 (so the constant is read off the problem, not guessed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..oracles import Oracles
from ..problem import Problem
from ..stepsize import power_iteration
from .base import Option, StepOutput, normalized

DEFAULT_T = 10_000  # the horizon assumed for the defaults of an open-ended run
PENALTY_SCALE = 5.0  # c in u = v = c T^{1/4}: small enough that T = 10^4 steps converge


def penalties(options: dict[str, Any], steps: int | None) -> tuple[int, float, float]:
    """(T, u, v): the horizon and the penalties, u = v = c T^{1/4} unless given."""
    T = steps or DEFAULT_T
    u = options["u"] if options.get("u") is not None else PENALTY_SCALE * T**0.25
    v = options["v"] if options.get("v") is not None else PENALTY_SCALE * T**0.25
    return T, u, v


@dataclass
class State:
    rho: torch.Tensor  # scalar
    x: torch.Tensor
    y: torch.Tensor
    delta: torch.Tensor  # S slacks, ≥ 0
    t: int
    options: dict[str, Any]
    oracles: Oracles


def penalty_gradient(o: Oracles, rho: torch.Tensor, x: torch.Tensor, y: torch.Tensor, delta: torch.Tensor,
                     lam: torch.Tensor, u: float, v: float) -> tuple[torch.Tensor, ...]:
    """(∇_ρ P, ∇_x P, ∇_y P, ∇_δ P, F(z), ω)."""
    f, gx, gy = o.upper(x, y)
    h = o.lower_grad_y(x, y)
    jx, jy = o.at(x, y).jvp_and_hvp(h)  # J_hᵀ h = (∇²_xy g h, ∇²_yy g h)
    omega = v * (lam * f + delta - rho)
    coeff = omega * lam
    return 1.0 - omega.sum(), u * jx + coeff @ gx, u * jy + coeff @ gy, omega, f, omega


@dataclass(frozen=True)
class WCPenalty:
    name: str = "wc-penalty"
    summary: str = "WC-Penalty (ecmo Alg. 1): penalty method for lower levels that are only convex"
    needs_strong_convexity: bool = False

    @property
    def options(self) -> dict[str, Option]:
        return {
            "eta": Option(None, "step size η (default 1/L̂_P, which is Θ(T^-1/4))", low=1e-12, high=1e6),
            "u": Option(None, "penalty u on ‖h(z)‖² (default 5 T^1/4)", low=1e-8, high=1e12),
            "v": Option(None, "penalty v on the WC constraints (default 5 T^1/4)", low=1e-8, high=1e12),
        }

    def init(self, problem: Problem, preference: np.ndarray, options: dict[str, Any], oracles: Oracles,
             generator: torch.Generator) -> State:
        T, u, v = penalties(options, options.get("steps"))
        x, y = problem.x0.clone(), problem.y0.clone()
        lam = torch.as_tensor(preference, dtype=x.dtype, device=x.device)
        f = oracles.upper_values(x, y)
        rho = (lam * f).max()
        delta = rho - lam * f  # the slacks that make every WC constraint hold at the start
        eta = options["eta"]
        if eta is None:
            eta = 1.0 / (1.25 * self._curvature(oracles, rho, x, y, delta, lam, u, v, generator))
        opts = {**options, "u": u, "v": v, "eta": eta, "T": T}
        return State(rho=rho, x=x, y=y, delta=delta, t=0, options=opts, oracles=oracles)

    @staticmethod
    def _curvature(o: Oracles, rho: torch.Tensor, x: torch.Tensor, y: torch.Tensor, delta: torch.Tensor,
                   lam: torch.Tensor, u: float, v: float, generator: torch.Generator) -> float:
        """λ_max(∇²P(θ_0)) by power iteration on central differences of ∇P."""
        p, q, S = x.numel(), y.numel(), delta.numel()

        def grad_at(theta: torch.Tensor) -> torch.Tensor:
            r, xx, yy, dd = theta[0], theta[1:1 + p], theta[1 + p:1 + p + q], theta[1 + p + q:]
            gr, gx, gy, gd, _, _ = penalty_gradient(o, r, xx, yy, dd, lam, u, v)
            return torch.cat([gr.reshape(1), gx, gy, gd])

        theta0 = torch.cat([rho.reshape(1), x, y, delta])
        eps = 1e-5 * max(float(theta0.norm()), 1.0)

        def hess_vec(w: torch.Tensor) -> torch.Tensor:
            return (grad_at(theta0 + eps * w) - grad_at(theta0 - eps * w)) / (2 * eps)

        w0 = torch.randn(1 + p + q + S, generator=generator, dtype=x.dtype).to(x.device)
        return abs(power_iteration(hess_vec, w0, 30))

    def step(self, state: State, preference: np.ndarray) -> tuple[State, StepOutput]:
        o, opts = state.oracles, state.options
        lam = torch.as_tensor(preference, dtype=state.x.dtype, device=state.x.device)
        g_rho, g_x, g_y, g_delta, f, omega = penalty_gradient(o, state.rho, state.x, state.y, state.delta, lam,
                                                              opts["u"], opts["v"])
        eta = opts["eta"]
        # Line 4: θ_{t+1} = P_C(θ_t − η ∇P(θ_t)); P_C clips δ at zero.
        new = State(rho=state.rho - eta * g_rho, x=state.x - eta * g_x, y=state.y - eta * g_y,
                    delta=(state.delta - eta * g_delta).clamp_min(0.0), t=state.t + 1, options=opts, oracles=o)
        omega_np = omega.double().cpu().numpy()
        weights = normalized(np.clip(omega_np, 0.0, None) * preference)
        d2 = float(g_rho**2 + g_x @ g_x + g_y @ g_y + g_delta @ g_delta)
        return new, StepOutput(x=state.x, y=state.y, objectives=f, weights=weights, direction_norm=d2,
                               multipliers=omega_np)


SOLVER = WCPenalty()
