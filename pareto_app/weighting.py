"""Weighting rules: how a step turns each run's S hypergradients into one direction (issue 9).

A rule is a value, chosen once when a solver starts (optax's habit: parts as values, not strings
tested in every step):

    Chebyshev(u)      Eq. (5) of mobl-wc-mhgd: λ = argmin_Δ ‖∇Φ(r ⊙ λ)‖² − u λᵀ(r ⊙ Φ), weights r ⊙ λ   wc-mhgd
    MinNorm()         MGDA: λ = argmin_Δ ‖∇Φ λ‖², weights λ                                          mgda, moml
    Fixed()           the preference itself, weights r (no QP)                                       linear
    MocoTracking(…)   MoCo: tracked vectors V ← V − β(V − ∇Φ), then one projected-gradient step on the
                      min-norm QP, λ ← Π_Δ(λ − γ(VᵀV + ρI)λ), weights λ                            moco

Each knows the largest weight it can put on one objective (`max_weight`: β = 1/(w_max L̂_φ) is then a
stable step whatever weights it picks) and carries its own memory from step to step (the last λ, the
next QP's warm start; MoCo's tracked vectors, λ and γ). `combine` is the one place where
Gram → weights → combine happens, for B runs at once, on their device:

    G_b = V_bᵀ V_b (float64),   w_b = rule(G_b, r_b, Φ_b),   d_b = V_b w_b

A run whose Gram matrix (or objectives, for a rule that reads them) went non-finite has diverged: its
QP sees the identity instead, so that no other run's QP is harmed, and `finite` says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from .qp import min_norm_weights_batched, project_simplex_batched, wc_weights_batched


@dataclass(frozen=True)
class Combined:
    """One step's weighting of B runs."""

    direction: torch.Tensor  # (B, p): d = Σ_s w_s v_s
    weights: torch.Tensor  # (B, S) float64: w, the weights on the vectors (r ⊙ λ for Eq. 5)
    gap: torch.Tensor  # (B,): the QP's Frank-Wolfe certificate (0 where no QP is solved)
    finite: torch.Tensor  # (B,): False where the rule's input was non-finite: that run has diverged
    memory: Any  # what the rule carries to the next step


class Rule(Protocol):
    solves_qp: bool  # False: the weights need no Gram matrix
    reads_objectives: bool  # True: a non-finite Φ is a non-finite input of the QP

    def max_weight(self, R: torch.Tensor) -> torch.Tensor:
        """(B,): the largest weight the rule can put on one objective, for preferences R (B, S)."""

    def vectors(self, hyper: torch.Tensor, memory: Any) -> tuple[torch.Tensor, Any]:
        """(the vectors combined (B, S, p), the memory): the hypergradients themselves, or MoCo's tracked ones."""

    def weights(self, gram: torch.Tensor | None, R: torch.Tensor, phi: torch.Tensor,
                memory: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, Any]:
        """(w, gap, a (B,) mask of finite results or None, the memory) from finite inputs (float64)."""

    def reset(self, memory: Any, dead: torch.Tensor, S: int) -> Any:
        """The memory with the runs marked `dead` (diverged) back at their start."""


def combine(rule: Rule, hyper: torch.Tensor, R: torch.Tensor, phi: torch.Tensor, memory: Any) -> Combined:
    """Gram → weights → combine for B runs: hypergradients (B, S, p), preferences R and objectives Φ (B, S)."""
    vectors, memory = rule.vectors(hyper, memory)
    R = R.double()
    if rule.solves_qp:
        gram = (vectors @ vectors.transpose(1, 2)).double()
        finite = torch.isfinite(gram).all(dim=(1, 2))
        if rule.reads_objectives:
            finite = finite & torch.isfinite(phi).all(dim=1)
        eye = torch.eye(gram.shape[1], dtype=gram.dtype, device=gram.device).expand_as(gram)
        gram = torch.where(finite[:, None, None], gram, eye)
        phi = torch.where(finite[:, None], phi.double(), 0.0)
    else:  # no QP: only the direction itself must stay finite
        gram, finite = None, torch.ones(R.shape[0], dtype=torch.bool, device=R.device)
    w, gap, ok, memory = rule.weights(gram, R, phi, memory)
    if ok is not None:
        finite = finite & ok
    direction = torch.einsum("bs,bsp->bp", w.to(vectors.dtype), vectors)
    return Combined(direction=direction, weights=w, gap=gap, finite=finite, memory=memory)


def normalized_weights(w: torch.Tensor) -> torch.Tensor:
    """Weights summing to 1 per row (negative ones clipped), uniform where the rule put none anywhere."""
    weights = w.clamp_min(0.0)
    total = weights.sum(dim=1, keepdim=True)
    return torch.where(total > 0, weights / torch.where(total > 0, total, 1.0), 1.0 / weights.shape[1])


def _uniform_where(lam: torch.Tensor | None, dead: torch.Tensor, S: int) -> torch.Tensor | None:
    return None if lam is None else torch.where(dead[:, None], 1.0 / S, lam)


