"""Independent references for solver tests: cvxpy projections and closed forms."""

import cvxpy as cp
import numpy as np
import pytest
import torch

EPS = 1e-6  # central differences: truncation ~EPS², rounding ~1e-16/EPS


def distance_to_hull(point: np.ndarray, vertices: np.ndarray) -> float:
    """Euclidean distance from `point` to the convex hull of the rows of `vertices` (cvxpy)."""
    w = cp.Variable(len(vertices), nonneg=True)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(vertices.T @ w - point)), [cp.sum(w) == 1])
    problem.solve(solver=cp.CLARABEL)
    return float(np.linalg.norm(vertices.T @ w.value - point))


def toy_quadratic_distance(problem, x, y) -> tuple[float, float]:
    """(distance of x to the analytic Pareto set conv{m_s}, ‖y − y*(x)‖) for toy-quadratic."""
    d = problem.data
    x = np.asarray(x, dtype=float)
    m = np.linalg.solve(d["B"].T @ d["B"] + d["gamma"] * np.eye(len(x)),
                        d["B"].T @ (d["a"] - d["c"]).T + d["gamma"] * d["b"].T).T
    return distance_to_hull(x, m), float(np.linalg.norm(np.asarray(y) - d["B"] @ x - d["c"]))


def grads(fun, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    xg, yg = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
    gx, gy = torch.autograd.grad(fun(xg, yg), (xg, yg), allow_unused=True)
    return (torch.zeros_like(x) if gx is None else gx), gy


def central_differences(fun, z: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(z)
    eye = torch.eye(z.numel(), dtype=z.dtype)
    with torch.no_grad():
        for i in range(z.numel()):
            out[i] = (fun(z + EPS * eye[i]) - fun(z - EPS * eye[i])) / (2 * EPS)
    return out


def solve_lower(problem: object, x: torch.Tensor) -> torch.Tensor:
    """y*(x) by L-BFGS, to a gradient norm far below what the comparisons need."""
    y = problem.y0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([y], max_iter=1000, tolerance_grad=1e-9, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = problem.lower(x, y)
        loss.backward()
        return loss

    opt.step(closure)
    return y.detach()


def first_and_last_objectives(result) -> tuple[np.ndarray, np.ndarray]:
    """F at the first and at the last recorded step of a run."""
    cols = [f"f{s + 1}" for s in range(len(result.objectives))]
    return result.history[cols].iloc[0].to_numpy(), result.history[cols].iloc[-1].to_numpy()


def check_sampled_gradients(problem, coords: int, rel_xy: float | None) -> None:
    """∇_x and sampled ∇_y coordinates of g and every f_s against central differences, plus 5
    random y-directions, at a random point near y0 (for problems too big for every coordinate).
    The f_s must not read x directly (their x-gradient is None); g must."""
    gen = torch.Generator().manual_seed(0)
    p, q = problem.dims
    x = torch.randn(p, generator=gen, dtype=torch.float64)
    y = problem.y0 + 0.3 * torch.randn(q, generator=gen, dtype=torch.float64)
    picked = torch.randperm(q, generator=gen)[:coords]
    directions = torch.randn(5, q, generator=gen, dtype=torch.float64)
    for k, fun in enumerate([problem.lower, *problem.upper]):
        xg, yg = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
        gx, gy = torch.autograd.grad(fun(xg, yg), (xg, yg), allow_unused=True)
        assert (gx is None) == (k > 0)
        gx = torch.zeros(p, dtype=torch.float64) if gx is None else gx
        with torch.no_grad():
            fd_x = torch.stack([(fun(x + EPS * e, y) - fun(x - EPS * e, y)) / (2 * EPS)
                                for e in torch.eye(p, dtype=torch.float64)])
            fd_y = torch.stack([(fun(x, y + EPS * e) - fun(x, y - EPS * e)) / (2 * EPS)
                                for e in torch.eye(q, dtype=torch.float64)[picked]])
            fd_d = torch.stack([(fun(x, y + EPS * d) - fun(x, y - EPS * d)) / (2 * EPS) for d in directions])
        assert gx.numpy() == pytest.approx(fd_x.numpy(), rel=rel_xy, abs=1e-8)
        assert gy[picked].numpy() == pytest.approx(fd_y.numpy(), rel=rel_xy, abs=1e-8)
        assert (directions @ gy).numpy() == pytest.approx(fd_d.numpy(), rel=1e-7, abs=1e-8)
