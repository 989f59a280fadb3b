"""Defaults shared by the ITD baselines (MOML, MoCo): η = 1/L_g, T from κ, UL step 1/L̂_φ."""

from __future__ import annotations

import math
from typing import Any

import torch

from ..oracles import Oracles
from ..problem import Problem
from ..stepsize import condition_number, hypergradient_lipschitz, lower_curvature, series_steps

LIPSCHITZ_MARGIN = 1.25


def resolve_itd(problem: Problem, oracles: Oracles, options: dict[str, Any], generator: torch.Generator,
                step_name: str) -> dict[str, Any]:
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    L, mu = lower_curvature(oracles, problem.x0, problem.y0, seed=seed)
    kappa = condition_number(L, mu)
    if options["eta"] is not None and options["eta"] * L >= 2.0:
        # Gradient descent on an L-smooth lower level diverges for η ≥ 2/L, and so does every
        # quantity differentiated through it: say so now, not with an overflow some steps later.
        raise ValueError(f"option eta={options['eta']!r} is too large for this problem: the lower level's "
                         f"curvature is L_g ≈ {L:.4g}, so its gradient steps diverge for eta ≥ 2/L_g ≈ {2 / L:.4g}; "
                         f"accepted: eta < {2 / L:.4g} (or leave it out for 1/L_g)")
    eta = options["eta"] if options["eta"] is not None else 1.0 / L
    # Backpropagation through T steps from a warm start has error (1 − ημ)^T, as Neumann.
    T = options["T"] if options["T"] is not None else series_steps(kappa, low=10)
    opts = {**options, "eta": eta, "T": T, "L_g": L, "mu_g": mu}
    if opts[step_name] is None:
        lipschitz = LIPSCHITZ_MARGIN * hypergradient_lipschitz(oracles, problem.x0, problem.y0, eta,
                                                               inner=max(T, 20), cg_steps=20, seed=seed)
        if not math.isfinite(lipschitz) or lipschitz <= 0:
            raise ValueError(f"could not estimate the hypergradient's Lipschitz constant (got {lipschitz!r}); "
                             f"give the step size {step_name} explicitly")
        opts[step_name] = 1.0 / lipschitz
        opts["L_phi"] = lipschitz
    return opts
