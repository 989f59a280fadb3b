"""MOML (Ye et al. 2021): MGDA on ITD hypergradients.

    for k = 0, 1, ...
        y^0 = y_{k-1}^T;  y^{t+1} = y^t − η ∇_y g(x_k, y^t), t < T   (unrolled, differentiable in x)
        ∇φ_s(x_k) = d f_s(x_k, y^T(x_k)) / dx   by backpropagation through the T steps
        λ_k = argmin_{λ ∈ Δ} ‖Σ_s λ_s ∇φ_s‖²                             (MGDA min-norm)
        x_{k+1} = x_k − μ Σ_s λ_{k,s} ∇φ_s

Time and memory grow with T (the graph of all T steps is kept), which is FORUM's point.
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
from . import itd_batched
from .base import Option, StepOutput
from .itd_common import resolve_itd
from .one_run import preference_row, step_output


@dataclass
class State:
    """One run: B = 1 of the batched step (`itd_batched`), the same code as a sweep's rows."""

    x: torch.Tensor
    y: torch.Tensor  # y^T of the last step, the next warm start
    k: int
    options: dict[str, Any]
    oracles: Oracles
    config: itd_batched.Config
    batched: BatchedOracles


@dataclass(frozen=True)
class MOML:
    name: str = "moml"
    summary: str = "MOML: MGDA on hypergradients from backpropagation through T unrolled steps"
    needs_strong_convexity: bool = True

    @property
    def options(self) -> dict[str, Option]:
        return {
            "mu": Option(None, "upper-level step size μ (default 1/L̂_φ)", low=1e-12, high=1e6),
            "eta": Option(None, "lower-level step size η (default 1/L_g)", low=1e-12, high=1e6),
            "T": Option(None, "unrolled lower-level steps (default from κ)", low=1, high=10_000, integer=True),
        }

    def init(self, problem: Problem, preference: np.ndarray, options: dict[str, Any], oracles: Oracles,
             generator: torch.Generator) -> State:
        opts = resolve_itd(problem, oracles, options, generator, step_name="mu")
        return State(x=problem.x0.clone(), y=problem.y0.clone(), k=0, options=opts, oracles=oracles,
                     config=itd_batched.config_of(self.name, opts), batched=BatchedOracles.single(oracles))

    def step(self, state: State, preference: np.ndarray) -> tuple[State, StepOutput]:
        core = itd_batched.State(X=state.x[None], Y=state.y[None], warm=None, memory=None)
        core, out = itd_batched.step(state.config, core, preference_row(preference, state.x), state.batched)
        new = dataclasses.replace(state, x=core.X[0], y=core.Y[0], k=state.k + 1)
        return new, step_output(out)


SOLVER = MOML()
