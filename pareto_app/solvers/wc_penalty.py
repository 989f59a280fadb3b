"""WC-Penalty (ecmo poster, Algorithm 1): projected gradient descent on the penalty P(θ).

For a lower level that is only convex, the bilevel problem is the ECMO problem with
h(z) = ∇_y g(x, y) = 0, z = (x, y). Its WC-scalarized form with slacks δ ≥ 0 is penalised:

    P(θ) = ρ + (u/2) ‖h(z)‖² + (v/2) Σ_s (λ_s f_s(z) + δ_s − ρ)²,   θ = (ρ, z, δ) ∈ R × R^k × R^S_+

    for t = 0, ..., T−1:   θ_{t+1} = P_C(θ_t − η ∇P(θ_t))                                  (line 4)

With ω_s = v (λ_s f_s + δ_s − ρ) (the multipliers of the KKT system K):

    ∇_ρ P = 1 − Σ_s ω_s,   ∇_z P = u J_hᵀ h + Σ_s ω_s λ_s ∇f_s,   ∇_δ P = ω

The minimiser of P is biased: the WC constraints hold to ω/v and h to ν/u, so u, v must grow.
`schedule="theorem"` is the paper's: u = v = c T^{1/4}, η = 1/L̂_P = Θ(T^{-1/4}) from power
iteration on ∇²P at θ_0, fixed for the T steps. It converges at the theorem's O(S/√T) in
the averaged ‖K‖², but the constant c that suits one problem does not suit another (issue 11:
10^4 steps left a 46 % gap on an LLGC instance `toy-llgc` had not shown).

`schedule="adaptive"` (the default) reads the problem instead (`wc_lagrangian.py`): line 4 from a
Nesterov-extrapolated point with gradient restarts, η = 1/L̂ raised to the curvature seen along
the path, and u, v ← 10 u, 10 v each time the gradient mapping of P falls below a tolerance that
shrinks with them (the penalty continuation of Nocedal & Wright, Framework 17.1). The schedule
(u, v, η per step) is recorded in the history as penalty_u, penalty_v, step_size.
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
class WCPenalty:
    name: str = "wc-penalty"
    summary: str = "WC-Penalty (ecmo Alg. 1): penalty method for lower levels that are only convex"
    needs_strong_convexity: bool = False
    multipliers: bool = False  # ν̄, ω̄ updated between phases

    @property
    def options(self) -> dict[str, Option]:
        return {
            "schedule": Option("adaptive", "adaptive: u, v raised ×10 as each penalty problem is solved, momentum, "
                               "η from the curvature seen; theorem: fixed u = v = 5 T^1/4, η = 1/L̂_P (Alg. 1 as "
                               "printed)", choices=("adaptive", "theorem")),
            "eta": Option(None, "step size η at the start (default 1/L̂ from the curvature of P at θ_0)",
                          low=1e-12, high=1e6),
            "u": Option(None, "penalty u on ‖h(z)‖² (default: 10 s at the start if adaptive, s = max_s λ_s f_s(z_0); "
                        "5 T^1/4 if theorem)", low=1e-8, high=1e12),
            "v": Option(None, "penalty v on the WC constraints (default: 10/s at the start if adaptive; 5 T^1/4 if "
                        "theorem)", low=1e-8, high=1e12),
        }

    def init(self, problem: Problem, preference: np.ndarray, options: dict[str, Any], oracles: Oracles,
             generator: torch.Generator) -> State:
        return wc_lagrangian.init_run(self, problem, preference, options, oracles, generator)

    def step(self, state: State, preference: np.ndarray) -> tuple[State, StepOutput]:
        return wc_lagrangian.step_run(state, preference)


SOLVER = WCPenalty()
