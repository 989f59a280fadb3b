"""Stochastic WC-MHGD (mobl-wc-mhgd Algorithm 2 with Algorithm 3, `wc_mhgd_stochastic.py`) for B runs at once.

Runs of one sweep share a seed, so each of their sequential runs draws the same minibatches in the
same order: here one draw serves every run, and each oracle call evaluates all runs on it.

    Y^t = Y^{t−1} − α ∇_y G(X, Y^{t−1}; T_{t−1}),  t ≤ D                         (line 5)
    V^Q = Alg. 3 on ∇_y F^(s)(X, Y^D; D_F^s) with Q shrinking batches B_j       (lines 9-10)
    ∇̂Φ = ∇_x F^(s)(X, Y^D; D_F^s) − ∇²_xy G(X, Y^D; D_G) V^Q                   (line 11)
    λ from Eq. (5) per run;  X ← X − β_b ∇̂Φ (r ⊙ λ)                            (lines 13-14)

The step is `hypergradient_step`'s, with Alg. 2 and 3 as the estimator (`estimators.StochasticNeumann`)
and Eq. 5 as the rule, warm-started from the last step's λ.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..estimators import StochasticNeumann
from ..oracles import Oracles
from ..problem import Problem
from ..stepsize import weighted_step
from ..weighting import Chebyshev
from .hypergradient_step import Config, State, restart, step

__all__ = ["Config", "State", "config_of", "restart", "start", "step"]


def config_of(options: dict[str, Any], lipschitz: float, hessian_batches: list[int],
              generator: torch.Generator) -> Config:
    """The resolved options of the sequential init (`lipschitz` 0: β given). `generator` is the runs' shared
    stream of minibatches, advanced by each step."""
    estimator = StochasticNeumann(alpha=float(options["alpha"]), D=int(options["D"]), eta=float(options["eta"]),
                                  batch_lower=int(options["batch_lower"]), batch_upper=int(options["batch_upper"]),
                                  batch_jvp=int(options["batch_jvp"]), hessian_batches=tuple(hessian_batches),
                                  generator=generator)
    return Config(estimator=estimator, rule=Chebyshev(u=float(options["u"])),
                  beta=None if lipschitz != 0.0 else float(options["beta"]), lipschitz=lipschitz)


def start(algo: Any, problem: Problem, options: dict[str, Any], preferences: np.ndarray, steps: int,
          generator: torch.Generator, oracles: Oracles) -> tuple[Config, State, list[dict[str, Any]]]:
    """(config, the state at the start, each run's resolved options): the sequential init, run once."""
    with torch.no_grad():
        first = algo.init(problem, preferences[0], dict(options, steps=steps), oracles, generator)
    resolved = {k: v for k, v in first.options.items() if k != "steps"}
    estimated = first.lipschitz != 0.0
    config = first.config
    B = len(preferences)
    state = State(X=problem.x0.expand(B, -1).clone(), Y=problem.y0.expand(B, -1).clone(), warm=None, memory=None)
    per_run = [dict(resolved, beta=weighted_step(first.lipschitz, float(np.max(r)))) if estimated else dict(resolved)
               for r in preferences]
    return config, state, per_run
