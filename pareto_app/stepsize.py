"""Step sizes and loop lengths from the problem: curvature estimates by power iteration.

Defaults must converge on a well-scaled problem with no tuning, so the solvers read the
curvature off the problem at the start: L and μ of ∇²_yy g by power iteration on HVPs,
and the Lipschitz constant of the hypergradients by power iteration on finite
differences of them. These calls are counted like any other oracle call.

Every solver's κ-based loop lengths are here, in one place (Theorem 5.5 of mobl-wc-mhgd:
D ≳ κ log 1/ε inner steps, N ≳ √κ log 1/ε CG steps):

    a warm-started inner loop that only tracks y*(x) (WC-MHGD's D with CG, FORUM's T)   κ log 10
    a truncated series or unrolling whose error is (1 − αμ)^D (Neumann's D, ITD's T)    κ log 10⁴
    Alg. 3's stochastic Neumann terms Q                                                 κ log 10³
    CG steps per hypergradient N                                                       2√κ log 10
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from .hypergrad import batched_cg
from .oracles import Oracles


def power_iteration(matvec: Callable[[torch.Tensor], torch.Tensor], v0: torch.Tensor, iters: int) -> float:
    """Largest eigenvalue (in magnitude) of a symmetric operator."""
    v = v0 / v0.norm().clamp_min(torch.finfo(v0.dtype).tiny)
    value = 0.0
    for _ in range(iters):
        w = matvec(v)
        value = float(torch.dot(v, w))
        norm = w.norm()
        if not torch.isfinite(norm) or norm == 0:
            break
        v = w / norm
    return value


def lower_curvature(oracles: Oracles, x: torch.Tensor, y: torch.Tensor, iters: int = 30,
                    seed: int = 0) -> tuple[float, float]:
    """(L, μ): estimates of the largest and smallest eigenvalues of ∇²_yy g(x, y)."""
    gen = torch.Generator().manual_seed(seed)
    v0 = torch.randn(y.numel(), generator=gen, dtype=y.dtype).to(y.device)
    point = oracles.at(x, y)
    L = power_iteration(point.hvp, v0, iters)
    L = max(L, torch.finfo(y.dtype).eps)
    shifted = power_iteration(lambda v: L * v - point.hvp(v), v0, iters)
    mu = max(L - shifted, 0.0)
    return L, mu


def solve_lower(oracles: Oracles, x: torch.Tensor, y: torch.Tensor, alpha: float, steps: int) -> torch.Tensor:
    """`steps` of gradient descent on g(x, ·) from y."""
    for _ in range(steps):
        y = y - alpha * oracles.lower_grad_y(x, y)
    return y


def hypergradient_lipschitz(oracles: Oracles, x: torch.Tensor, y: torch.Tensor, alpha: float, *,
                            inner: int, cg_steps: int, iters: int = 5, seed: int = 0) -> float:
    """Estimate of λ_max(Σ_s ∇²φ_s(x)) by power iteration on central differences of Σ_s ∇φ_s.

    For convex φ_s the sum's top eigenvalue bounds each one's, so a step 1/L is safe for any
    weighting on the simplex. y is first brought close to y*(x) so the differences measure φ.
    """
    y = solve_lower(oracles, x, y, alpha, inner)

    def summed_hypergradient(xx: torch.Tensor) -> torch.Tensor:
        yy = solve_lower(oracles, xx, y, alpha, inner)
        _, gx, gy = oracles.upper(xx, yy)
        point = oracles.at(xx, yy)
        v = batched_cg(point.hvp, gy, None, cg_steps)
        return (gx - point.jvp_xy(v)).sum(0)

    scale = max(float(x.norm()), 1.0) * 1e-4
    gen = torch.Generator().manual_seed(seed)
    v0 = torch.randn(x.numel(), generator=gen, dtype=x.dtype).to(x.device)

    def hess_vec(v: torch.Tensor) -> torch.Tensor:
        return (summed_hypergradient(x + scale * v) - summed_hypergradient(x - scale * v)) / (2 * scale)

    return abs(power_iteration(hess_vec, v0, iters))


def weighted_step(lipschitz: float, max_weight: float) -> float:
    """β = 1/(w_max L̂): stable for any weights w with w_s ≤ w_max on hypergradients whose
    summed Hessian is bounded by L̂ (Σ_s w_s ∇²φ_s ⪯ w_max Σ_s ∇²φ_s for convex φ_s)."""
    return 1.0 / (max_weight * max(lipschitz, 1e-300))


def condition_number(L: float, mu: float) -> float:
    """κ = L/μ of the lower level, capped at 10⁶ where μ vanishes (a merely convex or badly estimated g)."""
    return L / max(mu, L * 1e-6)


def contraction_steps(kappa: float, reduction: float, low: int, high: int) -> int:
    """Steps of an iteration contracting by (1 − 1/κ) that cut its error by `reduction`: ⌈κ log reduction⌉,
    clipped to [low, high]."""
    return int(np.clip(math.ceil(kappa * math.log(reduction)), low, high))


def tracking_steps(kappa: float) -> int:
    """A warm-started inner loop that only tracks y*(x) as x moves (WC-MHGD with CG, FORUM)."""
    return contraction_steps(kappa, 10.0, 5, 300)


def series_steps(kappa: float, low: int = 5) -> int:
    """A truncated Neumann series, or an unrolled loop, whose error is (1 − αμ)^D (Neumann's D, ITD's T)."""
    return contraction_steps(kappa, 1e4, low, 300)


def stochastic_series_terms(kappa: float) -> int:
    """Alg. 3's Neumann terms Q: its batches add noise of their own, so a looser truncation serves."""
    return contraction_steps(kappa, 1e3, 5, 300)


def cg_steps(kappa: float) -> int:
    """CG steps per hypergradient, N: CG's error falls as (1 − 1/√κ)^N, twice as fast in the log."""
    return int(np.clip(math.ceil(2 * math.sqrt(kappa) * math.log(10)), 5, 100))
