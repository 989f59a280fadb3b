"""Products of shared data with a run's parameters, written so that a batched sweep folds its runs together.

Under `torch.func.vmap` over runs, a product `a @ W.T` of data `a` (the same for every run) with a
run's matrix W becomes a batched product with `a` repeated once per run; `W @ a.T` with W laid out
contiguously folds the runs into the rows of one matrix product, and its derivatives (the batched
engine's gradients, HVPs and JVPs) fold the same way. A strided view of x or y (a block of `split`)
is copied first: the fold needs the runs' blocks one after another.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def data_times(a: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """a Wᵀ, (n, d) × (k, d) → (n, k), for data `a` shared by the runs and a run's own W."""
    if a.dim() != 2 or W.dim() != 2:
        raise ValueError(f"data_times takes matrices: a of shape (n, d) and W of (k, d), not {tuple(a.shape)} and "
                         f"{tuple(W.shape)}")
    return (W.clone() @ a.T).T


def columns_times(W: torch.Tensor, a_columns: torch.Tensor) -> torch.Tensor:
    """W a, (k, d) × (d, n) → (k, n), for data given as columns (`a_columns` = aᵀ, contiguous, shared by the runs).

    The column layout keeps a model's outputs as (classes, samples) all the way: no transposed view to copy in
    the derivatives, and a softmax over the classes that runs along contiguous samples (`column_cross_entropy`).
    Under vmap over runs the product folds as `data_times`' does."""
    if a_columns.dim() != 2 or W.dim() != 2:
        raise ValueError(f"columns_times takes matrices: W of shape (k, d) and data of (d, n), not {tuple(W.shape)} and "
                         f"{tuple(a_columns.shape)}")
    return W.clone() @ a_columns


def column_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of logits given as columns, (classes, n), against n labels (as F.cross_entropy's rows)."""
    out = F.cross_entropy(logits[None], labels[None], reduction=reduction)  # n as a spatial dimension
    return out[0] if reduction == "none" else out
