"""DAQP (a dual active-set QP solver in C), taken only with an optimality certificate.

DAQP is fast; its proximal iterations on singular Hessians stop on a tolerance, though, and badly
scaled problems can exhaust its iterations, so each of its answers is accepted only with a
Frank-Wolfe certificate (`CERT_TOL`); anything else goes to the exact active-set method.
"""

from __future__ import annotations

import numpy as np

try:
    import daqp
except ImportError:  # pragma: no cover - the exact active-set method alone still works
    daqp = None

SETTINGS = {"primal_tol": 1e-12, "eta_prox": 1e-14, "iter_limit": 300}
INF = 1e30  # DAQP's own "no bound" value
CERT_TOL = 1e-11  # accepted suboptimality, relative to the problem's scale
SUPPORT_TOL = 1e-9  # weights below this in DAQP's answer are taken as exact zeros


def solve(Q: np.ndarray, c: np.ndarray, A: np.ndarray, upper: np.ndarray, lower: np.ndarray,
          sense: np.ndarray) -> np.ndarray | None:
    if daqp is None:
        return None
    x, _, flag, _ = daqp.solve(Q, c, A, upper, lower, sense, **SETTINGS)
    return np.asarray(x, dtype=float) if flag == 1 else None
