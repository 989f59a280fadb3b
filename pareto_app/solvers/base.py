"""What every solver shares: typed options, the step output, and the solver interface.

A solver is a pair of functions in the optax style:

    state = solver.init(problem, preference, options, oracles, generator)
    state, out = solver.step(state, preference)

State is plain data, so a run can be paused, resumed and steered: the preference is read
at every step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from ..oracles import Oracles
from ..problem import Problem


@dataclass(frozen=True)
class Option:
    """One solver option. `default=None` means: estimated from the problem at the start."""

    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    integer: bool = False

    def check(self, solver: str, name: str, value: Any) -> Any:
        if value is None:
            if self.default is None:
                return None  # estimated from the problem at the start
            raise ValueError(f"{solver}: option {name}=None is not accepted; give a value, or leave the option out "
                             f"for its default {self.default!r}")
        if self.choices is not None:
            # Only a plain value can be one of the choices (an array's `in` would compare element-wise).
            if not isinstance(value, (str, int, float)) or isinstance(value, bool) or value not in self.choices:
                raise ValueError(f"{solver}: option {name}={value!r} is not accepted; choose one of {list(self.choices)}")
            return value
        if isinstance(value, (bool, np.bool_)):  # True would otherwise pass as the number 1.0
            raise ValueError(f"{solver}: option {name}={value!r} must be a number, not a boolean")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{solver}: option {name}={value!r} must be a finite number") from None
        if not np.isfinite(number):
            raise ValueError(f"{solver}: option {name}={value!r} must be finite")
        if self.integer:
            if number != int(number):
                raise ValueError(f"{solver}: option {name}={value!r} must be a whole number")
            number = int(number)
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            raise ValueError(f"{solver}: option {name}={value!r} is out of range; accepted: {low} to {high}")
        return number


@dataclass
class StepOutput:
    """What one step of a single run produced, at the point (x, y) where the solver evaluated F: tensors on the
    run's device, read on the host only when the run records them (`api.Run`), so a step never waits for a GPU."""

    x: torch.Tensor
    y: torch.Tensor
    objectives: torch.Tensor  # F(x, y), S numbers
    weights: torch.Tensor  # (S,) the solver's weights on ∇f_s this step, summing to 1
    direction_norm: torch.Tensor  # () ‖d_k‖², the squared norm of the update direction
    multipliers: torch.Tensor | None = None  # (S,) the solver's own KKT multipliers ω, if it has them
    schedule: dict[str, torch.Tensor] | None = None  # () each: what an adaptive solver set this step (penalty_u, ...)
    finite_weighting: torch.Tensor | None = None  # () False where the weighting's input was non-finite: diverged


@dataclass(frozen=True)
class Output:
    """What one batched step produced for B runs, on their device (a single run's is row 0 of B = 1)."""

    X: torch.Tensor  # the point where F was evaluated (before the update)
    Y: torch.Tensor
    objectives: torch.Tensor  # (B, S)
    weights: torch.Tensor  # (B, S), summing to 1 per run
    direction_norm: torch.Tensor  # (B,) ‖d‖²
    qp_gap: torch.Tensor  # (B,) the weighting QP's Frank-Wolfe certificate (0 for fixed weights)
    finite_weighting: torch.Tensor  # (B,) False where the QP's input was non-finite: that run has diverged
    multipliers: torch.Tensor | None = None  # (B, S) the KKT multipliers ω, where the solver has its own
    schedule: dict[str, torch.Tensor] | None = None  # (B,) each: what an adaptive solver set this step (step size, ...)


class Solver(Protocol):
    name: str
    summary: str
    needs_strong_convexity: bool
    options: Mapping[str, Option]

    def init(self, problem: Problem, preference: np.ndarray, options: dict[str, Any], oracles: Oracles,
             generator: torch.Generator) -> Any: ...

    def step(self, state: Any, preference: np.ndarray) -> tuple[Any, StepOutput]: ...


def check_options(solver: Solver, options: Mapping[str, Any]) -> dict[str, Any]:
    """Options with defaults filled in; ValueError on an unknown name or a value out of range."""
    unknown = sorted(set(options) - set(solver.options))
    if unknown:
        raise ValueError(f"{solver.name}: unknown option(s) {unknown}; accepted: {sorted(solver.options)}")
    return {name: spec.check(solver.name, name, options.get(name, spec.default)) for name, spec in solver.options.items()}

