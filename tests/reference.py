"""Independent references for solver tests: cvxpy projections and closed forms."""

import cvxpy as cp
import numpy as np


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
