"""Hypergradient estimators ∇φ_s(x) = ∇_x f_s − ∇²_xy g [∇²_yy g]⁻¹ ∇_y f_s  (mobl-wc-mhgd Eq. 2).

Each estimator is a value with one signature, so solvers take them interchangeably:

    estimate(oracles, x, ys, gx, gy, v) -> (hypergradients [S, p], v)

`ys` is the inner trajectory y^0..y^D (the last is where gx = ∇_x F, gy = ∇_y F were taken),
`v` the estimator's warm-start state (CG's v; unused by Neumann). All S objectives are
handled as one batch of right-hand sides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from . import sync
from .oracles import Oracles

if TYPE_CHECKING:
    from .batched_oracles import BatchedOracles

Estimator = Callable[..., tuple[torch.Tensor, torch.Tensor | None]]


@dataclass(frozen=True)
class ConjugateGradient:
    """Option 1 of Alg. 1: N CG steps on ∇²_yy g v = ∇_y f_s, warm-started from the last v (Eq. 3)."""

    N: int

    def __call__(self, oracles: Oracles, x: torch.Tensor, ys: Sequence[torch.Tensor], gx: torch.Tensor,
                 gy: torch.Tensor, v: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        point = oracles.at(x, ys[-1])
        v = batched_cg(point.hvp, gy, v, self.N)
        return gx - point.jvp_xy(v), v  # Eq. (3)


@dataclass(frozen=True)
class Neumann:
    """Option 2 of Alg. 1 (Eq. 4, with the step α inside the product):

        ∇φ_s = ∇_x f_s − α Σ_{t=0}^{D−1} ∇²_xy g(x, y^t) Π_{j=t+1}^{D−1} (I − α ∇²_yy g(x, y^j)) ∇_y f_s

    The printed Eq. 4 has (I − ∇²g) and a sum to D; the series needs α inside and the D inner
    steps give D terms. This is reverse-mode differentiation through the inner loop, taken
    with explicit products, one forward-over-reverse pass per inner iterate.
    """

    alpha: float

    def __call__(self, oracles: Oracles, x: torch.Tensor, ys: Sequence[torch.Tensor], gx: torch.Tensor,
                 gy: torch.Tensor, v: torch.Tensor | None) -> tuple[torch.Tensor, None]:
        w = gy
        acc = torch.zeros_like(gx)
        for t in range(len(ys) - 2, -1, -1):  # inner iterates y^{D-1}, ..., y^0
            point = oracles.at(x, ys[t])
            if t > 0:
                jw, hw = point.jvp_and_hvp(w)
                acc = acc + jw
                w = w - self.alpha * hw
            else:
                acc = acc + point.jvp_xy(w)
        return gx - self.alpha * acc, None


def batched_cg(matvec: Callable[[torch.Tensor], torch.Tensor], B: torch.Tensor, X0: torch.Tensor | None,
               steps: int, tol: float = 1e-30) -> torch.Tensor:
    """`steps` conjugate-gradient iterations on A X = B, one system per row of B (B: (..., n), any
    leading shape: one run's S systems, or B runs' S systems each).

    Rows that have converged (residual² ≤ tol · ‖b‖²) stop moving instead of dividing by zero,
    and so do rows that meet non-positive curvature (a non-convex lower level), keeping the
    last iterate rather than blowing up.
    """
    # Few, in-place tensor ops per iteration: on small problems this loop's overhead, not the
    # products, is what a step costs (bench iteration).
    X = torch.zeros_like(B) if X0 is None else X0.clone()
    R = B - matvec(X) if X0 is not None else B.clone()
    P = R.clone()
    rr = torch.linalg.vecdot(R, R)
    floor = tol * torch.linalg.vecdot(B, B).clamp_min(torch.finfo(B.dtype).tiny)
    active = rr > floor
    # On the CPU, reading `active` costs nothing and ends the loop early; on a GPU it would wait for
    # the device, so every step runs (a converged row no longer moves).
    may_stop = sync.may_read(B)
    for _ in range(steps):
        if may_stop and not bool(active.any()):
            break
        AP = matvec(P)
        pAp = torch.linalg.vecdot(P, AP)
        active &= pAp > 0
        # Inactive rows may divide by zero here; torch.where discards those entries.
        a = torch.where(active, rr / pAp, 0.0)[..., None]
        X.addcmul_(a, P)
        R.addcmul_(a, AP, value=-1.0)
        rr_new = torch.linalg.vecdot(R, R)
        P.mul_(torch.where(active, rr_new / rr, 0.0)[..., None]).add_(R)
        rr = rr_new
        active &= rr > floor
    return X


def stochastic_neumann(oracles: Oracles, x: torch.Tensor, y: torch.Tensor, v0: torch.Tensor, eta: float,
                       batches: Sequence[object]) -> torch.Tensor:
    """Alg. 3 of mobl-wc-mhgd: v = η Σ_{i=0}^{Q} Π_{j≤i} (I − η ∇²_yy G(x, y; B_j)) v0, one fresh batch per factor."""
    nu = v0
    acc = v0.clone()
    for batch in batches:
        nu = nu - eta * oracles.hvp(x, y, nu, batch=batch)
        acc = acc + nu
    return eta * acc


def unrolled_hypergradients(oracles: Oracles, x: torch.Tensor, y0: torch.Tensor, eta: float,
                            T: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ITD: backpropagate F(x, y^T(x)) through T unrolled steps y^{t+1} = y^t − η ∇_y g(x, y^t).

    Returns (F(x, y^T), hypergradients [S, p], y^T). Used by MOML and MoCo; counts T LL
    gradients, and per objective T HVPs and T JVPs for the backward pass.
    """
    problem = oracles.problem
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        y = y0.detach()
        for _ in range(T):
            y = y - eta * torch.autograd.grad(problem.lower(xg, y if y.requires_grad else y.requires_grad_(True)),
                                              y, create_graph=True)[0]
        F = torch.stack([f(xg, y) for f in problem.upper])
        S = F.numel()
        (hyper,) = torch.autograd.grad(F, xg, torch.eye(S, dtype=F.dtype, device=F.device), is_grads_batched=True,
                                       allow_unused=True)
    if hyper is None:
        hyper = torch.zeros(S, x.numel(), dtype=x.dtype, device=x.device)
    oracles.counts.ll_grad += T
    oracles.counts.ul_grad += S
    oracles.counts.hvp += S * max(T - 1, 0)
    oracles.counts.jvp += S * T
    return F.detach(), hyper.detach(), y.detach()