class _OnHypergradients:
    """What the rules that weigh the hypergradients themselves (no tracking) share: no vectors of their own, and
    memory that a restart leaves as it is."""

    def vectors(self, hyper: torch.Tensor, memory: Any) -> tuple[torch.Tensor, Any]:
        return hyper, memory

    def reset(self, memory: Any, dead: torch.Tensor, S: int) -> Any:
        return memory


@dataclass(frozen=True)
class Chebyshev(_OnHypergradients):
    """Eq. (5): the WC scalarization's weights λ (memory: the last λ, the next QP's warm start, or None)."""

    u: float
    solves_qp = True
    reads_objectives = True

    def max_weight(self, R: torch.Tensor) -> torch.Tensor:
        return R.amax(dim=1)

    def weights(self, gram: torch.Tensor | None, R: torch.Tensor, phi: torch.Tensor,
                memory: Any) -> tuple[torch.Tensor, torch.Tensor, None, Any]:
        lam, gap = wc_weights_batched(gram, R, phi, self.u, start=memory)
        return R * lam, gap, None, lam

    def reset(self, memory: Any, dead: torch.Tensor, S: int) -> Any:
        return _uniform_where(memory, dead, S)


@dataclass(frozen=True)
class MinNorm(_OnHypergradients):
    """MGDA's min-norm weights: no preference, a common descent direction (memory: none)."""

    solves_qp = True
    reads_objectives = False

    def max_weight(self, R: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(R[:, 0])

    def weights(self, gram: torch.Tensor | None, R: torch.Tensor, phi: torch.Tensor,
                memory: Any) -> tuple[torch.Tensor, torch.Tensor, None, Any]:
        lam, gap = min_norm_weights_batched(gram)
        return lam, gap, None, memory


@dataclass(frozen=True)
class Fixed(_OnHypergradients):
    """Linear scalarization: the weights are the preference r (memory: none)."""

    solves_qp = False
    reads_objectives = False

    def max_weight(self, R: torch.Tensor) -> torch.Tensor:
        return R.amax(dim=1)

    def weights(self, gram: torch.Tensor | None, R: torch.Tensor, phi: torch.Tensor,
                memory: Any) -> tuple[torch.Tensor, torch.Tensor, None, Any]:
        return R, torch.zeros_like(R[:, 0]), None, memory


@dataclass(frozen=True)
class MocoMemory:
    tracked: torch.Tensor | None  # (B, S, p) the tracked hypergradients; None before the first step
    lam: torch.Tensor  # (B, S) float64
    gamma: torch.Tensor | None  # (B,) each run's γ, once set at its first step


@dataclass(frozen=True)
class MocoTracking:
    """MoCo (Fernando et al. 2023): tracking removes the bias of stochastic min-norm weights. γ defaults to each
    run's 1/(‖V_1ᵀV_1‖ + ρ) at its first step, the step of projected gradient descent on the weights' QP."""

    beta: float  # the tracking step
    gamma: float | None  # a given γ; None: each run's own at its first step
    rho: float  # the QP's regularisation
    solves_qp = True
    reads_objectives = False

    def max_weight(self, R: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(R[:, 0])

    def vectors(self, hyper: torch.Tensor, memory: MocoMemory) -> tuple[torch.Tensor, MocoMemory]:
        old = memory.tracked
        tracked = hyper if old is None else old - self.beta * (old - hyper)
        return tracked, dataclasses.replace(memory, tracked=tracked)

    def weights(self, gram: torch.Tensor | None, R: torch.Tensor, phi: torch.Tensor,
                memory: MocoMemory) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, MocoMemory]:
        assert gram is not None
        gamma = memory.gamma
        if gamma is None:
            gamma = (torch.full_like(gram[:, 0, 0], self.gamma) if self.gamma is not None
                     else 1.0 / (torch.linalg.eigvalsh(gram)[:, -1] + self.rho + 1e-300))
        eye = torch.eye(gram.shape[1], dtype=gram.dtype, device=gram.device)
        moved = memory.lam - gamma[:, None] * torch.einsum("bij,bj->bi", gram + self.rho * eye, memory.lam)
        ok = torch.isfinite(moved).all(dim=1)
        lam = torch.where(ok[:, None], project_simplex_batched(torch.where(ok[:, None], moved, 0.0)), memory.lam)
        return lam, torch.zeros_like(gamma), ok, MocoMemory(tracked=memory.tracked, lam=lam, gamma=gamma)

    def reset(self, memory: MocoMemory, dead: torch.Tensor, S: int) -> MocoMemory:
        return MocoMemory(tracked=None if memory.tracked is None else torch.where(dead[:, None, None], 0.0,
                                                                                   memory.tracked),
                          lam=torch.where(dead[:, None], 1.0 / S, memory.lam),
                          gamma=None if memory.gamma is None else torch.where(dead, 1.0, memory.gamma))
