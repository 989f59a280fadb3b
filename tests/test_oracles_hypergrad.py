"""Oracles and hypergradient estimators against dense linear algebra and finite differences.

Every reference here is computed without the library: closed forms from the constants of
`toy-quadratic` with dense numpy matrices, central finite differences of function values or
of the gradient oracles, and torch.func applied directly to the problem's own functions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import grad

import pareto_app as pa
from pareto_app.estimators import ConjugateGradient, Neumann
from pareto_app.hypergrad import batched_cg, stochastic_neumann, unrolled_hypergradients
from pareto_app.oracles import Oracles

DT = torch.float64
MODES = ["reverse", "forward"]
EPS = 1e-6  # central differences: truncation ~EPS², rounding ~1e-16/EPS


def t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=float), dtype=DT)


def close(actual, expected, rtol: float, atol: float = 0.0) -> None:
    actual = actual.detach().cpu().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    expected = np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-300)
    err = float(np.abs(actual - expected).max(initial=0.0))
    assert err <= rtol * scale + atol, f"max error {err:.3e} vs scale {scale:.3e} (rtol {rtol:g}, atol {atol:g})"


# ------------------------------------------------------------------------------ problems


def quadratic(S: int = 3, p: int = 4, q: int = 6, seed: int = 0, **kw) -> pa.Problem:
    return pa.tasks.get("toy-quadratic", S=S, p=p, q=q, seed=seed, **kw)


def quad_consts(problem: pa.Problem):
    d = problem.data
    return d["B"], d["c"], d["H"], d["a"], d["b"], d["gamma"], np.asarray(d["e"], dtype=float)


def quad_grads(problem: pa.Problem, x: np.ndarray, y: np.ndarray):
    """Closed forms: F, ∇_x F, ∇_y F, ∇_x g, ∇_y g."""
    B, c, H, a, b, gamma, e = quad_consts(problem)
    F = 0.5 * ((y - a) ** 2).sum(1) + 0.5 * gamma * ((x - b) ** 2).sum(1) - e
    r = y - B @ x - c
    return F, gamma * (x - b), y - a, -B.T @ H @ r, H @ r


def true_hypergradients(problem: pa.Problem, x: np.ndarray) -> np.ndarray:
    """∇φ_s(x) = γ(x − b_s) + Bᵀ(Bx + c − a_s), rows s."""
    B, c, _, a, b, gamma, _ = quad_consts(problem)
    return gamma * (x - b) + (B.T @ ((B @ x + c) - a).T).T


def custom_problem(p: int = 3, q: int = 5, seed: int = 1) -> pa.Problem:
    """A non-quadratic problem: g(x, y) = Σ softplus(A y + C x) + ½‖y‖² + ¼ Σ y_i² x_0²."""
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(7, q, generator=gen, dtype=DT)
    C = torch.randn(7, p, generator=gen, dtype=DT)
    W = torch.randn(q, p, generator=gen, dtype=DT)
    a = torch.randn(q, generator=gen, dtype=DT)

    def lower(x, y):
        return torch.nn.functional.softplus(A @ y + C @ x).sum() + 0.5 * (y @ y) + 0.25 * (y @ y) * x[0] ** 2

    def f1(x, y):
        return torch.log1p((y - a) ** 2).sum() + torch.sin(x).sum() + 0.3 * (x @ x)

    def f2(x, y):
        return torch.cos(W @ x) @ y + 0.5 * ((y + 1) ** 2).sum()

    def f3(x, y):
        return torch.exp(-(y @ y) / q) * x.sum() + torch.tanh(x[0] * y[1])

    return pa.Problem(upper=[f1, f2, f3], lower=lower, x0=torch.zeros(p, dtype=DT), y0=torch.zeros(q, dtype=DT))


def fd_scalar_grad(fn, x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of a scalar function in x and in y."""
    def diff(shift_x: bool, i: int) -> float:
        base = x if shift_x else y
        e = torch.zeros_like(base)
        e[i] = EPS
        plus = fn(x + e, y) if shift_x else fn(x, y + e)
        minus = fn(x - e, y) if shift_x else fn(x, y - e)
        return float(plus - minus) / (2 * EPS)

    return (np.array([diff(True, i) for i in range(x.numel())]),
            np.array([diff(False, i) for i in range(y.numel())]))


