"""The simplex QP, argmin over the simplex of 0.5 w'Qw + c'w, and the two weighting rules built on it:
MGDA's min-norm weights and Eq. (5) of WC-MHGD. One instance at a time, exact, on the CPU."""

from __future__ import annotations

import functools

import numpy as np

from . import dual
from .active_set import ActiveSetQP
from .common import normalise, scalar, simplex_gap, square, to_simplex, vector


@functools.lru_cache(maxsize=64)
def _simplex_constraints(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # w >= 0 as simple bounds, sum(w) = 1 as one equality row.
    upper = np.concatenate((np.full(n, dual.INF), [1.0]))
    lower = np.concatenate((np.zeros(n), [1.0]))
    sense = np.zeros(n + 1, dtype=np.int32)
    sense[n] = 5  # DAQP's code for an equality row
    return np.ones((1, n)), upper, lower, sense


def _support_polish(Q: np.ndarray, c: np.ndarray, w: np.ndarray) -> np.ndarray | None:
    """Exact minimiser on the face spanned by w's support, if it is feasible.

    DAQP's proximal iterations on a singular Q stop a little short (gaps ~1e-10); its
    support is nonetheless right, and one KKT solve on it lands exactly.
    """
    F = np.flatnonzero(w > dual.SUPPORT_TOL)
    k = F.size
    K = np.zeros((k + 1, k + 1))
    K[:k, :k] = Q[np.ix_(F, F)]
    K[:k, k] = K[k, :k] = 1.0
    try:
        sol = np.linalg.solve(K, np.concatenate((-c[F], [1.0])))
    except np.linalg.LinAlgError:  # a singular face: leave it to the active-set method
        return None
    if not sol[:k].min() >= 0.0:  # also rejects nan
        return None
    out = np.zeros_like(w)
    out[F] = sol[:k]
    return out


def _simplex_daqp(Q: np.ndarray, c: np.ndarray) -> np.ndarray | None:
    """DAQP's answer (polished if need be) when certified optimal, else None."""
    # DAQP takes writable buffers; copies keep the cached ones safe from any write.
    A, upper, lower, sense = (a.copy() for a in _simplex_constraints(c.size))
    x = dual.solve(Q, c, A, upper, lower, sense)
    if x is None:
        return None
    w = to_simplex(x)
    if simplex_gap(Q, c, w) <= dual.CERT_TOL:
        return w
    polished = _support_polish(Q, c, w)
    if polished is None:
        return None
    w = to_simplex(polished)
    return w if simplex_gap(Q, c, w) <= dual.CERT_TOL else None


# ---------------------------------------------------------------------- simplex QP


def _two_point(Q: np.ndarray, c: np.ndarray) -> np.ndarray:
    """S = 2: minimise the 1-D convex quadratic f(t) of w = (t, 1 - t) on [0, 1]."""
    (q00, q01), (_, q11) = Q.tolist()  # Python floats: numpy scalars are ~10x slower here
    c0, c1 = c.tolist()
    curvature = q00 - 2.0 * q01 + q11
    slope = q01 - q11 + c0 - c1  # f'(0)
    if curvature > 0.0:
        t = min(max(-slope / curvature, 0.0), 1.0)
    else:  # f is linear (the two gradients coincide): pick the lower end
        t = 0.0 if slope > 0.0 else 1.0 if slope < 0.0 else 0.5

    def value(s: float) -> float:
        return 0.5 * (s * s * q00 + 2.0 * s * (1.0 - s) * q01 + (1.0 - s) ** 2 * q11) \
            + s * c0 + (1.0 - s) * c1

    # Cancellation in `curvature` can misplace t when the gradients nearly coincide;
    # the end points are the only other candidates a 1-D convex quadratic can prefer.
    t = min((t, 0.0, 1.0), key=value)
    return np.array([t, 1.0 - t])


def _simplex_active_set(Q: np.ndarray, c: np.ndarray) -> np.ndarray:
    n = c.size
    j = int(np.argmin(0.5 * np.diag(Q) + c))  # best vertex: a trivially valid working set
    x = np.zeros(n)
    x[j] = 1.0
    free = np.zeros(n, dtype=bool)
    free[j] = True
    solver = ActiveSetQP(Q, c, np.ones((1, n)), np.ones(1), np.zeros((0, n)), np.zeros(0),
                          x, free, [])
    # At a vertex the only multiplier (of sum(w) = 1) is the gradient entry itself.
    return solver.solve(y=np.array([Q[j, j] + c[j]]))


def _simplex_exact(Q: np.ndarray, c: np.ndarray) -> np.ndarray:
    w = _simplex_daqp(Q, c)
    return _simplex_active_set(Q, c) if w is None else w


def unchecked_simplex_qp(Q: np.ndarray, c: np.ndarray) -> np.ndarray:
    n = c.size
    if n == 1:
        return np.ones(1)
    scaled = normalise(Q, c)
    if scaled is None:  # f == 0: every point is optimal, the barycentre is the neutral one
        return np.full(n, 1.0 / n)
    Qs, cs = scaled
    return to_simplex(_two_point(Qs, cs) if n == 2 else _simplex_exact(Qs, cs))


def solve_simplex_qp(Q: np.ndarray, c: np.ndarray) -> np.ndarray:
    """argmin_w 0.5 w'Qw + c'w  s.t.  w >= 0, sum(w) = 1, for symmetric PSD Q (maybe singular).

    Exact to ~1e-11 of the problem's scale: S = 2 in closed form; S >= 3 by DAQP when
    its answer carries an optimality certificate, else by a primal active-set method.
    Always returns a feasible w; raises ValueError only for malformed or non-finite input.
    """
    Q = square("Q", Q)
    return unchecked_simplex_qp(Q, vector("c", c, Q.shape[0]))


def min_norm_weights(G: np.ndarray) -> np.ndarray:
    """MGDA weights: argmin over the simplex of ||sum_s w_s g_s||^2, from G = [<g_i, g_j>]."""
    G = square("G", G)
    return unchecked_simplex_qp(G, np.zeros(G.shape[0]))


def wc_weights(G: np.ndarray, r: np.ndarray, phi: np.ndarray, u: float) -> np.ndarray:
    """Eq. (5) of WC-MHGD: argmin_simplex ||GradPhi (r * lam)||^2 - u lam'(r * phi).

    Only the Gram matrix G = GradPhi' GradPhi is needed; the weights applied to the
    gradients are r * lam (the caller's job).
    """
    G = square("G", G)
    n = G.shape[0]
    r = vector("r", r, n)
    phi = vector("phi", phi, n)
    u = scalar("u", u)
    # Q = 2 diag(r) G diag(r), c = -u (r * phi), divided by 2 max|G| max|r|^2 (same
    # minimiser) so that finite inputs cannot overflow into a non-finite Q or c.
    g_scale, r_scale = np.abs(G).max(), np.abs(r).max()
    if r_scale == 0.0:
        return np.full(n, 1.0 / n)
    r_unit = r / r_scale
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        c = (np.float64(-u) / (2.0 * g_scale * r_scale)) * (r_unit * phi)
    if np.all(np.isfinite(c)):
        Q = r_unit[:, None] * (G / g_scale) * r_unit[None, :]
    else:  # the quadratic term is below the float range of the linear one: drop it
        Q, c = np.zeros_like(G), -np.sign(u) * (r_unit * phi)
    return unchecked_simplex_qp(Q, c)
