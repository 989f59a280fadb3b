"""The primitives of the hypergradient estimators (`pareto_app.estimators`), mobl-wc-mhgd Eq. 2:

    ∇φ_s(x) = ∇_x f_s − ∇²_xy g [∇²_yy g]⁻¹ ∇_y f_s

conjugate gradients on many systems at once (`batched_cg`), Alg. 3's stochastic Neumann series of one
run, and backpropagation through T unrolled inner steps (ITD), for one run and for B runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

from . import sync
from .oracles import Oracles

if TYPE_CHECKING:
    from .batched_oracles import BatchedOracles


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


def stochastic_neumann(oracles: Oracles | BatchedOracles, x: torch.Tensor, y: torch.Tensor, v0: torch.Tensor,
                       eta: float, batches: Sequence[object]) -> torch.Tensor:
    """Alg. 3 of mobl-wc-mhgd: v = η Σ_{i=0}^{Q} Π_{j≤i} (I − η ∇²_yy G(x, y; B_j)) v0, one fresh batch per factor
    (one run's x, y and v0 (S, q), or B runs' rows and V0 (B, S, q))."""
    nu = v0
    acc = v0.clone()
    for batch in batches:
        nu = nu - eta * oracles.at(x, y, batch).hvp(nu)
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
