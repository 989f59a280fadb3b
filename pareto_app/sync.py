"""Reading a tensor's values on the host: free on the CPU, a wait for the device on a GPU.

The batched engine never reads values inside a step on a GPU (issue 9). On the CPU it may, where
that saves work (a loop that ends once every instance has converged): `may_read` is the one place
that decides, so a test can forbid reads on the CPU too and count what remains.
"""

from __future__ import annotations

import torch


def may_read(t: torch.Tensor) -> bool:
    """Whether the caller may read `t`'s values on the host (`bool(t.any())`, `.item()`) to save work."""
    return t.device.type == "cpu"
