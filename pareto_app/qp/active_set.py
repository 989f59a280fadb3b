"""The exact primal active-set method behind every CPU weighting QP: no positive definite Hessian needed."""

from __future__ import annotations

import numpy as np

# The active-set method works on a copy of the problem scaled so that max |Q|, |c| = 1:
# the minimiser is unchanged, and the tolerances below become relative to the problem.
_OPT_TOL = 1e-13  # a multiplier this negative is rounding noise, not a descent direction
_CURV_TOL = 1e-11  # relative curvature at which a direction is treated as exactly flat
_DIR_TOL = 1e-14  # direction components below this cannot block a step
_MAX_ITER_PER_VAR = 20  # cycling guard: far more than the ~n pivots these problems need


class Breakdown(Exception):
    """The method cannot go on: an unblocked flat descent direction (an unbounded
    problem) or a non-finite KKT inverse (input far outside the PSD contract)."""


class ActiveSetQP:
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
                raise Breakdown
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
                raise Breakdown
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
        except Breakdown:
            pass  # x is feasible and the best found so far; finite input never raises
        return self.x
