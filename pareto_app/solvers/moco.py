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

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..hypergrad import unrolled_hypergradients
from ..oracles import Oracles
from ..problem import Problem
from .base import Option, StepOutput, normalized
from .itd_common import resolve_itd


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection onto the probability simplex (sort-based, exact)."""
    if not np.all(np.isfinite(v)):  # the run diverged: the engine keeps its last good iterate
        raise ValueError("the weights' update contains non-finite entries (nan or inf)")
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    idx = np.arange(1, v.size + 1)
    k = idx[u - css / idx > 0][-1]
    return np.maximum(v - css[k - 1] / k, 0.0)


@dataclass
class State:
    x: torch.Tensor
    y: torch.Tensor
    Y: torch.Tensor | None  # tracked hypergradients [S, p]
    lam: np.ndarray
    k: int
    options: dict[str, Any]
    oracles: Oracles


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
        return State(x=problem.x0.clone(), y=problem.y0.clone(), Y=None, lam=np.full(S, 1.0 / S), k=0,
                     options=opts, oracles=oracles)

    def step(self, state: State, preference: np.ndarray) -> tuple[State, StepOutput]:
        o, opts, x = state.oracles, state.options, state.x
        f, hyper, y_T = unrolled_hypergradients(o, x, state.y, opts["eta"], opts["T"])
        Y = hyper if state.Y is None else state.Y - opts["beta"] * (state.Y - hyper)
        gram = (Y @ Y.T).double().cpu().numpy()
        if opts["gamma"] is None:
            opts["gamma"] = 1.0 / (np.linalg.eigvalsh(gram)[-1] + opts["rho"] + 1e-300)
        lam = project_simplex(state.lam - opts["gamma"] * (gram + opts["rho"] * np.eye(len(gram))) @ state.lam)
        d = torch.as_tensor(lam, dtype=x.dtype, device=x.device) @ Y
        new = State(x=x - opts["alpha"] * d, y=y_T, Y=Y, lam=lam, k=state.k + 1, options=opts, oracles=o)
        return new, StepOutput(x=x, y=y_T, objectives=f, weights=normalized(lam), direction_norm=float(d @ d))


SOLVER = MoCo()
