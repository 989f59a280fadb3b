"""A single run as B = 1 of its solver's batched step (issue 9): one code path for a run and a sweep's rows.

A solver's `step` lifts its run to the batched shape (a leading axis of 1), steps with the batched
engine on the run's own oracles (`BatchedOracles.single`: its plain functions, its counts and its control
channel) and hands back the run's values, still on its device: the run's loop (`api.Run`) reads them on
the host when it records them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .base import StepOutput

_last_row: tuple[tuple[bytes, torch.device, torch.dtype], torch.Tensor] | None = None


def preference_row(preference: np.ndarray, like: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The preference as the batched step's R: (1, S), float64 unless said, on the run's device. The same preference
    as the last step's is the same tensor: a copy to a GPU waits for it, and a run's preference rarely moves."""
    global _last_row
    r = np.asarray(preference, dtype=float)
    key = (r.tobytes(), like.device, dtype)
    last = _last_row
    if last is not None and last[0] == key:
        return last[1]
    row = torch.as_tensor(r[None], dtype=dtype, device=like.device)
    _last_row = (key, row)
    return row


def step_output(out: Any) -> StepOutput:
    """The run's StepOutput from the batched step's Output (row 0), on the run's device: nothing is read on the
    host here. A non-finite weighting input (`finite_weighting` False) means the run has diverged: `api.Run`
    stops it there and keeps the last good iterate."""
    return StepOutput(x=out.X[0], y=out.Y[0], objectives=out.objectives[0], weights=out.weights[0],
                      direction_norm=out.direction_norm[0],
                      multipliers=None if out.multipliers is None else out.multipliers[0],
                      schedule=None if out.schedule is None else {k: v[0] for k, v in out.schedule.items()},
                      finite_weighting=out.finite_weighting[0])
