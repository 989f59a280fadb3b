"""Front indicators over objective vectors (minimisation), via moocore."""

from __future__ import annotations

from collections.abc import Sequence

import moocore
import numpy as np


def nondominated(points: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Boolean mask of the points no other point dominates."""
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or len(pts) == 0:
        return np.zeros(len(pts), dtype=bool)
    finite = np.all(np.isfinite(pts), axis=1)
    mask = np.zeros(len(pts), dtype=bool)
    if finite.any():
        mask[finite] = moocore.is_nondominated(pts[finite], maximise=False, keep_weakly=True)
    return mask


def default_reference(points: np.ndarray) -> np.ndarray:
    """A reference point just beyond the worst value of each objective."""
    pts = np.asarray(points, dtype=float)
    worst = pts.max(axis=0)
    span = np.maximum(worst - pts.min(axis=0), 1e-12)
    return worst + 0.1 * span


def hypervolume(points: np.ndarray | Sequence[Sequence[float]], reference: Sequence[float] | None = None) -> float:
    """Hypervolume dominated by `points` and bounded by `reference` (default: just past the worst)."""
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or len(pts) == 0:
        return 0.0
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) == 0:
        return 0.0
    ref = default_reference(pts) if reference is None else np.asarray(reference, dtype=float)
    if ref.shape != (pts.shape[1],):
        raise ValueError(f"reference point has {ref.size} entries; the points have {pts.shape[1]} objectives")
    return float(moocore.hypervolume(pts, ref=ref))
