"""WC-AL: the weighted-Chebyshev ECMO problem by the method of multipliers (augmented Lagrangian).

The WC problem of the ecmo poster for a preference λ, with z = (x, y), h(z) = ∇_y g(x, y):

    min_{ρ, z, δ ≥ 0} ρ   s.t.   h(z) = 0,   c_s(θ) = λ_s f_s(z) + δ_s − ρ = 0  (s = 1..S)

WC-Penalty minimises ρ + (u/2)‖h‖² + (v/2)‖c‖², whose minimiser misses the constraints by ν/u and
ω/v. The augmented Lagrangian adds the multipliers' linear terms, so that finite u, v suffice
[Hestenes 1969; Powell 1969; Bertsekas, Constrained Optimization and Lagrange Multiplier Methods, 1982]:

    L_A(θ; ν̄, ω̄) = ρ + ν̄ᵀh(z) + (u/2)‖h(z)‖² + ω̄ᵀc(θ) + (v/2)‖c(θ)‖²

    for phases j = 0, 1, ...:
        θ ≈ argmin_{θ ∈ C} L_A(θ; ν̄_j, ω̄_j)        projected gradient with momentum, until the
                                                     gradient mapping is ≤ τ_j (wc_lagrangian.py)
        ν̄_{j+1} = ν̄_j + u h(z),  ω̄_{j+1} = ω̄_j + v c(θ)                      (first-order update)
        u, v ← 10 u, 10 v  if ‖h‖ + ‖c‖/s fell by less than 10 % in phase j  (as Nocedal & Wright, Alg. 17.4)
        τ_{j+1} = τ_j / 10

At a solution ν = ν̄ + u h and ω = ω̄ + v c are the multipliers of the KKT system K (Σ ω_s = 1 from
∇_ρ L_A = 0): the metrics' kkt_residual is measured with ω. Each step costs one gradient of L_A:
S UL gradients, one LL gradient, one JVP and one HVP — as a WC-Penalty step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..oracles import Oracles
from ..problem import Problem
from . import wc_lagrangian
from .base import Option, StepOutput
from .wc_lagrangian import State


@dataclass(frozen=True)
class WCAugmentedLagrangian:
    name: str = "wc-al"
    summary: str = "WC-AL: augmented Lagrangian (method of multipliers) on the WC problem; no penalty bias"
    needs_strong_convexity: bool = False
    multipliers: bool = True  # ν̄, ω̄ updated between phases

    @property
    def options(self) -> dict[str, Option]:
        return {
            "eta": Option(None, "step size η at the start (default 1/L̂ from the curvature of L_A at θ_0)",
                          low=1e-12, high=1e6),
            "u": Option(None, "penalty u on ‖h(z)‖² at the start (default 10 s, s = max_s λ_s f_s(z_0); raised ×10 "
                        "only where ‖h‖ + ‖c‖ stalls)", low=1e-8, high=1e12),
            "v": Option(None, "penalty v on the WC constraints at the start (default 10/s)", low=1e-8, high=1e12),
        }

    def init(self, problem: Problem, preference: np.ndarray, options: dict[str, Any], oracles: Oracles,
             generator: torch.Generator) -> State:
        return wc_lagrangian.init_run(self, problem, preference, {**options, "schedule": "adaptive"}, oracles,
                                      generator)

    def step(self, state: State, preference: np.ndarray) -> tuple[State, StepOutput]:
        return wc_lagrangian.step_run(state, preference)


SOLVER = WCAugmentedLagrangian()
