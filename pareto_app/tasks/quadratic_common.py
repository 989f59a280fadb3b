"""Shared pieces of the toy quadratic tasks: random geometry and simplex sampling."""

from __future__ import annotations

import itertools

import numpy as np
import torch


def random_spd(q: int, eigenvalues: torch.Tensor, gen: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """U diag(eigenvalues) Uᵀ with a random orthogonal U."""
    U, _ = torch.linalg.qr(torch.randn(q, q, generator=gen, dtype=dtype))
    return U @ torch.diag(eigenvalues.to(dtype)) @ U.T


def simplex_grid(S: int, n: int) -> np.ndarray:
    """About n points of the simplex in S dimensions on a regular grid, vertices included."""
    if S == 1:
        return np.ones((1, 1))
    k = 1
    while _grid_size(S, k + 1) <= n:
        k += 1
    points = [c for c in itertools.product(range(k + 1), repeat=S - 1) if sum(c) <= k]
    return np.array([[*c, k - sum(c)] for c in points], dtype=float) / k


def _grid_size(S: int, k: int) -> int:
    from math import comb

    return comb(k + S - 1, S - 1)
