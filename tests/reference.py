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
            # A central difference rounds to about ε|f|/EPS: the floor of any tolerance (a function of
            # size 100 leaves ~2e-8 whatever its gradient).
            floor = max(1e-8, 4 * torch.finfo(torch.float64).eps * abs(float(fun(x, y))) / EPS)
        assert gx.numpy() == pytest.approx(fd_x.numpy(), rel=rel_xy, abs=floor)
        assert gy[picked].numpy() == pytest.approx(fd_y.numpy(), rel=rel_xy, abs=floor)
        assert (directions @ gy).numpy() == pytest.approx(fd_d.numpy(), rel=1e-7, abs=floor)


def random_llgc(S: int, p: int, q: int, flat: int, seed: int, scale: float = 1.0):
    """A random LLGC instance built here, not by a task: (Problem, exact WC optimum ρ*(λ) by cvxpy).

        g(x, y)   = ½ ‖A (y − C x − d)‖²,          A ∈ R^{(q−flat)×q}: `flat` directions of y are free,
                                                    the others with curvatures in [0.5, 2]
        f_s(x, y) = scale · ½ ‖M_s (z − z_s)‖²,     z = (x, y), M_s random, z_s random targets
    """
    import pareto_app as pa

    rng = np.random.default_rng(seed)
    # The lower level's non-flat curvatures lie in [0.5, 2] (as a trained model's would, after scaling).
    V = np.linalg.qr(rng.normal(size=(q, q)))[0][:, :q - flat]
    A = np.diag(rng.uniform(0.7, 1.4, q - flat)) @ V.T
    C, d = rng.normal(size=(q, p)) / np.sqrt(p), rng.normal(size=q)
    M = 0.3 * rng.normal(size=(S, p + q, p + q)) / np.sqrt(p + q) + np.eye(p + q)
    targets = rng.normal(size=(S, p + q))
    At, Ct, dt, Mt, Tt = (torch.tensor(a) for a in (A, C, d, M, targets))

    def lower(x, y):
        r = At @ (y - Ct @ x - dt)
        return 0.5 * r @ r

    def upper_s(s):
        return lambda x, y: scale * 0.5 * (Mt[s] @ (torch.cat([x, y]) - Tt[s])).pow(2).sum()

    problem = pa.Problem(upper=[upper_s(s) for s in range(S)], lower=lower, x0=torch.zeros(p, dtype=torch.float64),
                         y0=torch.zeros(q, dtype=torch.float64), strongly_convex=False, name="random-llgc")

    def wc_optimum(preference) -> float:
        z, rho = cp.Variable(p + q), cp.Variable()
        x, y = z[:p], z[p:]
        cons = [A.T @ A @ (y - C @ x - d) == 0]
        cons += [lam * scale * 0.5 * cp.sum_squares(M[s] @ (z - targets[s])) <= rho
                 for s, lam in enumerate(np.asarray(preference, dtype=float))]
        cp.Problem(cp.Minimize(rho), cons).solve(solver=cp.CLARABEL)
        return float(rho.value)

    return problem, wc_optimum
