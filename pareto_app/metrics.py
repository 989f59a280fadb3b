"""The metrics every recorded iterate carries (DESIGN.md, "Metrics").

- constraint violation ‖∇_y g(x, y)‖, zero exactly when y solves the (convex) lower level;
- ECMO Pareto stationarity  min_{w ∈ Δ} ‖P_T ∇F(z) w‖²,  P_T the projection onto the tangent
  space {d : J_h d = 0} of h(z) = ∇_y g(x, y), J_h = [∇²_yx g, ∇²_yy g];
- the WC-KKT residual ‖K(ρ, z, ω, ν, λ)‖² of the ecmo poster at the current preference λ.

P_T d = d − J_hᵀ a with (J_h J_hᵀ) a = J_h d, solved matrix-free by CG; the least-squares
multiplier ν of the KKT system is −a for d = Σ ω_s λ_s ∇f_s, so its block is P_T of that sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .batched_oracles import BatchedOracles
from .hypergrad import batched_cg
from .oracles import Oracles
from .qp import min_norm_weights, min_norm_weights_batched


@dataclass(frozen=True)
class PointMetrics:
    constraint_violation: float
    stationarity: float
    kkt_residual: float


def tangent_projection(oracles: Oracles, x: torch.Tensor, y: torch.Tensor, Dx: torch.Tensor, Dy: torch.Tensor,
                       cg_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """P_T applied to each row of (Dx, Dy)."""

    point = oracles.at(x, y)

    def JJt(A: torch.Tensor) -> torch.Tensor:
        jx, jy = point.jvp_and_hvp(A)  # J_hᵀ a = (∇²_xy g a, ∇²_yy g a)
        return point.constraint_jvp(jx, jy)

    rhs = point.constraint_jvp(Dx, Dy)
    # A relative residual of 1e-12 is far below what a chart or a stopping test can tell apart.
    A = batched_cg(JJt, rhs, None, cg_steps, tol=1e-24)
    jx, jy = point.jvp_and_hvp(A)
    return Dx - jx, Dy - jy


def kkt_multipliers(weights: np.ndarray, preference: np.ndarray) -> np.ndarray:
    """ω with ω_s λ_s ∝ the solver's weight on ∇f_s, Σω = 1; ω_s = 0 where λ_s = 0."""
    omega = np.where(preference > 0, weights / np.where(preference > 0, preference, 1.0), 0.0)
    total = omega.sum()
    return omega / total if total > 0 else np.full_like(weights, 1.0 / weights.size)


def point_metrics(oracles: Oracles, x: torch.Tensor, y: torch.Tensor, preference: np.ndarray, weights: np.ndarray,
                  multipliers: np.ndarray | None = None, cg_steps: int | None = None) -> PointMetrics:
    """All three metrics at (x, y). `multipliers` overrides ω (WC-Penalty's own)."""
    values, gx, gy = oracles.upper(x, y)
    h = oracles.lower_grad_y(x, y)
    q = y.numel()
    steps = cg_steps if cg_steps is not None else min(2 * q + 2, 60)
    px, py = tangent_projection(oracles, x, y, gx, gy, steps)
    P = torch.cat([px, py], dim=1).double().cpu().numpy()  # [S, p+q] projected gradients
    gram = P @ P.T
    w = min_norm_weights(gram)
    stationarity = float(max(w @ gram @ w, 0.0))

    lam = preference
    f = values.double().cpu().numpy()
    rho = float(np.max(lam * f))
    omega = kkt_multipliers(weights, lam) if multipliers is None else np.asarray(multipliers, dtype=float)
    grad_block = (omega * lam) @ P
    kkt = (
        (omega.sum() - 1.0) ** 2
        + float(grad_block @ grad_block)
        + float(h.double().pow(2).sum())
        + float(np.sum(np.minimum(omega, rho - lam * f) ** 2))
    )
    return PointMetrics(float(h.norm()), stationarity, kkt)


def batched_point_metrics(oracles: BatchedOracles, X: torch.Tensor, Y: torch.Tensor, R: torch.Tensor,
                          W: torch.Tensor, multipliers: torch.Tensor | None = None,
                          cg_steps: int | None = None) -> dict[str, torch.Tensor]:
    """`point_metrics` for B runs at once, on their device: each metric a (B,) tensor.

    Rows X, Y are the runs' points, R their preferences and W their solvers' weights (B, S);
    `multipliers` (B, S) overrides ω (WC-Penalty's own)."""
    values, gx, gy = oracles.upper(X, Y)
    h = oracles.lower_grad_y(X, Y)
    q = Y.shape[1]
    steps = cg_steps if cg_steps is not None else min(2 * q + 2, 60)
    point = oracles.at(X, Y)

    def JJt(A: torch.Tensor) -> torch.Tensor:
        jx, jy = point.jvp_and_hvp(A)
        return point.constraint_jvp(jx, jy)

    A = batched_cg(JJt, point.constraint_jvp(gx, gy), None, steps, tol=1e-24)
    jx, jy = point.jvp_and_hvp(A)
    P = torch.cat([gx - jx, gy - jy], dim=2).double()  # (B, S, p+q) projected gradients
    gram = P @ P.transpose(1, 2)
    w, _ = min_norm_weights_batched(gram)
    stationarity = torch.einsum("bs,bst,bt->b", w, gram, w).clamp_min(0.0)

    lam, f, weights = R.double(), values.double(), W.double()
    rho = (lam * f).amax(dim=1, keepdim=True)
    positive = lam > 0
    omega = torch.where(positive, weights / torch.where(positive, lam, 1.0), 0.0)
    total = omega.sum(dim=1, keepdim=True)
    omega = torch.where(total > 0, omega / torch.where(total > 0, total, 1.0), 1.0 / omega.shape[1])
    if multipliers is not None:
        omega = multipliers.double()
    grad_block = torch.einsum("bs,bsn->bn", omega * lam, P)
    hd = h.double()
    kkt = ((omega.sum(dim=1) - 1.0) ** 2 + (grad_block * grad_block).sum(dim=1) + (hd * hd).sum(dim=1)
           + torch.minimum(omega, rho - lam * f).pow(2).sum(dim=1))
    return {"constraint_violation": hd.norm(dim=1), "stationarity": stationarity, "kkt_residual": kkt}
