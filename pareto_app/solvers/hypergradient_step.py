"""One step of every hypergradient method, for B runs at once: estimate, weigh, move.

    Y^D, ∇̂Φ = estimator(X, Y, warm)                 lines 3-14 of mobl-wc-mhgd Alg. 1 (CG, Eq. 3; Neumann, Eq. 4),
                                                    Alg. 2 with Alg. 3, or ITD's unrolled inner loop
    w = rule(∇̂Φᵀ∇̂Φ, r, Φ)                          line 15 (Eq. 5), MGDA's min-norm, fixed r, MoCo's tracking
    X ← X − β_b ∇̂Φ w                                line 16

WC-MHGD, MGDA and linear scalarization (`wc_mhgd_batched`), stochastic WC-MHGD
(`wc_mhgd_stochastic_batched`), MOML and MoCo (`itd_batched`) are this step with their own estimator
and weighting rule, both values resolved once into the frozen `Config`; the state holds tensors only
and a step changes nothing in place. β is given, or each run's 1/(w_max(r_b) L̂_φ), with w_max the
largest weight the rule can put on one objective: stable whatever weights it picks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..batched_oracles import BatchedOracles
from ..estimators import Estimator
from ..problem import Problem
from ..weighting import Rule, combine, normalized_weights
from .base import Output


@dataclass(frozen=True)
class Config:
    estimator: Estimator  # lines 3-14: the inner loop and the hypergradients
    rule: Rule  # line 15: the weights
    beta: float | None  # a given step (μ of MOML, α of MoCo, a user's β); None: β_b = 1/(w_max(r_b) L̂_φ)
    lipschitz: float  # L̂_φ, for the estimated β


@dataclass(frozen=True)
class State:
    X: torch.Tensor  # (B, p)
    Y: torch.Tensor  # (B, q): the last inner iterate, the next warm start
    warm: torch.Tensor | None  # the estimator's warm start (CG's V, (B, S, q))
    memory: Any  # the weighting rule's (the last λ; MoCo's tracked vectors, λ and γ)


def step_sizes(config: Config, R: torch.Tensor) -> torch.Tensor:
    """β per run: the given one, or 1/(w_max(r_b) L̂_φ)."""
    if config.beta is not None:
        return torch.full(R.shape[:1], config.beta, dtype=R.dtype, device=R.device)
    return 1.0 / (config.rule.max_weight(R) * max(config.lipschitz, 1e-300))


def step(config: Config, state: State, R: torch.Tensor, oracles: BatchedOracles) -> tuple[State, Output]:
    X = state.X
    est = config.estimator(oracles, X, state.Y, state.warm)  # lines 3-14
    weighted = combine(config.rule, est.hyper, R, est.objectives, state.memory)  # line 15
    beta = step_sizes(config, R.double()).to(X.dtype)
    d = weighted.direction
    new = State(X=X - beta[:, None] * d, Y=est.Y, warm=est.warm, memory=weighted.memory)  # line 16
    return new, Output(X=X, Y=est.Y, objectives=est.reported, weights=normalized_weights(weighted.weights),
                       direction_norm=(d * d).sum(dim=1), qp_gap=weighted.gap, finite_weighting=weighted.finite)


def restart(config: Config, state: State, dead: torch.Tensor, problem: Problem, R: torch.Tensor) -> State:
    """The runs marked `dead` (diverged) step on from the start, harmlessly, so that no non-finite value of
    theirs reaches the batch's QPs and metrics."""
    warm = state.warm
    if warm is not None:
        warm = torch.where(dead.reshape(-1, *[1] * (warm.dim() - 1)), 0.0, warm)
    return State(X=torch.where(dead[:, None], problem.x0, state.X), Y=torch.where(dead[:, None], problem.y0, state.Y),
                 warm=warm, memory=config.rule.reset(state.memory, dead, R.shape[1]))
