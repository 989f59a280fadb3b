"""Property tests of the fast QP solvers against cvxpy and against closed forms.

Objective values are compared on each instance scaled to max |Q|, |c| = 1: the minimiser
does not change, and cvxpy's tolerances are absolute, so an unscaled 1e16-sized instance
could not be compared at all.  Minimisers are not unique when Q is singular, so the tests
compare objective values and the one quantity that is unique, the direction A w (for
Q = A'A), never w itself.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import numpy as np
import pytest

from pareto_app import qp

OBJ_TOL = 1e-6  # relative to max(1, |f|) on the scaled instance
FEAS_TOL = 1e-12
CERT_TOL = 1e-9  # Frank-Wolfe gap: a cvxpy-free bound on suboptimality
SIZES = range(2, 11)
PER_SIZE = 50
FAMILIES = ("full", "rank", "duplicate", "zero", "scaled")
U_VALUES = (0.0, 1e-3, 1.0, 1e3)  # weight of the linear term relative to the quadratic


@pytest.fixture(params=["daqp", "active_set"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test through the certified DAQP path and through the active-set method alone."""
    if request.param == "active_set":
        monkeypatch.setattr(qp.dual, "daqp", None)
    else:
        assert qp.dual.daqp is not None
    return request.param


# ----------------------------------------------------------------------------- helpers


def _gradients(rng: np.random.Generator, size: int, family: str) -> np.ndarray:
    """Columns are the gradients g_1..g_S; Q = A'A is their Gram matrix."""
    if family == "full":
        return rng.standard_normal((size + 3, size))
    if family == "rank":  # fewer gradients' worth of dimensions than gradients
        return rng.standard_normal((int(rng.integers(1, size)), size))
    A = rng.standard_normal((size, size))
    if family == "duplicate":
        A[:, 1] = A[:, 0]
        A[:, -1] = 2.5 * A[:, 0]  # collinear as well as identical
    elif family == "zero":
        A[:, rng.integers(size)] = 0.0
    elif family == "scaled":  # gradient norms 1e-4..1e4: Gram entries 1e-8..1e8
        A *= 10.0 ** rng.uniform(-4.0, 4.0, size)
    return A


def _linear(rng: np.random.Generator, Q: np.ndarray, u: float) -> np.ndarray:
    """A WC-style term -u (r * phi), with u relative to the size of Q."""
    r, phi = rng.uniform(0.1, 1.0, Q.shape[0]), rng.standard_normal(Q.shape[0])
    return -u * float(np.abs(Q).max()) * r * phi


