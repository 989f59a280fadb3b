"""The per-iterate metrics (DESIGN.md, "Metrics") against dense references.

The references build J_h = [∇²_yx g, ∇²_yy g] as an explicit matrix (from the task's B and H,
or from torch's dense Hessian of a custom g), P_T = I − J_hᵀ pinv(J_h J_hᵀ) J_h, the full
gradients in closed form, and take the minimum over the simplex with cvxpy, certified by the
Frank-Wolfe duality gap so that the comparison does not rest on cvxpy's tolerances.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
import torch

import pareto_app as pa
from pareto_app.metrics import PointMetrics, kkt_multipliers, point_metrics
from pareto_app.oracles import Oracles

DT = torch.float64


def t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=float), dtype=DT)


# ----------------------------------------------------------------------------- references


def simplex_min_bounds(A: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Bounds (lower, upper) on min_{w ∈ Δ} ‖A w‖² and cvxpy's w, for A with one column per objective.

    upper = ‖A w‖² at a feasible w; lower = upper − (Frank-Wolfe gap), valid for any feasible w.
    """
    n = A.shape[1]
    w = cp.Variable(n, nonneg=True)
    cp.Problem(cp.Minimize(cp.sum_squares(A @ w)), [cp.sum(w) == 1]).solve(solver=cp.CLARABEL)
    wv = np.clip(np.asarray(w.value, dtype=float), 0.0, None)
    wv = wv / wv.sum()
    G = A.T @ A
    upper = float(wv @ G @ wv)
    grad = 2 * G @ wv
    gap = float(grad @ wv - grad.min())
    return max(upper - gap, 0.0), upper, wv


def dense_metrics(Jh: np.ndarray, grads: np.ndarray, values: np.ndarray, h: np.ndarray, preference: np.ndarray,
                  omega: np.ndarray) -> dict[str, float]:
    """Constraint violation, stationarity bounds and the KKT residual from dense matrices.

    grads: [S, p+q] full gradients of f_s in z = (x, y); Jh: [q, p+q].
    """
    P = np.eye(Jh.shape[1]) - Jh.T @ np.linalg.pinv(Jh @ Jh.T) @ Jh
    PG = P @ grads.T  # [p+q, S]
    lo, hi, _ = simplex_min_bounds(PG)
    lam, f = preference, values
    rho = float(np.max(lam * f))
    block = PG @ (omega * lam)
    kkt = (omega.sum() - 1) ** 2 + block @ block + h @ h + np.sum(np.minimum(omega, rho - lam * f) ** 2)
    return {"cv": float(np.linalg.norm(h)), "stat_lo": lo, "stat_hi": hi, "kkt": float(kkt)}


def omega_reference(weights: np.ndarray, preference: np.ndarray) -> np.ndarray:
    """ω_s ∝ weights_s / λ_s, 0 where λ_s = 0, normalised to sum 1 (written out by hand)."""
    raw = np.array([w / lam if lam > 0 else 0.0 for w, lam in zip(weights, preference)])
    return raw / raw.sum()


def quad_reference(problem: pa.Problem, x: np.ndarray, y: np.ndarray, preference, weights, multipliers=None,
                   hessian_key: str = "H"):
    d = problem.data
    B, c, H, a, b, gamma = (d[k] for k in ("B", "c", hessian_key, "a", "b", "gamma"))
    e = np.asarray(d.get("e", np.zeros(len(a))), dtype=float)  # toy-llgc has no offsets
    Jh = np.hstack([-H @ B, H])
    grads = np.hstack([gamma * (x - b), y - a])
    values = 0.5 * ((y - a) ** 2).sum(1) + 0.5 * gamma * ((x - b) ** 2).sum(1) - e
    h = H @ (y - B @ x - c)
    omega = omega_reference(weights, preference) if multipliers is None else np.asarray(multipliers, dtype=float)
    return dense_metrics(Jh, grads, values, h, np.asarray(preference, dtype=float), omega)


def check(m: PointMetrics, ref: dict, *, rtol: float = 1e-9, atol: float = 1e-12) -> None:
    assert m.constraint_violation == pytest.approx(ref["cv"], rel=1e-10, abs=1e-13)
    scale = max(ref["stat_hi"], 1.0)
    assert ref["stat_lo"] - rtol * scale - atol <= m.stationarity <= ref["stat_hi"] + rtol * scale + atol, (
        m.stationarity, ref["stat_lo"], ref["stat_hi"])
    assert m.kkt_residual == pytest.approx(ref["kkt"], rel=rtol, abs=atol)


def random_simplex(rng: np.random.Generator, S: int) -> np.ndarray:
    w = rng.exponential(size=S)
    return w / w.sum()


