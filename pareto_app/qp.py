"""Exact solvers for the tiny quadratic programs behind each multi-gradient step.

Every MGDA / WC-MHGD / FORUM step solves a QP over the probability simplex whose Hessian is
an S x S Gram matrix of gradients (S <= ~20).  Such Gram matrices are routinely singular
(collinear, duplicated or vanishing gradients) and badly scaled (gradient norms spanning
many orders of magnitude).  The fast path therefore takes DAQP's answer (a dual active-set
QP solver in C) only when it comes with an optimality certificate -- a Frank-Wolfe duality
gap below 1e-11 of the problem's scale -- and otherwise solves the problem exactly with a
primal active-set method in numpy that never needs a positive definite Hessian.  cvxpy
versions of the same problems are kept as references for the tests and the benchmark.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import cvxpy as cp

try:
    import daqp
except ImportError:  # pragma: no cover - the exact active-set method alone still works
    daqp = None

__all__ = [
    "forum_weights",
    "forum_weights_reference",
    "min_norm_weights",
    "solve_simplex_qp",
    "solve_simplex_qp_reference",
    "wc_weights",
]

# The active-set method works on a copy of the problem scaled so that max |Q|, |c| = 1:
# the minimiser is unchanged, and the tolerances below become relative to the problem.
_OPT_TOL = 1e-13  # a multiplier this negative is rounding noise, not a descent direction
_CURV_TOL = 1e-11  # relative curvature at which a direction is treated as exactly flat
_DIR_TOL = 1e-14  # direction components below this cannot block a step
_MAX_ITER_PER_VAR = 20  # cycling guard: far more than the ~n pivots these problems need


# --------------------------------------------------------------------------- validation


def _finite_array(name: str, value: object, ndim: int) -> np.ndarray:
    arr = np.array(value, dtype=float)  # a private copy: callers' arrays are never mutated
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite entries (nan or inf)")
    return arr


def _square(name: str, value: object) -> np.ndarray:
    arr = _finite_array(name, value, 2)
    if arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix, got shape {arr.shape}")
    # Gram matrices assembled in float arithmetic are symmetric only up to rounding.
    # (Halving first: arr + arr.T could overflow for entries near the float maximum.)
    return 0.5 * arr + 0.5 * arr.T


def _vector(name: str, value: object, size: int) -> np.ndarray:
    arr = _finite_array(name, value, 1)
    if arr.size != size:
        raise ValueError(f"{name} must have {size} entries, got {arr.size}")
    return arr


def _scalar(name: str, value: float) -> float:
    out = float(value)
    if not np.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    return out


# ---------------------------------------------------------------------- scaling


def _normalise(Q: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Scale (Q, c) to max magnitude 1 (same minimiser); None when both vanish."""
    tau = max(float(np.abs(Q).max()), float(np.abs(c).max()))
    if tau == 0.0:
        return None
    return Q / tau, c / tau


def _to_simplex(w: np.ndarray) -> np.ndarray:
    w = np.maximum(w, 0.0)
    total = w.sum()
    if not np.isfinite(total) or total <= 0.0:
        return np.full(w.size, 1.0 / w.size)
    return w / total


def _simplex_gap(Q: np.ndarray, c: np.ndarray, w: np.ndarray) -> float:
    """Frank-Wolfe gap: f(w) - min f <= g'w - min_j g_j for convex f and feasible w."""
    g = Q @ w + c
    return float(g @ w - g.min())


# ------------------------------------------------------------------- active-set kernel


class _Breakdown(Exception):
    """The method cannot go on: an unblocked flat descent direction (an unbounded
    problem) or a non-finite KKT inverse (input far outside the PSD contract)."""


