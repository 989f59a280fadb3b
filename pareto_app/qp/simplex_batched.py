"""The simplex QPs of many runs at once, on their device (issue 9): Eq. 5, MGDA's min-norm rule, and
the projection onto the simplex (MoCo).

    w* = argmin_{w ∈ Δ}  ½ wᵀQw + cᵀw        for each of B instances (Q: B×S×S symmetric PSD, c: B×S)

A primal active-set method, run in lockstep over the batch with a fixed number of pivots, so
that nothing waits on the host: no `.item()`, no branch on a tensor's value. Each pivot, every
instance takes one projected Newton step on its current face {w ≥ 0, Σw = 1, w_i = 0 off the
face} (a pseudo-inverse from `eigh`, so singular Gram matrices — collinear, duplicated or
vanishing gradients — are handled without a ridge); a step blocked by w_i ≥ 0 drops i from the
face; an instance at its face's minimiser adds the index of most negative multiplier, or is done.
A flat direction of descent (zero curvature, non-zero slope) is followed to the boundary.

The answer comes with its Frank-Wolfe gap, gᵀw − min_j g_j ≥ f(w) − f(w*) (convex f): the
certificate a caller checks when it next reads values on the host (`pareto_app.qp` solves an
instance exactly on the CPU where the gap says it must).
"""

from __future__ import annotations

import numpy as np
import torch

from .. import sync
from .simplex import solve_simplex_qp, wc_weights

# On each instance scaled to max |Q|, |c| = 1 (the minimiser is unchanged):
_CURVATURE_TOL = 1e-11  # an eigenvalue of the face's Hessian this small is flat
_SLOPE_TOL = 1e-13  # a projected gradient this small is zero
_MULTIPLIER_TOL = 1e-13  # a multiplier this negative is rounding noise, not a reason to add an index


def pivots_for(S: int) -> int:
    """Pivots enough for these problems: from a vertex, a support of m indices takes m − 1 additions, plus the
    drops on the way (rarely more than a few)."""
    return 2 * S + 6


