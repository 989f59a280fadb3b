"""scikit-learn's bundled digits (8×8 images, 10 classes; no download), split and corrupted.

Shared by the data tasks. Features are scaled to [0, 1]; splits are stratified and fixed
by the seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch


@lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.data / 16.0).astype(np.float64), digits.target.astype(np.int64)


@dataclass(frozen=True)
class Split:
    features: torch.Tensor  # [n, 64]
    labels: torch.Tensor  # [n] int64

    def __len__(self) -> int:
        return len(self.labels)


def digits_splits(sizes: tuple[int, ...], seed: int, dtype: torch.dtype, device: torch.device) -> list[Split]:
    """Disjoint random splits of the 1797 digits of the given sizes (their sum ≤ 1797)."""
    features, labels = _raw()
    if sum(sizes) > len(labels):
        raise ValueError(f"digits has {len(labels)} images; the splits ask for {sum(sizes)} ({list(sizes)})")
    order = np.random.default_rng(seed).permutation(len(labels))
    out, start = [], 0
    for size in sizes:
        idx = order[start:start + size]
        start += size
        out.append(Split(torch.tensor(features[idx], dtype=dtype, device=device),
                         torch.tensor(labels[idx], dtype=torch.long, device=device)))
    return out


def corrupt_labels(labels: torch.Tensor, rate: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace a `rate` fraction of labels by a different random class; returns (labels, corrupted mask)."""
    gen = np.random.default_rng(seed)
    n = len(labels)
    mask = np.zeros(n, dtype=bool)
    mask[gen.choice(n, size=int(round(rate * n)), replace=False)] = True
    noisy = labels.cpu().numpy().copy()
    shift = gen.integers(1, 10, size=mask.sum())
    noisy[mask] = (noisy[mask] + shift) % 10
    return torch.tensor(noisy, dtype=torch.long, device=labels.device), torch.tensor(mask, device=labels.device)