class _ActiveSetQP:
    """Inertia-controlling primal active-set method for the small dense QP

        min 0.5 x'Qx + c'x   s.t.   x >= 0,   E x = e,   H x >= h.

    The working set (bounds x_j = 0 off `free`, all of E, the rows of H in `rows`) is kept
    such that Q is positive definite on its null space, so every KKT matrix it factorises
    is nonsingular even when Q itself is singular.  Releasing a constraint can only make
    that reduced Hessian singular along one direction; the method then walks along that
    zero-curvature descent direction to the nearest blocking constraint, whose activation
    restores definiteness.  The answer thus solves the KKT system of its active set
    exactly -- no regularisation, no tolerance-driven inner iterations.
    """

    def __init__(self, Q: np.ndarray, c: np.ndarray, E: np.ndarray, e: np.ndarray,
                 H: np.ndarray, h: np.ndarray, x: np.ndarray, free: np.ndarray,
                 rows: list[int]) -> None:
        self.Q, self.c, self.E, self.e, self.H, self.h = Q, c, E, e, H, h
        self.abs_Q = np.abs(Q)
        self.x, self.free, self.rows = x, free, rows
        self._constraints: tuple[np.ndarray, np.ndarray] | None = None
        self._kkt: tuple[np.ndarray, np.ndarray] | None = None

    # The working set changes once per pivot while the matrices built from it are used
    # several times, so both are cached and dropped together.
    def _changed(self) -> None:
        self._constraints = None
        self._kkt = None

    def _working_rows(self) -> tuple[np.ndarray, np.ndarray]:
        if self._constraints is None:
            if self.rows:
                self._constraints = (np.vstack((self.E, self.H[self.rows])),
                                     np.concatenate((self.e, self.h[self.rows])))
            else:
                self._constraints = (self.E, self.e)
        return self._constraints

    def _kkt_inverse(self) -> tuple[np.ndarray, np.ndarray]:
        if self._kkt is None:
            F = np.flatnonzero(self.free)
            C = self._working_rows()[0][:, F]
            k, p = F.size, C.shape[0]
            K = np.zeros((k + p, k + p))
            K[:k, :k] = self.Q[np.ix_(F, F)]
            K[:k, k:] = C.T
            K[k:, :k] = C
            # One explicit inverse serves the step and the release direction alike; at
            # these sizes (<= ~2S) it costs one solve and is as accurate, up to a constant.
            try:
                inv = np.linalg.inv(K)
            except np.linalg.LinAlgError:  # unreachable in exact arithmetic (see class doc)
                inv = np.linalg.pinv(K)
            if not np.all(np.isfinite(inv)):
                raise _Breakdown
            self._kkt = (F, inv)
        return self._kkt

    def _ratio_test(self, d: np.ndarray, limit: float) -> tuple[float, tuple[str, int] | None]:
        """Longest step <= limit along d that keeps x feasible, and what blocks it."""
        alpha, block = limit, None
        # Variables are O(1) after scaling, so rounding noise in d is O(eps) in absolute
        # terms; letting it block would pivot on constraints that d does not really cross.
        tiny = _DIR_TOL * max(1.0, float(np.abs(d).max()))
        idx = np.flatnonzero(self.free & (d < -tiny))
        if idx.size:
            ratios = self.x[idx] / -d[idx]
            i = int(ratios.argmin())
            if ratios[i] < alpha:
                alpha, block = float(ratios[i]), ("bound", int(idx[i]))
        if self.H.shape[0]:
            Hd = self.H @ d
            inactive = np.ones(self.H.shape[0], dtype=bool)
            inactive[self.rows] = False
            idx = np.flatnonzero(inactive & (Hd < -tiny))
            if idx.size:
                ratios = (self.H[idx] @ self.x - self.h[idx]) / -Hd[idx]
                i = int(ratios.argmin())
                if ratios[i] < alpha:
                    alpha, block = float(ratios[i]), ("row", int(idx[i]))
        return max(alpha, 0.0), block

    def _move(self, alpha: float, d: np.ndarray, block: tuple[str, int] | None) -> None:
        if alpha > 0.0:
            self.x += alpha * d
            np.maximum(self.x, 0.0, out=self.x)  # rounding must not leave x infeasible
        if block is not None:
            kind, i = block
            if kind == "bound":
                self.free[i] = False
                self.x[i] = 0.0
            else:
                self.rows.append(i)
            self._changed()

    def _to_stationary(self) -> np.ndarray | None:
        """Step towards the minimiser on the working set; its multipliers if reached."""
        F, inv = self._kkt_inverse()
        k = F.size
        sol = inv @ np.concatenate((-self.c[F], self._working_rows()[1]))
        d = np.zeros_like(self.x)
        d[F] = sol[:k] - self.x[F]
        alpha, block = self._ratio_test(d, 1.0)
        self._move(alpha, d, block)
        if block is not None:
            return None
        self.x[F] = np.maximum(sol[:k], 0.0)
        return -sol[k:]

    def _most_negative(self, y: np.ndarray, g: np.ndarray) -> tuple[str, int] | None:
        """The working constraint whose multiplier says dropping it decreases f."""
        C = self._working_rows()[0]
        z = g - C.T @ y  # multipliers of the bounds x_j >= 0
        z[self.free] = np.inf
        j = int(z.argmin())
        best, value = ("bound", j), z[j]
        if self.rows:
            y_rows = y[self.E.shape[0]:]
            i = int(y_rows.argmin())
            if y_rows[i] < value:
                best, value = ("row", i), y_rows[i]
        return best if value < -_OPT_TOL else None

    def _release(self, item: tuple[str, int], y: np.ndarray, g: np.ndarray) -> np.ndarray | None:
        """Drop one working constraint and move; the new multipliers if x is stationary."""
        F, inv = self._kkt_inverse()
        k = F.size
        kind, i = item
        position = self.E.shape[0] + i  # where a released H row sits in the KKT system
        if kind == "bound":
            C = self._working_rows()[0]
            sol = -(inv @ np.concatenate((self.Q[F, i], C[:, i])))
        else:
            sol = inv[:, k + position].copy()
        d = np.zeros_like(self.x)
        d[F] = sol[:k]
        if kind == "bound":
            d[i] = 1.0
        abs_d = np.abs(d)
        curvature = float(d @ (self.Q @ d))
        flat = curvature <= _CURV_TOL * float(abs_d @ (self.abs_Q @ abs_d))
        newton = -float(g @ d) / curvature if curvature > 0.0 else np.inf
        alpha, block = self._ratio_test(d, np.inf if flat else newton)
        if block is None:
            if not np.isfinite(newton):
                # Flat descent with nothing in the way: only an unbounded problem does this,
                # and none of ours is (all their variables are bounded).
                raise _Breakdown
            alpha = min(alpha, newton)
        if kind == "bound":
            self.free[i] = True
        else:
            self.rows.pop(i)
        self._changed()
        self._move(alpha, d, block)
        if block is not None:
            return None
        # Along the conjugate direction d the multipliers change linearly: no new solve.
        y_new = y - alpha * sol[k:]
        return y_new if kind == "bound" else np.delete(y_new, position)

    def solve(self, y: np.ndarray | None = None) -> np.ndarray:
        """Run to optimality; y are the multipliers if the start is already stationary."""
        try:
            for _ in range(_MAX_ITER_PER_VAR * (self.x.size + self.H.shape[0]) + 10):
                if y is None:
                    y = self._to_stationary()
                    continue
                g = self.Q @ self.x + self.c
                item = self._most_negative(y, g)
                if item is None:
                    break
                y = self._release(item, y, g)
        except _Breakdown:
            pass  # x is feasible and the best found so far; finite input never raises
        return self.x


