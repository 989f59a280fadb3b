"""FORUM's QP (12), one instance at a time, exact, on the CPU."""

from __future__ import annotations

import numpy as np

from . import dual
from .active_set import ActiveSetQP
from .common import normalise, scalar, square, to_simplex, vector
from .simplex import unchecked_simplex_qp


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
        self.scaled = normalise(Q, c) if finite else None
        if self.scaled is None:
            return
        row_scale = max(1.0, float(np.abs(self.pi_s).max()))  # keep the row O(1), like Q, c
        self.H = np.zeros((2, m + 1))
        self.H[0, :m], self.H[0, m] = -self.pi_s / row_scale, 1.0 / row_scale
        self.H[1, m] = -1.0
        self.h = np.array([0.0, -1.0])

    def feasible(self, x: np.ndarray) -> np.ndarray:
        lam = to_simplex(x[:self.m])
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
        upper = np.concatenate((np.full(m, dual.INF), [1.0, 1.0, dual.INF]))
        lower = np.concatenate((np.zeros(m + 1), [1.0, 0.0]))
        sense = np.zeros(m + 3, dtype=np.int32)
        sense[m + 1] = 5  # DAQP's code for an equality row
        x = dual.solve(Q, c, A, upper, lower, sense)
        if x is None:
            return None
        x = self.feasible(x)
        return x if self.gap(x) <= dual.CERT_TOL else None

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
        return ActiveSetQP(Q, c, E, np.ones(1), self.H, self.h, x, free, rows).solve()

    def solve(self) -> np.ndarray | None:
        """Feasible optimal (lam, gamma / s); None when the scaled problem is degenerate."""
        if self.scaled is None:
            return None
        x = self.daqp()
        return self.feasible(self.active_set()) if x is None else x


def forum_inputs(G: np.ndarray, pi: np.ndarray, phi_k: float) -> tuple[np.ndarray, np.ndarray, float]:
    G = square("G", G)
    if G.shape[0] < 2:
        raise ValueError("G must be at least 2 x 2: m >= 1 objectives plus grad q")
    return G, vector("pi", pi, G.shape[0] - 1), scalar("phi_k", phi_k)


def forum_weights(G: np.ndarray, pi: np.ndarray, phi_k: float) -> tuple[np.ndarray, float]:
    """FORUM's QP (12): min over lam in simplex(m), gamma of
    0.5 ||sum lam_i grad F_i + gamma grad q||^2 - gamma phi_k  s.t. gamma >= 0, gamma >= pi'lam.

    G is the (m+1) x (m+1) Gram matrix of [grad F_1, ..., grad F_m, grad q].  Returns
    (lam, gamma).  The QP is unbounded only when grad q = 0 and phi_k > 0; gamma then has
    no effect on the direction sum lam_i grad F_i + gamma grad q, so lam is the min-norm
    weighting and gamma the smallest feasible value instead of a divergent one.
    """
    G, pi, phi_k = forum_inputs(G, pi, phi_k)
    m = pi.size
    g_scale = float(np.abs(G).max())
    if g_scale > 0.0:  # dividing the objective by max|G| keeps gamma's scaling finite
        G, phi_k = G / g_scale, phi_k / g_scale
    s = _forum_gamma_scale(G, pi, phi_k)
    x = None if s is None else _ForumQP(G, pi, phi_k, s).solve()
    if x is None:  # unbounded, or nothing to minimise (G = 0 and phi_k = 0)
        lam = unchecked_simplex_qp(G[:m, :m], np.zeros(m))
        return lam, max(0.0, float(pi @ lam))
    lam = x[:m]
    # gamma = s * (gamma / s) may round a hair below pi'lam; keep the pair feasible.
    return lam, max(float(x[m]) * s, 0.0, float(pi @ lam))