# -------------------------------------------------------------------------- kkt_multipliers


def test_kkt_multipliers_are_weights_over_preference_normalised():
    weights, preference = np.array([0.2, 0.5, 0.3]), np.array([0.5, 0.25, 0.25])
    raw = np.array([0.4, 2.0, 1.2])
    np.testing.assert_allclose(kkt_multipliers(weights, preference), raw / raw.sum(), rtol=1e-15)
    # ω_s λ_s is proportional to the weights.
    omega = kkt_multipliers(weights, preference)
    np.testing.assert_allclose(omega * preference / (omega * preference).sum(), weights, rtol=1e-14)


def test_kkt_multipliers_vanish_where_the_preference_does():
    omega = kkt_multipliers(np.array([0.3, 0.3, 0.4]), np.array([0.6, 0.0, 0.4]))
    np.testing.assert_allclose(omega, np.array([0.5, 0.0, 1.0]) / 1.5, rtol=1e-15)
    assert omega[1] == 0.0


def test_kkt_multipliers_never_divide_by_zero():
    omega = kkt_multipliers(np.array([0.0, 0.0]), np.array([0.5, 0.5]))
    assert np.all(np.isfinite(omega)) and omega.sum() == pytest.approx(1.0)


# ------------------------------------------------------------------------- toy-quadratic


@pytest.mark.parametrize("S,p,q,seed", [(2, 4, 6, 0), (3, 4, 6, 1), (3, 6, 3, 2), (2, 3, 8, 3)])
def test_point_metrics_at_random_points_match_dense_reference(S, p, q, seed):
    problem = pa.tasks.get("toy-quadratic", S=S, p=p, q=q, seed=seed)
    oracles = Oracles(problem)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        x, y = rng.normal(size=p), rng.normal(size=q)
        preference, weights = random_simplex(rng, S), random_simplex(rng, S)
        m = point_metrics(oracles, t(x), t(y), preference, weights)
        ref = quad_reference(problem, x, y, preference, weights)
        check(m, ref)
        assert m.stationarity > 1e-6  # generic points are not stationary: the test is not vacuous
        # Explicit multipliers replace ω.
        multipliers = rng.uniform(0.0, 1.0, size=S)
        m2 = point_metrics(oracles, t(x), t(y), preference, weights, multipliers=multipliers)
        check(m2, quad_reference(problem, x, y, preference, weights, multipliers))
        assert m2.stationarity == pytest.approx(m.stationarity, rel=1e-12, abs=1e-15)


def test_point_metrics_with_a_zero_preference_entry():
    problem = pa.tasks.get("toy-quadratic", S=3, p=4, q=5, seed=4)
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=4), rng.normal(size=5)
    preference, weights = np.array([0.7, 0.0, 0.3]), np.array([0.2, 0.5, 0.3])
    m = point_metrics(Oracles(problem), t(x), t(y), preference, weights)
    check(m, quad_reference(problem, x, y, preference, weights))


def test_point_metrics_with_an_ill_conditioned_lower_level():
    problem = pa.tasks.get("toy-quadratic", S=3, p=4, q=6, seed=5, condition=1e3)
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=4), rng.normal(size=6)
    preference, weights = random_simplex(rng, 3), random_simplex(rng, 3)
    check(point_metrics(Oracles(problem), t(x), t(y), preference, weights),
          quad_reference(problem, x, y, preference, weights), rtol=1e-7)


@pytest.mark.parametrize("S", [2, 3])
def test_metrics_vanish_on_the_pareto_set(S):
    problem = pa.tasks.get("toy-quadratic", S=S, p=4, q=6, seed=6)
    d = problem.data
    B, c, m_s = d["B"], d["c"], d["m"]
    oracles = Oracles(problem)
    rng = np.random.default_rng(S)
    combos = [random_simplex(rng, S) for _ in range(3)] + [np.eye(S)[0]]
    for w in combos:
        x = w @ m_s
        y = B @ x + c
        preference = random_simplex(rng, S)
        m = point_metrics(oracles, t(x), t(y), preference, w)
        assert m.constraint_violation <= 1e-12
        assert m.stationarity <= 1e-12
        check(m, quad_reference(problem, x, y, preference, w))


