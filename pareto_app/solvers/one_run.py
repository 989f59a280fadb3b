"""A single run as B = 1 of its solver's batched step (issue 9): one code path for a run and a sweep's rows.

A solver's `step` lifts its run to the batched shape (a leading axis of 1), steps with the batched
engine on the run's own oracles (`BatchedOracles.single`: its plain functions, its counts and its control
channel) and hands back the run's values. The host reads of a single run's step are here, in one place:
the StepOutput that a run's loop (`api.Run`) records holds host values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .base import StepOutput


def preference_row(preference: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """The preference as the batched step's R: (1, S), float64, on the run's device."""
    return torch.as_tensor(np.asarray(preference, dtype=float)[None], device=like.device)


def step_output(out: Any) -> StepOutput:
    """The run's StepOutput from the batched step's Output (row 0). A non-finite weighting input means the
    run has diverged: the ValueError that `api.Run` turns into a stop that keeps the last good iterate."""
    if not bool(out.finite_weighting[0]):
        raise ValueError("the weighting QP's Gram matrix has non-finite entries (nan or inf)")
    return StepOutput(x=out.X[0], y=out.Y[0], objectives=out.objectives[0],
                      weights=out.weights[0].double().cpu().numpy(), direction_norm=float(out.direction_norm[0]),
                      multipliers=None if out.multipliers is None else out.multipliers[0].double().cpu().numpy(),
                      schedule=None if out.schedule is None else {k: float(v[0]) for k, v in out.schedule.items()})
