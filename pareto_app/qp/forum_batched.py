"""FORUM's QP (12) for many runs at once, on their device (issue 9), as three simplex QPs."""

from __future__ import annotations

import torch

from .. import sync
from .forum import forum_weights
from .simplex_batched import EXACT_UP_TO, solve_simplex_qp_batched


def forum_weights_batched(G: torch.Tensor, pi: torch.Tensor, phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """FORUM's QP (12) for B runs: λ of min over λ ∈ Δ, γ of ½‖Σ λ_i ∇F_i + γ ∇q̃‖² − γ φ_k, γ ≥ 0, γ ≥ πᵀλ
    (as `pareto_app.qp.forum_weights`), from G (B, S+1, S+1) the Gram matrices of [∇F_1..∇F_S, ∇q̃], π (B, S)
    and φ_k (B,). Returns (λ, the Frank-Wolfe gap of the simplex QP it came from).

    With π_i = (2φ_k − ⟨∇F_i, ∇q̃⟩)/‖∇q̃‖² (Eq. 10), the γ minimising the quadratic for a fixed λ is
    πᵀλ − φ_k/‖∇q̃‖² ≤ πᵀλ, so the best feasible γ is (πᵀλ)₊ and QP (12) is min over Δ of the convex
    h(λ) = q(λ, (πᵀλ)₊), a quadratic on each side of the plane πᵀλ = 0. Its minimiser is the minimiser over
    Δ of the side πᵀλ ≥ 0 (γ = πᵀλ), or of the side πᵀλ ≤ 0 (γ = 0: min-norm), or lies on the plane, whose
    section of Δ is the convex hull of the points e_i (π_i = 0) and (π_j e_i − π_i e_j)/(π_j − π_i)
    (π_i < 0 < π_j): three simplex QPs, and the best of their answers by h is the minimiser."""
    B, S = pi.shape
    if sync.may_read(pi) and B <= EXACT_UP_TO:
        # A few instances on the CPU: the exact solver (`pareto_app.qp`), one after another, costs less than three
        # lockstep QPs (a single FORUM run: 0.4 of its step otherwise). Its answer is exact: gap 0.
        lam = torch.stack([torch.as_tensor(forum_weights(G[b].numpy(), pi[b].numpy(), float(phi[b]))[0],
                                           dtype=pi.dtype) for b in range(B)])
        return lam, torch.zeros(B, dtype=pi.dtype)
    A, b, gqq = G[:, :S, :S], G[:, :S, S], G[:, S, S]
    # γ = πᵀλ: Q = [I; πᵀ]ᵀ G [I; πᵀ], c = −φ_k π.
    Q_up = A + b[:, :, None] * pi[:, None, :] + pi[:, :, None] * b[:, None, :] + gqq[:, None, None] * (
        pi[:, :, None] * pi[:, None, :])
    lam_up, gap_up = solve_simplex_qp_batched(Q_up, -phi[:, None] * pi)
    lam_down, gap_down = solve_simplex_qp_batched(A, torch.zeros_like(pi))
    candidates = [(lam_up, gap_up), (lam_down, gap_down)]
    # The plane's vertices: every pair (i, j) with π of opposite signs, every i with π_i = 0; a slot that is
    # no vertex repeats the first one that is (the hull is unchanged). Needed only when neither side's
    # minimiser lies strictly inside its side; on the CPU that is checked first.
    side_up, side_down = (pi * lam_up).sum(dim=1), (pi * lam_down).sum(dim=1)
    needed = (side_up <= 0) & (side_down >= 0)
    if not sync.may_read(pi) or bool(needed.any()):
        i, j = torch.triu_indices(S, S, offset=1, device=pi.device)
        pi_i, pi_j = pi[:, i], pi[:, j]
        crossing = pi_i * pi_j < 0
        denom = torch.where(crossing, pi_j - pi_i, 1.0)
        eye = torch.eye(S, dtype=pi.dtype, device=pi.device)
        pairs = (pi_j / denom)[:, :, None] * eye[i] - (pi_i / denom)[:, :, None] * eye[j]  # (B, pairs, S)
        points = torch.cat([pairs, eye.expand(B, S, S)], dim=1)
        valid = torch.cat([crossing, pi == 0], dim=1)
        first = torch.argmax(valid.to(torch.int8), dim=1)
        fill = points[torch.arange(B, device=pi.device), first]
        points = torch.where(valid[:, :, None], points, fill[:, None, :])
        mu, gap_plane = solve_simplex_qp_batched(points @ A @ points.transpose(1, 2),
                                                 torch.zeros(points.shape[:2], dtype=pi.dtype, device=pi.device))
        lam_plane = torch.einsum("bm,bms->bs", mu, points)
        # Where the plane misses Δ there is no vertex: the min-norm answer stands in (it is a side's minimiser).
        has_plane = valid.any(dim=1)
        candidates.append((torch.where(has_plane[:, None], lam_plane, lam_down), torch.where(has_plane, gap_plane,
                                                                                             gap_down)))

    def h(lam: torch.Tensor) -> torch.Tensor:
        gamma = (pi * lam).sum(dim=1).clamp_min(0.0)
        z = torch.cat([lam, gamma[:, None]], dim=1)
        return 0.5 * torch.einsum("bi,bij,bj->b", z, G, z) - phi * gamma

    lam, gap = candidates[0]
    best = h(lam)
    for other, other_gap in candidates[1:]:
        value = h(other)
        # Strictly better only, beyond rounding: a tie keeps the earlier candidate.
        better = value < best - 1e-12 * (best.abs() + G.abs().amax(dim=(1, 2)))
        lam = torch.where(better[:, None], other, lam)
        gap = torch.where(better, other_gap, gap)
        best = torch.where(better, value, best)
    return lam, gap