def test_kkt_residual_vanishes_at_the_weighted_chebyshev_point_of_its_preference():
    """At x = Σ w_s m_s, y = y*(x), with λ_s ∝ 1/f_s (all λ_s f_s equal) and weights w, every KKT block is 0."""
    problem = pa.tasks.get("toy-quadratic", S=3, p=4, q=6, seed=7)
    d = problem.data
    w = np.array([0.5, 0.3, 0.2])
    x = w @ d["m"]
    y = d["B"] @ x + d["c"]
    f = Oracles(problem).upper_values(t(x), t(y)).numpy()
    assert np.all(f > 1e-3)
    preference = (1 / f) / (1 / f).sum()
    m = point_metrics(Oracles(problem), t(x), t(y), preference, w)
    assert m.kkt_residual <= 1e-20
    # The wrong preference leaves the complementarity block min(ω_s, ρ − λ_s f_s) nonzero.
    other = np.array([0.6, 0.2, 0.2])
    m_other = point_metrics(Oracles(problem), t(x), t(y), other, w)
    ref = quad_reference(problem, x, y, other, w)
    assert m_other.kkt_residual == pytest.approx(ref["kkt"], rel=1e-10) and ref["kkt"] > 1e-4


def test_stationarity_is_the_mgda_norm_of_the_hypergradients_in_the_metric_of_the_tangent_space():
    """At y = y*(x): T = {(dx, B dx)}, so ‖P_T ∇F w‖² = (∇Φw)ᵀ(I + BᵀB)⁻¹(∇Φw), ∇φ_s = γ(x − b_s) + Bᵀ(Bx + c − a_s).

    Hence stationarity is zero exactly when the MGDA min-norm of the true hypergradients is, and the two are
    within the extreme eigenvalues of (I + BᵀB)⁻¹ of each other.
    """
    problem = pa.tasks.get("toy-quadratic", S=3, p=5, q=4, seed=8)
    d = problem.data
    B, c, a, b, gamma, m_s = (d[k] for k in ("B", "c", "a", "b", "gamma", "m"))
    p = B.shape[1]
    Minv = np.linalg.inv(np.eye(p) + B.T @ B)
    L = np.linalg.cholesky(Minv)
    eig = np.linalg.eigvalsh(Minv)
    oracles = Oracles(problem)
    rng = np.random.default_rng(9)
    on_set = [(w @ m_s, w) for w in (random_simplex(rng, 3), np.array([0.0, 0.4, 0.6]))]
    off_set = [(rng.normal(size=p) * 2, None) for _ in range(3)] + [(m_s.mean(0) + 0.3 * rng.normal(size=p), None)]
    for x, w in on_set + off_set:
        on = w is not None
        y = B @ x + c
        hyper = gamma * (x - b) + (B.T @ (y - a).T).T  # [S, p]
        mgda_lo, mgda_hi, _ = simplex_min_bounds(hyper.T)
        metric_lo, metric_hi, _ = simplex_min_bounds(L.T @ hyper.T)
        stat = point_metrics(oracles, t(x), t(y), np.ones(3) / 3, np.ones(3) / 3).stationarity
        assert metric_lo - 1e-10 * max(metric_hi, 1) - 1e-13 <= stat <= metric_hi + 1e-10 * max(metric_hi, 1) + 1e-13
        if on:  # the combination weights w certify a zero MGDA min-norm, with no solver tolerance involved
            assert stat <= 1e-12 and np.sum((hyper.T @ w) ** 2) <= 1e-24
        else:
            assert stat > 1e-4 and mgda_lo > 1e-4
            assert eig.min() * mgda_lo * (1 - 1e-9) <= stat <= eig.max() * mgda_hi * (1 + 1e-9)


# ----------------------------------------------------------------------------- toy-llgc


@pytest.mark.parametrize("S,q,flat,seed", [(2, 4, 1, 0), (3, 6, 2, 1), (2, 5, 4, 2)])
def test_point_metrics_with_a_singular_constraint_jacobian(S, q, flat, seed):
    problem = pa.tasks.get("toy-llgc", S=S, p=3, q=q, flat=flat, seed=seed)
    d = problem.data
    B, c, H0 = d["B"], d["c"], d["H0"]
    Jh = np.hstack([-H0 @ B, H0])
    assert np.linalg.matrix_rank(Jh @ Jh.T) == q - flat  # J_h J_hᵀ is singular: the case under test
    oracles = Oracles(problem)
    rng = np.random.default_rng(seed)
    for feasible in (False, True):
        x, y = rng.normal(size=3), rng.normal(size=q)
        if feasible:  # y = Bx + c + a flat direction: h = 0 though y ≠ Bx + c
            null = np.linalg.eigh(H0)[1][:, :flat]
            y = B @ x + c + null @ rng.normal(size=flat)
        preference, weights = random_simplex(rng, S), random_simplex(rng, S)
        m = point_metrics(oracles, t(x), t(y), preference, weights)
        ref = quad_reference(problem, x, y, preference, weights, hessian_key="H0")
        check(m, ref, rtol=1e-8)
        if feasible:
            assert m.constraint_violation <= 1e-12
        assert m.stationarity > 1e-6


