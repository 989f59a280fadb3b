"""What the CPU solvers of the weighting QPs share: input checks and the problem's scaling."""

from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------- validation


def finite_array(name: str, value: object, ndim: int) -> np.ndarray:
    arr = np.array(value, dtype=float)  # a private copy: callers' arrays are never mutated
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite entries (nan or inf)")
    return arr


def square(name: str, value: object) -> np.ndarray:
    arr = finite_array(name, value, 2)
    if arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix, got shape {arr.shape}")
    # Gram matrices assembled in float arithmetic are symmetric only up to rounding.
    # (Halving first: arr + arr.T could overflow for entries near the float maximum.)
    return 0.5 * arr + 0.5 * arr.T


def vector(name: str, value: object, size: int) -> np.ndarray:
    arr = finite_array(name, value, 1)
    if arr.size != size:
        raise ValueError(f"{name} must have {size} entries, got {arr.size}")
    return arr


def scalar(name: str, value: float) -> float:
    out = float(value)
    if not np.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    return out


# ---------------------------------------------------------------------- scaling


def normalise(Q: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Scale (Q, c) to max magnitude 1 (same minimiser); None when both vanish."""
    tau = max(float(np.abs(Q).max()), float(np.abs(c).max()))
    if tau == 0.0:
        return None
    return Q / tau, c / tau


def to_simplex(w: np.ndarray) -> np.ndarray:
    w = np.maximum(w, 0.0)
    total = w.sum()
    if not np.isfinite(total) or total <= 0.0:
        return np.full(w.size, 1.0 / w.size)
    return w / total


def simplex_gap(Q: np.ndarray, c: np.ndarray, w: np.ndarray) -> float:
    """Frank-Wolfe gap: f(w) - min f <= g'w - min_j g_j for convex f and feasible w."""
    g = Q @ w + c
    return float(g @ w - g.min())