def _scaled(Q: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    tau = max(float(np.abs(Q).max()), float(np.abs(c).max()))
    return Q / tau, c / tau, tau


def _objective(Q: np.ndarray, c: np.ndarray, w: np.ndarray) -> float:
    return float(0.5 * w @ Q @ w + c @ w)


def _fw_gap(Q: np.ndarray, c: np.ndarray, w: np.ndarray) -> float:
    """g'w - min_j g_j >= f(w) - min f over the simplex, for convex f."""
    g = Q @ w + c
    return float(g @ w - g.min())


def _project(w: np.ndarray) -> np.ndarray:
    """cvxpy's answer may sit a rounding error outside the simplex."""
    w = np.maximum(w, 0.0)
    return w / w.sum()


def _reference(solve: Callable, *args: object):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cvxpy's "solution may be inaccurate" notes
        return solve(*args)


def _assert_simplex(w: np.ndarray, size: int) -> None:
    assert w.shape == (size,)
    assert w.min() >= -FEAS_TOL
    assert abs(w.sum() - 1.0) <= FEAS_TOL


@functools.cache
def _simplex_cases(size: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(A, Q, c, cvxpy's w) per instance; cached so both backends share the slow part."""
    rng = np.random.default_rng(1000 + size)
    cases = []
    for i in range(PER_SIZE):
        A = _gradients(rng, size, FAMILIES[i % len(FAMILIES)])
        Q = A.T @ A
        c = _linear(rng, Q, U_VALUES[(i // len(FAMILIES)) % len(U_VALUES)])
        cases.append((A, Q, c, _reference(qp.solve_simplex_qp_reference, Q, c)))
    return cases


# ------------------------------------------------------------------------- simplex QP


@pytest.mark.parametrize("size", SIZES)
def test_simplex_qp_matches_cvxpy(size: int, backend: str) -> None:
    for A, Q, c, w_ref in _simplex_cases(size):
        w = qp.solve_simplex_qp(Q, c)
        _assert_simplex(w, size)
        Qs, cs, tau = _scaled(Q, c)
        f, f_ref = _objective(Qs, cs, w), _objective(Qs, cs, w_ref)
        assert abs(f - f_ref) <= OBJ_TOL * max(1.0, abs(f_ref))
        gap, gap_ref = _fw_gap(Qs, cs, w), _fw_gap(Qs, cs, _project(w_ref))
        assert gap <= CERT_TOL
        # f(w) - f* >= |A(w - w*)|^2 / 2 (scaled), so the directions A w are within
        # sqrt(2 gap) + sqrt(2 gap_ref) of the unique optimal one, hence of each other.
        bound = np.sqrt(2 * max(gap, 0.0)) + np.sqrt(2 * max(gap_ref, 0.0)) + 1e-9
        assert np.linalg.norm(A @ (w - w_ref)) / np.sqrt(tau) <= bound


@pytest.mark.parametrize("seed", range(5))
def test_two_gradients_closed_form(seed: int) -> None:
    # min_t |t g1 + (1 - t) g2|^2 on [0, 1]: t* = clip(<g2, g2 - g1> / |g1 - g2|^2, 0, 1).
    rng = np.random.default_rng(seed)
    g1, g2 = rng.standard_normal(4), rng.standard_normal(4) * 3.0
    t = np.clip(g2 @ (g2 - g1) / ((g1 - g2) @ (g1 - g2)), 0.0, 1.0)
    G = np.array([[g1 @ g1, g1 @ g2], [g1 @ g2, g2 @ g2]])
    np.testing.assert_allclose(qp.min_norm_weights(G), [t, 1.0 - t], atol=1e-12)


@pytest.mark.parametrize(("g2_over_g1", "expected"), [
    (2.0, [1.0, 0.0]),  # collinear, same side: the shorter gradient is the min-norm point
    (-3.0, [0.75, 0.25]),  # opposite: 0.75 g1 - 0.25 * 3 g1 = 0
    (1.0, None),  # identical: every weighting is optimal
])
def test_two_collinear_gradients(g2_over_g1: float, expected: list[float] | None) -> None:
    g1 = np.array([1.0, -2.0, 0.5])
    g2 = g2_over_g1 * g1
    G = np.array([[g1 @ g1, g1 @ g2], [g1 @ g2, g2 @ g2]])
    w = qp.min_norm_weights(G)
    _assert_simplex(w, 2)
    if expected is not None:
        np.testing.assert_allclose(w, expected, atol=1e-12)
    assert np.linalg.norm(w[0] * g1 + w[1] * g2) ** 2 == pytest.approx(
        min(np.linalg.norm(t * g1 + (1 - t) * g2) ** 2 for t in np.linspace(0, 1, 1001)), abs=1e-12)


def test_orthogonal_unit_gradients_give_equal_weights(backend: str) -> None:
    np.testing.assert_allclose(qp.min_norm_weights(np.eye(4)), np.full(4, 0.25), atol=1e-12)


@pytest.mark.parametrize("size", [3, 5, 8])
def test_known_vertices(size: int, backend: str) -> None:
    rng = np.random.default_rng(size)
    # A zero gradient is the min-norm point when it is the only one.
    A = rng.standard_normal((size, size))
    A[:, 1] = 0.0
    np.testing.assert_allclose(qp.min_norm_weights(A.T @ A), np.eye(size)[1], atol=1e-12)
    # g_j with <g_j, g_i> >= |g_j|^2 for all i: the gradient Qw at w = e_j is smallest at j.
    A = np.zeros((size + 1, size))
    A[0] = 1.0
    A[1:, :] = rng.standard_normal((size, size))
    A[1:, 2] = 0.0  # g_2 = e_0, every other g_i = e_0 + something orthogonal to it
    np.testing.assert_allclose(qp.min_norm_weights(A.T @ A), np.eye(size)[2], atol=1e-12)
    # A linear term that dwarfs the quadratic one picks its smallest entry.
    c = np.full(size, 1e6)
    c[size - 1] = -1e6
    np.testing.assert_allclose(qp.solve_simplex_qp(np.eye(size), c), np.eye(size)[-1], atol=1e-12)


def test_certificate_without_cvxpy_on_many_instances(backend: str) -> None:
    # Many more (and more degenerate) instances than cvxpy could check in time.
    rng = np.random.default_rng(7)
    for _ in range(600):
        size = int(rng.integers(3, 21))
        A = _gradients(rng, size, FAMILIES[int(rng.integers(len(FAMILIES)))])
        if rng.random() < 0.3:  # small integers: exact ties and exactly singular faces
            A = np.round(A).clip(-2, 2)
        Q = A.T @ A
        c = _linear(rng, Q, float(rng.choice(U_VALUES)))
        w = qp.solve_simplex_qp(Q, c)
        _assert_simplex(w, size)
        if np.abs(Q).max() + np.abs(c).max() > 0:
            Qs, cs, _ = _scaled(Q, c)
            assert _fw_gap(Qs, cs, w) <= CERT_TOL


@pytest.mark.parametrize("size", [2, 3, 6])
def test_wc_weights_matches_cvxpy(size: int, backend: str) -> None:
    rng = np.random.default_rng(50 + size)
    for i in range(12):
        A = _gradients(rng, size, FAMILIES[i % len(FAMILIES)])
        G = A.T @ A
        r, phi = rng.uniform(0.05, 1.0, size), rng.standard_normal(size)
        u = float(U_VALUES[i % len(U_VALUES)] * np.abs(G).max())
        lam = qp.wc_weights(G, r, phi, u)
        _assert_simplex(lam, size)
        Q, c = 2.0 * np.outer(r, r) * G, -u * r * phi
        lam_ref = _reference(qp.solve_simplex_qp_reference, Q, c)
        Qs, cs, tau = _scaled(Q, c)
        f, f_ref = _objective(Qs, cs, lam), _objective(Qs, cs, lam_ref)
        assert abs(f - f_ref) <= OBJ_TOL * max(1.0, abs(f_ref))
        # The unique quantity: the norm of the combined gradient GradPhi (r * lam).
        norm, norm_ref = (np.linalg.norm(A @ (r * x)) / np.sqrt(tau) for x in (lam, lam_ref))
        assert abs(norm - norm_ref) <= 1e-4


def test_min_norm_and_wc_agree_with_solve_simplex_qp() -> None:
    rng = np.random.default_rng(3)
    A = rng.standard_normal((2, 5))
    G, r, phi = A.T @ A, rng.uniform(0.1, 1.0, 5), rng.standard_normal(5)
    Q, c = 2.0 * np.outer(r, r) * G, -0.7 * r * phi
    for w, (QQ, cc) in ((qp.min_norm_weights(G), (G, np.zeros(5))),
                        (qp.wc_weights(G, r, phi, 0.7), (Q, c))):
        w_direct = qp.solve_simplex_qp(QQ, cc)
        assert _objective(QQ, cc, w) == pytest.approx(_objective(QQ, cc, w_direct), abs=1e-12)


# ----------------------------------------------------------------------------- FORUM


def _forum_instance(rng: np.random.Generator, m: int, kind: str) -> tuple[np.ndarray, np.ndarray, float]:
    n = m + 1
    if kind == "full":
        A = rng.standard_normal((n + 2, n))
    elif kind == "rank":
        A = rng.standard_normal((int(rng.integers(1, n)), n))
    elif kind == "q_collinear":  # grad q parallel to grad F_1
        A = rng.standard_normal((n, n))
        A[:, m] = rng.uniform(-2.0, 2.0) * A[:, 0]
    elif kind == "scaled":
        A = rng.standard_normal((n, n)) * 10.0 ** rng.uniform(-3.0, 3.0, n)
    else:  # "solver": phi_k and pi as FORUM's step computes them (rho = 1), Eq. (10)
        A = rng.standard_normal((n + 1, n))
        A[:, m] *= 10.0 ** rng.uniform(-3.0, 0.0)
        G = A.T @ A
        phi_k = 0.5 * G[m, m]
        return G, (2.0 * phi_k - G[m, :m]) / G[m, m], phi_k
    G = A.T @ A
    pi = rng.standard_normal(m) * rng.choice([0.1, 1.0, 10.0])
    pi[rng.integers(m)] *= float(rng.random() < 0.3)  # sometimes an exact zero
    phi_k = float(rng.choice([0.0, 1e-3, 1.0, 10.0]) * rng.choice([1.0, -1.0]) * G[m, m])
    return G, pi, phi_k


def _forum_objective(G: np.ndarray, phi_k: float, lam: np.ndarray, gamma: float) -> float:
    x = np.concatenate((lam, [gamma]))
    return float(0.5 * x @ G @ x - gamma * phi_k)


def _assert_forum_feasible(lam: np.ndarray, gamma: float, pi: np.ndarray) -> None:
    _assert_simplex(lam, pi.size)
    assert gamma >= 0.0
    assert gamma >= pi @ lam - FEAS_TOL * max(1.0, abs(pi @ lam))


FORUM_KINDS = ("full", "rank", "q_collinear", "scaled", "solver")


@functools.cache
def _forum_cases(m: int) -> list[tuple[np.ndarray, np.ndarray, float, np.ndarray, float]]:
    rng = np.random.default_rng(2000 + m)
    cases = []
    for i in range(30):
        G, pi, phi_k = _forum_instance(rng, m, FORUM_KINDS[i % len(FORUM_KINDS)])
        cases.append((G, pi, phi_k, *_reference(qp.forum_weights_reference, G, pi, phi_k)))
    return cases


@pytest.mark.parametrize("m", range(2, 9))
def test_forum_matches_cvxpy(m: int, backend: str) -> None:
    for G, pi, phi_k, lam_ref, gamma_ref in _forum_cases(m):
        lam, gamma = qp.forum_weights(G, pi, phi_k)
        _assert_forum_feasible(lam, gamma, pi)
        tau = max(float(np.abs(G).max()), abs(phi_k))
        f = _forum_objective(G, phi_k, lam, gamma) / tau
        f_ref = _forum_objective(G, phi_k, lam_ref, gamma_ref) / tau
        assert f <= f_ref + OBJ_TOL * max(1.0, abs(f_ref))
        assert f_ref <= f + OBJ_TOL * max(1.0, abs(f))
        # The unique quantity: the direction sum lam_i grad F_i + gamma grad q, through G.
        diff = np.concatenate((lam - lam_ref, [gamma - gamma_ref]))
        assert np.sqrt(max(diff @ G @ diff, 0.0) / tau) <= 1e-4 * max(1.0, np.sqrt(abs(f_ref)))


def test_forum_single_objective_closed_form() -> None:
    # m = 1: lam = 1 and gamma* = max(0, pi, (phi_k - <g, q>) / |q|^2).
    g, q = np.array([1.0, 2.0]), np.array([-1.0, 0.5])
    G = np.array([[g @ g, g @ q], [g @ q, q @ q]])
    for pi, phi_k in ((0.3, 2.0), (5.0, 2.0), (-1.0, -3.0)):
        lam, gamma = qp.forum_weights(G, np.array([pi]), phi_k)
        np.testing.assert_allclose(lam, [1.0])
        assert gamma == pytest.approx(max(0.0, pi, (phi_k - g @ q) / (q @ q)), abs=1e-12)


def test_the_cvxpy_references_fall_back_when_clarabel_fails(monkeypatch) -> None:
    # CI's Clarabel stopped with a numerical error on one rank-deficient FORUM instance; the
    # references then take the next solver and still give the exact solvers' minimum.
    import cvxpy as cp

    solve, tried = cp.Problem.solve, []

    def clarabel_fails(problem, *args, solver=None, **options):
        tried.append(solver)
        if solver == "CLARABEL":
            raise cp.error.SolverError("Solver 'CLARABEL' failed.")
        return solve(problem, *args, solver=solver, **options)

    monkeypatch.setattr(cp.Problem, "solve", clarabel_fails)
    rng = np.random.default_rng(3)
    A = rng.standard_normal((5, 4))
    Q, c = A.T @ A, rng.standard_normal(4)
    w = _reference(qp.solve_simplex_qp_reference, Q, c)
    exact = qp.solve_simplex_qp(Q, c)
    assert 0.5 * w @ Q @ w + c @ w == pytest.approx(0.5 * exact @ Q @ exact + c @ exact, abs=1e-6)
    G, pi = Q, np.array([0.3, -0.2, 0.1])
    lam_ref, gamma_ref = _reference(qp.forum_weights_reference, G, pi, 0.5 * G[3, 3])
    lam, gamma = qp.forum_weights(G, pi, 0.5 * G[3, 3])
    assert _forum_objective(G, 0.5 * G[3, 3], lam_ref, gamma_ref) == pytest.approx(
        _forum_objective(G, 0.5 * G[3, 3], lam, gamma), abs=1e-6)
    assert tried[:3] == ["CLARABEL", "CLARABEL", "OSQP"]

    monkeypatch.setattr(cp.Problem, "solve", lambda problem, *a, **k: (_ for _ in ()).throw(
        cp.error.SolverError("no solver")))
    with pytest.raises(RuntimeError, match="cvxpy reference failed: CLARABEL"):
        qp.solve_simplex_qp_reference(Q, c)


def test_forum_zero_constraint_gradient(backend: str) -> None:
    rng = np.random.default_rng(11)
    A = rng.standard_normal((3, 4))
    A[:, 3] = 0.0  # grad q = 0
    G, pi = A.T @ A, np.array([0.5, -1.0, 0.2])
    # phi_k <= 0: bounded, gamma at its smallest feasible value.
    lam, gamma = qp.forum_weights(G, pi, -1.0)
    lam_ref, gamma_ref = _reference(qp.forum_weights_reference, G, pi, -1.0)
    _assert_forum_feasible(lam, gamma, pi)
    assert _forum_objective(G, -1.0, lam, gamma) == pytest.approx(
        _forum_objective(G, -1.0, lam_ref, gamma_ref), abs=1e-6)
    # phi_k > 0: unbounded below in gamma, which no longer moves the direction; the
    # answer is the min-norm weighting of the objectives and the smallest feasible gamma.
    lam, gamma = qp.forum_weights(G, pi, 1.0)
    np.testing.assert_allclose(lam, qp.min_norm_weights(G[:3, :3]), atol=1e-12)
    assert gamma == max(0.0, float(pi @ lam))


# ------------------------------------------------------------------------ robustness


def test_degenerate_sizes_and_scales() -> None:
    np.testing.assert_array_equal(qp.solve_simplex_qp(np.array([[2.0]]), np.array([1.0])), [1.0])
    np.testing.assert_allclose(qp.solve_simplex_qp(np.zeros((3, 3)), np.zeros(3)), np.full(3, 1 / 3))
    for scale in (1e-300, 5e-324, 1e150, 1e300):  # finite input never raises
        w = qp.solve_simplex_qp(np.full((4, 4), scale) + scale * np.eye(4), np.zeros(4))
        np.testing.assert_allclose(w, np.full(4, 0.25), atol=1e-9)
    # Slightly asymmetric and slightly indefinite (rounding) input is accepted.
    Q = np.array([[1.0, 1.0 + 1e-15, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1e-17]])
    _assert_simplex(qp.solve_simplex_qp(Q - 1e-16 * np.eye(3), np.zeros(3)), 3)


def test_inputs_are_not_modified() -> None:
    rng = np.random.default_rng(5)
    A = rng.standard_normal((2, 4))
    Q, c = A.T @ A, rng.standard_normal(4)
    Q0, c0 = Q.copy(), c.copy()
    qp.solve_simplex_qp(Q, c)
    qp.forum_weights(Q, c[:3], 0.5)
    np.testing.assert_array_equal(Q, Q0)
    np.testing.assert_array_equal(c, c0)


NAN, INF = float("nan"), float("inf")
EYE3, ONES3 = np.eye(3), np.ones(3)


@pytest.mark.parametrize(("call", "name"), [
    (lambda: qp.solve_simplex_qp(np.where(EYE3 > 0, NAN, 0.0), ONES3), "Q"),
    (lambda: qp.solve_simplex_qp(EYE3, np.array([0.0, INF, 0.0])), "c"),
    (lambda: qp.solve_simplex_qp_reference(EYE3, np.array([0.0, -INF, 0.0])), "c"),
    (lambda: qp.min_norm_weights(np.full((2, 2), INF)), "G"),
    (lambda: qp.wc_weights(np.full((3, 3), NAN), ONES3, ONES3, 1.0), "G"),
    (lambda: qp.wc_weights(EYE3, np.array([1.0, NAN, 1.0]), ONES3, 1.0), "r"),
    (lambda: qp.wc_weights(EYE3, ONES3, np.array([INF, 0.0, 0.0]), 1.0), "phi"),
    (lambda: qp.wc_weights(EYE3, ONES3, ONES3, NAN), "u"),
    (lambda: qp.forum_weights(np.full((3, 3), NAN), ONES3[:2], 0.0), "G"),
    (lambda: qp.forum_weights(EYE3, np.array([NAN, 0.0]), 0.0), "pi"),
    (lambda: qp.forum_weights(EYE3, ONES3[:2], INF), "phi_k"),
    (lambda: qp.forum_weights_reference(EYE3, ONES3[:2], NAN), "phi_k"),
])
def test_non_finite_input_raises_naming_the_argument(call: Callable[[], object], name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name} "):
        call()


@pytest.mark.parametrize("call", [
    lambda: qp.solve_simplex_qp(np.ones((2, 3)), np.ones(2)),
    lambda: qp.solve_simplex_qp(EYE3, np.ones(2)),
    lambda: qp.solve_simplex_qp(np.zeros((0, 0)), np.zeros(0)),
    lambda: qp.forum_weights(np.eye(1), np.zeros(0), 0.0),
    lambda: qp.wc_weights(EYE3, ONES3[:2], ONES3, 1.0),
])
def test_malformed_shapes_raise(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()
