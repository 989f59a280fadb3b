"""`toy-quadratic`: a strongly convex quadratic lower level with an analytic Pareto set.

    g(x, y)   = ½ (y − Bx − c)ᵀ H (y − Bx − c),      H ≻ 0, so y*(x) = Bx + c
    f_s(x, y) = ½ ‖y − a_s‖² + ½ γ ‖x − b_s‖² − e_s
    φ_s(x)    = f_s(x, y*(x)) = ½ (x − m_s)ᵀ M (x − m_s),   M = BᵀB + γI

(e_s is the part of the misfit no x can remove, so each φ_s has minimum 0 and the
weighted-Chebyshev problem is posed from the ideal point 0.)

All φ_s share the Hessian M, so the Pareto set is the convex hull of the minimisers m_s
(the minimiser of Σ w_s φ_s is Σ w_s m_s). The stochastic form adds zero-mean noise to
the Hessian and gradients, shrinking with the batch size.
"""

from __future__ import annotations

import numpy as np
import torch

from ..problem import Minibatches, Problem
from ..qp import min_norm_weights
from .quadratic_common import random_spd, simplex_grid
from .registry import Param, Task, register


def build(*, device: torch.device, dtype: torch.dtype, S: int, p: int, q: int, condition: float,
          gamma: float, noise: float, seed: int) -> Problem:
    gen = torch.Generator().manual_seed(seed)
    B = torch.randn(q, p, generator=gen, dtype=dtype) / p**0.5
    c = torch.randn(q, generator=gen, dtype=dtype) * 0.5
    H = random_spd(q, torch.linspace(1.0, condition, q), gen, dtype)
    a = torch.randn(S, q, generator=gen, dtype=dtype)
    b = torch.randn(S, p, generator=gen, dtype=dtype)
    M = B.T @ B + gamma * torch.eye(p, dtype=dtype)
    m = torch.linalg.solve(M, (B.T @ (a - c).T + gamma * b.T)).T  # [S, p] minimisers of φ_s
    B, c, H, a, b, m = (t.to(device) for t in (B, c, H, a, b, m))

    def lower(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        r = y - B @ x - c
        return 0.5 * r @ (H @ r)

    def misfit(s: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * (y - a[s]).pow(2).sum() + 0.5 * gamma * (x - b[s]).pow(2).sum()

    e = [float(misfit(s, m[s], B @ m[s] + c)) for s in range(S)]

    def upper_s(s: int):
        def f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return misfit(s, x, y) - e[s]

        return f

    upper = [upper_s(s) for s in range(S)]

    def lower_batch(x: torch.Tensor, y: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        E, e = batch
        r = y - B @ x - c
        return 0.5 * r @ ((H + E) @ r) + e @ r

    def upper_batch_s(s: int):
        def f(x: torch.Tensor, y: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            ex, ey = batch
            return upper[s](x, y) + ex @ x + ey @ y

        return f

    def sample_lower(size: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        # The mean of `size` i.i.d. samples, drawn directly: variance shrinks as 1/size.
        scale = noise / size**0.5
        E = torch.randn(q, q, generator=g, dtype=dtype) * (0.2 * scale)
        return ((E + E.T) / 2).to(device), (torch.randn(q, generator=g, dtype=dtype) * scale).to(device)

    def sample_upper(s: int, size: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        scale = noise / size**0.5
        return (torch.randn(p, generator=g, dtype=dtype) * scale).to(device), (
            torch.randn(q, generator=g, dtype=dtype) * scale
        ).to(device)

    m_np = m.cpu().double().numpy()

    def pareto_set(n: int) -> np.ndarray:
        return simplex_grid(S, n) @ m_np

    def pareto_distance(x: torch.Tensor) -> float:
        diff = m_np - x.detach().cpu().double().numpy()[None, :]
        gram = diff @ diff.T
        w = min_norm_weights(gram)
        return float(np.sqrt(max(w @ gram @ w, 0.0)))

    def pareto_front(n: int) -> np.ndarray:
        xs = torch.as_tensor(pareto_set(n), dtype=dtype, device=device)
        return torch.stack([torch.stack([f(x, B @ x + c) for f in upper]) for x in xs]).cpu().double().numpy()

    vertices = torch.stack([torch.stack([f(m[j], B @ m[j] + c) for f in upper]) for j in range(S)])
    reference = (vertices.max(dim=0).values * 1.1).tolist()
    return Problem(
        upper=upper,
        lower=lower,
        x0=torch.zeros(p, dtype=dtype, device=device),
        y0=torch.zeros(q, dtype=dtype, device=device),
        strongly_convex=True,
        minibatches=Minibatches(upper=[upper_batch_s(s) for s in range(S)], lower=lower_batch,
                                sample_upper=sample_upper, sample_lower=sample_lower),
        reference_point=reference,
        pareto_set=pareto_set,
        pareto_distance=pareto_distance,
        pareto_front=pareto_front,
        data={"B": B.cpu().double().numpy(), "c": c.cpu().double().numpy(), "H": H.cpu().double().numpy(),
              "a": a.cpu().double().numpy(), "b": b.cpu().double().numpy(), "gamma": gamma, "m": m_np, "e": e},
    )


TASK = register(Task(
    name="toy-quadratic",
    summary="Strongly convex quadratic lower level; the Pareto set is the convex hull of S known points.",
    build=build,
    params={
        "S": Param(2, "number of objectives", low=2, high=5),
        "p": Param(4, "size of x (upper level)", low=1, high=200),
        "q": Param(6, "size of y (lower level)", low=1, high=200),
        "condition": Param(4.0, "condition number of the lower-level Hessian", low=1.0, high=1e4),
        "gamma": Param(0.5, "weight of the x-part of each objective", low=0.0, high=100.0),
        "noise": Param(0.5, "minibatch noise scale of the stochastic form", low=0.0, high=100.0),
        "seed": Param(0, "seed of the random geometry", low=0, high=2**31 - 1),
    },
))