def batched_unrolled_hypergradients(oracles: BatchedOracles, X: torch.Tensor, Y0: torch.Tensor, eta: float,
                                    T: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`unrolled_hypergradients` for B runs: rows X (B, p), Y0 (B, q); returns F (B, S), hypergradients
    (B, S, p) and Y^T (B, q). The runs are independent, so one backward pass through Σ_b serves them all;
    the counts are each run's own."""
    if (one := oracles.own_oracles(X)) is not None:
        # A single run (`BatchedOracles.single`): its own graph, without the batch's reshapes in every unrolled
        # step (1.3× faster on toy-quadratic); the same numbers.
        F, hyper, Y = unrolled_hypergradients(one, X[0], Y0[0], eta, T)
        return F[None], hyper[None], Y[None]
    S = oracles.problem.num_objectives
    with torch.enable_grad():
        Xg = X.detach().requires_grad_(True)
        Y = Y0.detach()
        for _ in range(T):
            Yg = Y if Y.requires_grad else Y.requires_grad_(True)
            Y = Y - eta * torch.autograd.grad(oracles.lower_values(Xg, Yg).sum(), Yg, create_graph=True)[0]
        F = oracles.upper_values_with_grad(Xg, Y)  # (B, S)
        eye = torch.eye(S, dtype=F.dtype, device=F.device)[:, None, :].expand(S, X.shape[0], S)
        (hyper,) = torch.autograd.grad(F, Xg, eye, is_grads_batched=True, allow_unused=True)
    hyper = torch.zeros(S, *X.shape, dtype=X.dtype, device=X.device) if hyper is None else hyper
    oracles.counts.ll_grad += T
    oracles.counts.ul_grad += S
    oracles.counts.hvp += S * max(T - 1, 0)
    oracles.counts.jvp += S * T
    return F.detach(), hyper.detach().transpose(0, 1), Y.detach()
