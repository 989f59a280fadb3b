"""cvxpy versions of the weighting QPs: the references of the tests and the benchmark (slow)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .common import normalise, square, to_simplex, vector
from .forum import forum_inputs

if TYPE_CHECKING:
    import cvxpy as cp

def _psd_factor(Q: np.ndarray) -> np.ndarray:
    """L with Q ~= L L' (negative eigenvalues from rounding clipped), so cvxpy sees a
    sum of squares -- it rejects quad_form on a matrix it cannot prove PSD."""
    vals, vecs = np.linalg.eigh(0.5 * (Q + Q.T))
    return vecs * np.sqrt(np.clip(vals, 0.0, None))


# Tried in order. Clarabel at tight tolerances is the reference; on a few rank-deficient
# instances it stops with a numerical error on some machines' BLAS (seen in CI, not here), and
# then its default tolerances, then OSQP with its polishing step, still give the minimum to
# well inside the tests' tolerances. DAQP is left out: the library's own QP solver uses it.
_REFERENCE_SOLVERS: tuple[tuple[str, dict], ...] = (
    ("CLARABEL", {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10, "max_iter": 500}),
    ("CLARABEL", {}),
    ("OSQP", {"eps_abs": 1e-10, "eps_rel": 1e-10, "polish": True, "max_iter": 200_000}),
    ("SCS", {"eps": 1e-9, "max_iters": 200_000}),
)


def _solve_reference(problem: cp.Problem) -> None:
    import cvxpy as cp

    installed = set(cp.installed_solvers())
    failures = []
    for solver, options in _REFERENCE_SOLVERS:
        if solver not in installed:
            continue
        try:
            problem.solve(solver=solver, **options)
        except cp.error.SolverError as error:
            failures.append(f"{solver}{options or ''}: {error}")
            continue
        if problem.status in ("optimal", "optimal_inaccurate"):
            return
        failures.append(f"{solver}{options or ''}: status {problem.status}")
    if not failures:
        problem.solve()
        if problem.status in ("optimal", "optimal_inaccurate"):
            return
        failures.append(f"default solver: status {problem.status}")
    raise RuntimeError("cvxpy reference failed: " + "; ".join(failures))


def solve_simplex_qp_reference(Q: np.ndarray, c: np.ndarray) -> np.ndarray:
    """cvxpy reference for solve_simplex_qp (slow; for tests and benchmarks)."""
    import cvxpy as cp

    Q = square("Q", Q)
    c = vector("c", c, Q.shape[0])
    scaled = normalise(Q, c)  # same minimiser; keeps the solver's absolute tolerances meaningful
    if scaled is None:
        return np.full(c.size, 1.0 / c.size)
    Qs, cs = scaled
    w = cp.Variable(c.size)
    objective = 0.5 * cp.sum_squares(_psd_factor(Qs).T @ w) + cs @ w
    _solve_reference(cp.Problem(cp.Minimize(objective), [w >= 0, cp.sum(w) == 1]))
    return to_simplex(np.asarray(w.value, dtype=float))


def forum_weights_reference(G: np.ndarray, pi: np.ndarray,
                            phi_k: float) -> tuple[np.ndarray, float]:
    """cvxpy reference for forum_weights (slow; raises RuntimeError if unbounded)."""
    import cvxpy as cp

    G, pi, phi_k = forum_inputs(G, pi, phi_k)
    m = pi.size
    tau = max(float(np.abs(G).max()), abs(phi_k), 1e-300)  # same minimiser, O(1) objective
    x = cp.Variable(m + 1)  # (lam, gamma)
    lam, gamma = x[:m], x[m]
    objective = 0.5 * cp.sum_squares(_psd_factor(G / tau).T @ x) - gamma * (phi_k / tau)
    constraints = [lam >= 0, cp.sum(lam) == 1, gamma >= 0, gamma >= pi @ lam]
    _solve_reference(cp.Problem(cp.Minimize(objective), constraints))
    value = np.asarray(x.value, dtype=float)
    lam_value = to_simplex(value[:m])
    return lam_value, max(float(value[m]), 0.0, float(pi @ lam_value))