# ----------------------------------------------------------------- fast path: DAQP


# DAQP (dual active set, in C) answers in a few microseconds where the pure-numpy method
# pays ~1 us of interpreter overhead per array operation.  Its proximal-point handling of
# singular Hessians stops on a tolerance, though, and badly scaled problems can exhaust its
# iterations, so each of its answers is accepted only with an optimality certificate
# (_CERT_TOL below); anything else goes to the exact active-set method.
_DAQP_SETTINGS = {"primal_tol": 1e-12, "eta_prox": 1e-14, "iter_limit": 300}
_DAQP_INF = 1e30  # DAQP's own "no bound" value
_CERT_TOL = 1e-11  # accepted suboptimality, relative to the problem's scale
_SUPPORT_TOL = 1e-9  # weights below this in DAQP's answer are taken as exact zeros


def _daqp(Q: np.ndarray, c: np.ndarray, A: np.ndarray, upper: np.ndarray, lower: np.ndarray,
          sense: np.ndarray) -> np.ndarray | None:
    if daqp is None:
        return None
    x, _, flag, _ = daqp.solve(Q, c, A, upper, lower, sense, **_DAQP_SETTINGS)
    return np.asarray(x, dtype=float) if flag == 1 else None


@functools.lru_cache(maxsize=64)
def _simplex_constraints(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # w >= 0 as simple bounds, sum(w) = 1 as one equality row.
    upper = np.concatenate((np.full(n, _DAQP_INF), [1.0]))
    lower = np.concatenate((np.zeros(n), [1.0]))
    sense = np.zeros(n + 1, dtype=np.int32)
    sense[n] = 5  # DAQP's code for an equality row
    return np.ones((1, n)), upper, lower, sense


def _support_polish(Q: np.ndarray, c: np.ndarray, w: np.ndarray) -> np.ndarray | None:
    """Exact minimiser on the face spanned by w's support, if it is feasible.

    DAQP's proximal iterations on a singular Q stop a little short (gaps ~1e-10); its
    support is nonetheless right, and one KKT solve on it lands exactly.
    """
    F = np.flatnonzero(w > _SUPPORT_TOL)
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
    x = _daqp(Q, c, A, upper, lower, sense)
    if x is None:
        return None
    w = _to_simplex(x)
    if _simplex_gap(Q, c, w) <= _CERT_TOL:
        return w
    polished = _support_polish(Q, c, w)
    if polished is None:
        return None
    w = _to_simplex(polished)
    return w if _simplex_gap(Q, c, w) <= _CERT_TOL else None


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
    solver = _ActiveSetQP(Q, c, np.ones((1, n)), np.ones(1), np.zeros((0, n)), np.zeros(0),
                          x, free, [])
    # At a vertex the only multiplier (of sum(w) = 1) is the gradient entry itself.
    return solver.solve(y=np.array([Q[j, j] + c[j]]))


def _simplex_exact(Q: np.ndarray, c: np.ndarray) -> np.ndarray:
    w = _simplex_daqp(Q, c)
    return _simplex_active_set(Q, c) if w is None else w


def _solve_simplex(Q: np.ndarray, c: np.ndarray) -> np.ndarray:
    n = c.size
    if n == 1:
        return np.ones(1)
    scaled = _normalise(Q, c)
    if scaled is None:  # f == 0: every point is optimal, the barycentre is the neutral one
        return np.full(n, 1.0 / n)
    Qs, cs = scaled
    return _to_simplex(_two_point(Qs, cs) if n == 2 else _simplex_exact(Qs, cs))


def solve_simplex_qp(Q: np.ndarray, c: np.ndarray) -> np.ndarray:
    """argmin_w 0.5 w'Qw + c'w  s.t.  w >= 0, sum(w) = 1, for symmetric PSD Q (maybe singular).

    Exact to ~1e-11 of the problem's scale: S = 2 in closed form; S >= 3 by DAQP when
    its answer carries an optimality certificate, else by a primal active-set method.
    Always returns a feasible w; raises ValueError only for malformed or non-finite input.
    """
    Q = _square("Q", Q)
    return _solve_simplex(Q, _vector("c", c, Q.shape[0]))


def min_norm_weights(G: np.ndarray) -> np.ndarray:
    """MGDA weights: argmin over the simplex of ||sum_s w_s g_s||^2, from G = [<g_i, g_j>]."""
    G = _square("G", G)
    return _solve_simplex(G, np.zeros(G.shape[0]))


def wc_weights(G: np.ndarray, r: np.ndarray, phi: np.ndarray, u: float) -> np.ndarray:
    """Eq. (5) of WC-MHGD: argmin_simplex ||GradPhi (r * lam)||^2 - u lam'(r * phi).

    Only the Gram matrix G = GradPhi' GradPhi is needed; the weights applied to the
    gradients are r * lam (the caller's job).
    """
    G = _square("G", G)
    n = G.shape[0]
    r = _vector("r", r, n)
    phi = _vector("phi", phi, n)
    u = _scalar("u", u)
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
    return _solve_simplex(Q, c)


# ---------------------------------------------------------------------------- FORUM


def _forum_gamma_scale(G: np.ndarray, pi: np.ndarray, phi_k: float) -> float | None:
    """A scale s with gamma* < s; None when the QP is unbounded (grad q = 0, phi_k > 0).

    For fixed lam the best gamma is max(0, pi'lam, (phi_k - b'lam) / |grad q|^2) with
    b = [<grad F_i, grad q>], so the bound below holds for every lam.  Solving for
    gamma / s in [0, 1] keeps every variable bounded: the active-set method's flat steps
    then always end on a constraint, and the certificate has a finite feasible set.
    """
    m = pi.size
    gqq = float(G[m, m])
    bound = max(0.0, float(pi.max()))
    if gqq > 0.0:
        with np.errstate(over="ignore"):
            bound = max(bound, float(np.float64(phi_k - float(G[:m, m].min())) / gqq))
    elif phi_k > 0.0:
        return None
    if not np.isfinite(2.0 * bound):
        return None
    return 2.0 * bound if bound > 0.0 else 1.0


class _ForumQP:
    """FORUM's QP in the variables x = (lam, gamma / s), scaled to max |Q|, |c| = 1.

    Constraints: x >= 0, sum(lam) = 1, gamma / s >= (pi / s)'lam, gamma / s <= 1 (never
    active at the optimum, by the choice of s).
    """

    def __init__(self, G: np.ndarray, pi: np.ndarray, phi_k: float, s: float) -> None:
        m = pi.size
        scale = np.ones(m + 1)
        scale[m] = s
        c = np.zeros(m + 1)
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            Q = scale[:, None] * G * scale[None, :]
            c[m] = -s * phi_k
            self.m, self.pi_s = m, pi / s
        finite = np.all(np.isfinite(Q)) and np.isfinite(c[m]) and np.all(np.isfinite(self.pi_s))
        self.scaled = _normalise(Q, c) if finite else None
        if self.scaled is None:
            return
        row_scale = max(1.0, float(np.abs(self.pi_s).max()))  # keep the row O(1), like Q, c
        self.H = np.zeros((2, m + 1))
        self.H[0, :m], self.H[0, m] = -self.pi_s / row_scale, 1.0 / row_scale
        self.H[1, m] = -1.0
        self.h = np.array([0.0, -1.0])

    def feasible(self, x: np.ndarray) -> np.ndarray:
        lam = _to_simplex(x[:self.m])
        low = max(0.0, float(self.pi_s @ lam))
        return np.concatenate((lam, [min(max(float(x[self.m]), low), 1.0)]))

    def gap(self, x: np.ndarray) -> float:
        """Frank-Wolfe gap g'x - min over the feasible set of g'x' (x feasible)."""
        Q, c = self.scaled  # type: ignore[misc]
        m, pi_s = self.m, self.pi_s
        g = Q @ x + c
        g_lam, g_gam = g[:m], float(g[m])
        if g_gam < 0.0:  # the linear minimiser pushes gamma / s to its cap 1
            return float(g @ x) - (float(g_lam.min()) + g_gam)
        # Else gamma / s = max(0, pi_s'lam): min of a convex piecewise-linear function of
        # lam, attained at a vertex e_i or where an edge e_i--e_j crosses pi_s'lam = 0.
        best = float((g_lam + g_gam * np.maximum(pi_s, 0.0)).min())
        neg, pos = pi_s < 0.0, pi_s > 0.0
        if neg.any() and pos.any():
            p_neg, p_pos = pi_s[neg][:, None], pi_s[pos][None, :]
            t = p_pos / (p_pos - p_neg)  # weight on the negative end
            crossing = t * g_lam[neg][:, None] + (1.0 - t) * g_lam[pos][None, :]
            best = min(best, float(crossing.min()))
        return float(g @ x) - best

    def daqp(self) -> np.ndarray | None:
        """DAQP's answer, made feasible, if certified optimal; else None."""
        m = self.m
        Q, c = self.scaled  # type: ignore[misc]
        # Simple bounds lam >= 0, 0 <= gamma / s <= 1; rows sum(lam) = 1, H[0] x >= 0.
        A = np.vstack((np.concatenate((np.ones(m), [0.0])), self.H[0]))
        upper = np.concatenate((np.full(m, _DAQP_INF), [1.0, 1.0, _DAQP_INF]))
        lower = np.concatenate((np.zeros(m + 1), [1.0, 0.0]))
        sense = np.zeros(m + 3, dtype=np.int32)
        sense[m + 1] = 5  # DAQP's code for an equality row
        x = _daqp(Q, c, A, upper, lower, sense)
        if x is None:
            return None
        x = self.feasible(x)
        return x if self.gap(x) <= _CERT_TOL else None

    def active_set(self) -> np.ndarray:
        m = self.m
        Q, c = self.scaled  # type: ignore[misc]
        gamma0 = np.maximum(self.pi_s, 0.0)  # the smallest feasible gamma / s at lam = e_i
        values = 0.5 * (np.diag(Q)[:m] + 2.0 * Q[:m, m] * gamma0 + Q[m, m] * gamma0**2)
        i = int(np.argmin(values + c[m] * gamma0))  # best such vertex
        x = np.zeros(m + 1)
        x[i], x[m] = 1.0, gamma0[i]
        free = np.zeros(m + 1, dtype=bool)
        free[i] = True
        rows: list[int] = []
        if self.pi_s[i] > 0.0:  # gamma sits on gamma >= pi'lam; otherwise on gamma >= 0
            free[m] = True
            rows.append(0)
        E = np.concatenate((np.ones(m), [0.0]))[None, :]
        return _ActiveSetQP(Q, c, E, np.ones(1), self.H, self.h, x, free, rows).solve()

    def solve(self) -> np.ndarray | None:
        """Feasible optimal (lam, gamma / s); None when the scaled problem is degenerate."""
        if self.scaled is None:
            return None
        x = self.daqp()
        return self.feasible(self.active_set()) if x is None else x


def _forum_inputs(G: np.ndarray, pi: np.ndarray, phi_k: float) -> tuple[np.ndarray, np.ndarray, float]:
    G = _square("G", G)
    if G.shape[0] < 2:
        raise ValueError("G must be at least 2 x 2: m >= 1 objectives plus grad q")
    return G, _vector("pi", pi, G.shape[0] - 1), _scalar("phi_k", phi_k)


def forum_weights(G: np.ndarray, pi: np.ndarray, phi_k: float) -> tuple[np.ndarray, float]:
    """FORUM's QP (12): min over lam in simplex(m), gamma of
    0.5 ||sum lam_i grad F_i + gamma grad q||^2 - gamma phi_k  s.t. gamma >= 0, gamma >= pi'lam.

    G is the (m+1) x (m+1) Gram matrix of [grad F_1, ..., grad F_m, grad q].  Returns
    (lam, gamma).  The QP is unbounded only when grad q = 0 and phi_k > 0; gamma then has
    no effect on the direction sum lam_i grad F_i + gamma grad q, so lam is the min-norm
    weighting and gamma the smallest feasible value instead of a divergent one.
    """
    G, pi, phi_k = _forum_inputs(G, pi, phi_k)
    m = pi.size
    g_scale = float(np.abs(G).max())
    if g_scale > 0.0:  # dividing the objective by max|G| keeps gamma's scaling finite
        G, phi_k = G / g_scale, phi_k / g_scale
    s = _forum_gamma_scale(G, pi, phi_k)
    x = None if s is None else _ForumQP(G, pi, phi_k, s).solve()
    if x is None:  # unbounded, or nothing to minimise (G = 0 and phi_k = 0)
        lam = _solve_simplex(G[:m, :m], np.zeros(m))
        return lam, max(0.0, float(pi @ lam))
    lam = x[:m]
    # gamma = s * (gamma / s) may round a hair below pi'lam; keep the pair feasible.
    return lam, max(float(x[m]) * s, 0.0, float(pi @ lam))


# ------------------------------------------------------------------- cvxpy references


def _psd_factor(Q: np.ndarray) -> np.ndarray:
    """L with Q ~= L L' (negative eigenvalues from rounding clipped), so cvxpy sees a
    sum of squares -- it rejects quad_form on a matrix it cannot prove PSD."""
    vals, vecs = np.linalg.eigh(0.5 * (Q + Q.T))
    return vecs * np.sqrt(np.clip(vals, 0.0, None))


def _solve_reference(problem: cp.Problem) -> None:
    import cvxpy as cp

    if "CLARABEL" in cp.installed_solvers():
        problem.solve(solver="CLARABEL", tol_gap_abs=1e-10, tol_gap_rel=1e-10,
                      tol_feas=1e-10, max_iter=500)
    else:
        problem.solve()
    if problem.status not in ("optimal", "optimal_inaccurate"):
        raise RuntimeError(f"cvxpy reference failed: status {problem.status}")


def solve_simplex_qp_reference(Q: np.ndarray, c: np.ndarray) -> np.ndarray:
    """cvxpy reference for solve_simplex_qp (slow; for tests and benchmarks)."""
    import cvxpy as cp

    Q = _square("Q", Q)
    c = _vector("c", c, Q.shape[0])
    scaled = _normalise(Q, c)  # same minimiser; keeps the solver's absolute tolerances meaningful
    if scaled is None:
        return np.full(c.size, 1.0 / c.size)
    Qs, cs = scaled
    w = cp.Variable(c.size)
    objective = 0.5 * cp.sum_squares(_psd_factor(Qs).T @ w) + cs @ w
    _solve_reference(cp.Problem(cp.Minimize(objective), [w >= 0, cp.sum(w) == 1]))
    return _to_simplex(np.asarray(w.value, dtype=float))


def forum_weights_reference(G: np.ndarray, pi: np.ndarray,
                            phi_k: float) -> tuple[np.ndarray, float]:
    """cvxpy reference for forum_weights (slow; raises RuntimeError if unbounded)."""
    import cvxpy as cp

    G, pi, phi_k = _forum_inputs(G, pi, phi_k)
    m = pi.size
    tau = max(float(np.abs(G).max()), abs(phi_k), 1e-300)  # same minimiser, O(1) objective
    x = cp.Variable(m + 1)  # (lam, gamma)
    lam, gamma = x[:m], x[m]
    objective = 0.5 * cp.sum_squares(_psd_factor(G / tau).T @ x) - gamma * (phi_k / tau)
    constraints = [lam >= 0, cp.sum(lam) == 1, gamma >= 0, gamma >= pi @ lam]
    _solve_reference(cp.Problem(cp.Minimize(objective), constraints))
    value = np.asarray(x.value, dtype=float)
    lam_value = _to_simplex(value[:m])
    return lam_value, max(float(value[m]), 0.0, float(pi @ lam_value))
