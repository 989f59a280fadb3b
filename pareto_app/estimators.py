"""Hypergradient estimators: lines 3-14 of mobl-wc-mhgd Algorithm 1, as values with one signature.

An estimator takes the lower level from its warm start to an approximation of y*(x) and returns the
S hypergradients ∇φ_s(x) = ∇_x f_s − ∇²_xy g [∇²_yy g]⁻¹ ∇_y f_s (Eq. 2) there:

    est = estimator(oracles, X, Y, warm)       est.objectives, est.hyper, est.Y, est.warm

`oracles` are a single run's (`Oracles`: x of shape (p,), y (q,)) or a batch's (`BatchedOracles`:
X (B, p), Y (B, q), one run a row); every product keeps the leading shape, so the same estimator serves
both. `warm` is what the estimator carries to the next step (CG's v; None for the others). Solvers take
estimators interchangeably, as torchopt takes its linear solvers:

    ConjugateGradient(α, D, N)    D warm-started inner steps, then N CG steps on ∇²_yy g v = ∇_y f_s   (Eq. 3)
    Neumann(α, D)                 D inner steps, then the truncated series along their trajectory       (Eq. 4)
    Unrolled(η, T)                backpropagation through T unrolled inner steps (ITD: MOML, MoCo)
    StochasticNeumann(...)        Alg. 2's minibatch inner steps and Alg. 3's shrinking Neumann batches

CG keeps only the last inner iterate, so its memory is flat in D; Neumann keeps the trajectory it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from .hypergrad import batched_cg, batched_unrolled_hypergradients, stochastic_neumann


@dataclass(frozen=True)
class Hypergradients:
    """What an estimator returns, at the inner loop's last iterate Y."""

    objectives: torch.Tensor  # F(X, Y) as the estimator sees it (a minibatch estimate for Alg. 3): the weighting reads it
    hyper: torch.Tensor  # ∇̂φ_s: (S, p), or (B, S, p)
    Y: torch.Tensor  # the inner loop's last iterate: where F was taken, and the next step's warm start
    warm: torch.Tensor | None  # the estimator's warm start for the next step (CG's v)
    reported: torch.Tensor  # F(X, Y) exactly: what a run records (the same tensor as `objectives` where exact)


class Estimator(Protocol):
    def __call__(self, oracles: Any, X: torch.Tensor, Y: torch.Tensor, warm: torch.Tensor | None) -> Hypergradients: ...


def inner_steps(oracles: Any, X: torch.Tensor, Y: torch.Tensor, alpha: float, D: int) -> list[torch.Tensor]:
    """Lines 3-6: y^t = y^{t−1} − α ∇_y g(x, y^{t−1}), t ≤ D; the trajectory y^0..y^D."""
    ys = [Y]
    for _ in range(D):
        ys.append(ys[-1] - alpha * oracles.lower_grad_y(X, ys[-1]))
    return ys


@dataclass(frozen=True)
class ConjugateGradient:
    """Option 1 of Alg. 1: N CG steps on ∇²_yy g v = ∇_y f_s, warm-started from the last v (Eq. 3)."""

    alpha: float
    D: int
    N: int

    def __call__(self, oracles: Any, X: torch.Tensor, Y: torch.Tensor, warm: torch.Tensor | None) -> Hypergradients:
        for _ in range(self.D):  # only the end of the inner loop is kept: memory flat in D
            Y = Y - self.alpha * oracles.lower_grad_y(X, Y)
        phi, GX, GY = oracles.upper(X, Y)
        point = oracles.at(X, Y)
        V = batched_cg(point.hvp, GY, warm, self.N)
        return Hypergradients(objectives=phi, hyper=GX - point.jvp_xy(V), Y=Y, warm=V, reported=phi)  # Eq. (3)


