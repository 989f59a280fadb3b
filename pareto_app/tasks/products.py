"""Products of shared data with a run's parameters, written so that a batched sweep folds its runs together.

Under `torch.func.vmap` over runs, a product `a @ W.T` of data `a` (the same for every run) with a
run's matrix W becomes a batched product with `a` repeated once per run; `W @ a.T` with W laid out
contiguously folds the runs into the rows of one matrix product, and its derivatives (the batched
engine's gradients, HVPs and JVPs) fold the same way. A strided view of x or y (a block of `split`)
is copied first: the fold needs the runs' blocks one after another.
"""

from __future__ import annotations

import torch


def data_times(a: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """a Wᵀ, (n, d) × (k, d) → (n, k), for data `a` shared by the runs and a run's own W."""
    if a.dim() != 2 or W.dim() != 2:
        raise ValueError(f"data_times takes matrices: a of shape (n, d) and W of (k, d), not {tuple(a.shape)} and "
                         f"{tuple(W.shape)}")
    return (W.clone() @ a.T).T
