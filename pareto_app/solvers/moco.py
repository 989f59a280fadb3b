"""MoCo (Fernando et al. 2023) on ITD hypergradients: tracked gradients, projected-gradient weights.

    for k = 0, 1, ...
        ∇φ_s(x_k) by backpropagation through T unrolled steps (as MOML)
        Y_{k+1} = Y_k − β (Y_k − ∇Φ(x_k))                  (track each hypergradient)
        λ_{k+1} = Π_Δ(λ_k − γ (Y_{k+1}ᵀ Y_{k+1} + ρ I) λ_k)   (one projected step on the min-norm QP)
        x_{k+1} = x_k − α Y_{k+1} λ_{k+1}

Tracking removes the bias of the stochastic min-norm weights; γ defaults to
1/(‖Y_1ᵀY_1‖ + ρ), the step of projected gradient descent on the weights' QP.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..batched_oracles import BatchedOracles
from ..oracles import Oracles
from ..problem import Problem
from ..weighting import MocoMemory
from . import itd_batched
from .base import Option, StepOutput
from .itd_common import resolve_itd
from .one_run import preference_row, step_output


@dataclass
class State:
    """One run: B = 1 of the batched step (`itd_batched`), the same code as a sweep's rows."""

    x: torch.Tensor
    y: torch.Tensor  # y^T of the last step, the next warm start
    Y: torch.Tensor | None  # tracked hypergradients [S, p]; None before the first step
    lam: torch.Tensor  # [S] (S numbers in a checkpoint of an earlier version)
    gamma: torch.Tensor | None  # [1] γ, set at the first step unless given
    k: int
    options: dict[str, Any]
    oracles: Oracles
    config: itd_batched.Config
    batched: BatchedOracles


@dataclass(frozen=True)
class MoCo:
    name: str = "moco"
    summary: str = "MoCo: tracked per-objective hypergradients and projected-gradient weights"
    needs_strong_convexity: bool = True

    @property
    def options(self) -> dict[str, Option]:
        return {
            "alpha": Option(None, "upper-level step size α (default 1/L̂_φ)", low=1e-12, high=1e6),
            "beta": Option(0.5, "tracking step β of Y", low=1e-6, high=1.0),
            "gamma": Option(None, "weight step γ (default 1/(‖YᵀY‖ + ρ) at the start)", low=1e-12, high=1e12),
            "rho": Option(0.0, "regularisation ρ of the weights' QP", low=0.0, high=1e6),
            "eta": Option(None, "lower-level step size η (default 1/L_g)", low=1e-12, high=1e6),
            "T": Option(None, "unrolled lower-level steps (default from κ)", low=1, high=10_000, integer=True),
        }

    def init(self, problem: Problem, preference: np.ndarray, options: dict[str, Any], oracles: Oracles,
             generator: torch.Generator) -> State:
        opts = resolve_itd(problem, oracles, options, generator, step_name="alpha")
        S = problem.num_objectives
        x = problem.x0.clone()
        return State(x=x, y=problem.y0.clone(), Y=None, lam=torch.full((S,), 1.0 / S, dtype=torch.float64, device=x.device),
                     gamma=None, k=0, options=opts, oracles=oracles, config=itd_batched.config_of(self.name, opts),
                     batched=BatchedOracles.single(oracles))

    def step(self, state: State, preference: np.ndarray) -> tuple[State, StepOutput]:
        lam = torch.as_tensor(state.lam, dtype=torch.float64, device=state.x.device).reshape(1, -1)
        memory = MocoMemory(tracked=None if state.Y is None else state.Y[None], lam=lam, gamma=state.gamma)
        core = itd_batched.State(X=state.x[None], Y=state.y[None], warm=None, memory=memory)
        core, out = itd_batched.step(state.config, core, preference_row(preference, state.x), state.batched)
        memory = core.memory
        new = dataclasses.replace(state, x=core.X[0], y=core.Y[0], Y=memory.tracked[0], lam=memory.lam[0],
                                  gamma=memory.gamma, k=state.k + 1)
        return new, step_output(out)


SOLVER = MoCo()
