"""MOML and MoCo (the ITD baselines, `moml.py`, `moco.py`) for B runs at once (issue 9).

Each run's hypergradients come from backpropagation through its own T unrolled lower-level steps;
one backward pass through the batch serves all runs (`hypergrad.batched_unrolled_hypergradients`).

    MOML:  λ = argmin_Δ ‖Σ_s λ_s ∇φ_s‖² per run (batched min-norm QP);  X ← X − μ ∇Φ λ
    MoCo:  Y ← Y − β (Y − ∇Φ);  λ ← Π_Δ(λ − γ (YᵀY + ρI) λ);  X ← X − α Y λ

The options (η, T, the step) are those the sequential init resolves, once: every run starts at the
problem's start and neither rule reads the preference. MoCo's default γ = 1/(‖Y_1ᵀY_1‖ + ρ) is each
run's own, set at its first step as in its sequential run. The step is `hypergradient_step`'s, with
the unrolled estimator and the min-norm rule (MOML) or MoCo's tracking rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..estimators import Unrolled
from ..oracles import Oracles
from ..problem import Problem
from ..weighting import MinNorm, MocoMemory, MocoTracking
from .hypergradient_step import Config, State, restart, step

__all__ = ["Config", "State", "config_of", "restart", "start", "step"]


def config_of(rule: str, options: dict[str, Any]) -> Config:
    """The resolved options of the sequential init of MOML or MoCo (`rule`)."""
    moco = rule == "moco"
    gamma = options.get("gamma")
    weighting = (MocoTracking(beta=float(options["beta"]), gamma=None if gamma is None else float(gamma),
                              rho=float(options["rho"])) if moco else MinNorm())
    return Config(estimator=Unrolled(eta=float(options["eta"]), T=int(options["T"])), rule=weighting,
                  beta=float(options["alpha" if moco else "mu"]), lipschitz=0.0)


def start_memory(config: Config, B: int, S: int, device: torch.device) -> MocoMemory | None:
    """MoCo's memory at the start (uniform λ, nothing tracked yet); MOML has none."""
    if not isinstance(config.rule, MocoTracking):
        return None
    return MocoMemory(tracked=None, lam=torch.full((B, S), 1.0 / S, dtype=torch.float64, device=device), gamma=None)


def start(algo: Any, problem: Problem, options: dict[str, Any], preferences: np.ndarray, steps: int,
          generator: torch.Generator, oracles: Oracles) -> tuple[Config, State, list[dict[str, Any]]]:
    """(config, the state at the start, each run's resolved options): the sequential init, run once."""
    with torch.no_grad():
        first = algo.init(problem, preferences[0], dict(options, steps=steps), oracles, generator)
    resolved = {k: v for k, v in first.options.items() if k != "steps"}
    config = config_of(algo.name, resolved)
    B, S = len(preferences), problem.num_objectives
    state = State(X=problem.x0.expand(B, -1).clone(), Y=problem.y0.expand(B, -1).clone(), warm=None,
                  memory=start_memory(config, B, S, problem.device))
    return config, state, [dict(resolved) for _ in range(B)]
