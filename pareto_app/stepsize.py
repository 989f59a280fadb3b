"""Step sizes from the problem: curvature estimates by power iteration.

Defaults must converge on a well-scaled problem with no tuning, so the solvers read the
curvature off the problem at the start: L and μ of ∇²_yy g by power iteration on HVPs,
and the Lipschitz constant of the hypergradients by power iteration on finite
differences of them. These calls are counted like any other oracle call.
"""

from __future__ import annotations

from collections.abc import Callable

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
