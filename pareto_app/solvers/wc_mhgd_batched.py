"""WC-MHGD (mobl-wc-mhgd Algorithm 1), MGDA and linear scalarization for B runs at once (issue 9).

The loop of `wc_mhgd.py`, with every quantity carrying a leading run axis: X (B, p), Y (B, q), the
hypergradients (B, S, p), the Gram matrices (B, S, S), the preferences R (B, S). One batched oracle
call serves all runs, and the weighting QPs are solved together on the runs' device.

    for k = 0, 1, ...
        Y^t = Y^{t−1} − α ∇_y g(X, Y^{t−1}),  t ≤ D                 (lines 3-6, warm-started)
        ∇̂Φ = ∇_x F − ∇²_xy g V,  ∇²_yy g V = ∇_y F by CG (Eq. 3)    (lines 7-14; or Neumann, Eq. 4)
        λ = argmin_Δ ‖∇̂Φ(r ⊙ λ)‖² − u λᵀ(r ⊙ Φ)   per run          (line 15, Eq. 5)
        X ← X − β_b ∇̂Φ (r ⊙ λ)                                       (line 16)

The options (α, D, N, β or L̂_φ) are those the sequential solver resolves at its start: the problem's
start is the same for every run, so they are estimated once, and β follows each run's preference
exactly as it does in a sequential run. The step itself is `hypergradient_step`'s, with CG or Neumann
as the estimator and Eq. 5, the min-norm rule or fixed weights as the rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..estimators import ConjugateGradient, Neumann
from ..oracles import Oracles
from ..problem import Problem
from .hypergradient_step import Config, State, restart, step, step_sizes

if TYPE_CHECKING:
    from .wc_mhgd import HypergradientDescent

__all__ = ["Config", "State", "config_of", "restart", "start", "step"]


def config_of(solver: HypergradientDescent, options: dict[str, Any], lipschitz: float,
              given_beta: float | None) -> Config:
    """The resolved `options` of the sequential init; `given_beta` the user's β (None: estimated per run)."""
    alpha, D = float(options["alpha"]), int(options["D"])
    estimator = (Neumann(alpha=alpha, D=D) if options["hypergrad"] == "neumann"
                 else ConjugateGradient(alpha=alpha, D=D, N=int(options["N"])))
    return Config(estimator=estimator, rule=solver.rule(options), beta=None if given_beta is None else float(given_beta),
                  lipschitz=lipschitz)


def start(algo: HypergradientDescent, problem: Problem, options: dict[str, Any], preferences: np.ndarray,
          steps: int, generator: torch.Generator, oracles: Oracles) -> tuple[Config, State, list[dict[str, Any]]]:
    """(config, the state at the start, each run's resolved options): the sequential init, run once.

    The problem's start is the same for every run, so the estimates (α, D, N, L̂_φ) are too; β
    follows each run's preference as in its sequential run."""
    with torch.no_grad():
        first = algo.init(problem, preferences[0], dict(options, steps=steps), oracles, generator)
    resolved = {k: v for k, v in first.options.items() if k != "steps"}
    config = config_of(algo, resolved, first.lipschitz, given_beta=options.get("beta"))
    R = torch.as_tensor(preferences, dtype=torch.float64, device=problem.device)
    betas = step_sizes(config, R).cpu().numpy()
    B = len(preferences)
    state = State(X=problem.x0.expand(B, -1).clone(), Y=problem.y0.expand(B, -1).clone(), warm=None, memory=None)
    per_run = [dict(resolved, beta=float(b)) if config.beta is None else dict(resolved) for b in betas]
    return config, state, per_run