def random_point(problem: pa.Problem, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    p, q = problem.dims
    return torch.randn(p, generator=gen, dtype=DT), torch.randn(q, generator=gen, dtype=DT)


# ------------------------------------------------------------------------ first order


def test_first_order_oracles_match_closed_forms_and_count():
    problem = quadratic(S=3)
    oracles = Oracles(problem)
    x, y = random_point(problem, 3)
    F, gxf, gyf, gxg, gyg = quad_grads(problem, x.numpy(), y.numpy())

    values, gx, gy = oracles.upper(x, y)
    close(values, F, 1e-13, 1e-13)
    close(gx, gxf, 1e-13)
    close(gy, gyf, 1e-13)
    assert oracles.counts.as_dict() == {"ul_grad": 3, "ll_grad": 0, "jvp": 0, "hvp": 0}

    close(oracles.lower_grad_y(x, y), gyg, 1e-13)
    lx, ly = oracles.lower_grad(x, y)
    close(lx, gxg, 1e-13)
    close(ly, gyg, 1e-13)
    close(oracles.upper_values(x, y), F, 1e-13, 1e-13)
    assert oracles.counts.as_dict() == {"ul_grad": 3, "ll_grad": 2, "jvp": 0, "hvp": 0}
    assert oracles.counts.total == 5
    # The inputs are not modified and the outputs carry no graph.
    assert not x.requires_grad and not gx.requires_grad and not ly.requires_grad


def test_first_order_oracles_match_finite_differences_on_a_non_quadratic_problem():
    problem = custom_problem()
    oracles = Oracles(problem)
    x, y = random_point(problem, 5)
    values, gx, gy = oracles.upper(x, y)
    for s, f in enumerate(problem.upper):
        assert float(values[s]) == pytest.approx(float(f(x, y)), rel=1e-14, abs=1e-14)
        fx, fy = fd_scalar_grad(f, x, y)
        close(gx[s], fx, 1e-7, 1e-9)
        close(gy[s], fy, 1e-7, 1e-9)
    lx, ly = oracles.lower_grad(x, y)
    fx, fy = fd_scalar_grad(problem.lower, x, y)
    close(lx, fx, 1e-7, 1e-9)
    close(ly, fy, 1e-7, 1e-9)
    close(oracles.lower_grad_y(x, y), fy, 1e-7, 1e-9)


def test_upper_gradient_of_an_unused_variable_is_zero():
    p, q = 3, 4
    a = torch.arange(q, dtype=DT)
    problem = pa.Problem(upper=[lambda x, y: ((y - a) ** 2).sum(), lambda x, y: (y ** 3).sum()],
                         lower=lambda x, y: 0.5 * ((y - x.sum()) ** 2).sum(),
                         x0=torch.zeros(p, dtype=DT), y0=torch.zeros(q, dtype=DT))
    x, y = random_point(problem, 0)
    _, gx, gy = Oracles(problem).upper(x, y)
    assert gx.shape == (2, p) and torch.count_nonzero(gx) == 0
    close(gy, np.stack([2 * (y - a).numpy(), 3 * y.numpy() ** 2]), 1e-14)


def test_minibatch_oracles_use_the_batch():
    """toy-quadratic's stochastic form: G = ½rᵀ(H + E)r + eᵀr, f_s + e_xᵀx + e_yᵀy, r = y − Bx − c."""
    problem = quadratic(S=2, p=4, q=6, seed=9, noise=1.0)
    B, c, H, *_ = quad_consts(problem)
    mb = problem.minibatches
    gen = torch.Generator().manual_seed(3)
    lower_batch = mb.sample_lower(2, gen)
    upper_batches = [mb.sample_upper(s, 2, gen) for s in range(2)]
    E, e = (v.numpy() for v in lower_batch)
    oracles = Oracles(problem)
    x, y = random_point(problem, 2)
    r = y.numpy() - B @ x.numpy() - c
    close(oracles.lower_grad_y(x, y, batch=lower_batch), (H + E) @ r + e, 1e-13)
    lx, _ = oracles.lower_grad(x, y, batch=lower_batch)
    close(lx, -B.T @ ((H + E) @ r + e), 1e-13)
    V = np.random.default_rng(0).normal(size=(2, 6))
    close(oracles.hvp(x, y, t(V), batch=lower_batch), V @ (H + E).T, 1e-13)
    close(oracles.jvp_xy(x, y, t(V), batch=lower_batch), V @ (-B.T @ (H + E)).T, 1e-13)
    _, gxf, gyf, _, _ = quad_grads(problem, x.numpy(), y.numpy())
    _, gx, gy = oracles.upper(x, y, batches=upper_batches)
    close(gx, gxf + np.stack([b[0].numpy() for b in upper_batches]), 1e-13)
    close(gy, gyf + np.stack([b[1].numpy() for b in upper_batches]), 1e-13)
    assert oracles.counts.as_dict() == {"ul_grad": 2, "ll_grad": 2, "jvp": 2, "hvp": 2}


# ----------------------------------------------------------------------- second order


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("batched", [False, True], ids=["single", "batched"])
def test_second_order_products_match_dense_matrices_on_toy_quadratic(mode, batched):
    problem = quadratic(S=2, p=4, q=6, seed=2)
    B, _, H, *_ = quad_consts(problem)
    oracles = Oracles(problem, second_order=mode)
    x, y = random_point(problem, 7)
    rng = np.random.default_rng(11)
    shape = (3,) if batched else ()
    V = rng.normal(size=shape + (6,))
    dx, dy = rng.normal(size=shape + (4,)), rng.normal(size=shape + (6,))
    n = 3 if batched else 1

    point = oracles.at(x, y)
    assert oracles.counts.total == 0  # building the point is not an oracle call
    close(point.hvp(t(V)), V @ H.T, 1e-13)
    assert (oracles.counts.hvp, oracles.counts.jvp) == (n, 0)
    close(point.jvp_xy(t(V)), V @ (-B.T @ H).T, 1e-13)  # ∇²_xy g = −BᵀH
    assert (oracles.counts.hvp, oracles.counts.jvp) == (n, n)
    jv, hv = point.jvp_and_hvp(t(V))
    close(jv, V @ (-B.T @ H).T, 1e-13)
    close(hv, V @ H.T, 1e-13)
    assert (oracles.counts.hvp, oracles.counts.jvp) == (2 * n, 2 * n)
    close(point.constraint_jvp(t(dx), t(dy)), dx @ (-H @ B).T + dy @ H.T, 1e-13)  # ∇²_yx g = −HB
    assert (oracles.counts.hvp, oracles.counts.jvp) == (3 * n, 3 * n)
    assert (oracles.counts.ul_grad, oracles.counts.ll_grad) == (0, 0)

    # The shortcut methods give the same products and count the same way.
    close(oracles.hvp(x, y, t(V)), V @ H.T, 1e-13)
    close(oracles.jvp_xy(x, y, t(V)), V @ (-B.T @ H).T, 1e-13)
    jv2, hv2 = oracles.jvp_and_hvp(x, y, t(V))
    close(jv2, V @ (-B.T @ H).T, 1e-13)
    close(hv2, V @ H.T, 1e-13)
    assert (oracles.counts.hvp, oracles.counts.jvp) == (5 * n, 5 * n)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("batched", [False, True], ids=["single", "batched"])
def test_second_order_products_match_finite_differences_of_gradients(mode, batched):
    problem = custom_problem()
    p, q = problem.dims
    oracles = Oracles(problem, second_order=mode)
    fd = Oracles(problem)  # a second instance for the references, so counts stay clean
    x, y = random_point(problem, 9)
    rng = np.random.default_rng(4)
    rows = 4 if batched else 1
    V = rng.normal(size=(rows, q))
    dx, dy = rng.normal(size=(rows, p)), rng.normal(size=(rows, q))

    def central(fn):
        return np.stack([(fn(+EPS, i) - fn(-EPS, i)).numpy() / (2 * EPS) for i in range(rows)])

    hv_ref = central(lambda e, i: fd.lower_grad_y(x, y + e * t(V[i])))
    jv_ref = central(lambda e, i: fd.lower_grad(x, y + e * t(V[i]))[0])  # ∂/∂y of ∇_x g along v
    cj_ref = central(lambda e, i: fd.lower_grad_y(x + e * t(dx[i]), y + e * t(dy[i])))

    def arg(a):
        return t(a) if batched else t(a[0])

    def shaped(a):
        return a if batched else a[0]

    point = oracles.at(x, y)
    close(point.hvp(arg(V)), shaped(hv_ref), 1e-6)
    close(point.jvp_xy(arg(V)), shaped(jv_ref), 1e-6)
    jv, hv = point.jvp_and_hvp(arg(V))
    close(jv, shaped(jv_ref), 1e-6)
    close(hv, shaped(hv_ref), 1e-6)
    close(point.constraint_jvp(arg(dx), arg(dy)), shaped(cj_ref), 1e-6)
    assert oracles.counts.as_dict() == {"ul_grad": 0, "ll_grad": 0, "jvp": 3 * rows, "hvp": 3 * rows}


def test_forward_and_reverse_second_order_agree_to_rounding():
    problem = custom_problem(p=4, q=6, seed=3)
    x, y = random_point(problem, 1)
    rng = np.random.default_rng(2)
    V, dx, dy = t(rng.normal(size=(5, 6))), t(rng.normal(size=(5, 4))), t(rng.normal(size=(5, 6)))
    rev, fwd = Oracles(problem).at(x, y), Oracles(problem, second_order="forward").at(x, y)
    for a, b in [(rev.hvp(V), fwd.hvp(V)), (rev.jvp_xy(V), fwd.jvp_xy(V)),
                 (rev.constraint_jvp(dx, dy), fwd.constraint_jvp(dx, dy)),
                 (rev.jvp_and_hvp(V[0])[0], fwd.jvp_and_hvp(V[0])[0])]:
        close(a, b.numpy(), 1e-12)
    # The Hessian is symmetric: ⟨u, ∇²_yy g v⟩ = ⟨v, ∇²_yy g u⟩ and ⟨dx, ∇²_xy g v⟩ = ⟨v, ∇²_yx g dx⟩.
    hv = rev.hvp(V)
    assert torch.allclose(V @ hv.T, hv @ V.T, rtol=1e-12, atol=1e-12)
    cross = (dx * rev.jvp_xy(V)).sum(1)
    mixed = (V * rev.constraint_jvp(dx, torch.zeros_like(dy))).sum(1)
    close(cross, mixed.numpy(), 1e-12)


def test_invalid_second_order_mode_is_refused():
    with pytest.raises(ValueError, match="second_order"):
        Oracles(quadratic(), second_order="backward")


def _x_free_lower_problem():
    p, q = 3, 4
    A = torch.randn(5, q, generator=torch.Generator().manual_seed(0), dtype=DT)
    return pa.Problem(upper=[lambda x, y: (y ** 2).sum() + (x ** 2).sum(), lambda x, y: y.sum() * x.sum()],
                      lower=lambda x, y: 0.5 * (y @ y) + torch.nn.functional.softplus(A @ y).sum(),
                      x0=torch.zeros(p, dtype=DT), y0=torch.zeros(q, dtype=DT))


def test_lower_level_without_x_forward_mode_gives_zero_cross_products():
    problem = _x_free_lower_problem()
    oracles = Oracles(problem, second_order="forward")
    x, y = random_point(problem, 0)
    V = torch.ones(2, 4, dtype=DT)
    close(oracles.at(x, y).jvp_xy(V), np.zeros((2, 3)), 0.0)
    close(oracles.lower_grad(x, y)[0], np.zeros(3), 0.0)


def test_lower_level_without_x_reverse_mode_gives_zero_cross_products():
    problem = _x_free_lower_problem()
    oracles = Oracles(problem)
    x, y = random_point(problem, 0)
    point = oracles.at(x, y)
    V = torch.ones(2, 4, dtype=DT)
    close(point.jvp_xy(V), np.zeros((2, 3)), 0.0)
    close(point.hvp(V), Oracles(problem, second_order="forward").at(x, y).hvp(V).numpy(), 1e-12)


# --------------------------------------------------------------------------- batched CG


def spd(n: int, cond: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return U @ np.diag(np.geomspace(1.0, cond, n)) @ U.T


def test_batched_cg_solves_each_row_exactly_in_n_steps():
    A = spd(8, 50.0, 0)
    Bm = np.random.default_rng(1).normal(size=(3, 8))
    calls = []

    def matvec(X):
        calls.append(X.shape[0])
        return X @ t(A)

    X = batched_cg(matvec, t(Bm), None, 8)
    close(X, np.linalg.solve(A, Bm.T).T, 1e-10)
    assert len(calls) <= 8 and set(calls) == {3}


def krylov_basis(A: np.ndarray, r0: np.ndarray, k: int) -> np.ndarray:
    """An orthonormal basis of span{r0, A r0, ..., A^{k-1} r0} (Arnoldi, twice-orthogonalised)."""
    Q = [r0 / np.linalg.norm(r0)]
    for _ in range(k - 1):
        w = A @ Q[-1]
        for _ in range(2):
            w = w - np.stack(Q, 1) @ (np.stack(Q, 1).T @ w)
        Q.append(w / np.linalg.norm(w))
    return np.stack(Q, 1)


def test_batched_cg_iterates_minimise_the_energy_over_the_krylov_space():
    """After k steps from X0, CG's iterate is argmin of ½xᵀAx − bᵀx over X0 + K_k(A, r0) (dense check)."""
    n, k = 10, 4
    A = spd(n, 100.0, 2)
    rng = np.random.default_rng(3)
    Bm, X0 = rng.normal(size=(2, n)), rng.normal(size=(2, n))
    X = batched_cg(lambda V: V @ t(A), t(Bm), t(X0), k).numpy()
    for i in range(2):
        r0 = Bm[i] - A @ X0[i]
        Q = krylov_basis(A, r0, k)
        z = np.linalg.solve(Q.T @ A @ Q, Q.T @ r0)
        close(X[i], X0[i] + Q @ z, 1e-8)
    # A few steps past n (finite precision delays CG's finite termination) reach the solution from the warm start too.
    close(batched_cg(lambda V: V @ t(A), t(Bm), t(X0), n + 3), np.linalg.solve(A, Bm.T).T, 1e-10)


def test_batched_cg_zero_rows_and_converged_rows_stay_finite():
    A = spd(5, 10.0, 4)
    Bm = np.zeros((3, 5))
    Bm[1] = np.random.default_rng(5).normal(size=5)
    X = batched_cg(lambda V: V @ t(A), t(Bm), None, 20)  # far more steps than needed
    assert torch.isfinite(X).all()
    close(X[0], np.zeros(5), 0.0)
    close(X[2], np.zeros(5), 0.0)
    close(X[1], np.linalg.solve(A, Bm[1]), 1e-11)
    # Starting from the exact solution, a step does not move it.
    exact = np.linalg.solve(A, Bm.T).T
    close(batched_cg(lambda V: V @ t(A), t(Bm), t(exact), 3), exact, 1e-12, 1e-14)


def test_batched_cg_on_indefinite_matrix_stays_finite():
    A = np.diag([1.0, 2.0, -1.0, 3.0])
    b = np.ones((1, 4))
    X = batched_cg(lambda V: V @ t(A), t(b), None, 10)
    assert torch.isfinite(X).all()


# -------------------------------------------------------------------------- hypergradients


def gd_trajectory_quadratic(problem: pa.Problem, x: np.ndarray, y0: np.ndarray, alpha: float, D: int):
    B, c, H, *_ = quad_consts(problem)
    ys = [y0]
    for _ in range(D):
        ys.append(ys[-1] - alpha * H @ (ys[-1] - B @ x - c))
    return ys


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("S,p,q", [(2, 4, 6), (3, 5, 3)])
def test_cg_from_the_lower_solution_gives_the_true_hypergradient(mode, S, p, q):
    problem = quadratic(S=S, p=p, q=q, seed=4)
    B, c, H, a, *_ = quad_consts(problem)
    oracles = Oracles(problem, second_order=mode)
    x = np.random.default_rng(6).normal(size=p)
    ystar = B @ x + c
    est = ConjugateGradient(alpha=1.0, D=0, N=q)(oracles, t(x), t(ystar), None)
    hyper, v = est.hyper, est.warm
    close(hyper, true_hypergradients(problem, x), 1e-9, 1e-12)
    close(v, np.linalg.solve(H, (ystar - a).T).T, 1e-9)  # v solves ∇²_yy g v = ∇_y f_s
    assert hyper.shape == (S, p)
    assert oracles.counts.jvp == S and oracles.counts.hvp <= q * S


def test_true_hypergradient_closed_form_matches_finite_differences_of_phi():
    """Guard on the reference itself: ∇φ_s from the formula vs differences of f_s(x, Bx + c)."""
    problem = quadratic(S=3, seed=5)
    B, c, *_ = quad_consts(problem)
    x = torch.as_tensor(np.random.default_rng(0).normal(size=4), dtype=DT)
    ref = true_hypergradients(problem, x.numpy())
    for s, f in enumerate(problem.upper):
        phi = lambda xx, _y, f=f: f(xx, t(B) @ xx + t(c))
        close(fd_scalar_grad(phi, x, torch.zeros(1, dtype=DT))[0], ref[s], 1e-8)


def test_cg_counts_and_warm_start():
    problem = quadratic(S=2, p=4, q=6, seed=1)
    B, c, H, a, *_ = quad_consts(problem)
    x = np.random.default_rng(8).normal(size=4)
    y = B @ x + c + 0.1
    oracles = Oracles(problem)
    _, gx, gy = oracles.upper(t(x), t(y))
    oracles.counts.ul_grad = 0
    v3 = ConjugateGradient(alpha=1.0, D=0, N=3)(oracles, t(x), t(y), None).warm
    assert oracles.counts.as_dict() == {"ul_grad": 2, "ll_grad": 0, "jvp": 2, "hvp": 3 * 2}
    # Warm-started from the exact v, zero steps: Eq. 3 with that v, i.e. gx − ∇²_xy g v = gx + BᵀH v.
    v_exact = np.linalg.solve(H, (y - a).T).T
    est = ConjugateGradient(alpha=1.0, D=0, N=0)(oracles, t(x), t(y), t(v_exact))
    hyper, v = est.hyper, est.warm
    close(v, v_exact, 0.0)
    close(hyper, gx.numpy() + v_exact @ (B.T @ H).T, 1e-12)
    # Warm-started from the N=3 iterate, 3 more steps get closer to v_exact than v3 was.
    v6 = ConjugateGradient(alpha=1.0, D=0, N=3)(oracles, t(x), t(y), v3).warm
    err3, err6 = np.abs(v3.numpy() - v_exact).max(), np.abs(v6.numpy() - v_exact).max()
    assert err6 < err3


def neumann_closed_form(problem: pa.Problem, x: np.ndarray, yD: np.ndarray, alpha: float, D: int) -> np.ndarray:
    """∇_x f − α Σ_{i<D} (−BᵀH)(I − αH)^i ∇_y f at y^D, with dense matrices."""
    B, _, H, *_ = quad_consts(problem)
    _, gxf, gyf, _, _ = quad_grads(problem, x, yD)
    M = np.eye(H.shape[0]) - alpha * H
    total = sum(np.linalg.matrix_power(M, i) for i in range(D))
    return gxf - alpha * (gyf @ total.T) @ (-B.T @ H).T


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("D", [1, 2, 5, 12])
def test_neumann_matches_dense_closed_form_and_unrolled_autograd_on_toy_quadratic(mode, D):
    problem = quadratic(S=3, p=4, q=6, seed=6)
    B, c, H, *_ = quad_consts(problem)
    alpha = 0.8 / np.linalg.eigvalsh(H).max()
    rng = np.random.default_rng(D)
    x, y0 = rng.normal(size=4), rng.normal(size=6)
    ys = gd_trajectory_quadratic(problem, x, y0, alpha, D)
    oracles = Oracles(problem, second_order=mode)
    est = Neumann(alpha=alpha, D=D)(oracles, t(x), t(y0), None)  # its own inner loop: ys[-1] to rounding
    hyper = est.hyper
    assert est.warm is None
    close(est.Y, ys[-1], 1e-13)
    ref = neumann_closed_form(problem, x, ys[-1], alpha, D)
    close(hyper, ref, 1e-11)
    # The same sum in closed form: γ(x − b) + Bᵀ(I − (I − αH)^D)(y^D − a), the chain rule through y^D(x).
    _, gxf, gyf, _, _ = quad_grads(problem, x, ys[-1])
    dyD_dx = (np.eye(6) - np.linalg.matrix_power(np.eye(6) - alpha * H, D)) @ B
    close(ref, gxf + gyf @ dyD_dx, 1e-11)
    assert oracles.counts.jvp == 3 * D and oracles.counts.hvp == 3 * (D - 1)

    unrolled = Oracles(problem)
    F, itd, yT = unrolled_hypergradients(unrolled, t(x), t(y0), eta=alpha, T=D)
    close(itd, ref, 1e-11)
    close(yT, ys[-1], 1e-13)
    close(F, quad_grads(problem, x, ys[-1])[0], 1e-13, 1e-13)
    assert unrolled.counts.as_dict() == {"ul_grad": 3, "ll_grad": D, "jvp": 3 * D, "hvp": 3 * (D - 1)}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("D", [1, 4, 9])
def test_neumann_equals_reverse_mode_through_the_inner_loop_on_a_non_quadratic_problem(mode, D):
    """Here ∇²g changes along the trajectory, so the order of the factors matters."""
    problem = custom_problem(p=3, q=5, seed=2)
    alpha = 0.3
    x, y0 = random_point(problem, 2)
    gy_fn = grad(problem.lower, argnums=1)
    ys = [y0]
    for _ in range(D):
        ys.append(ys[-1] - alpha * gy_fn(x, ys[-1]))
    oracles = Oracles(problem, second_order=mode)
    hyper = Neumann(alpha=alpha, D=D)(oracles, x, y0, None).hyper
    _, itd, yT = unrolled_hypergradients(Oracles(problem), x, y0, eta=alpha, T=D)
    close(yT, ys[-1].numpy(), 1e-13)
    close(hyper, itd.numpy(), 1e-10)

    # Independent of both: central differences of x ↦ f_s(x, y^D(x)) with the inner loop re-run.
    def yD(xx):
        y = y0
        for _ in range(D):
            y = y - alpha * gy_fn(xx, y)
        return y

    for s, f in enumerate(problem.upper):
        ref, _ = fd_scalar_grad(lambda xx, _y, f=f: f(xx, yD(xx)), x, torch.zeros(1, dtype=DT))
        close(hyper[s], ref, 1e-6, 1e-9)


def test_neumann_with_no_inner_steps_is_the_partial_gradient():
    problem = quadratic(S=2)
    oracles = Oracles(problem)
    x, y = random_point(problem, 0)
    _, gx, gy = oracles.upper(x, y)
    hyper = Neumann(alpha=0.1, D=0)(oracles, x, y, None).hyper
    close(hyper, gx.numpy(), 0.0)
    _, itd, _ = unrolled_hypergradients(Oracles(problem), x, y, eta=0.1, T=0)
    close(itd, gx.numpy(), 1e-14)


def test_long_unrolling_converges_to_the_true_hypergradient():
    problem = quadratic(S=2, p=4, q=6, seed=3)
    _, _, H, *_ = quad_consts(problem)
    alpha = 1.0 / np.linalg.eigvalsh(H).max()
    x, y0 = random_point(problem, 4)
    _, itd, yT = unrolled_hypergradients(Oracles(problem), x, y0, eta=alpha, T=150)  # contraction 0.75 here
    close(itd, true_hypergradients(problem, x.numpy()), 1e-9)


# ------------------------------------------------------------------- stochastic Neumann


def neumann_series(H: np.ndarray, v0: np.ndarray, eta: float, Q: int) -> np.ndarray:
    M = np.eye(H.shape[0]) - eta * H
    return eta * sum(np.linalg.matrix_power(M, i) @ v0 for i in range(Q + 1))


@pytest.mark.parametrize("Q", [0, 1, 6])
def test_stochastic_neumann_without_noise_is_the_truncated_series(Q):
    problem = quadratic(S=2, p=4, q=6, seed=7, noise=0.0)
    _, _, H, *_ = quad_consts(problem)
    eta = 0.5 / np.linalg.eigvalsh(H).max()
    x, y = random_point(problem, 1)
    v0 = np.random.default_rng(Q).normal(size=6)
    gen = torch.Generator().manual_seed(0)
    batches = [problem.minibatches.sample_lower(4, gen) for _ in range(Q)]
    oracles = Oracles(problem)
    v = stochastic_neumann(oracles, x, y, t(v0), eta, batches)
    close(v, neumann_series(H, v0, eta, Q), 1e-13)
    assert oracles.counts.hvp == Q and oracles.counts.jvp == 0
    # Batched right-hand sides go through row by row.
    V0 = np.random.default_rng(9).normal(size=(2, 6))
    close(stochastic_neumann(oracles, x, y, t(V0), eta, batches),
          np.stack([neumann_series(H, r, eta, Q) for r in V0]), 1e-13)


def test_stochastic_neumann_with_many_terms_approaches_the_inverse_hessian():
    problem = quadratic(S=2, p=4, q=6, seed=7, noise=0.0)
    _, _, H, *_ = quad_consts(problem)
    eta = 1.0 / np.linalg.eigvalsh(H).max()  # contraction 1 − 1/4
    x, y = random_point(problem, 1)
    v0 = np.arange(1.0, 7.0)
    gen = torch.Generator().manual_seed(0)
    batches = [problem.minibatches.sample_lower(1, gen) for _ in range(120)]
    close(stochastic_neumann(Oracles(problem), x, y, t(v0), eta, batches), np.linalg.solve(H, v0), 1e-12)


def test_stochastic_neumann_with_noise_follows_the_sampled_hessians():
    """Each factor uses its own batch: v = η Σ_i Π_{j≤i}(I − η(H + E_j)) v0, checked with dense matrices."""
    problem = quadratic(S=2, p=4, q=6, seed=7, noise=2.0)
    _, _, H, *_ = quad_consts(problem)
    eta = 0.5 / np.linalg.eigvalsh(H).max()
    x, y = random_point(problem, 3)
    v0 = np.random.default_rng(1).normal(size=6)
    gen = torch.Generator().manual_seed(1)
    batches = [problem.minibatches.sample_lower(1, gen) for _ in range(5)]
    nu, acc = v0.copy(), v0.copy()
    for E, _ in batches:
        nu = nu - eta * (H + E.numpy()) @ nu
        acc = acc + nu
    v = stochastic_neumann(Oracles(problem), x, y, t(v0), eta, batches)
    close(v, eta * acc, 1e-13)
    assert np.abs(v.numpy() - neumann_series(H, v0, eta, 5)).max() > 1e-6  # the noise did act


def test_stochastic_neumann_is_unbiased_for_the_truncated_series():
    """With independent zero-mean batches, E[v] = η Σ_{i≤Q}(I − ηH)^i v0; a Monte Carlo check at 5 standard errors."""
    problem = quadratic(S=2, p=3, q=4, seed=8, noise=1.0)
    _, _, H, *_ = quad_consts(problem)
    eta, Q, runs = 0.4 / np.linalg.eigvalsh(H).max(), 4, 300
    x, y = random_point(problem, 0)
    v0 = np.array([1.0, -2.0, 0.5, 1.5])
    gen = torch.Generator().manual_seed(2)
    oracles = Oracles(problem)
    samples = np.stack([
        stochastic_neumann(oracles, x, y, t(v0), eta, [problem.minibatches.sample_lower(1, gen) for _ in range(Q)]).numpy()
        for _ in range(runs)])
    mean, se = samples.mean(0), samples.std(0, ddof=1) / np.sqrt(runs)
    expected = neumann_series(H, v0, eta, Q)
    assert (se > 0).all()
    assert np.all(np.abs(mean - expected) <= 5 * se + 1e-12), (mean, expected, se)
    assert oracles.counts.hvp == Q * runs