def solve_simplex_qp_batched(Q: torch.Tensor, c: torch.Tensor, pivots: int | None = None,
                             start: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(w, gap): argmin over the simplex of ½ wᵀQw + cᵀw for each row, and its Frank-Wolfe gap relative
    to the instance's scale max(|Q|, |c|). Shapes Q: (B, S, S), c: (B, S); w, gap on Q's device and dtype.

    `start` (B, S), a feasible point per instance such as the last step's weights, warm-starts the method
    (its support is the first face); the best vertex otherwise."""
    B, S = c.shape
    scale = torch.maximum(Q.abs().amax(dim=(1, 2)), c.abs().amax(dim=1))
    vanishing = scale == 0  # f ≡ 0: every point is optimal; the barycentre is the neutral one (as pareto_app.qp)
    scale = torch.where(vanishing, torch.ones_like(scale), scale)
    Q = Q / scale[:, None, None]
    c = c / scale[:, None]
    if S == 1:
        return torch.ones_like(c), torch.zeros_like(scale)
    if sync.may_read(c) and B <= EXACT_UP_TO:
        # A few instances on the CPU: the exact solver, one after another, costs less than the lockstep pivots.
        w = torch.stack([torch.as_tensor(_exact(Q[b], c[b]), dtype=c.dtype) for b in range(B)])
        return torch.where(vanishing[:, None], 1.0 / S, w), _gap(Q, c, w)
    if start is None:
        best = torch.argmin(0.5 * torch.diagonal(Q, dim1=1, dim2=2) + c, dim=1)
        w = torch.nn.functional.one_hot(best, S).to(c.dtype)
    else:
        w = start.to(c.dtype).clamp_min(0.0)
        w = w / w.sum(dim=1, keepdim=True)
    free = w > 0
    done = torch.zeros(B, dtype=torch.bool, device=c.device)
    # On the CPU reading `done` costs nothing, so the loop ends when every instance has; on a GPU it
    # would wait for the device, so all pivots run (a done instance's pivot changes nothing).
    may_stop = sync.may_read(c)
    for _ in range(pivots_for(S) if pivots is None else pivots):
        w, free, done = _pivot(Q, c, w, free, done)
        if may_stop and bool(done.all()):
            break
    w = torch.where(vanishing[:, None], 1.0 / S, w)
    gap = _gap(Q, c, w)
    if may_stop and bool((gap > CERTIFIED).any()):
        w, gap = _exactly(Q, c, w, gap)
    return w, gap


# Up to this many instances on the CPU are solved exactly one after another (`pareto_app.qp`): the lockstep
# pivots pay off for more (bench: 1.9 ms for one instance of S = 2 against 0.14 ms).
EXACT_UP_TO = 8
# A Frank-Wolfe gap above this (relative) is not certified: on the CPU such an instance is solved again
# by pareto_app.qp's exact method; on a GPU the caller reads the gap with the step's other values.
CERTIFIED = 1e-9


def _gap(Q: torch.Tensor, c: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    g = torch.einsum("bij,bj->bi", Q, w) + c
    return ((g * w).sum(dim=1) - g.min(dim=1).values).clamp_min(0.0)


def _exact(Q: torch.Tensor, c: torch.Tensor) -> np.ndarray:
    return solve_simplex_qp(Q.double().numpy(), c.double().numpy())


def _exactly(Q: torch.Tensor, c: torch.Tensor, w: torch.Tensor, gap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    w = w.clone()
    for b in torch.nonzero(gap > CERTIFIED).flatten().tolist():
        exact = torch.as_tensor(_exact(Q[b], c[b]), dtype=w.dtype)
        if _gap(Q[b:b + 1], c[b:b + 1], exact[None])[0] < gap[b]:
            w[b] = exact
    return w, _gap(Q, c, w)


def _pivot(Q: torch.Tensor, c: torch.Tensor, w: torch.Tensor, free: torch.Tensor,
           done: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    S = c.shape[1]
    f = free.to(c.dtype)
    size = f.sum(dim=1, keepdim=True)
    # P projects onto the face's directions {d : d_i = 0 off the face, Σ d = 0}.
    P = torch.diag_embed(f) - f[:, :, None] * f[:, None, :] / size[:, :, None]
    g = torch.einsum("bij,bj->bi", Q, w) + c
    H = P @ Q @ P
    H = 0.5 * (H + H.transpose(1, 2))
    curvature, V = torch.linalg.eigh(H)
    slope = torch.einsum("bij,bj->bi", P, g)
    coef = torch.einsum("bji,bj->bi", V, slope)  # the projected gradient in H's eigenbasis
    curved = curvature > _CURVATURE_TOL * curvature.abs().amax(dim=1, keepdim=True).clamp_min(1.0)
    newton = -torch.einsum("bij,bj->bi", V, torch.where(curved, coef / torch.where(curved, curvature, 1.0), 0.0))
    flat = torch.einsum("bij,bj->bi", V, torch.where(curved, 0.0, coef))
    flat = torch.einsum("bij,bj->bi", P, flat)  # the range of P only: rounding leaves traces elsewhere
    unbounded = flat.norm(dim=1) > _SLOPE_TOL * (1.0 + g.abs().amax(dim=1))
    # Along a flat descent direction f(w) falls without bound: go as far as the simplex allows.
    step = torch.where(unbounded[:, None], -flat, newton)
    step = torch.where(free, step, 0.0)
    shrinking = free & (step < 0)
    ratios = torch.where(shrinking, w / torch.where(shrinking, -step, 1.0), torch.inf)
    longest, blocker = ratios.min(dim=1)
    alpha = torch.where(unbounded, longest, longest.clamp(max=1.0))
    alpha = torch.where(torch.isfinite(alpha), alpha, 0.0)
    moved = (w + alpha[:, None] * step).clamp_min(0.0)
    blocked = (alpha < 1.0) | unbounded
    drop = torch.nn.functional.one_hot(blocker, S).bool() & (blocked & torch.isfinite(longest))[:, None]
    moved = torch.where(drop | ~free, 0.0, moved)
    moved = moved / moved.sum(dim=1, keepdim=True)
    # At the face's minimiser: the multipliers of w_i ≥ 0 off the face are g_i − ν, ν the face's common g.
    g_new = torch.einsum("bij,bj->bi", Q, moved) + c
    nu = (g_new * f).sum(dim=1) / size[:, 0]
    outside = torch.where(free, torch.inf, g_new)
    lowest, entering = outside.min(dim=1)
    add = ~blocked & (lowest < nu - _MULTIPLIER_TOL * (1.0 + nu.abs()))
    now_free = (free & ~drop) | (torch.nn.functional.one_hot(entering, S).bool() & add[:, None])
    finished = ~blocked & ~add
    keep = done[:, None]
    return (torch.where(keep, w, moved), torch.where(keep, free, now_free), done | finished)


def min_norm_weights_batched(G: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MGDA for B runs: argmin over the simplex of ‖Σ_s w_s g_s‖² from the Gram matrices G (B, S, S)."""
    return solve_simplex_qp_batched(G, torch.zeros(G.shape[:2], dtype=G.dtype, device=G.device))


def wc_weights_batched(G: torch.Tensor, r: torch.Tensor, phi: torch.Tensor, u: float,
                       start: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 5 for B runs: λ = argmin_Δ ‖∇Φ(r ⊙ λ)‖² − u λᵀ(r ⊙ Φ), from G (B, S, S), r and Φ (B, S).

    Scaled as `pareto_app.qp.wc_weights` is, by max |G| and max r (same minimiser), so that finite
    inputs cannot overflow; the weights on ∇φ_s are r ⊙ λ (the caller's job)."""
    if sync.may_read(G) and G.shape[0] <= EXACT_UP_TO:  # a few instances on the CPU: that exact solver itself
        lam = torch.stack([torch.as_tensor(wc_weights(G[b].double().numpy(), r[b].double().numpy(),
                                                      phi[b].double().numpy(), u), dtype=G.dtype)
                           for b in range(G.shape[0])])
        return lam, torch.zeros_like(G[:, 0, 0])
    g_scale = G.abs().amax(dim=(1, 2))
    r_scale = r.abs().amax(dim=1)
    r_unit = r / torch.where(r_scale > 0, r_scale, 1.0)[:, None]
    Q = r_unit[:, :, None] * (G / torch.where(g_scale > 0, g_scale, 1.0)[:, None, None]) * r_unit[:, None, :]
    c = (-u / (2.0 * g_scale * r_scale))[:, None] * (r_unit * phi)
    # Where the quadratic term is below the float range of the linear one (a vanishing Gram matrix),
    # drop it, as pareto_app.qp.wc_weights does.
    overflow = ~torch.isfinite(c).all(dim=1)
    Q = torch.where(overflow[:, None, None], 0.0, Q)
    sign = 1.0 if u > 0 else (-1.0 if u < 0 else 0.0)
    c = torch.where(overflow[:, None], -sign * (r_unit * phi), c)
    c = torch.where(torch.isfinite(c), c, 0.0)
    w, gap = solve_simplex_qp_batched(Q, c, start=start)
    uniform = (r_scale == 0)[:, None]
    return torch.where(uniform, 1.0 / r.shape[1], w), torch.where(uniform[:, 0], 0.0, gap)


def project_simplex_batched(V: torch.Tensor) -> torch.Tensor:
    """The Euclidean projection of each row of V (B, S) onto the simplex (sort-based, exact; as
    `solvers.moco.project_simplex`). A row with a non-finite entry comes back non-finite: its run has diverged."""
    S = V.shape[1]
    u = torch.sort(V, dim=1, descending=True).values
    css = torch.cumsum(u, dim=1) - 1.0
    idx = torch.arange(1, S + 1, dtype=V.dtype, device=V.device)
    # The support's size k: the largest index with u_k − (Σ_{j≤k} u_j − 1)/k > 0 (always k ≥ 1).
    k = torch.where(u - css / idx > 0, idx, 1.0).amax(dim=1, keepdim=True)
    tau = torch.gather(css, 1, (k - 1).long()) / k
    return (V - tau).clamp_min(0.0)
