"""Checking and normalising a preference vector r on the simplex."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def normalize_preference(preference: Sequence[float] | np.ndarray | None, S: int) -> np.ndarray:
    """r / Σr for a non-negative, finite, non-zero r of length S; uniform when None.

    Raises ValueError naming the value and what is accepted.
    """
    if preference is None:
        return np.full(S, 1.0 / S)
    items = preference.tolist() if isinstance(preference, np.ndarray) else preference
    if isinstance(items, (str, bytes, dict)) or (isinstance(items, (list, tuple))
                                                 and any(isinstance(v, (bool, np.bool_, str, bytes)) for v in items)):
        raise ValueError(f"preference {preference!r:.80} is not a list of numbers; accepted: {S} non-negative numbers")
    try:
        r = np.asarray(preference, dtype=float).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"preference {preference!r} is not a list of numbers; accepted: {S} non-negative numbers") from None
    if r.size == 0:
        raise ValueError(f"preference {preference!r:.80} is empty; accepted: {S or 'one'} non-negative number(s) per "
                         "objective, not all zero")
    if r.size != S:
        raise ValueError(f"preference {r.tolist()} has {r.size} entries; this problem has {S} objectives, so {S} are needed")
    if not np.all(np.isfinite(r)):
        raise ValueError(f"preference {r.tolist()} has a NaN or infinite entry; accepted: {S} finite non-negative numbers")
    if np.any(r < 0):
        raise ValueError(f"preference {r.tolist()} has a negative entry; accepted: {S} non-negative numbers, not all zero")
    if r.max() <= 0:
        raise ValueError(f"preference {r.tolist()} is all zeros; accepted: {S} non-negative numbers, not all zero")
    r = r / r.max()  # first: entries near the float limit would make the sum infinite, and r / Σr zero
    return r / r.sum()