@dataclass(frozen=True)
class Neumann:
    """Option 2 of Alg. 1 (Eq. 4, with the step α inside the product):

        ∇φ_s = ∇_x f_s − α Σ_{t=0}^{D−1} ∇²_xy g(x, y^t) Π_{j=t+1}^{D−1} (I − α ∇²_yy g(x, y^j)) ∇_y f_s

    The printed Eq. 4 has (I − ∇²g) and a sum to D; the series needs α inside and the D inner
    steps give D terms. This is reverse-mode differentiation through the inner loop, taken
    with explicit products, one pass per inner iterate.
    """

    alpha: float
    D: int

    def __call__(self, oracles: Any, X: torch.Tensor, Y: torch.Tensor, warm: torch.Tensor | None) -> Hypergradients:
        ys = inner_steps(oracles, X, Y, self.alpha, self.D)
        phi, GX, GY = oracles.upper(X, ys[-1])
        w = GY
        acc = torch.zeros_like(GX)
        for t in range(len(ys) - 2, -1, -1):  # inner iterates y^{D-1}, ..., y^0
            point = oracles.at(X, ys[t])
            if t > 0:
                jw, hw = point.jvp_and_hvp(w)
                acc = acc + jw
                w = w - self.alpha * hw
            else:
                acc = acc + point.jvp_xy(w)
        return Hypergradients(objectives=phi, hyper=GX - self.alpha * acc, Y=ys[-1], warm=None, reported=phi)


@dataclass(frozen=True)
class Unrolled:
    """ITD (MOML, MoCo): backpropagation of F(x, y^T(x)) through T unrolled steps y^{t+1} = y^t − η ∇_y g(x, y^t).
    Time and memory grow with T (the graph of all T steps is kept), which is FORUM's point. Batched oracles."""

    eta: float
    T: int

    def __call__(self, oracles: Any, X: torch.Tensor, Y: torch.Tensor, warm: torch.Tensor | None) -> Hypergradients:
        phi, hyper, Y_T = batched_unrolled_hypergradients(oracles, X, Y, self.eta, self.T)
        return Hypergradients(objectives=phi, hyper=hyper, Y=Y_T, warm=None, reported=phi)


@dataclass(frozen=True)
class StochasticNeumann:
    """Alg. 2 with Alg. 3 of mobl-wc-mhgd: D SGD steps, a fresh batch T_{t−1} each (line 5); then with D_G, D_H =
    {B_j} and D_F^s (line 7), v^(s),0 = ∇_y F^(s)(D_F^s), v = η Σ_i Π_{j≤i} (I − η ∇²_yy G(B_j)) v^0 (lines 9-10),
    ∇̂φ_s = ∇_x F^(s)(D_F^s) − ∇²_xy G(D_G) v (line 11). Batched oracles.

    The runs of a sweep share a seed, so each of their sequential runs draws the same minibatches in the
    same order: one draw from `generator` (the runs' shared stream, advanced by each step) serves every run.
    What a run records is the deterministic F(x_k, y_k^D), for honest charts."""

    alpha: float
    D: int
    eta: float
    batch_lower: int
    batch_upper: int
    batch_jvp: int
    hessian_batches: tuple[int, ...]  # |B_j|, j = 1..Q
    generator: torch.Generator

    def __call__(self, oracles: Any, X: torch.Tensor, Y: torch.Tensor, warm: torch.Tensor | None) -> Hypergradients:
        mb, gen = oracles.problem.minibatches, self.generator
        for _ in range(self.D):
            Y = Y - self.alpha * oracles.lower_grad_y(X, Y, batch=mb.sample_lower(self.batch_lower, gen))
        batch_G = mb.sample_lower(self.batch_jvp, gen)
        batches_H = [mb.sample_lower(size, gen) for size in self.hessian_batches]
        batches_F = [mb.sample_upper(s, self.batch_upper, gen) for s in range(oracles.problem.num_objectives)]
        phi_hat, GX, GY = oracles.upper(X, Y, batches=batches_F)
        V = stochastic_neumann(oracles, X, Y, GY, self.eta, batches_H)
        hyper = GX - oracles.at(X, Y, batch_G).jvp_xy(V)
        return Hypergradients(objectives=phi_hat, hyper=hyper, Y=Y, warm=None, reported=oracles.upper_values(X, Y))
