"""MOML and MoCo (the ITD baselines, `moml.py`, `moco.py`) for B runs at once (issue 9).

Each run's hypergradients come from backpropagation through its own T unrolled lower-level steps;
one backward pass through the batch serves all runs (`hypergrad.batched_unrolled_hypergradients`).

    MOML:  λ = argmin_Δ ‖Σ_s λ_s ∇φ_s‖² per run (batched min-norm QP);  X ← X − μ ∇Φ λ
    MoCo:  Y ← Y − β (Y − ∇Φ);  λ ← Π_Δ(λ − γ (YᵀY + ρI) λ);  X ← X − α Y λ

The options (η, T, the step) are those the sequential init resolves, once: every run starts at the
problem's start and neither rule reads the preference. MoCo's default γ = 1/(‖Y_1ᵀY_1‖ + ρ) is each
run's own, set at its first step as in its sequential run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..batched_oracles import BatchedOracles
from ..hypergrad import batched_unrolled_hypergradients
from ..oracles import Oracles
from ..problem import Problem
from ..qp import min_norm_weights_batched, project_simplex_batched
from .wc_mhgd_batched import Output, normalized_weights


@dataclass(frozen=True)
class Config:
    rule: str  # "moml" | "moco"
    eta: float
    T: int
    step: float  # μ (MOML) or α (MoCo)
    track: float  # MoCo's β
    gamma: float | None  # MoCo's given γ; None: each run's own at its first step
    rho: float


@dataclass(frozen=True)
class State:
    X: torch.Tensor  # (B, p)
    Y: torch.Tensor  # (B, q): y^T of the last step, the next warm start
    tracked: torch.Tensor | None  # MoCo's tracked hypergradients (B, S, p); None before the first step
    lam: torch.Tensor  # (B, S) MoCo's weights (MOML: unused)
    gamma: torch.Tensor | None  # (B,) MoCo's γ per run, once set


def config_of(rule: str, options: dict[str, Any]) -> Config:
    """The resolved options of the sequential init of MOML or MoCo (`rule`)."""
    moco = rule == "moco"
    gamma = options.get("gamma")
    return Config(rule=rule, eta=float(options["eta"]), T=int(options["T"]), step=float(options["alpha" if moco else "mu"]),
                  track=float(options.get("beta", 0.0)), gamma=None if gamma is None else float(gamma),
                  rho=float(options.get("rho", 0.0)))


def start(algo: Any, problem: Problem, options: dict[str, Any], preferences: np.ndarray, steps: int,
          generator: torch.Generator, oracles: Oracles) -> tuple[Config, State, list[dict[str, Any]]]:
    """(config, the state at the start, each run's resolved options): the sequential init, run once."""
    with torch.no_grad():
        first = algo.init(problem, preferences[0], dict(options, steps=steps), oracles, generator)
    resolved = {k: v for k, v in first.options.items() if k != "steps"}
    config = config_of(algo.name, resolved)
    B, S = len(preferences), problem.num_objectives
    lam = torch.full((B, S), 1.0 / S, dtype=torch.float64, device=problem.device)
    state = State(X=problem.x0.expand(B, -1).clone(), Y=problem.y0.expand(B, -1).clone(), tracked=None, lam=lam,
                  gamma=None)
    return config, state, [dict(resolved) for _ in range(B)]


def restart(config: Config, state: State, dead: torch.Tensor, problem: Problem, R: torch.Tensor) -> State:
    """The runs marked `dead` (diverged) step on from the start, harmlessly."""
    S = R.shape[1]
    return State(X=torch.where(dead[:, None], problem.x0, state.X), Y=torch.where(dead[:, None], problem.y0, state.Y),
                 tracked=None if state.tracked is None else torch.where(dead[:, None, None], 0.0, state.tracked),
                 lam=torch.where(dead[:, None], 1.0 / S, state.lam),
                 gamma=None if state.gamma is None else torch.where(dead, 1.0, state.gamma))


def step(config: Config, state: State, R: torch.Tensor, oracles: BatchedOracles) -> tuple[State, Output]:
    X = state.X
    f, hyper, Y_T = batched_unrolled_hypergradients(oracles, X, state.Y, config.eta, config.T)
    S = hyper.shape[1]
    if config.rule == "moml":
        gram = (hyper @ hyper.transpose(1, 2)).double()
        finite = torch.isfinite(gram).all(dim=(1, 2))
        eye = torch.eye(S, dtype=gram.dtype, device=gram.device).expand_as(gram)
        lam, gap = min_norm_weights_batched(torch.where(finite[:, None, None], gram, eye))
        direction, new_tracked, gamma = hyper, None, None
    else:
        # Track each hypergradient, then one projected-gradient step on the weights' QP.
        tracked = hyper if state.tracked is None else state.tracked - config.track * (state.tracked - hyper)
        gram = (tracked @ tracked.transpose(1, 2)).double()
        finite = torch.isfinite(gram).all(dim=(1, 2))
        gamma = state.gamma
        if gamma is None:
            if config.gamma is not None:
                gamma = torch.full_like(gram[:, 0, 0], config.gamma)
            else:
                safe = torch.where(finite[:, None, None], gram, 0.0)
                gamma = 1.0 / (torch.linalg.eigvalsh(safe)[:, -1] + config.rho + 1e-300)
        eye = torch.eye(S, dtype=gram.dtype, device=gram.device)
        moved = state.lam - gamma[:, None] * torch.einsum("bij,bj->bi", gram + config.rho * eye, state.lam)
        finite &= torch.isfinite(moved).all(dim=1)
        lam = torch.where(finite[:, None], project_simplex_batched(torch.where(finite[:, None], moved, 0.0)),
                          state.lam)
        gap = torch.zeros_like(gamma)
        direction, new_tracked = tracked, tracked
    d = torch.einsum("bs,bsp->bp", lam.to(direction.dtype), direction)
    new = State(X=X - config.step * d, Y=Y_T, tracked=new_tracked, lam=lam, gamma=gamma)
    return new, Output(X=X, Y=Y_T, objectives=f, weights=normalized_weights(lam), direction_norm=(d * d).sum(dim=1),
                       qp_gap=gap, finite_weighting=finite)
