"""Defaults shared by the ITD baselines (MOML, MoCo): η = 1/L_g, T from κ, UL step 1/L̂_φ."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..oracles import Oracles
from ..problem import Problem
from ..stepsize import hypergradient_lipschitz, lower_curvature

LIPSCHITZ_MARGIN = 1.25


def resolve_itd(problem: Problem, oracles: Oracles, options: dict[str, Any], generator: torch.Generator,
                step_name: str) -> dict[str, Any]:
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    L, mu = lower_curvature(oracles, problem.x0, problem.y0, seed=seed)
    kappa = L / max(mu, L * 1e-6)
    eta = options["eta"] if options["eta"] is not None else 1.0 / L
    # Backpropagation through T steps from a warm start has error (1 − ημ)^T, as Neumann.
    T = options["T"] if options["T"] is not None else int(np.clip(math.ceil(kappa * math.log(1e4)), 10, 300))
    opts = {**options, "eta": eta, "T": T, "L_g": L, "mu_g": mu}
    if opts[step_name] is None:
        lipschitz = LIPSCHITZ_MARGIN * hypergradient_lipschitz(oracles, problem.x0, problem.y0, eta,
                                                               inner=max(T, 20), cg_steps=20, seed=seed)
        opts[step_name] = 1.0 / lipschitz
        opts["L_phi"] = lipschitz
    return opts
