"""`toy-llgc`: a lower level that is convex but not strongly convex (flat directions in y).

    g(x, y)   = ½ (y − Bx − c)ᵀ H₀ (y − Bx − c),   H₀ ⪰ 0 with `flat` zero eigenvalues
    f_s(x, y) = ½ ‖y − a_s‖² + ½ γ ‖x − b_s‖²

argmin_y g(x, ·) = Bx + c + null(H₀) is a whole affine set, so hypergradients are not
defined; the bilevel problem is the ECMO problem with h(z) = ∇_y g = H₀(y − Bx − c) = 0.
Its weighted-Chebyshev optimum for a preference λ,

    min_{ρ,x,y} ρ  s.t.  λ_s f_s(x, y) ≤ ρ,  H₀(y − Bx − c) = 0,

is a small convex program; `wc_optimum` solves it exactly with cvxpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..problem import Problem
from .quadratic_common import random_spd, simplex_grid
from .registry import Param, Task, register


def wc_optimum(data: dict[str, Any], preference: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The exact WC optimum (ρ*, x*, y*) for `preference`, solved by cvxpy."""
    import cvxpy as cp

    B, c, H0, a, b, gamma = (data[k] for k in ("B", "c", "H0", "a", "b", "gamma"))
    q, p = B.shape
    x, y, rho = cp.Variable(p), cp.Variable(q), cp.Variable()
    cons = [H0 @ (y - B @ x - c) == 0]
    for s, lam in enumerate(np.asarray(preference, dtype=float)):
        f = 0.5 * cp.sum_squares(y - a[s]) + 0.5 * gamma * cp.sum_squares(x - b[s])
        cons.append(lam * f <= rho)
    cp.Problem(cp.Minimize(rho), cons).solve(solver=cp.CLARABEL)
    return float(rho.value), np.asarray(x.value), np.asarray(y.value)


def build(*, device: torch.device, dtype: torch.dtype, S: int, p: int, q: int, flat: int,
          gamma: float, seed: int) -> Problem:
    if flat >= q:
        raise ValueError(f"toy-llgc: flat={flat} must be smaller than q={q}")
    gen = torch.Generator().manual_seed(seed)
    B = torch.randn(q, p, generator=gen, dtype=dtype) / p**0.5
    c = torch.randn(q, generator=gen, dtype=dtype) * 0.5
    eig = torch.cat([torch.zeros(flat, dtype=dtype), torch.linspace(1.0, 2.0, q - flat, dtype=dtype)])
    H0 = random_spd(q, eig, gen, dtype)
    a = torch.randn(S, q, generator=gen, dtype=dtype)
    b = torch.randn(S, p, generator=gen, dtype=dtype)
    data = {"B": B.double().numpy(), "c": c.double().numpy(), "H0": H0.double().numpy(),
            "a": a.double().numpy(), "b": b.double().numpy(), "gamma": gamma}
    B, c, H0, a, b = (t.to(device) for t in (B, c, H0, a, b))

    def lower(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        r = y - B @ x - c
        return 0.5 * r @ (H0 @ r)

    def upper_s(s: int):
        def f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return 0.5 * (y - a[s]).pow(2).sum() + 0.5 * gamma * (x - b[s]).pow(2).sum()

        return f

    upper = [upper_s(s) for s in range(S)]

    def objectives_np(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        an, bn = data["a"], data["b"]
        return np.array([0.5 * np.sum((y - an[s]) ** 2) + 0.5 * gamma * np.sum((x - bn[s]) ** 2) for s in range(S)])

    def pareto_front(n: int) -> np.ndarray:
        prefs = simplex_grid(S, n)
        prefs = prefs[(prefs > 0).all(axis=1)]
        return np.array([objectives_np(*wc_optimum(data, r)[1:]) for r in prefs])

    return Problem(
        upper=upper,
        lower=lower,
        x0=torch.zeros(p, dtype=dtype, device=device),
        y0=torch.zeros(q, dtype=dtype, device=device),
        strongly_convex=False,
        reference_point=None,
        pareto_front=pareto_front,
        data=data,
    )


TASK = register(Task(
    name="toy-llgc",
    summary="Convex (not strongly convex) quadratic lower level; the WC optimum is a cvxpy program.",
    build=build,
    params={
        "S": Param(2, "number of objectives", low=2, high=5),
        "p": Param(3, "size of x (upper level)", low=1, high=100),
        "q": Param(4, "size of y (lower level)", low=2, high=100),
        "flat": Param(1, "number of flat directions of the lower level", low=1, high=99),
        "gamma": Param(0.5, "weight of the x-part of each objective", low=0.0, high=100.0),
        "seed": Param(0, "seed of the random geometry", low=0, high=2**31 - 1),
    },
))