def test_llgc_projection_keeps_flat_directions_and_removes_the_constraint_normals():
    """On toy-llgc's g, a gradient (0, u) with H0 u = 0 is tangent and a gradient J_hᵀ r is normal.

    f_1 = uᵀy + r_1ᵀH0(y − Bx), f_2 = 2uᵀy + r_2ᵀH0(y − Bx): P_T ∇f_s = (0, s·u), so stationarity = ‖u‖² = 1.
    """
    base = pa.tasks.get("toy-llgc", S=2, p=3, q=5, flat=2, seed=3)
    d = base.data
    B, H0 = t(d["B"]), t(d["H0"])
    u = t(np.linalg.eigh(d["H0"])[1][:, 0])
    rng = np.random.default_rng(0)
    r1, r2 = t(rng.normal(size=5)), t(rng.normal(size=5))
    upper = [lambda x, y: u @ y + r1 @ (H0 @ (y - B @ x)), lambda x, y: 2 * (u @ y) + r2 @ (H0 @ (y - B @ x))]
    problem = pa.Problem(upper=upper, lower=base.lower, x0=base.x0, y0=base.y0, strongly_convex=False)
    x, y = t(rng.normal(size=3)), t(rng.normal(size=5))
    m = point_metrics(Oracles(problem), x, y, np.array([0.5, 0.5]), np.array([0.5, 0.5]))
    assert m.stationarity == pytest.approx(1.0, rel=1e-9)
    # Only the normal parts: the tangent components vanish, and so does the stationarity.
    normal = [lambda x, y: r1 @ (H0 @ (y - B @ x)), lambda x, y: r2 @ (H0 @ (y - B @ x))]
    problem = pa.Problem(upper=normal, lower=base.lower, x0=base.x0, y0=base.y0, strongly_convex=False)
    m = point_metrics(Oracles(problem), x, y, np.array([0.5, 0.5]), np.array([1.0, 0.0]))
    assert m.stationarity <= 1e-18
    # Σ ω λ ∇f is normal too, so the KKT residual is (Σω−1)² + ‖h‖² + Σ min(ω, ρ − λf)² only.
    f = np.array([float(fn(x, y)) for fn in normal])
    h = (H0 @ (y - B @ x - t(d["c"]))).numpy()
    omega, lam = np.array([1.0, 0.0]), np.array([0.5, 0.5])
    expected = h @ h + np.sum(np.minimum(omega, np.max(lam * f) - lam * f) ** 2)
    assert m.kkt_residual == pytest.approx(expected, rel=1e-10)


# ------------------------------------------------------------------- non-quadratic problem


def test_point_metrics_on_a_non_quadratic_problem_match_dense_hessian_reference():
    p, q = 3, 4
    gen = torch.Generator().manual_seed(5)
    A = torch.randn(6, q, generator=gen, dtype=DT)
    C = torch.randn(6, p, generator=gen, dtype=DT)
    a = torch.randn(2, q, generator=gen, dtype=DT)

    def lower(x, y):
        return torch.nn.functional.softplus(A @ y + C @ x).sum() + 0.5 * (y @ y)

    upper = [lambda x, y: torch.log1p((y - a[0]) ** 2).sum() + torch.sin(x).sum(),
             lambda x, y: 0.5 * ((y - a[1]) ** 2).sum() + torch.cos(x[0] * y[1]) + 0.2 * (x @ x)]
    problem = pa.Problem(upper=upper, lower=lower, x0=torch.zeros(p, dtype=DT), y0=torch.zeros(q, dtype=DT))
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=p), rng.normal(size=q)

    def split(fn):
        return lambda z: fn(z[:p], z[p:])

    z = t(np.concatenate([x, y]))
    hess = torch.autograd.functional.hessian(split(lower), z).numpy()
    Jh = hess[p:, :]  # rows of ∇_y g differentiated in z = (x, y)
    grads = np.stack([torch.autograd.functional.jacobian(split(f), z).numpy() for f in upper])
    values = np.array([float(f(t(x), t(y))) for f in upper])
    h = torch.autograd.functional.jacobian(split(lower), z).numpy()[p:]
    preference, weights = np.array([0.3, 0.7]), np.array([0.6, 0.4])
    ref = dense_metrics(Jh, grads, values, h, preference, omega_reference(weights, preference))
    for mode in ("reverse", "forward"):
        check(point_metrics(Oracles(problem, second_order=mode), t(x), t(y), preference, weights), ref, rtol=1e-8)
