"""MOML (Ye et al. 2021): MGDA on ITD hypergradients.

    for k = 0, 1, ...
        y^0 = y_{k-1}^T;  y^{t+1} = y^t − η ∇_y g(x_k, y^t), t < T   (unrolled, differentiable in x)
        ∇φ_s(x_k) = d f_s(x_k, y^T(x_k)) / dx   by backpropagation through the T steps
        λ_k = argmin_{λ ∈ Δ} ‖Σ_s λ_s ∇φ_s‖²                             (MGDA min-norm)
        x_{k+1} = x_k − μ Σ_s λ_{k,s} ∇φ_s

Time and memory grow with T (the graph of all T steps is kept), which is FORUM's point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..hypergrad import unrolled_hypergradients
from ..oracles import Oracles
from ..problem import Problem
from ..qp import min_norm_weights
from .base import Option, StepOutput, normalized
from .itd_common import resolve_itd


@dataclass
class State:
    x: torch.Tensor
    y: torch.Tensor
    k: int
    options: dict[str, Any]
    oracles: Oracles


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
        return State(x=problem.x0.clone(), y=problem.y0.clone(), k=0, options=opts, oracles=oracles)

    def step(self, state: State, preference: np.ndarray) -> tuple[State, StepOutput]:
        o, opts, x = state.oracles, state.options, state.x
        f, hyper, y_T = unrolled_hypergradients(o, x, state.y, opts["eta"], opts["T"])
        lam = min_norm_weights((hyper @ hyper.T).double().cpu().numpy())
        d = torch.as_tensor(lam, dtype=x.dtype, device=x.device) @ hyper
        new = State(x=x - opts["mu"] * d, y=y_T, k=state.k + 1, options=opts, oracles=o)
        return new, StepOutput(x=x, y=y_T, objectives=f, weights=normalized(lam), direction_norm=float(d @ d))


SOLVER = MOML()
